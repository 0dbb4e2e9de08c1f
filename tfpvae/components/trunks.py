"""Network trunks between the image and the distribution layers.

An :class:`Architecture` provides two functions of the layer sizes
(:class:`TrunkSizes`), not of the whole model configuration:

* ``encode(inputs, sizes)`` maps the image tensor to a feature vector, after
  which the encoder adds ``Dense(posterior.params_size)``;
* ``decode(z, sizes, params_per_pixel)`` maps z to a flat tensor of
  ``prod(input_shape) * params_per_pixel`` likelihood parameters, pixel-major.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from tfpvae._backend import tf, tfk
from tfpvae.registry import Registry

layers = tfk.layers


@dataclass(frozen=True)
class TrunkSizes:
    """The sizes a trunk is built from.

    Attributes:
        input_shape: Image shape ``(height, width[, channels])``, or ``(features,)``
            for the MLP.
        hidden_units: Dense widths of the encoder; the decoder mirrors them.
        conv_filters: Filters of the stride-2 convolutions (``conv`` only).
    """

    input_shape: tuple[int, ...]
    hidden_units: tuple[int, ...]
    conv_filters: tuple[int, ...] = (32, 64)


def _image_dims(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(height, width, channels) of a 2-D or 3-D image shape."""
    height, width = input_shape[:2]
    channels = input_shape[2] if len(input_shape) == 3 else 1
    return height, width, channels


def _mlp_encode(inputs: tf.Tensor, config: TrunkSizes) -> tf.Tensor:
    h = layers.Flatten()(inputs)
    for units in config.hidden_units:
        h = layers.Dense(units, activation="relu")(h)
    return h


def _mlp_decode(z: tf.Tensor, config: TrunkSizes, params_per_pixel: int) -> tf.Tensor:
    h = z
    for units in reversed(config.hidden_units):
        h = layers.Dense(units, activation="relu")(h)
    return layers.Dense(math.prod(config.input_shape) * params_per_pixel)(h)


def _conv_encode(inputs: tf.Tensor, config: TrunkSizes) -> tf.Tensor:
    height, width, channels = _image_dims(config.input_shape)
    h = layers.Reshape((height, width, channels))(inputs)
    for filters in config.conv_filters:
        h = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Flatten()(h)
    return layers.Dense(config.hidden_units[-1] if config.hidden_units else 16, "relu")(h)


def _conv_decode(z: tf.Tensor, config: TrunkSizes, params_per_pixel: int) -> tf.Tensor:
    height, width, channels = _image_dims(config.input_shape)
    n_up = len(config.conv_filters)
    # Spatial size after the encoder's stride-2 'same' convolutions (ceil division).
    small_h, small_w = height, width
    for _ in range(n_up):
        small_h, small_w = -(-small_h // 2), -(-small_w // 2)
    top = config.conv_filters[-1]
    h = layers.Dense(small_h * small_w * top, activation="relu")(z)
    h = layers.Reshape((small_h, small_w, top))(h)
    for filters in reversed(config.conv_filters):
        h = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", activation="relu")(h)
    # Up-sampling may overshoot odd sizes (7 -> 4 -> 8); crop back to the image.
    extra_h, extra_w = small_h * 2**n_up - height, small_w * 2**n_up - width
    if extra_h or extra_w:
        h = layers.Cropping2D(((0, extra_h), (0, extra_w)))(h)
    h = layers.Conv2DTranspose(channels * params_per_pixel, 3, padding="same")(h)
    return layers.Flatten()(h)  # [batch, H * W * C * params_per_pixel], pixel-major


@dataclass(frozen=True)
class Architecture:
    """An encoder trunk and the decoder trunk that mirrors it.

    Attributes:
        encode: Image tensor → feature vector.
        decode: z → flat likelihood parameters.
        jit_compile: Whether XLA speeds up its fast-path training step on CPU.
            True for the MLP (fusion of the elementwise work); False for conv,
            where XLA's CPU convolutions are slower than TensorFlow's oneDNN
            kernels (``benchmarks/``: 0.57× the reference with XLA, 1.08× without).
        input_ranks: The lengths of ``input_shape`` it takes: the MLP flattens
            any shape (1 is a vector of features); conv needs (height, width[, channels]).
    """

    encode: Callable[[tf.Tensor, TrunkSizes], tf.Tensor]
    decode: Callable[[tf.Tensor, TrunkSizes, int], tf.Tensor]
    jit_compile: bool = True
    input_ranks: tuple[int, ...] = (1, 2, 3)


#: Architecture registry.
ARCHITECTURES: Registry[Architecture] = Registry("architecture")
ARCHITECTURES.register("mlp", Architecture(_mlp_encode, _mlp_decode))
ARCHITECTURES.register(
    "conv", Architecture(_conv_encode, _conv_decode, jit_compile=False, input_ranks=(2, 3))
)
