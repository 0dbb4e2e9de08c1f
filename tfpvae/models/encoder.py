r"""The probabilistic encoder q(z | x) with its KL to the prior attached.

The encoder is ``trunk → Dense(params_size) → posterior layer [→ KL layer]``. The
posterior layer comes from :data:`~tfpvae.components.posteriors.POSTERIORS`
(``"full"``: ``tfpl.MultivariateNormalTriL``, the course's choice; ``"diag"``:
``tfpl.IndependentNormal``; ``"iaf"``: an inverse autoregressive flow;
``"relaxed_categorical"``: Gumbel-softmax); the KL is
attached as ``config.kl`` says. A VampPrior is bound to the encoder's
``trunk → Dense`` part, which gives q(z|u) without a KL attachment.
"""

from __future__ import annotations

from typing import Any

from tfpvae._backend import tfd, tfk
from tfpvae.components.hierarchy import posterior_family
from tfpvae.components.kl import KL_ATTACHMENTS, KLTerm
from tfpvae.components.likelihoods import get_likelihood
from tfpvae.components.posteriors import POSTERIORS
from tfpvae.components.precision import PRECISIONS
from tfpvae.components.priors import PRIORS, LearnedPrior, check_prior
from tfpvae.components.trunks import ARCHITECTURES
from tfpvae.config import VAEConfig


def resolve_prior(
    config: VAEConfig, prior: tfd.Distribution | None
) -> tfd.Distribution | LearnedPrior:
    """The prior to use: a checked user prior, else ``config.prior`` from ``PRIORS``.

    The registered ``"standard_normal"`` is the posterior family's standard prior
    (N(0, I) for the Gaussians; p(z2) p(z1|z2), a new
    :class:`~tfpvae.components.hierarchy.TwoLayerPrior`, for two stochastic layers); a
    learned prior is a new :class:`~tfpvae.components.priors.LearnedPrior` layer.
    """
    posterior = posterior_family(config)
    registered = PRIORS.get(config.prior)
    if prior is None:
        if registered.make is not None:  # a learned prior
            size = config.latent_dims[0]  # one layer: mixture and VampPrior refuse two
            return registered.make(size, config.prior_components, config.input_shape)
        return posterior.default_prior(config.latent_dims[0])
    if len(config.latent_dims) > 1:
        raise ValueError(
            f"a model with two stochastic layers (latent_dim={config.latent_dim!r}) has its own "
            f"prior p(z2) p(z1|z2), so prior={type(prior).__name__} cannot be used; leave "
            "prior out"
        )
    if registered.learned:
        raise ValueError(
            f"both prior={type(prior).__name__} and config prior={config.prior!r} were given; "
            "pass a distribution or a registered prior name, not both"
        )
    prior = check_prior(prior, config.latent_dims[0])
    if config.use_exact_kl or posterior.exact_rate:
        posterior.check_exact_kl(config.latent_dims[0], prior)
    return prior


def make_kl_term(config: VAEConfig, prior: tfd.Distribution | None = None) -> KLTerm:
    """The KL estimator and β of ``config``, against ``prior`` (``None``: N(0, I))."""
    exact = config.use_exact_kl or POSTERIORS.get(config.posterior).exact_rate
    return KLTerm(resolve_prior(config, prior), exact, config.kl_samples, config.kl_weight)


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
        prior: p(z); ``None`` uses N(0, I) in the posterior's family. Ignored
            when ``kl_term`` is given.
        kl_term: A :class:`~tfpvae.components.kl.KLTerm` to share (``build_vae``
            passes its own); ``None`` makes one from the config and ``prior``.
        **overrides: Config fields to change, e.g. ``latent_dim=4``.

    Returns:
        A ``tf_keras.Model`` whose output is the posterior distribution.

    Example:
        >>> import numpy as np
        >>> from tfpvae import build_encoder
        >>> enc = build_encoder(input_shape=(8, 8), latent_dim=2)
        >>> q = enc(np.zeros((3, 8, 8), "float32"))
        >>> q.event_shape
        TensorShape([2])
    """
    config = (config or VAEConfig()).replace(**overrides) if overrides else config or VAEConfig()
    kl_term = kl_term or make_kl_term(config, prior)
    posterior = posterior_family(config)
    bottom_dim = config.latent_dims[0]  # latent_dim; z1's size for two stochastic layers
    attachment = KL_ATTACHMENTS.get(config.kl)(kl_term)

    image = tfk.Input(shape=config.input_shape, name="image")
    inputs: Any = image
    if config.num_classes is not None:  # a conditional encoder q(z|x, y): [image, one-hot y]
        label = tfk.Input(shape=(config.num_classes,), name="label")
        inputs = [image, label]
    scaled = image  # the trunk sees values in [0, 1] (8-bit levels are divided by 255)
    unit_scale = get_likelihood(config.likelihood).data_space.unit_scale
    if unit_scale != 1.0:
        scaled = tfk.layers.Rescaling(unit_scale, name="to_unit_interval")(image)
    with PRECISIONS.get(config.precision).trunk_policy():
        features = ARCHITECTURES.get(config.architecture).encode(scaled, config.trunk_sizes)
        if config.num_classes is not None:
            features = tfk.layers.Concatenate(name="features_and_label")([features, label])
    options = posterior.options(config)
    params = tfk.layers.Dense(
        posterior.params_size(bottom_dim, **options),
        dtype="float32",
        name="posterior_params",
    )(features)
    if kl_term.prior_layer is not None:  # before the KL layer first asks for the prior
        params_model = tfk.Model(inputs, params, name="posterior_params_model")
        kl_term.prior_layer.bind_posterior(
            lambda images: posterior.from_params(params_model(images), bottom_dim)
        )
    approx_posterior = posterior.make_layer(
        bottom_dim, name="approx_posterior", **options, **attachment.posterior_kwargs
    )(params)
    if attachment.after_posterior is not None:
        approx_posterior = attachment.after_posterior(approx_posterior)
    return tfk.Model(inputs, approx_posterior, name="encoder")
