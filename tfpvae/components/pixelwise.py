"""The base of every per-pixel likelihood layer: the parameter layout and the layer class.

Parameters are laid out pixel-major: ``params`` reshapes to
``batch + event_shape + [params_per_pixel]``, which is what both a Dense layer and
a flattened ``Conv2DTranspose`` output give.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tfpvae._backend import tf, tfd, tfpl

Shape = tuple[int, ...]


def split_params(params: tf.Tensor, event_shape: Shape, per_pixel: int) -> list[tf.Tensor]:
    """Reshapes ``[..., n * per_pixel]`` to ``per_pixel`` tensors of ``[..., *event_shape]``."""
    return tf.unstack(pixel_params(params, event_shape, per_pixel), axis=-1)


def pixel_params(params: tf.Tensor, event_shape: Shape, per_pixel: int) -> tf.Tensor:
    """Reshapes ``[..., n * per_pixel]`` to ``[..., *event_shape, per_pixel]``."""
    params = tf.convert_to_tensor(params, name="params")
    if params.shape.rank == 2:  # [batch, n]: a static target shape, which XLA needs
        shape = [-1, *event_shape, per_pixel]
    else:
        batch_shape = tf.shape(params)[:-1]
        shape = tf.concat([batch_shape, list(event_shape), [per_pixel]], axis=0)
    return tf.reshape(params, shape)


class PixelwiseDistributionLambda(tfpl.DistributionLambda):
    """A ``DistributionLambda`` over image-shaped events, built by the subclass's ``new``.

    Subclasses define the static methods ``new(params, event_shape)`` and
    ``params_size(event_shape)``, TFP's layer contract. A subclass with settings
    (e.g. the Beta's concentration map) names them in :attr:`options`: attributes
    of the layer, passed to ``new`` as keywords (and, through
    :meth:`~tfpvae.components.likelihoods.Likelihood.for_layer`, to the fast log-prob).

    Args:
        event_shape: The image shape, e.g. ``(28, 28)``.
        convert_to_tensor_fn: How the output distribution becomes a tensor.
        **kwargs: Passed to ``tfpl.DistributionLambda``.
    """

    #: Names of the layer's settings that ``new`` takes as keywords (given to the
    #: constructor as keywords of the same names, then kept as attributes).
    options: tuple[str, ...] = ()

    def __init__(
        self,
        event_shape: Shape,
        convert_to_tensor_fn: Callable = tfd.Distribution.sample,
        **kwargs,
    ) -> None:
        event_shape = tuple(int(d) for d in event_shape)
        new = type(self).new
        # Only plain values in the closure: Keras pickles it into the layer's config.
        settings = {name: kwargs.pop(name) for name in self.options if name in kwargs}
        super().__init__(lambda t: new(t, event_shape, **settings), convert_to_tensor_fn, **kwargs)
        for name, value in settings.items():
            setattr(self, name, value)

    def settings(self) -> dict[str, Any]:
        """The values of :attr:`options`, as keywords of ``new``."""
        return {name: getattr(self, name) for name in self.options}
