"""A deterministic autoencoder with the VAE's trunk, for the course's comparison.

Without a KL term nothing pulls the codes towards a prior, so the latent space of
an autoencoder has gaps, and decoding from them gives garbage; the VAE's does
not. :class:`Autoencoder` exposes the same ``encode``/``decode`` API as
:class:`~tfpvae.VAE` so that the two can be compared by the same code.
"""

from __future__ import annotations

import math
from typing import Any

from tfpvae._backend import tf, tfk
from tfpvae.components.trunks import ARCHITECTURES
from tfpvae.config import VAEConfig


class Autoencoder(tfk.Model):
    """``x → z → x̂`` with a sigmoid output, trained with binary cross-entropy.

    Attributes:
        encoder: Model ``x → z``.
        decoder: Model ``z → x̂`` in [0, 1].
        config: The :class:`~tfpvae.config.VAEConfig` whose trunk it shares.
        latent_dim: Size of the code.
        image_shape: Shape of one image.
    """

    def __init__(self, config: VAEConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.latent_dim, self.image_shape = config.latent_dim, tuple(config.input_shape)
        architecture = ARCHITECTURES.get(config.architecture)
        inputs = tfk.Input(shape=config.input_shape)
        z = tfk.layers.Dense(config.latent_dim, name="code")(
            architecture.encode(inputs, config.trunk_sizes)
        )
        self.encoder = tfk.Model(inputs, z, name="encoder")
        z_in = tfk.Input(shape=(config.latent_dim,))
        logits = architecture.decode(z_in, config.trunk_sizes, 1)  # one number per pixel
        image = tfk.layers.Reshape(config.input_shape)(tfk.layers.Activation("sigmoid")(logits))
        self.decoder = tfk.Model(z_in, image, name="decoder")

    def call(self, x: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        return self.decoder(self.encoder(x, training=training), training=training)

    def encode(self, x: tf.Tensor) -> tf.Tensor:
        """Latent codes ``[batch, latent_dim]``."""
        return self.encoder(x, training=False)

    def decode(self, z: tf.Tensor) -> tf.Tensor:
        """Reconstructed images ``[batch, *input_shape]`` in [0, 1]."""
        return self.decoder(z, training=False)


def build_autoencoder(
    latent_dim: int = 2,
    hidden_units: tuple[int, ...] = (256, 64),
    input_shape: tuple[int, ...] = (28, 28),
    architecture: str = "mlp",
    learning_rate: float = 1e-3,
    **config_fields: Any,
) -> Autoencoder:
    """Builds and compiles the deterministic baseline with the VAE's trunk.

    The loss is the per-image sum of pixel-wise binary cross-entropy, the
    Bernoulli distortion of a VAE without its rate.

    Returns:
        A compiled :class:`Autoencoder`.
    """
    config = VAEConfig(
        latent_dim=latent_dim,
        hidden_units=tuple(hidden_units),
        input_shape=tuple(input_shape),
        architecture=architecture,
        learning_rate=learning_rate,
        **config_fields,
    )
    autoencoder = Autoencoder(config, name="autoencoder")
    n_pixels = math.prod(config.input_shape)

    def summed_cross_entropy(x: tf.Tensor, x_hat: tf.Tensor) -> tf.Tensor:
        flat = (tf.reshape(t, [-1, n_pixels]) for t in (x, x_hat))
        return n_pixels * tfk.losses.binary_crossentropy(*flat)

    autoencoder.compile(tfk.optimizers.Adam(learning_rate), loss=summed_cross_entropy)
    autoencoder.build((None, *config.input_shape))
    return autoencoder
