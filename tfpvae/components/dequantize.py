r"""From 8-bit levels to (0, 1): the course's fixed shift, or uniform dequantisation.

A density :math:`p` on :math:`[0, 1]^D` gives the 8-bit image :math:`x` the
probability of its cell, :math:`P(x) = \int_{[0,1)^D} p\big(\tfrac{x+u}{256}\big)
\, 256^{-D}\, du`, and by Jensen's inequality

.. math:: \log P(x) \;\ge\; \mathbb{E}_{u \sim U[0,1)^D}\Big[\log p\big(\tfrac{x+u}{256}\big)\Big]
    - D \log 256

(Theis et al., 2016). So a model trained and evaluated on :math:`(x + u)/256`
with fresh noise (``"uniform"``) has a bound on the log-probability of the 8-bit
data, in the same units as a discrete likelihood's; any lower bound of
:math:`\log p(y)` (ELBO, IWAE) keeps it a lower bound. The course's fixed
shift :math:`(x + \tfrac12)/256` (``"midpoint"``, ``prepare``'s default) scores
one point per cell: :math:`\log p - D\log 256` is then a midpoint-rule
approximation of :math:`\log P(x)`, not a bound.

Values are clipped into :math:`[\epsilon, 1 - \epsilon]` with
:math:`\epsilon = 10^{-6}`, the clip the Beta loss applies anyway, so that float32
rounding never produces an observation of exactly 0 or 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tfpvae._backend import tf
from tfpvae.registry import Registry

#: Levels of 8-bit data; the scale of the map to (0, 1).
LEVELS = 256.0
#: Distance from {0, 1} of every dequantised value.
EDGE = 1e-6


@dataclass(frozen=True)
class Dequantizer:
    """A map from 8-bit levels to (0, 1).

    Attributes:
        name: Registry name.
        offset: ``seed, shape → u`` in [0, 1), added to the levels before the division.
        bound: What ``log p(y) - D log 256`` is for data made this way.
    """

    name: str
    offset: Callable[[int | None, tuple[int, ...]], np.ndarray]
    bound: str

    def apply(self, x: np.ndarray, seed: int | None = 0) -> np.ndarray:
        """``(x + u) / 256`` as float32, kept inside the open interval (0, 1)."""
        y = (x.astype(np.float64) + self.offset(seed, x.shape)) / LEVELS
        return np.clip(y, EDGE, 1.0 - EDGE).astype(np.float32)


def _half(_seed: int | None, shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, 0.5)


def _uniform(seed: int | None, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).random(shape)


#: Dequantizer registry; ``None`` in ``prepare`` means ``"midpoint"``.
DEQUANTIZERS: Registry[Dequantizer] = Registry("dequantize")
DEQUANTIZERS.register(
    "midpoint",
    Dequantizer("midpoint", _half, "fixed shift (x + 1/2)/256: an approximation, not a bound"),
)
DEQUANTIZERS.register(
    "uniform",
    Dequantizer("uniform", _uniform, "uniform-dequantised lower bound on log P(x)"),
)


def uniform_dequantize(levels: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
    """``(levels + u) / 256`` with ``u ~ U[0, 1)`` drawn from the stateless ``key``, in TF.

    Args:
        levels: Float tensor of 8-bit levels 0..255.
        key: A stateless seed, shape ``[2]``.

    Returns:
        A float32 tensor of the same shape in ``[EDGE, 1 - EDGE]``.
    """
    levels = tf.cast(levels, tf.float32)
    u = tf.random.stateless_uniform(tf.shape(levels), seed=key, dtype=tf.float32)
    return tf.clip_by_value((levels + u) / LEVELS, EDGE, 1.0 - EDGE)
