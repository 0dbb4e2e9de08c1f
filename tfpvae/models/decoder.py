"""The decoder ``z → p(x | z)``: a trunk and a registered likelihood layer."""

from __future__ import annotations

from typing import Any

from tfpvae._backend import tfk
from tfpvae.components.hierarchy import BottomLatent
from tfpvae.components.likelihoods import get_likelihood
from tfpvae.components.precision import PRECISIONS, to_float32
from tfpvae.components.trunks import ARCHITECTURES
from tfpvae.config import VAEConfig


def build_decoder(config: VAEConfig | None = None, **overrides: Any) -> tfk.Model:
    """Builds the decoder, whose output is the likelihood over whole images.

    Args:
        config: The model configuration; defaults to ``VAEConfig()``.
        **overrides: Config fields to change, e.g. ``likelihood="bernoulli"``.

    Returns:
        A ``tf_keras.Model`` mapping ``[batch, latent_dim]`` to a
        ``tfd.Independent`` distribution with event shape ``input_shape``. With two
        stochastic layers it takes ``z = (z1, z2)``, ``[batch, z1 + z2]``, and reads z1;
        with ``num_classes``, ``[z, one_hot_labels]`` (``[batch, C]``) to p(x|z, y).
    """
    config = (config or VAEConfig()).replace(**overrides) if overrides else config or VAEConfig()
    likelihood = get_likelihood(config.likelihood)
    event_shape = config.input_shape
    z = tfk.Input(shape=(sum(config.latent_dims),), name="z")
    bottom = z if len(config.latent_dims) == 1 else BottomLatent(config.latent_dims[0])(z)
    inputs: Any = z
    precision = PRECISIONS.get(config.precision)
    with precision.trunk_policy():
        trunk_input = bottom
        if config.num_classes is not None:  # p(x|z, y): the one-hot y beside z (z1 of two)
            label = tfk.Input(shape=(config.num_classes,), name="label")
            inputs = [z, label]
            trunk_input = tfk.layers.Concatenate(name="z_and_label")([bottom, label])
        params = ARCHITECTURES.get(config.architecture).decode(
            trunk_input, config.trunk_sizes, likelihood.params_per_pixel(event_shape)
        )
    if precision.policy != "float32":
        params = to_float32(params)  # the likelihood's parameters in float32
    settings = likelihood.layer_settings(config)  # e.g. the Beta's concentration map
    output = likelihood.make_layer(event_shape, name="likelihood", **settings)(params)
    return tfk.Model(inputs, output, name="decoder")
