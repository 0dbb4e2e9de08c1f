r"""The per-example −ELBO in plain TensorFlow ops, for training speed.

The Keras graph of :class:`~tfpvae.VAE` builds TFP distribution objects at every
step: ``MultivariateNormalTriL`` through the ``FillScaleTriL`` bijector, a
``_TensorCoercible`` sample, the KL layer, and the Beta's ``lbeta``. This module
computes *the same objective* from the same Keras layers and weights with a few
fused ops, so that the whole training step can be XLA-compiled:

* posterior parameters exactly as TFP's layers map them
  (``MultivariateNormalTriL``: ``loc = p[:d]``, ``L = fill_triangular(p[d:])`` with
  ``softplus`` + 1e-5 on the diagonal; ``IndependentNormal``: ``softplus`` scale);
* :math:`z = \mu + L\varepsilon`, :math:`\varepsilon \sim \mathcal{N}(0, I)`;
* against the N(0, I) prior, the exact KL
  :math:`\tfrac12(\lVert L\rVert_F^2 + \lVert\mu\rVert^2 - d) - \sum_i \log L_{ii}`,
  or the sampled one at test points :math:`z_s = \mu + L\varepsilon_s`,
  :math:`\log q(z_s) - \log p(z_s) = \tfrac12\lVert z_s\rVert^2
  - \tfrac12\lVert\varepsilon_s\rVert^2 - \sum_i \log L_{ii}`
  (with one test point, the decoder's own z, as TFP does);
* the likelihood's log-prob from its parameters (:meth:`Likelihood.log_prob_from_params`).

The fast path is used by ``fit``/``evaluate`` when the prior is the default
N(0, I); ``vae(x)`` always returns the TFP distribution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tfpvae._backend import tf, tfk, tfp

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


@dataclass
class FastObjective:
    """Per-example rate and distortion of a VAE from its own layers.

    Args:
        vae: The :class:`~tfpvae.VAE` whose layers and weights are used.
        gaussian: :func:`full_gaussian` or :func:`diag_gaussian`.
    """

    vae: tfk.Model
    gaussian: Callable[[tf.Tensor, int], GaussianParams]

    def __post_init__(self) -> None:
        self.encoder_params = params_model(self.vae.encoder, "approx_posterior")
        self.decoder_params = params_model(self.vae.decoder, "likelihood")

    def terms(
        self,
        x: tf.Tensor,
        target: tf.Tensor,
        eps: tf.Tensor,
        kl_eps: tf.Tensor | None,
        training: bool,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """(rate, distortion), each ``[batch]``, for given standard normal noise.

        Args:
            x: Images ``[batch, *input_shape]``.
            target: What the likelihood scores; for a VAE, ``x`` itself.
            eps: ``[batch, d]`` noise for the decoder's z.
            kl_eps: ``[S, batch, d]`` noise for separate KL test points, or ``None``
                to use the decoder's z (TFP's default with one sample). Ignored
                when the KL is exact.
            training: Passed to the Keras layers.
        """
        config = self.vae.config
        q = self.gaussian(self.encoder_params(x, training=training), config.latent_dim)
        z = q.loc + q.scale_times(eps)  # [batch, d]
        if config.use_exact_kl:
            rate = exact_kl(q)
        else:
            rate = sampled_kl(q, eps[None] if kl_eps is None else kl_eps)
        params = self.decoder_params(z, training=training)  # [batch, n_params]
        distortion = -self.vae.likelihood.log_prob_from_params(params, target)
        return rate, distortion
