r"""Fast :math:`\log B(a, b)` for positive arguments, with its gradient, in plain ops.

``tf.math.lgamma`` handles the whole real line (reflection for negative
arguments, a Lanczos sum with many divisions) and its gradient, ``digamma``, is as
costly; in the course's Beta VAE they take a third of a training step. Beta
concentrations are always positive, so we use the recurrence

.. math:: \log\Gamma(x) = \log\Gamma(x + 7) - \log P(x),\qquad
          P(x) = x(x+1)\cdots(x+6),\qquad x < 7,

and Stirling's series at :math:`y \ge 7`,

.. math::

    \log\Gamma(y) \approx (y - \tfrac12)\log y - y + \tfrac12\log 2\pi
        + \frac{1}{12y} - \frac{1}{360y^3} + \frac{1}{1260y^5},
    \qquad
    \psi(y) \approx \log y - \frac{1}{2y} - \frac{1}{12y^2} + \frac{1}{120y^4}
        - \frac{1}{252y^6},

both with truncation errors below :math:`10^{-9}` there, and
:math:`\psi(x) = \psi(x+7) - P'(x)/P(x)`. :func:`lbeta_positive` takes one
logarithm of :math:`P(a)P(b)/P(a+b)` instead of three and supplies the digamma
gradient directly, reusing the forward pass's :math:`\log y` and :math:`1/y`.
Accuracy is at float32 round-off (``tests/test_special.py``); speed is in the
README's performance notes.
"""

from __future__ import annotations

import math

from tfpvae._backend import tf

_SHIFT = 7.0
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
# P(x) = x (x+1) ... (x+6) and P'(x), highest power first (Horner).
_P = (1.0, 21.0, 175.0, 735.0, 1624.0, 1764.0, 720.0, 0.0)
_DP = (7.0, 126.0, 875.0, 2940.0, 4872.0, 3528.0, 720.0)


def _horner(coefficients: tuple[float, ...], x: tf.Tensor) -> tf.Tensor:
    result = tf.fill(tf.shape(x), tf.constant(coefficients[0], x.dtype))
    for c in coefficients[1:]:
        result = result * x + c
    return result


def _shifted(x: tf.Tensor):
    """(small, y, log y, 1/y, P(x) or 1, P'(x)/P(x) or 0) for the recurrence."""
    small = x < _SHIFT
    # Clamp before the polynomials so that they never overflow; the branch where
    # they would is not selected, and finite values keep gradients finite too.
    xs = tf.minimum(x, _SHIFT)
    y = tf.where(small, x + _SHIFT, x)
    one = tf.ones_like(x)
    product = tf.where(small, _horner(_P, xs), one)
    dlog_product = tf.where(small, _horner(_DP, xs) / _horner(_P, xs), tf.zeros_like(x))
    return y, tf.math.log(y), 1.0 / y, product, dlog_product


def _stirling(y: tf.Tensor, log_y: tf.Tensor, r: tf.Tensor) -> tf.Tensor:
    r2 = r * r
    series = r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0)))
    return (y - 0.5) * log_y - y + _HALF_LOG_2PI + series


def _digamma_of_shifted(log_y: tf.Tensor, r: tf.Tensor, dlog_product: tf.Tensor) -> tf.Tensor:
    r2 = r * r
    series = r2 * (1.0 / 12.0 - r2 * (1.0 / 120.0 - r2 * (1.0 / 252.0)))
    return log_y - 0.5 * r - series - dlog_product


def lgamma_positive(x: tf.Tensor) -> tf.Tensor:
    """:math:`\\log\\Gamma(x)` for ``x > 0`` (gradient by automatic differentiation)."""
    x = tf.convert_to_tensor(x)
    y, log_y, r, product, _ = _shifted(x)
    return _stirling(y, log_y, r) - tf.math.log(product)


@tf.custom_gradient
def lbeta_positive(a: tf.Tensor, b: tf.Tensor):
    """:math:`\\log B(a, b) = \\log\\Gamma(a) + \\log\\Gamma(b) - \\log\\Gamma(a + b)`, a, b > 0.

    The gradient is :math:`(\\psi(a) - \\psi(a+b),\\ \\psi(b) - \\psi(a+b))`.
    ``a`` and ``b`` must have the same shape.
    """
    ya, log_ya, ra, pa, dpa = _shifted(a)
    yb, log_yb, rb, pb, dpb = _shifted(b)
    yc, log_yc, rc, pc, dpc = _shifted(a + b)
    value = (
        _stirling(ya, log_ya, ra)
        + _stirling(yb, log_yb, rb)
        - _stirling(yc, log_yc, rc)
        - tf.math.log(pa * pb / pc)
    )

    def grad(upstream: tf.Tensor):
        psi_c = _digamma_of_shifted(log_yc, rc, dpc)
        return (
            upstream * (_digamma_of_shifted(log_ya, ra, dpa) - psi_c),
            upstream * (_digamma_of_shifted(log_yb, rb, dpb) - psi_c),
        )

    return value, grad
