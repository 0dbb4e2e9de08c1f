r"""The probabilistic encoder q(z | x) with its KL to the prior attached.

The encoder is ``trunk → Dense(params_size) → posterior layer [→ KL layer]``. The
posterior layer is ``tfpl.MultivariateNormalTriL`` (``posterior="full"``, the
course's choice) or ``tfpl.IndependentNormal`` (``posterior="diag"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tfpvae._backend import tf, tfd, tfk, tfpl
from tfpvae.architectures import ARCHITECTURES
from tfpvae.config import VAEConfig
from tfpvae.divergences import KL_ATTACHMENTS, KLTerm
from tfpvae.fastpath import GaussianParams, diag_gaussian, full_gaussian
from tfpvae.likelihoods import get_likelihood
from tfpvae.precision import PRECISIONS
from tfpvae.priors import check_prior, standard_normal_prior
from tfpvae.registry import Registry


def _independent_standard_normal(latent_dim: int) -> tfd.Distribution:
    return tfd.Independent(
        tfd.Normal(loc=tf.zeros(latent_dim), scale=1.0), reinterpreted_batch_ndims=1, name="prior"
    )


@dataclass(frozen=True)
class Posterior:
    """A posterior family.

    Attributes:
        layer: The ``tfpl`` layer class (``params_size``/``new`` contract).
        default_prior: latent_dim → the N(0, I) prior in a family that has a
            closed-form KL with this posterior.
        fast_params: The layer's parameter map as plain ops (see ``tfpvae.fastpath``).
    """

    layer: type
    default_prior: Callable[[int], tfd.Distribution]
    fast_params: Callable[[tf.Tensor, int], GaussianParams]

    def params_size(self, latent_dim: int) -> int:
        """Numbers the encoder must emit for this family."""
        return int(self.layer.params_size(latent_dim))


#: Posterior registry.
POSTERIORS: Registry[Posterior] = Registry("posterior")
POSTERIORS.register(
    "full", Posterior(tfpl.MultivariateNormalTriL, standard_normal_prior, full_gaussian)
)
POSTERIORS.register(
    "diag", Posterior(tfpl.IndependentNormal, _independent_standard_normal, diag_gaussian)
)


def _check_exact_kl(posterior: Posterior, latent_dim: int, prior: tfd.Distribution) -> None:
    probe = posterior.layer.new(tf.zeros([1, posterior.params_size(latent_dim)]), latent_dim)
    try:
        tfd.kl_divergence(probe, prior)
    except NotImplementedError:
        raise ValueError(
            f"use_exact_kl=True but TFP has no closed-form KL between "
            f"{type(probe).__name__} and {type(prior).__name__}; "
            "use use_exact_kl=False (sampled KL) or a prior of a matching family"
        ) from None


def resolve_prior(config: VAEConfig, prior: tfd.Distribution | None) -> tfd.Distribution:
    """The prior to use: the posterior family's N(0, I) or a checked user prior."""
    posterior = POSTERIORS.get(config.posterior)
    if prior is None:
        return posterior.default_prior(config.latent_dim)
    prior = check_prior(prior, config.latent_dim)
    if config.use_exact_kl:
        _check_exact_kl(posterior, config.latent_dim, prior)
    return prior


def build_encoder(
    config: VAEConfig | None = None,
    *,
    prior: tfd.Distribution | None = None,
    kl_term: KLTerm | None = None,
    **overrides: Any,
) -> tfk.Model:
    """Builds the encoder ``x → q(z|x)`` with the KL attached as configured.

    Args:
        config: The model configuration; defaults to ``VAEConfig()``.
        prior: p(z); ``None`` uses N(0, I) in the posterior's family.
        kl_term: A :class:`~tfpvae.divergences.KLTerm` to share (``build_vae``
            passes its own); ``None`` makes one from the config.
        **overrides: Config fields to change, e.g. ``latent_dim=4``.

    Returns:
        A ``tf_keras.Model`` whose output is the posterior distribution, with
        attributes ``kl_term`` and ``prior``.

    Example:
        >>> enc = build_encoder(input_shape=(8, 8), latent_dim=2)
        >>> q = enc(np.zeros((3, 8, 8), "float32"))
        >>> q.event_shape
        TensorShape([2])
    """
    config = (config or VAEConfig()).replace(**overrides) if overrides else config or VAEConfig()
    user_prior = prior
    prior = resolve_prior(config, prior)
    kl_term = kl_term or KLTerm(prior, config.use_exact_kl, config.kl_samples, config.kl_weight)
    posterior = POSTERIORS.get(config.posterior)
    attachment = KL_ATTACHMENTS.get(config.kl)(kl_term)

    inputs = tfk.Input(shape=config.input_shape, name="image")
    unit_scale = get_likelihood(config.likelihood).data_space.unit_scale
    with PRECISIONS.get(config.precision).trunk_policy():
        scaled = inputs  # the trunk sees values in [0, 1] (the levels 0..255 are divided)
        if unit_scale != 1.0:
            scaled = tfk.layers.Rescaling(unit_scale, name="to_unit_interval")(inputs)
        features = ARCHITECTURES.get(config.architecture).encode(scaled, config)
    params = tfk.layers.Dense(
        posterior.params_size(config.latent_dim), dtype="float32", name="posterior_params"
    )(features)
    approx_posterior = posterior.layer(
        config.latent_dim, name="approx_posterior", **attachment.posterior_kwargs
    )(params)
    if attachment.after_posterior is not None:
        approx_posterior = attachment.after_posterior(approx_posterior)
    encoder = tfk.Model(inputs, approx_posterior, name="encoder")
    encoder.kl_term = kl_term
    encoder.prior = prior
    encoder.standard_prior = user_prior is None
    return encoder
