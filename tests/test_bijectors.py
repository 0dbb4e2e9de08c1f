"""Planar and radial bijectors: log-determinants against autodiff, the invertibility
condition for any raw parameters, and the inverses."""

from __future__ import annotations

import numpy as np
import pytest

from tfpvae._backend import tf
from tfpvae.components.bijectors import Planar, Radial, planar_u_hat, radial_alpha_beta

B, D = 6, 4


def _planar(rng, scale: float = 1.0) -> Planar:
    """Random planar parameters; half of the images get a raw u with wᵀu < -1."""
    u, w = scale * rng.normal(size=(B, D)), rng.normal(size=(B, D))
    raw = np.sum(w * u, axis=1, keepdims=True)
    violating = -(2.0 + rng.uniform(size=(B, 1))) * w / np.sum(w**2, axis=1, keepdims=True)
    u[::2] = (u - raw * w / np.sum(w**2, axis=1, keepdims=True) + violating)[::2]
    assert np.all(np.sum(w * u, axis=1)[::2] < -1.0)  # the raw condition fails there
    b = rng.normal(size=(B, 1))
    return Planar(*(tf.constant(a, tf.float32) for a in (u, w, b)))


def _radial(rng) -> Radial:
    """Random radial parameters, with raw β̃ far below -α̃ for half the images."""
    z0 = rng.normal(size=(B, D))
    raw_alpha = rng.normal(size=(B, 1))
    raw_beta = raw_alpha - 3.0 * rng.uniform(size=(B, 1))
    raw_beta[1::2] += 6.0
    return Radial(*(tf.constant(a, tf.float32) for a in (z0, raw_alpha, raw_beta)))


@pytest.mark.parametrize("make", [_planar, _radial], ids=["planar", "radial"])
def test_log_det_equals_the_autodiff_jacobian(make) -> None:
    """forward_log_det_jacobian = log|det ∂f/∂z|, the Jacobian by autodiff (float64 slogdet)."""
    rng = np.random.default_rng(0)
    bijector = make(rng)
    z = tf.constant(rng.normal(size=(B, D)) * 1.5, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(z)
        y = bijector.forward(z)
    jacobian = tape.batch_jacobian(y, z).numpy().astype(np.float64)  # [batch, d, d]
    sign, log_det = np.linalg.slogdet(jacobian)
    assert np.all(sign > 0)  # the condition holds: f preserves orientation
    assert np.abs(log_det).max() > 0.1  # not the identity
    fldj = bijector.forward_log_det_jacobian(z, event_ndims=1).numpy()
    np.testing.assert_allclose(fldj, log_det, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", [_planar, _radial], ids=["planar", "radial"])
def test_inverse_undoes_forward_at_fresh_points(make) -> None:
    """The inverse (bisection for planar, closed form for radial) at a tensor TFP has not cached."""
    rng = np.random.default_rng(1)
    bijector = make(rng)
    z = rng.normal(size=(3, B, D)) * 2.0  # [n, batch, d]: parameters broadcast over draws
    y = bijector.forward(tf.constant(z, tf.float32)).numpy()
    back = bijector.inverse(tf.constant(y)).numpy()
    np.testing.assert_allclose(back, z, atol=2e-5)


def test_planar_condition_holds_for_extreme_raw_parameters() -> None:
    """wᵀû = -1 + softplus(wᵀu) ≥ -1 whatever u and w, including w = 0 (û = u)."""
    rng = np.random.default_rng(2)
    w = rng.normal(size=(8, D)) * np.array([1e-3, 1e-1, 1, 10, 1e3, 1, 1, 1])[:, None]
    u = -np.array([1e4, 1e2, 1e3, 50, 1, -1e3, 0, 1e6])[:, None] * w / np.sum(w**2, 1)[:, None]
    u_hat = planar_u_hat(tf.constant(u, tf.float32), tf.constant(w, tf.float32)).numpy()
    raw = np.sum(w * u, axis=1)
    assert raw.min() < -1e5  # far outside the condition before the reparameterisation
    wu_hat = np.sum(w.astype(np.float64) * u_hat, axis=1)
    expected = -1.0 + np.logaddexp(0.0, raw)  # m(wᵀu), in float64
    rounding = 1e-6 + 1e-7 * np.abs(raw)  # float32 rounding of u and w, relative to |wᵀu|
    assert np.all(wu_hat >= -1.0 - rounding)
    assert np.all(np.abs(wu_hat - expected) <= rounding)
    zero = planar_u_hat(tf.constant(u[:2], tf.float32), tf.zeros([2, D])).numpy()
    np.testing.assert_array_equal(zero, u[:2].astype(np.float32))


def test_radial_condition_holds_for_extreme_raw_parameters() -> None:
    """α > 0 and β ≥ -α for raw values from -80 to 80, and 1 + βh > 0 at every radius."""
    raw = np.array([-80.0, -20.0, -1.0, 0.0, 1.0, 20.0, 80.0], np.float32)
    raw_alpha, raw_beta = (a.reshape(-1, 1) for a in np.meshgrid(raw, raw))
    alpha, beta = (t.numpy() for t in radial_alpha_beta(raw_alpha, raw_beta))
    assert np.all(alpha > 0.0) and np.all(beta >= -alpha)
    assert beta.min() < -50.0  # β itself may be very negative; only β + α ≥ 0 matters
    np.testing.assert_allclose(alpha, np.logaddexp(0.0, raw_alpha.astype(np.float64)), rtol=1e-6)
    for r in (0.0, 1e-3, 1.0, 1e3):
        assert np.all(1.0 + beta / (alpha + r) >= 0.0)
