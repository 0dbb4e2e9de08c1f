r"""The ELBO with S Monte Carlo draws per image: the ``"elbo"`` objective.

.. math::

    -\widehat{\mathrm{ELBO}}(x) = -\frac1S\sum_{s=1}^S \log p(x|z_s)
        + \beta\,\widehat{\mathrm{KL}}(q(z|x)\,\|\,p(z)),
    \qquad z_s \sim q(z|x).

The KL comes from the model's :class:`~tfpvae.components.kl.KLEstimator`: the
closed form when the encoder's KL layer (or ``use_exact_kl``) says so, otherwise
the Monte Carlo estimate at the S draws, or at test points of its own.

:class:`ELBO` works with any posterior, prior and likelihood, through the TFP
distributions the networks return. :func:`make_elbo` returns the fused
implementation of :mod:`tfpvae.objectives.fused` instead where the *types* of
the parts allow it: the same objective in plain ops.
"""

from __future__ import annotations

from typing import Any

from tfpvae._backend import tf, tfp
from tfpvae.objectives.base import OBJECTIVES, Objective, Parts, SeededObjective, Terms
from tfpvae.objectives.estimators import elbo_terms, log_likelihood
from tfpvae.objectives.fused import FusedELBO, fused_applies


class ELBO(SeededObjective):
    """The S-sample ELBO through the TFP distributions of the encoder and decoder.

    Draws come from the posterior family (``Posterior.draws``): ``q.sample(S)`` for
    the Gaussians, flows and any user layer, Gumbel-softmax draws at the layer's
    temperature for the relaxed categorical, all at a stateless seed (``noise``).

    Args:
        parts: The model's :class:`~tfpvae.objectives.base.Parts`.
        n_samples: S, draws of z per image.
    """

    def __init__(self, parts: Parts, n_samples: int = 1) -> None:
        super().__init__(parts)
        self.n_samples = int(n_samples)

    def terms(self, x: tf.Tensor, noise: Any = None, training: bool = False) -> Terms:
        """Per-image terms; ``noise`` is a stateless seed ``[2]`` (``None`` draws one)."""
        parts = self.parts
        seed = self.noise_or_fresh(x, noise)
        q = parts.posterior(x, training=training)
        z = parts.family.draws(q, self.n_samples, parts.temperature, seed=seed)  # [S, batch, d]
        log_lik = log_likelihood(
            x, z, lambda flat: parts.decode(flat, training=training), parts.likelihood
        )
        # The sampled KL's own test points come from a seed derived from the draws'.
        test_seed = tfp.random.split_seed(seed, n=1, salt="kl_test_points")[0]
        return elbo_terms(
            log_lik, q, parts.prior.distribution(), z, parts.kl, parts.kl_weight, test_seed
        )


def make_elbo(parts: Parts, n_samples: int = 1, **_: Any) -> Objective:
    """The ``"elbo"`` objective: fused where the parts' types allow it, else :class:`ELBO`."""
    return (FusedELBO if fused_applies(parts) else ELBO)(parts, n_samples)


OBJECTIVES.register("elbo", make_elbo)
