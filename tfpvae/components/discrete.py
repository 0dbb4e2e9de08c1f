r"""Likelihoods of 8-bit pixels: observations are the integer levels 0, 1, …, 255.

Both layers follow the ``params_size``/``new`` contract of
:mod:`tfpvae.components.pixelwise`, and both are probability *masses* on the 256 levels, so
:math:`-\log_2 P(x) / D` is directly the bits per dimension of the 8-bit image.

* :class:`DiscretizedLogisticMixture` (PixelCNN++, Salimans et al., 2017): per
  pixel a mixture of M logistics, each quantised to the levels with
  ``tfd.QuantizedDistribution``. Level k gets the logistic's mass on
  :math:`(k - \tfrac12, k + \tfrac12]`, except that the edge bins are open:
  level 0 gets :math:`(-\infty, \tfrac12]` and level 255 gets
  :math:`(254.5, \infty)`, so the 256 probabilities sum to 1.
* :class:`IndependentCategorical`: a free 256-way categorical per pixel
  (``tfd.FiniteDiscrete`` over the levels, so that ``mean()`` exists).
"""

from __future__ import annotations

import math

from tfpvae._backend import tf, tfd
from tfpvae.components.pixelwise import PixelwiseDistributionLambda, Shape, pixel_params

#: Number of pixel levels of 8-bit data.
LEVELS = 256
#: Half the range of the levels: locations are ``HALF_RANGE * (1 + raw)`` and scales
#: are in these units, so that raw decoder outputs of order 1 cover the levels.
HALF_RANGE = 127.5
#: Smallest logistic scale in units of ``HALF_RANGE`` (PixelCNN++ clamps the log
#: scale at -7): about 0.12 of a level, sharp enough to put almost all the mass
#: on one level and still keep the log-cdf differences finite.
MIN_LOGISTIC_SCALE = math.exp(-7.0)
#: Largest logistic scale (in ``HALF_RANGE`` units); only stops a diverging run.
MAX_LOGISTIC_SCALE = 1e3


class QuantizedLogistic(tfd.QuantizedDistribution):
    """``tfd.QuantizedDistribution`` of a logistic on 0..255, with a ``mean``.

    ``Y = ceil(X)`` clipped to ``[0, 255]``, and since ``Y`` is a non-negative
    integer, :math:`\\mathbb{E}[Y] = \\sum_{k=0}^{254} P(X > k)`.
    """

    def _mean(self, **kwargs) -> tf.Tensor:
        base = self.distribution
        shape = tf.concat([[LEVELS - 1], tf.ones([tf.rank(base.loc)], tf.int32)], 0)
        levels = tf.reshape(tf.range(LEVELS - 1, dtype=base.dtype), shape)  # [255, 1, ..., 1]
        return tf.reduce_sum(base.survival_function(levels), axis=0)


def logistic_mixture_params(
    params: tf.Tensor, event_shape: Shape, components: int
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(mixture logits, locations, scales), each ``[..., *event_shape, components]``.

    Per pixel the decoder emits ``components`` logits, then ``components`` raw
    locations, then ``components`` raw scales. Locations are
    :math:`127.5\\,(1 + a)`; scales are
    :math:`127.5\\,\\min(\\operatorname{softplus}(b) + s_{\\min}, s_{\\max})`.
    """
    per_pixel = pixel_params(params, event_shape, 3 * components)
    logits, raw_loc, raw_scale = tf.split(per_pixel, 3, axis=-1)
    loc = HALF_RANGE * (1.0 + raw_loc)
    scale = HALF_RANGE * tf.minimum(
        tf.math.softplus(raw_scale) + MIN_LOGISTIC_SCALE, MAX_LOGISTIC_SCALE
    )
    return logits, loc, scale


class DiscretizedLogisticMixture(PixelwiseDistributionLambda):
    """Per pixel, a mixture of :attr:`components` discretised logistics on 0..255.

    A subclass with another ``components`` is another mixture size.
    """

    components: int = 5

    @classmethod
    def new(
        cls, params: tf.Tensor, event_shape: Shape, name: str | None = None
    ) -> tfd.Distribution:
        """Builds the distribution from ``params_size(event_shape)`` numbers per example."""
        logits, loc, scale = logistic_mixture_params(params, event_shape, cls.components)
        # Level k is ceil(X) for X ~ Logistic(loc - 1/2, scale): the bin (k - 1/2, k + 1/2].
        levels = QuantizedLogistic(tfd.Logistic(loc - 0.5, scale), low=0.0, high=float(LEVELS - 1))
        mixture = tfd.MixtureSameFamily(tfd.Categorical(logits=logits), levels)
        return tfd.Independent(mixture, reinterpreted_batch_ndims=len(event_shape), name=name)

    @classmethod
    def params_size(cls, event_shape: Shape) -> int:
        """Three numbers (logit, location, scale) per component and pixel."""
        return 3 * cls.components * math.prod(event_shape)


class IndependentCategorical(PixelwiseDistributionLambda):
    """A free 256-way categorical per pixel over the levels 0..255."""

    @staticmethod
    def new(params: tf.Tensor, event_shape: Shape, name: str | None = None) -> tfd.Distribution:
        """Builds the distribution from 256 logits per pixel."""
        logits = pixel_params(params, event_shape, LEVELS)
        outcomes = tf.range(LEVELS, dtype=logits.dtype)
        pixels = tfd.FiniteDiscrete(outcomes, logits=logits)
        return tfd.Independent(pixels, reinterpreted_batch_ndims=len(event_shape), name=name)

    @staticmethod
    def params_size(event_shape: Shape) -> int:
        """256 logits per pixel."""
        return LEVELS * math.prod(event_shape)


def categorical_fast_log_prob(params: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    r""":math:`\sum_i \log\operatorname{softmax}(\ell_i)_{x_i}` on flat ``[batch, pixels]``
    levels."""
    logits = pixel_params(params, (int(x.shape[-1]),), LEVELS)  # [batch, pixels, 256]
    labels = tf.cast(tf.clip_by_value(tf.round(x), 0.0, LEVELS - 1.0), tf.int32)
    log_probs = -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_sum(log_probs, axis=-1)
