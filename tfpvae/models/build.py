"""``build_vae`` and ``build_vae_from_config``: a compiled VAE from a few names."""

from __future__ import annotations

from typing import Any

from tfpvae._backend import tf, tfd, tfk
from tfpvae.components.trunks import ARCHITECTURES
from tfpvae.config import VAEConfig
from tfpvae.models.decoder import build_decoder
from tfpvae.models.encoder import build_encoder, make_kl_term
from tfpvae.models.keras_io import RECIPES, Recipe
from tfpvae.models.vae import VAE
from tfpvae.training.tuning import STEPS_PER_EXECUTION, use_xla


def build_vae(
    likelihood: str = "beta",
    latent_dim: int | None = None,
    hidden_units: tuple[int, ...] = (256, 64),
    input_shape: tuple[int, ...] = (28, 28),
    architecture: str = "mlp",
    posterior: str = "full",
    kl: str = "add_loss",
    use_exact_kl: bool = False,
    kl_weight: float = 1.0,
    kl_samples: int = 1,
    prior: tfd.Distribution | str | None = None,
    learning_rate: float = 1e-3,
    strategy: tf.distribute.Strategy | None = None,
    **config_fields: Any,
) -> VAE:
    """Builds and compiles a VAE the way the course does, with a per-example ELBO.

    Args:
        likelihood: ``"beta"``, ``"bernoulli"``, ``"continuous_bernoulli"``,
            ``"discretized_logistic"``, ``"categorical"`` or ``"gaussian"``
            (see ``tfpvae.LIKELIHOODS``).
        latent_dim: Size of z; ``None`` is 2, or ``categorical_dims × categories``
            for ``posterior="relaxed_categorical"``.
        hidden_units: Encoder Dense widths; mirrored in the decoder.
        input_shape: Image shape, e.g. ``(28, 28)`` or ``(8, 8)``.
        architecture: ``"mlp"`` or ``"conv"``.
        posterior: ``"full"`` (MultivariateNormalTriL), ``"diag"`` (IndependentNormal),
            ``"iaf"`` (an inverse autoregressive flow, see ``tfpvae.components.flows``),
            ``"planar"`` or ``"radial"`` (``num_flows`` amortised flows, see
            ``tfpvae.components.planar_radial``) or
            ``"relaxed_categorical"`` (Gumbel-softmax; with ``categorical_dims``,
            ``categories`` and ``temperature``).
        kl: ``"add_loss"`` (KLDivergenceAddLoss) or ``"regularizer"`` (KLDivergenceRegularizer).
        use_exact_kl: Closed-form KL instead of sampling.
        kl_weight: β.
        kl_samples: Test points per example for the sampled KL.
        prior: Any ``tfd.Distribution`` over ``R^latent_dim``, or the name of a
            registered prior (the ``prior`` config field): ``"standard_normal"``
            (``None``, N(0, I)), ``"mixture"`` or ``"vamp"`` with ``prior_components=K``.
        learning_rate: Adam's step size.
        strategy: A ``tf.distribute.Strategy``; the model is built and compiled in
            its scope. ``None`` uses the current one (one device by default).
        **config_fields: Further :class:`~tfpvae.config.VAEConfig` fields
            (``concentration``: the Beta's map of the decoder's outputs, ``"exp"`` or
            ``"softplus"``; ``objective``, ``n_samples``, ``iwae_k``, ``alpha``, ``gradient``,
            ``free_bits``, ``num_flows``, ``flow_hidden_units``,
            ``conv_filters``, ``precision``, ``fast_path``, ``prior``, ``prior_components``,
            ``categorical_dims``, ``categories``, ``temperature``, and ``num_classes=C``
            for a conditional VAE q(z|x, y), p(x|z, y)).

    Returns:
        A compiled :class:`~tfpvae.VAE`. ``vae(x)`` is p(x|z); ``vae.encoder(x)`` is q(z|x).

    Raises:
        ValueError: On an unknown name or an invalid value.

    Example:
        >>> import numpy as np
        >>> from tfpvae import build_vae
        >>> vae = build_vae(likelihood="beta", input_shape=(8, 8))
        >>> vae(np.full((4, 8, 8), 0.5, "float32")).event_shape
        TensorShape([8, 8])
    """
    if isinstance(prior, str):
        config_fields["prior"], prior = prior, None
    config = VAEConfig(
        likelihood=likelihood,
        latent_dim=latent_dim,  # type: ignore[arg-type]  # None: the posterior family's size
        hidden_units=tuple(hidden_units),
        input_shape=tuple(input_shape),
        architecture=architecture,
        posterior=posterior,
        kl=kl,
        use_exact_kl=use_exact_kl,
        kl_weight=kl_weight,
        kl_samples=kl_samples,
        learning_rate=learning_rate,
        **config_fields,
    )
    return build_vae_from_config(config, prior=prior, strategy=strategy)


def build_vae_from_config(
    config: VAEConfig,
    prior: tfd.Distribution | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> VAE:
    """Builds and compiles a :class:`~tfpvae.VAE` from a :class:`~tfpvae.config.VAEConfig`.

    The recipe: the named encoder and decoder (:func:`~tfpvae.build_encoder`,
    :func:`~tfpvae.build_decoder`) and prior, handed to ``VAE(encoder, decoder,
    prior, ...)`` like any user's networks.

    Args:
        config: The configuration.
        prior: p(z); ``None`` is the config's (N(0, I) by default).
        strategy: Build and compile inside ``strategy.scope()``; ``None`` uses the
            current strategy.

    The optimizer's slots are created here, so that a checkpoint can be restored
    into the model before its first step. XLA compiles the fused step on one
    replica (see :mod:`tfpvae.training.tuning`).
    """
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        kl_term = make_kl_term(config, prior)
        vae = VAE(
            build_encoder(config, kl_term=kl_term),
            build_decoder(config),
            kl_term.source,
            objective=config.objective,
            kl_weight=kl_term.kl_weight,
            n_samples=config.n_samples,
            iwae_k=config.iwae_k,
            alpha=config.alpha,
            gradient=config.gradient,
            free_bits=config.free_bits,
            fast_path=config.fast_path,
            precision=config.precision,
            recipe=Recipe(config, custom_prior=prior is not None),
            name="vae",
        )
        optimizer = vae.precision.optimizer(tfk.optimizers.Adam(config.learning_rate))
        jit = use_xla(
            vae.objective.xla_friendly,
            ARCHITECTURES.get(config.architecture).jit_compile,
            strategy.num_replicas_in_sync,
        )
        vae.compile(optimizer=optimizer, jit_compile=jit, steps_per_execution=STEPS_PER_EXECUTION)
        images = (None, *config.input_shape)
        _build(vae, images if config.num_classes is None else [images, (None,)])
        optimizer.build(vae.trainable_variables)
    return vae


def _build(vae: VAE, input_shape: Any) -> None:
    """``vae.build(input_shape)``, without calling the model when its networks are built.

    Keras builds a subclassed model by calling it on placeholders in a scratch
    graph. The recipe's encoder, decoder (and prior layer) are built networks
    already, so that call would only trace TFP's sampling of both once more (0.2 s
    of ``build_vae(likelihood="beta")``); ``Layer.build`` records the shape and
    marks the model built, as Keras's ``Model.build`` does after its call.
    """
    parts = [vae.encoder, vae.decoder]
    if vae.prior_layer is not None:
        parts.append(vae.prior_layer)
    if all(part.built for part in parts):
        tfk.layers.Layer.build(vae, input_shape)
    else:
        vae.build(input_shape)


RECIPES.register(
    "vae_config",
    lambda fields, prior: build_vae_from_config(VAEConfig.from_saved(fields), prior=prior),
)
