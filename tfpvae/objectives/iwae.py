r"""The importance-weighted bound as a training loss: the ``"iwae"`` objective.

Burda et al. (2015) train on the K-sample importance-weighted bound

.. math::

    \mathcal{L}_K(x) = \log \frac1K \sum_{k=1}^K w_k, \qquad
    \log w_k = \log p(x|z_k) + \beta\,\big(\log p(z_k) - \log q(z_k|x)\big), \qquad
    z_k \sim q(z|x),

so the per-image loss is :math:`-\mathcal{L}_K(x)`, computed with a log-sum-exp.
With β = 1 it is the IWAE bound (β < 1 during a KL warm-up tempers the prior
ratio, as for the ELBO). K = 1 is the single-sample ELBO; the bound tightens
towards :math:`\log p(x)` as K grows.

The ``rate`` and ``distortion`` reported beside the loss are the single-sample
diagnostics averaged over the K draws; their sum is the K-draw estimate of the
negative ELBO, which the IWAE loss never exceeds (at β = 1).

:class:`IWAE` works with any posterior, prior and likelihood through their TFP
distributions; :class:`~tfpvae.objectives.fused.FusedIWAE` is the same loss in
plain ops where the parts' types allow it.
"""

from __future__ import annotations

from typing import Any

from tfpvae._backend import tf
from tfpvae.objectives.base import OBJECTIVES, Objective, Parts, SeededObjective, Terms
from tfpvae.objectives.estimators import iwae_terms, log_likelihood, log_ratio
from tfpvae.objectives.fused import FusedIWAE, fused_applies


class IWAE(SeededObjective):
    """The K-sample IWAE loss through the TFP distributions of the encoder and decoder.

    Args:
        parts: The model's :class:`~tfpvae.objectives.base.Parts`.
        k: K, importance samples per image.
    """

    def __init__(self, parts: Parts, k: int) -> None:
        super().__init__(parts)
        self.k = int(k)

    def terms(self, x: tf.Tensor, noise: Any = None, training: bool = False) -> Terms:
        """Per-image terms; ``noise`` is a stateless seed ``[2]`` (``None`` draws one)."""
        parts = self.parts
        seed = self.noise_or_fresh(x, noise)
        q = parts.posterior(x, training=training)
        z = q.sample(self.k, seed=seed)  # [K, batch, d]
        ratio = log_ratio(q, parts.prior.distribution(), z)
        log_lik = log_likelihood(
            x, z, lambda flat: parts.decode(flat, training=training), parts.likelihood
        )
        return iwae_terms(log_lik, ratio, parts.kl_weight)


def make_iwae(parts: Parts, iwae_k: int = 5, **_: Any) -> Objective:
    """The ``"iwae"`` objective with K = ``iwae_k``: fused where the parts allow it."""
    return (FusedIWAE if fused_applies(parts) else IWAE)(parts, iwae_k)


OBJECTIVES.register("iwae", make_iwae)
