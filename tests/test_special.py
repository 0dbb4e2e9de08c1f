"""log Γ and log B for positive arguments against SciPy, values and gradients."""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, gammaln

from tfpvae._backend import tf
from tfpvae.components.special import lbeta_positive, lgamma_positive

RNG = np.random.default_rng(0)


def _log_uniform(low: float, high: float, n: int) -> np.ndarray:
    return np.exp(RNG.uniform(np.log(low), np.log(high), n)).astype(np.float32)


def test_lgamma_positive_matches_scipy() -> None:
    x = np.concatenate([_log_uniform(1e-4, 1e6, 20000), np.linspace(0.5, 20, 500, dtype="f4")])
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        value = lgamma_positive(xt)
    grad = tape.gradient(value, xt).numpy()
    x64 = x.astype(np.float64)
    scale = np.maximum(1.0, np.abs(gammaln(x64)))
    assert np.max(np.abs(value.numpy() - gammaln(x64)) / scale) < 5e-6
    assert np.max(np.abs(grad - digamma(x64)) / np.maximum(1.0, np.abs(digamma(x64)))) < 5e-6
    # The shift boundary at 7 is continuous.
    near = tf.constant([6.9999995, 7.0], tf.float32)
    np.testing.assert_allclose(lgamma_positive(near).numpy(), gammaln([6.9999995, 7.0]), rtol=1e-6)


def test_lbeta_positive_and_its_gradient_match_scipy() -> None:
    # Concentrations a decoder produces: from the floor 1e-4 to 1e3.
    a = tf.constant(_log_uniform(1e-4, 1e3, 50000))
    b = tf.constant(_log_uniform(1e-4, 1e3, 50000))
    with tf.GradientTape() as tape:
        tape.watch([a, b])
        value = lbeta_positive(a, b)
    grad_a, grad_b = tape.gradient(value, [a, b])
    a64, b64 = a.numpy().astype(np.float64), b.numpy().astype(np.float64)
    expected = betaln(a64, b64)
    # Float32 round-off of log Γ terms of size |log Γ(a + b)| ≤ ~6e3.
    tolerance = 4e-7 * np.maximum(1.0, np.abs(gammaln(a64 + b64))) + 1e-5
    assert np.all(np.abs(value.numpy() - expected) < tolerance)
    for grad, own in ((grad_a, a64), (grad_b, b64)):
        exact = digamma(own) - digamma(a64 + b64)
        assert np.max(np.abs(grad.numpy() - exact) / np.maximum(1.0, np.abs(exact))) < 2e-5
