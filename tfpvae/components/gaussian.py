"""The Gaussian likelihood: an independent Normal per dimension with a learned scale.

For continuous data: images scaled into (0, 1) (then, with uniform
dequantisation, its bound is one on the 8-bit data, as for the Beta), or any
standardised features (``input_shape=(n,)`` with the MLP).
"""

from __future__ import annotations

import math

from tfpvae._backend import tf, tfd
from tfpvae.components.pixelwise import PixelwiseDistributionLambda, Shape, split_params

#: Smallest scale of the Gaussian likelihood, in the data's units.
MIN_GAUSSIAN_SCALE = 1e-3
#: Largest scale of the Gaussian likelihood; only stops a diverging run.
MAX_GAUSSIAN_SCALE = 1e4


class IndependentGaussian(PixelwiseDistributionLambda):
    r"""An independent Normal per dimension, with a scale the decoder learns per pixel.

    For continuous data that are not pixels (standardised features, say). Per
    dimension the decoder emits a mean and a raw scale; the scale is
    :math:`\sigma = \min(\operatorname{softplus}(s) + \sigma_{\min}, \sigma_{\max})`,
    so a dimension that never varies cannot drive it to 0 (and the density to
    :math:`+\infty`).
    """

    @staticmethod
    def new(params: tf.Tensor, event_shape: Shape, name: str | None = None) -> tfd.Distribution:
        """Builds the distribution from a mean and a raw scale per dimension."""
        loc, raw_scale = split_params(params, event_shape, per_pixel=2)
        normal = tfd.Normal(loc=loc, scale=gaussian_scale(raw_scale))
        return tfd.Independent(normal, reinterpreted_batch_ndims=len(event_shape), name=name)

    @staticmethod
    def params_size(event_shape: Shape) -> int:
        """A mean and a scale per dimension."""
        return 2 * math.prod(event_shape)


def gaussian_scale(raw: tf.Tensor) -> tf.Tensor:
    """Raw decoder outputs → Normal scales in ``[MIN_GAUSSIAN_SCALE, MAX_GAUSSIAN_SCALE]``."""
    return tf.minimum(tf.math.softplus(raw) + MIN_GAUSSIAN_SCALE, MAX_GAUSSIAN_SCALE)


def gaussian_fast_log_prob(params: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    r"""Independent Normal log-density on flat ``[batch, pixels]`` data,
    :math:`\sum_i -\tfrac12 ((x_i - \mu_i)/\sigma_i)^2 - \log \sigma_i - \tfrac12 \log 2\pi`."""
    loc, raw_scale = split_params(params, tuple(x.shape[1:]), per_pixel=2)
    scale = gaussian_scale(raw_scale)
    log_pdf = -0.5 * tf.square((x - loc) / scale) - tf.math.log(scale)
    return tf.reduce_sum(log_pdf, axis=-1) - 0.5 * math.log(2 * math.pi) * float(x.shape[-1])
