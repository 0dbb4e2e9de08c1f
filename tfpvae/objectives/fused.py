r"""The per-example −ELBO in plain TensorFlow ops, for training speed.

This is the ``"elbo"`` objective's implementation for the configurations it
covers (:class:`FusedELBO`); :mod:`tfpvae.objectives.elbo` holds the general one.

The Keras graph of :class:`~tfpvae.VAE` builds TFP distribution objects at every
step: ``MultivariateNormalTriL`` through the ``FillScaleTriL`` bijector, a
``_TensorCoercible`` sample, the KL layer, and the Beta's ``lbeta``. This module
computes *the same objective* from the same Keras layers and weights with a few
fused ops, so that the whole training step can be XLA-compiled:

* posterior parameters exactly as TFP's layers map them
  (``MultivariateNormalTriL``: ``loc = p[:d]``, ``L = fill_triangular(p[d:])`` with
  ``softplus`` + 1e-5 on the diagonal; ``IndependentNormal``: ``softplus`` scale);
* :math:`z_s = \mu + L\varepsilon_s`, :math:`\varepsilon_s \sim \mathcal{N}(0, I)`, S per image;
* against the N(0, I) prior, the exact KL
  :math:`\tfrac12(\lVert L\rVert_F^2 + \lVert\mu\rVert^2 - d) - \sum_i \log L_{ii}`,
  or the sampled one at test points :math:`z_s = \mu + L\varepsilon_s`,
  :math:`\log q(z_s) - \log p(z_s) = \tfrac12\lVert z_s\rVert^2
  - \tfrac12\lVert\varepsilon_s\rVert^2 - \sum_i \log L_{ii}`
  (with one test point, the decoder's own z, as TFP does);
* the likelihood's log-prob from its parameters (:meth:`Likelihood.log_prob_from_params`).

The fused path is used by ``fit``/``evaluate`` when the prior is the default
N(0, I) and ``VAEConfig.fast_path`` is on; ``vae(x)`` always returns the TFP
distribution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tfpvae._backend import tf, tfk, tfp
from tfpvae.components.priors import PRIORS
from tfpvae.objectives.base import Objective, Terms
from tfpvae.registry import Registry

#: Noise of the fused path: ``eps [S, batch, d]`` and optional ``kl_eps [K, batch, d]``.
Noise = tuple[tf.Tensor, tf.Tensor | None]

#: ``tfpl.MultivariateNormalTriL`` adds this to the softplus of the diagonal.
TRIL_DIAG_SHIFT = 1e-5


@dataclass(frozen=True)
class GaussianParams:
    """A Gaussian posterior in the form the closed-form KL needs.

    Attributes:
        loc: ``[batch, d]`` means.
        scale_times: ``eps [..., batch, d] → L eps``.
        sum_log_diag: ``[batch]`` :math:`\\sum_i \\log L_{ii}`.
        frobenius_sq: ``[batch]`` :math:`\\lVert L\\rVert_F^2`.
    """

    loc: tf.Tensor
    scale_times: Callable[[tf.Tensor], tf.Tensor]
    sum_log_diag: tf.Tensor
    frobenius_sq: tf.Tensor


def full_gaussian(params: tf.Tensor, latent_dim: int) -> GaussianParams:
    """``tfpl.MultivariateNormalTriL``'s parameter map, as plain ops."""
    loc = params[..., :latent_dim]
    tril = tfp.math.fill_triangular(params[..., latent_dim:])  # [batch, d, d]
    diag = tf.math.softplus(tf.linalg.diag_part(tril)) + TRIL_DIAG_SHIFT  # [batch, d]
    # Replace the diagonal by masking (set_diag's gradient needs dynamic shapes under XLA).
    off_diagonal = 1.0 - tf.eye(latent_dim, dtype=tril.dtype)
    scale = tril * off_diagonal + tf.linalg.diag(diag)
    return GaussianParams(
        loc=loc,
        scale_times=lambda eps: tf.einsum("bij,...bj->...bi", scale, eps),
        sum_log_diag=tf.reduce_sum(tf.math.log(diag), axis=-1),
        frobenius_sq=tf.reduce_sum(tf.square(scale), axis=[-2, -1]),
    )


def diag_gaussian(params: tf.Tensor, latent_dim: int) -> GaussianParams:
    """``tfpl.IndependentNormal``'s parameter map, as plain ops."""
    loc, raw_scale = tf.split(params, 2, axis=-1)
    scale = tf.math.softplus(raw_scale)
    return GaussianParams(
        loc=loc,
        scale_times=lambda eps: scale * eps,
        sum_log_diag=tf.reduce_sum(tf.math.log(scale), axis=-1),
        frobenius_sq=tf.reduce_sum(tf.square(scale), axis=-1),
    )


def exact_kl(q: GaussianParams) -> tf.Tensor:
    """KL(q ‖ N(0, I)) per example, ``[batch]``."""
    d = float(q.loc.shape[-1])
    return 0.5 * (q.frobenius_sq + tf.reduce_sum(tf.square(q.loc), -1) - d) - q.sum_log_diag


def sampled_kl(q: GaussianParams, eps: tf.Tensor) -> tf.Tensor:
    """Monte Carlo KL(q ‖ N(0, I)) at ``z_s = loc + L eps_s``.

    Args:
        q: The posterior.
        eps: ``[S, batch, d]`` standard normal noise.

    Returns:
        ``[batch]`` estimates.
    """
    z = q.loc + q.scale_times(eps)  # [S, batch, d]
    log_ratio = 0.5 * tf.reduce_sum(tf.square(z) - tf.square(eps), axis=-1) - q.sum_log_diag
    return tf.reduce_mean(log_ratio, axis=0)


def params_model(model: tfk.Model, layer_name: str) -> tfk.Model:
    """A model sharing ``model``'s layers whose output is the input of ``layer_name``."""
    return tfk.Model(model.inputs, model.get_layer(layer_name).input)


#: Posterior families the fused path covers: name → their parameter map as plain ops.
FUSED_GAUSSIANS: Registry[Callable[[tf.Tensor, int], GaussianParams]] = Registry("posterior")
FUSED_GAUSSIANS.register("full", full_gaussian)
FUSED_GAUSSIANS.register("diag", diag_gaussian)


def fused_applies(vae: Any) -> bool:
    """Whether the fused objectives cover ``vae``: a Gaussian posterior against N(0, I).

    Not a user's prior, nor a learned one, and only while ``fast_path`` is on.
    """
    config = vae.config
    standard_prior = not vae.custom_prior and not PRIORS.get(config.prior).learned
    return config.fast_path and standard_prior and config.posterior in FUSED_GAUSSIANS


def tile_images(x: tf.Tensor, n: int) -> tf.Tensor:
    """``n`` copies of the batch ``x`` stacked along the batch axis, ``[n * batch, ...]``."""
    return x if n == 1 else tf.tile(x, [n] + [1] * (x.shape.rank - 1))


class FusedELBO(Objective):
    """The ELBO with S draws per image from a VAE's own layers, as plain ops.

    Covers a Gaussian posterior (:data:`FUSED_GAUSSIANS`) against the default
    N(0, I) prior. The noise is explicit, so a fixed draw gives a fixed value:
    ``eps [S, batch, d]`` for the decoder's z and, when the sampled KL has
    ``kl_samples > 1`` test points of its own, ``kl_eps [kl_samples, batch, d]``.

    Args:
        vae: The :class:`~tfpvae.VAE` whose layers, weights, β and likelihood are used.
        n_samples: S, draws of z per image.
    """

    xla_friendly = True

    def __init__(self, vae: Any, n_samples: int = 1) -> None:
        self.vae = vae
        self.n_samples = int(n_samples)
        self.gaussian = FUSED_GAUSSIANS.get(vae.config.posterior)
        self.encoder_params = params_model(vae.encoder, "approx_posterior")
        self.decoder_params = params_model(vae.decoder, "likelihood")

    def draw_noise(self, generator: tf.random.Generator, batch: tf.Tensor) -> Noise:
        config = self.vae.config
        eps = generator.normal([self.n_samples, batch, config.latent_dim])
        kl_eps = None
        if not config.use_exact_kl and config.kl_samples > 1:
            kl_eps = generator.normal([config.kl_samples, batch, config.latent_dim])
        return eps, kl_eps

    def terms(self, x: tf.Tensor, noise: Noise | None = None, training: bool = False) -> Terms:
        """Per-image terms at the standard normal ``noise = (eps, kl_eps)``.

        ``kl_eps`` of ``None`` puts the sampled KL's test points at the decoder's
        own z (TFP's default with one sample); it is ignored when the KL is exact.
        """
        config = self.vae.config
        eps, kl_eps = (
            noise if noise is not None else self.draw_noise(self.vae.noise, tf.shape(x)[0])
        )
        q = self.gaussian(self.encoder_params(x, training=training), config.latent_dim)
        z = q.loc + q.scale_times(eps)  # [S, batch, d]
        if config.use_exact_kl:
            rate = exact_kl(q)
        else:
            rate = sampled_kl(q, eps if kl_eps is None else kl_eps)
        samples = self.n_samples
        params = self.decoder_params(tf.reshape(z, [-1, config.latent_dim]), training=training)
        log_lik = self.vae.likelihood.log_prob_from_params(params, tile_images(x, samples))
        distortion = -tf.reduce_mean(tf.reshape(log_lik, [samples, -1]), axis=0)  # [batch]
        loss = distortion + tf.cast(self.vae.kl_weight, rate.dtype) * rate
        return Terms(loss, rate, distortion)
