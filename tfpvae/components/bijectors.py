r"""Planar and radial flows (Rezende & Mohamed, 2015) as TFP bijectors with batch parameters.

Both act on vectors z of size d and take one set of parameters per image (batch
shape ``[batch]``), so that the encoder can emit them (amortised flows).

**Planar.** With :math:`h = \tanh`,

.. math::

    f(z) = z + \hat u\,h(w^\top z + b),\qquad
    \log\left|\det \frac{\partial f}{\partial z}\right| = \log\left|1 + \hat u^\top \psi(z)\right|,
    \quad \psi(z) = h'(w^\top z + b)\,w .

f is invertible when :math:`w^\top\hat u \ge -1`; :func:`planar_u_hat` enforces it for any
raw u with :math:`\hat u = u + \big(m(w^\top u) - w^\top u\big)\,w/\|w\|^2`,
:math:`m(a) = -1 + \mathrm{softplus}(a)`, so that :math:`w^\top\hat u = m(w^\top u) > -1`.

**Radial.** With :math:`r = \|z - z_0\|` and :math:`h(\alpha, r) = 1/(\alpha + r)`,

.. math::

    f(z) = z + \beta\,h(\alpha, r)\,(z - z_0),\qquad
    \log\left|\det \frac{\partial f}{\partial z}\right| = (d-1)\log(1 + \beta h)
        + \log(1 + \beta h + \beta h'(\alpha, r)\,r),

invertible when :math:`\beta \ge -\alpha`; :func:`radial_alpha_beta` sets
:math:`\alpha = \mathrm{softplus}(\tilde\alpha)` and
:math:`\beta = -\alpha + \mathrm{softplus}(\tilde\beta)`.

Neither has a closed-form KL, and their log-densities are meant to be read at q's
own draws: a ``tfd.TransformedDistribution`` caches each forward pass, so
``log_prob`` of a sample costs no inverse. Both can still be inverted elsewhere:
the radial flow in closed form (:math:`\rho = \|f(z) - z_0\|` gives r as the positive
root of :math:`r^2 + (\alpha + \beta - \rho) r - \alpha\rho = 0`), the planar flow by
bisection on the scalar :math:`a = w^\top z`, which solves the increasing equation
:math:`a + (w^\top\hat u)\tanh(a + b) = w^\top f(z)` in
:math:`[w^\top f(z) - |w^\top\hat u|,\ w^\top f(z) + |w^\top\hat u|]`.
"""

from __future__ import annotations

from tfpvae._backend import tf, tfb

#: Bisection steps of the planar inverse: the bracket of width 2|wᵀû| shrinks by 2⁻⁶⁰,
#: below float32's resolution.
BISECTION_STEPS = 60


def _dot(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Inner product over the last axis, keeping it: ``[..., 1]``."""
    return tf.reduce_sum(a * b, axis=-1, keepdims=True)


def planar_u_hat(u: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
    r"""û with :math:`w^\top\hat u = -1 + \mathrm{softplus}(w^\top u) \ge -1`, ``[..., d]``.

    Where w = 0 (then :math:`w^\top u = 0` and f is the identity) û is u.
    """
    wu = _dot(w, u)
    norm_sq = _dot(w, w)
    safe = tf.where(norm_sq > 0.0, norm_sq, tf.ones_like(norm_sq))
    return u + (-1.0 + tf.math.softplus(wu) - wu) * w / safe


def radial_alpha_beta(raw_alpha: tf.Tensor, raw_beta: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    r""":math:`\alpha = \mathrm{softplus}(\tilde\alpha) > 0`, :math:`\beta = -\alpha +
    \mathrm{softplus}(\tilde\beta) \ge -\alpha`."""
    alpha = tf.math.softplus(raw_alpha)
    return alpha, -alpha + tf.math.softplus(raw_beta)


class Planar(tfb.Bijector):
    r"""A planar flow :math:`z + \hat u\tanh(w^\top z + b)` with the condition enforced.

    Args:
        u: Raw u ``[batch, d]`` (made into û by :func:`planar_u_hat`).
        w: ``[batch, d]``.
        b: ``[batch, 1]``.
        name: The bijector's name.
    """

    def __init__(self, u: tf.Tensor, w: tf.Tensor, b: tf.Tensor, name: str = "planar") -> None:
        parameters = dict(locals())
        with tf.name_scope(name) as scope:
            self.w = tf.convert_to_tensor(w)
            self.b = tf.convert_to_tensor(b)
            self.u_hat = planar_u_hat(tf.convert_to_tensor(u), self.w)
            super().__init__(forward_min_event_ndims=1, parameters=parameters, name=scope)

    def _forward(self, z: tf.Tensor) -> tf.Tensor:
        return z + self.u_hat * tf.tanh(_dot(self.w, z) + self.b)

    def _inverse(self, y: tf.Tensor) -> tf.Tensor:
        c = _dot(self.w, self.u_hat)  # wᵀû ≥ -1: a + c tanh(a + b) increases in a
        target = _dot(self.w, y) + tf.zeros_like(c)
        low, high = target - tf.abs(c), target + tf.abs(c)
        for _ in range(BISECTION_STEPS):
            mid = 0.5 * (low + high)
            above = mid + c * tf.tanh(mid + self.b) > target
            low, high = tf.where(above, low, mid), tf.where(above, mid, high)
        return y - self.u_hat * tf.tanh(0.5 * (low + high) + self.b)

    def _forward_log_det_jacobian(self, z: tf.Tensor) -> tf.Tensor:
        t = tf.tanh(_dot(self.w, z) + self.b)
        return tf.math.log(tf.abs(1.0 + (1.0 - t**2) * _dot(self.w, self.u_hat)))[..., 0]


class Radial(tfb.Bijector):
    r"""A radial flow :math:`z + \beta h(\alpha, r)(z - z_0)` with :math:`\beta \ge -\alpha`.

    Args:
        z0: The centre ``[batch, d]``.
        raw_alpha: α̃ ``[batch, 1]``.
        raw_beta: β̃ ``[batch, 1]``.
        name: The bijector's name.
    """

    def __init__(
        self, z0: tf.Tensor, raw_alpha: tf.Tensor, raw_beta: tf.Tensor, name: str = "radial"
    ) -> None:
        parameters = dict(locals())
        with tf.name_scope(name) as scope:
            self.z0 = tf.convert_to_tensor(z0)
            self.alpha, self.beta = radial_alpha_beta(
                tf.convert_to_tensor(raw_alpha), tf.convert_to_tensor(raw_beta)
            )
            super().__init__(forward_min_event_ndims=1, parameters=parameters, name=scope)

    def _radius(self, z: tf.Tensor) -> tf.Tensor:
        return tf.norm(z - self.z0, axis=-1, keepdims=True)  # [..., 1]

    def _forward(self, z: tf.Tensor) -> tf.Tensor:
        return z + self.beta / (self.alpha + self._radius(z)) * (z - self.z0)

    def _inverse(self, y: tf.Tensor) -> tf.Tensor:
        rho = self._radius(y)
        gap = rho - self.alpha - self.beta
        r = 0.5 * (gap + tf.sqrt(gap**2 + 4.0 * self.alpha * rho))
        return self.z0 + (y - self.z0) * (self.alpha + r) / (self.alpha + r + self.beta)

    def _forward_log_det_jacobian(self, z: tf.Tensor) -> tf.Tensor:
        r = self._radius(z)
        d = tf.cast(tf.shape(z)[-1], z.dtype)
        beta_h = self.beta / (self.alpha + r)
        # 1 + βh + βh'r with h' = -1/(α + r)²: 1 + βα/(α + r)² ≥ 0 when β ≥ -α.
        radial = 1.0 + self.beta * self.alpha / (self.alpha + r) ** 2
        return ((d - 1.0) * tf.math.log1p(beta_h) + tf.math.log(radial))[..., 0]
