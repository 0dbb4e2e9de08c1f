r"""The objective interface: what a VAE minimises, image by image.

An :class:`Objective` is bound to one model. :meth:`Objective.terms` returns, for
every image of a batch, the loss that training minimises and the two quantities
the progress bar and the history show beside it:

* ``rate``: the KL from q(z|x) to p(z) (or its estimate), unweighted;
* ``distortion``: :math:`-\mathbb{E}_{q(z|x)}\log p(x|z)` (or its estimate).

The training and test steps of :class:`~tfpvae.VAE` reduce these vectors the
same way for every objective (a weighted mean over images, see
:func:`weighted_mean`), so an objective never needs to know about sample
weights, replicas or loss scaling. Objectives are chosen by name from
:data:`OBJECTIVES`; an entry maps a model to a bound :class:`Objective`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, NamedTuple

from tfpvae._backend import tf
from tfpvae.registry import Registry


class Terms(NamedTuple):
    """Per-image terms, each ``[batch]``.

    Attributes:
        loss: What training minimises (β-weighted where the objective has a β).
        rate: The unweighted KL term.
        distortion: The negative expected log-likelihood.
    """

    loss: tf.Tensor
    rate: tf.Tensor
    distortion: tf.Tensor


class Objective(abc.ABC):
    """A training objective bound to one model.

    Subclasses say whether their step is worth compiling with XLA
    (:attr:`xla_friendly`), how to draw their noise and how to turn a batch
    into :class:`Terms`.
    """

    #: Whether the step is plain ops that XLA fuses well (the fused Gaussian ELBO).
    xla_friendly: bool = False

    @abc.abstractmethod
    def draw_noise(self, generator: tf.random.Generator, batch: tf.Tensor) -> Any:
        """Noise for :meth:`terms`, drawn from ``generator``; ``None`` if TFP samples itself."""

    @abc.abstractmethod
    def terms(self, x: tf.Tensor, noise: Any = None, training: bool = False) -> Terms:
        """Per-image :class:`Terms` of the images ``x``.

        Args:
            x: Images ``[batch, *input_shape]``.
            noise: From :meth:`draw_noise`; ``None`` draws fresh noise.
            training: Passed to the Keras layers.
        """


class SeededObjective(Objective):
    """An objective that samples through TFP at a stateless seed ``[2]``.

    The seed comes from the model's checkpointed generator (``vae.noise``), so a
    resumed run draws what an unbroken one would. Subclasses set ``self.vae``.
    """

    vae: Any

    def draw_noise(self, generator: tf.random.Generator, batch: tf.Tensor) -> tf.Tensor:
        """A stateless seed ``[2]`` for TFP's sampler."""
        return generator.uniform_full_int([2], tf.int32)

    def seed_of(self, x: tf.Tensor, noise: Any) -> tf.Tensor:
        """``noise`` itself, or a fresh seed from the model's generator when it is ``None``."""
        return noise if noise is not None else self.draw_noise(self.vae.noise, tf.shape(x)[0])


def weighted_mean(values: tf.Tensor, weights: tf.Tensor | None) -> tf.Tensor:
    r""":math:`\sum_i w_i v_i / \sum_i w_i` (plain mean without weights; 0 for no images).

    With this normalisation an image of weight 2 counts exactly as two copies
    of it would.
    """
    if weights is None:
        weights = tf.ones_like(values)
    weights = tf.cast(weights, values.dtype)
    return tf.math.divide_no_nan(tf.reduce_sum(weights * values), tf.reduce_sum(weights))


#: Objective registry: name → function of a model returning its bound :class:`Objective`.
OBJECTIVES: Registry[Callable[[Any], Objective]] = Registry("objective")
