r"""The importance-weighted bound as a training loss: the ``"iwae"`` objective.

Burda et al. (2015) train on the K-sample importance-weighted bound

.. math::

    \mathcal{L}_K(x) = \log \frac1K \sum_{k=1}^K w_k, \qquad
    \log w_k = \log p(x|z_k) + \beta\,\big(\log p(z_k) - \log q(z_k|x)\big), \qquad
    z_k \sim q(z|x),

so the per-image loss is :math:`-\mathcal{L}_K(x)`, computed with a log-sum-exp.
With β = 1 it is the IWAE bound (β < 1 during a KL warm-up tempers the prior
ratio, as for the ELBO). K = 1 is the single-sample ELBO; the bound tightens
towards :math:`\log p(x)` as K grows. The gradient is the self-normalised
importance-weighted average of the single-sample gradients,
:math:`-\sum_k \tilde w_k \nabla \log w_k` with :math:`\tilde w_k = w_k / \sum_j w_j`.

The ``rate`` and ``distortion`` reported beside the loss are the usual
single-sample diagnostics averaged over the K draws,
:math:`\frac1K\sum_k \log q(z_k|x) - \log p(z_k)` and
:math:`-\frac1K\sum_k \log p(x|z_k)`: their sum is the K-draw estimate of the
negative ELBO, which the IWAE loss never exceeds (at β = 1).

:class:`IWAE` works with any posterior, prior and likelihood through their TFP
distributions; its noise is a stateless seed, so a fixed seed gives fixed draws.
:class:`FusedIWAE` is the same loss in plain ops for a Gaussian posterior against
the default N(0, I) prior (as :class:`~tfpvae.objectives.fused.FusedELBO`), with
the standard normal noise ``eps [K, batch, d]`` explicit.
"""

from __future__ import annotations

from typing import Any

from tfpvae._backend import tf
from tfpvae.objectives.base import OBJECTIVES, Objective, SeededObjective, Terms
from tfpvae.objectives.fused import FUSED_GAUSSIANS, fused_applies, params_model, tile_images


def iwae_terms(log_lik: tf.Tensor, log_ratio: tf.Tensor, kl_weight: tf.Tensor) -> Terms:
    r"""Per-image :class:`Terms` from the K draws' log-likelihoods and log q − log p.

    Args:
        log_lik: ``[K, batch]`` :math:`\log p(x|z_k)`.
        log_ratio: ``[K, batch]`` :math:`\log q(z_k|x) - \log p(z_k)`.
        kl_weight: β.

    Returns:
        The loss :math:`-\log\frac1K\sum_k w_k` and the K-draw averages of the rate
        and distortion, each ``[batch]``.
    """
    k = tf.cast(tf.shape(log_lik)[0], log_lik.dtype)
    log_w = log_lik - tf.cast(kl_weight, log_ratio.dtype) * log_ratio
    loss = tf.math.log(k) - tf.reduce_logsumexp(log_w, axis=0)
    return Terms(loss, tf.reduce_mean(log_ratio, axis=0), -tf.reduce_mean(log_lik, axis=0))


class IWAE(SeededObjective):
    """The K-sample IWAE loss through the TFP distributions of the encoder and decoder.

    Args:
        vae: The :class:`~tfpvae.VAE` it is bound to.
        k: K, importance samples per image.
    """

    def __init__(self, vae: Any, k: int) -> None:
        self.vae = vae
        self.k = int(k)

    def terms(self, x: tf.Tensor, noise: Any = None, training: bool = False) -> Terms:
        """Per-image terms; ``noise`` is a stateless seed ``[2]`` (``None`` draws one)."""
        vae, k = self.vae, self.k
        noise = self.seed_of(x, noise)
        q = vae.encoder(x, training=training)
        z = q.sample(k, seed=noise)  # [K, batch, d]
        # log q at the draws themselves: a flow posterior reuses its forward pass (TFP's cache).
        log_ratio = q.log_prob(z) - vae.prior.log_prob(z)  # [K, batch]
        likelihood = vae.decoder(tf.reshape(z, [-1, z.shape[-1]]), training=training)
        log_lik = -vae.likelihood.negative_log_prob(tile_images(x, k), likelihood)
        return iwae_terms(tf.reshape(log_lik, [k, -1]), log_ratio, vae.kl_weight)


class FusedIWAE(Objective):
    r"""The K-sample IWAE loss of a Gaussian posterior against N(0, I), as plain ops.

    With :math:`z_k = \mu + L\varepsilon_k`,
    :math:`\log q(z_k|x) - \log p(z_k) = \tfrac12\lVert z_k\rVert^2
    - \tfrac12\lVert\varepsilon_k\rVert^2 - \sum_i \log L_{ii}`.

    Args:
        vae: The :class:`~tfpvae.VAE` whose layers, weights, β and likelihood are used.
        k: K, importance samples per image.
    """

    xla_friendly = True

    def __init__(self, vae: Any, k: int) -> None:
        self.vae = vae
        self.k = int(k)
        self.gaussian = FUSED_GAUSSIANS.get(vae.config.posterior)
        self.encoder_params = params_model(vae.encoder, "approx_posterior")
        self.decoder_params = params_model(vae.decoder, "likelihood")

    def draw_noise(self, generator: tf.random.Generator, batch: tf.Tensor) -> tf.Tensor:
        """Standard normal ``eps [K, batch, latent_dim]``."""
        return generator.normal([self.k, batch, self.vae.config.latent_dim])

    def terms(self, x: tf.Tensor, noise: tf.Tensor | None = None, training: bool = False) -> Terms:
        """Per-image terms at the standard normal draws ``noise = eps [K, batch, d]``."""
        latent_dim = self.vae.config.latent_dim
        eps = noise if noise is not None else self.draw_noise(self.vae.noise, tf.shape(x)[0])
        q = self.gaussian(self.encoder_params(x, training=training), latent_dim)
        z = q.loc + q.scale_times(eps)  # [K, batch, d]
        log_ratio = 0.5 * tf.reduce_sum(tf.square(z) - tf.square(eps), axis=-1) - q.sum_log_diag
        params = self.decoder_params(tf.reshape(z, [-1, latent_dim]), training=training)
        log_lik = self.vae.likelihood.log_prob_from_params(params, tile_images(x, self.k))
        return iwae_terms(tf.reshape(log_lik, [self.k, -1]), log_ratio, self.vae.kl_weight)


def make_iwae(vae: Any) -> Objective:
    """The ``"iwae"`` objective of ``vae`` with K = ``config.iwae_k``: fused where it applies."""
    return (FusedIWAE if fused_applies(vae) else IWAE)(vae, vae.config.iwae_k)


OBJECTIVES.register("iwae", make_iwae)
