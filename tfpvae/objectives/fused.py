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

The fused path is chosen from the *types* of the parts (:func:`fused_applies`):
a posterior layer of a class in :data:`FUSED_GAUSSIANS` (``tfpl.MultivariateNormalTriL``,
``tfpl.IndependentNormal``), a likelihood layer of a registered class (the
``Likelihood`` entries, ``tfpl.IndependentBernoulli`` among them), a prior that is
N(0, I) with no variables, and a KL estimator whose test points it can play. A
user's own ``Sequential`` of those layers gets it as well as ``build_vae``'s;
everything else runs on the general path. ``vae(x)`` always returns the TFP
distribution. A conditional VAE's parts, with a batch's labels bound into both
networks (:meth:`~tfpvae.objectives.base.Parts.given`), are covered alike: the bound
parameter networks take x and z alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tfpvae._backend import tf, tfp, tfpl
from tfpvae.components.parts import is_standard_normal
from tfpvae.objectives.base import Objective, Parts, Terms
from tfpvae.objectives.estimators import renyi_terms, tile_images
from tfpvae.objectives.gradients import gradient_name

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
    return tf.reduce_mean(standard_log_ratio(q, q.loc + q.scale_times(eps), eps), axis=0)


def standard_log_ratio(q: GaussianParams, z: tf.Tensor, eps: tf.Tensor) -> tf.Tensor:
    r""":math:`\log q(z|x) - \log \mathcal{N}(z; 0, I)` at :math:`z = \mu + L\varepsilon`,
    ``[S, batch]``: :math:`\tfrac12\lVert z\rVert^2 - \tfrac12\lVert\varepsilon\rVert^2
    - \sum_i \log L_{ii}` (the normalising constants cancel)."""
    return 0.5 * tf.reduce_sum(tf.square(z) - tf.square(eps), axis=-1) - q.sum_log_diag


#: Posterior layer classes the fused path covers → their parameter map as plain ops.
FUSED_GAUSSIANS: dict[type, Callable[[tf.Tensor, int], GaussianParams]] = {
    tfpl.MultivariateNormalTriL: full_gaussian,
    tfpl.IndependentNormal: diag_gaussian,
}


def fused_applies(parts: Parts, *, gradient: str | None = None, free_bits: float = 0.0) -> bool:
    """Whether the fused objectives cover these parts, judged by their types.

    A Gaussian posterior layer of :data:`FUSED_GAUSSIANS` and a registered
    likelihood layer, both at the end of graph networks; a prior that is N(0, I)
    without variables; test points the fused KL can draw; ``fast_path`` on; the
    standard gradient (``gradient`` ``None`` or ``"standard"``: the DReG and STL
    estimators run on the general path) and no free bits (``free_bits`` 0).
    """
    return (
        gradient_name(gradient) == "standard"
        and not free_bits
        and parts.fast_path
        and parts.encoder.params is not None
        and type(parts.encoder.layer) in FUSED_GAUSSIANS
        and parts.decoder.params is not None
        and parts.likelihood is not None
        and parts.prior.layer is None
        and is_standard_normal(parts.prior.fixed)
        and parts.kl.plain_test_points
    )


class _Fused(Objective):
    """What both fused objectives share: the parameter networks and their maps."""

    xla_friendly = True

    def __init__(self, parts: Parts) -> None:
        super().__init__(parts)
        self.gaussian = FUSED_GAUSSIANS[type(parts.encoder.layer)]
        self.latent_dim = parts.latent_dim

    def posterior_params(self, x: tf.Tensor, training: bool) -> GaussianParams:
        return self.gaussian(self.parts.encoder.params(x, training=training), self.latent_dim)

    def log_likelihood(self, x: tf.Tensor, z: tf.Tensor, training: bool) -> tf.Tensor:
        """log p(x | z_s) ``[S, batch]`` from the decoder's raw parameters."""
        samples = tf.shape(z)[0]
        flat_z = tf.reshape(z, [-1, self.latent_dim])
        params = self.parts.decoder.params(flat_z, training=training)
        likelihood = self.parts.likelihood
        assert likelihood is not None  # fused_applies checked it
        log_lik = likelihood.log_prob_from_params(params, tile_images(x, samples))
        return tf.reshape(log_lik, [samples, -1])


class FusedELBO(_Fused):
    """The ELBO with S draws per image as plain ops (see :func:`fused_applies`).

    The noise is explicit, so a fixed draw gives a fixed value: ``eps [S, batch, d]``
    for the decoder's z and, when the sampled KL has test points of its own,
    ``kl_eps [kl_samples, batch, d]``.

    Args:
        parts: The model's :class:`~tfpvae.objectives.base.Parts`.
        n_samples: S, draws of z per image.
    """

    def __init__(self, parts: Parts, n_samples: int = 1) -> None:
        super().__init__(parts)
        self.n_samples = int(n_samples)
        self.kl_samples = parts.kl.own_test_points

    def draw_noise(self, generator: tf.random.Generator, batch: tf.Tensor) -> Noise:
        eps = generator.normal([self.n_samples, batch, self.latent_dim])
        kl_eps = None
        if self.kl_samples is not None:
            kl_eps = generator.normal([self.kl_samples, batch, self.latent_dim])
        return eps, kl_eps

    def terms(self, x: tf.Tensor, noise: Noise | None = None, training: bool = False) -> Terms:
        """Per-image terms at the standard normal ``noise = (eps, kl_eps)``.

        ``kl_eps`` of ``None`` puts the sampled KL's test points at the decoder's
        own z (TFP's default with one sample); it is ignored when the KL is exact.
        """
        eps, kl_eps = self.noise_or_fresh(x, noise)
        q = self.posterior_params(x, training)
        z = q.loc + q.scale_times(eps)  # [S, batch, d]
        if self.parts.kl.use_exact_kl:
            rate = exact_kl(q)
        else:
            rate = sampled_kl(q, eps if kl_eps is None else kl_eps)
        distortion = -tf.reduce_mean(self.log_likelihood(x, z, training), axis=0)  # [batch]
        loss = distortion + tf.cast(self.parts.kl_weight, rate.dtype) * rate
        return Terms(loss, rate, distortion)


class FusedIWAE(_Fused):
    """The K-sample IWAE loss of a Gaussian posterior against N(0, I), as plain ops
    (each draw weighed by :func:`standard_log_ratio`); with ``alpha``, the Rényi loss.

    Args:
        parts: The model's :class:`~tfpvae.objectives.base.Parts`.
        k: K, importance samples per image.
        alpha: α of the Rényi bound (:func:`~tfpvae.objectives.estimators.renyi_terms`);
            0 is the IWAE.
    """

    def __init__(self, parts: Parts, k: int, alpha: float = 0.0) -> None:
        super().__init__(parts)
        self.k = int(k)
        self.alpha = float(alpha)

    def draw_noise(self, generator: tf.random.Generator, batch: tf.Tensor) -> tf.Tensor:
        """Standard normal ``eps [K, batch, latent_dim]``."""
        return generator.normal([self.k, batch, self.latent_dim])

    def terms(self, x: tf.Tensor, noise: tf.Tensor | None = None, training: bool = False) -> Terms:
        """Per-image terms at the standard normal draws ``noise = eps [K, batch, d]``."""
        eps = self.noise_or_fresh(x, noise)
        q = self.posterior_params(x, training)
        z = q.loc + q.scale_times(eps)  # [K, batch, d]
        ratio = standard_log_ratio(q, z, eps)
        log_lik = self.log_likelihood(x, z, training)
        return renyi_terms(log_lik, ratio, self.parts.kl_weight, self.alpha)
