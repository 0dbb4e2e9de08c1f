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

The ``gradient`` option picks the estimator (:mod:`tfpvae.objectives.gradients`):
``"standard"`` or ``"dreg"``; :mod:`tfpvae.objectives.renyi` derives DReG's weights
for any α, of which the IWAE is α = 0 (the same class runs both).
"""

from __future__ import annotations

from typing import Any

from tfpvae._backend import tf
from tfpvae.objectives.base import (
    OBJECTIVES,
    Objective,
    Parts,
    SeededObjective,
    Terms,
    refuse_options,
)
from tfpvae.objectives.estimators import log_likelihood, log_ratio, log_weights, renyi_terms
from tfpvae.objectives.fused import FusedIWAE, fused_applies
from tfpvae.objectives.gradients import (
    ScaledPath,
    check_gradient,
    check_path_gradient,
    path_log_prob,
    with_value,
)


class IWAE(SeededObjective):
    """The K-sample IWAE loss (or Rényi loss at ``alpha``) through the TFP distributions.

    Args:
        parts: The model's :class:`~tfpvae.objectives.base.Parts`.
        k: K, importance samples per image.
        gradient: ``"standard"`` (``None``) or ``"dreg"``.
        alpha: α of the Rényi bound; 0 is the IWAE.
    """

    #: The objective's registry name, for messages about its options.
    name = "iwae"

    def __init__(
        self, parts: Parts, k: int, gradient: str | None = None, alpha: float = 0.0
    ) -> None:
        super().__init__(parts)
        self.k = int(k)
        self.gradient = check_gradient(self.name, gradient)
        check_path_gradient(self.gradient, parts.encoder.layer)
        self.alpha = float(alpha)

    def terms(self, x: tf.Tensor, noise: Any = None, training: bool = False) -> Terms:
        """Per-image terms; ``noise`` is a stateless seed ``[2]`` (``None`` draws one)."""
        parts = self.parts
        seed = self.noise_or_fresh(x, noise)
        q = parts.posterior(x, training=training)
        z = q.sample(self.k, seed=seed)  # [K, batch, d]
        prior = parts.prior.distribution()
        if self.gradient != "dreg":
            log_lik = log_likelihood(
                x, z, lambda flat: parts.decode(flat, training=training), parts.likelihood
            )
            return renyi_terms(log_lik, log_ratio(q, prior, z), parts.kl_weight, self.alpha)
        path = ScaledPath()
        z_model = path(z)  # what the decoder and the prior see: their z-gradient is scaled
        log_q = path_log_prob(q, z)  # at q's own draws (a flow's cached forward pass)
        log_prior = prior.log_prob(z_model)
        log_lik = log_likelihood(
            x, z_model, lambda flat: parts.decode(flat, training=training), parts.likelihood
        )
        terms = renyi_terms(log_lik, log_q - log_prior, parts.kl_weight, self.alpha)
        return terms._replace(loss=self.dreg_loss(terms.loss, log_lik, log_prior, log_q, path))

    def dreg_loss(
        self,
        loss: tf.Tensor,
        log_lik: tf.Tensor,
        log_prior: tf.Tensor,
        log_q: tf.Tensor,
        path: ScaledPath,
    ) -> tf.Tensor:
        r"""``loss``'s value with the DReG gradient (:mod:`tfpvae.objectives.renyi`).

        With :math:`\tilde w_k` the normalised :math:`w_k^{1-\alpha}` and
        :math:`s_k = 1 - \beta(1-\alpha)(1-\tilde w_k)` (:math:`\alpha + (1-\alpha)\tilde w_k`
        at :math:`\beta = 1`: the score term that DReG rewrites carries the β of
        :math:`\log w_k`), the surrogate
        :math:`-\sum_k \mathrm{sg}(\tilde w_k)\,[\log p(x|z_k) + \beta\log p(z_k)]
        - \beta\,\mathrm{sg}(\tilde w_k s_k)\log q(z_k|x)` (log q through z only,
        the decoder's and prior's z-gradient scaled by :math:`s_k`) gives the decoder
        and a learned prior their ordinary gradient and the encoder
        :math:`\sum_k \tilde w_k s_k\,\partial_z\log w_k\,\partial z_k/\partial\phi`.
        """
        beta = tf.cast(self.parts.kl_weight, log_q.dtype)
        log_w = log_weights(log_lik, log_q - log_prior, beta)  # [K, batch]
        normalised = tf.stop_gradient(tf.nn.softmax((1.0 - self.alpha) * log_w, axis=0))
        scale = 1.0 - beta * (1.0 - self.alpha) * (1.0 - normalised)  # s_k
        path.set(scale)
        model = normalised * (log_lik + beta * log_prior)
        encoder = beta * tf.stop_gradient(normalised * scale) * log_q
        return with_value(loss, tf.reduce_sum(encoder - model, axis=0))


def make_iwae(
    parts: Parts,
    iwae_k: int = 5,
    gradient: str | None = None,
    alpha: Any = None,
    free_bits: Any = None,
    **_: Any,
) -> Objective:
    """The ``"iwae"`` objective with K = ``iwae_k``: fused where the parts allow it."""
    refuse_options("iwae", alpha=alpha, free_bits=free_bits)
    if fused_applies(parts, gradient=gradient):
        return FusedIWAE(parts, iwae_k)
    return IWAE(parts, iwae_k, gradient=gradient)


OBJECTIVES.register("iwae", make_iwae)
