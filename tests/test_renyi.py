"""The ``"renyi"`` objective: against SciPy at fixed noise, its α = 0 and α → 1 limits.

Both implementations are checked against an independent computation of the log
weights (SciPy densities, the decoder's Dense layers in NumPy), the fused one at
explicit standard normal noise and the general one at a fixed stateless seed.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special
from test_iwae import BATCH, SEED, D, K, _draws, _images, _numpy_log_weights

import tfpvae
from tfpvae._backend import tf
from tfpvae.objectives import IWAE, FusedIWAE, Renyi


def _model(likelihood: str, objective: str = "iwae", **kwargs) -> tfpvae.VAE:
    return tfpvae.build_vae(
        likelihood=likelihood, input_shape=(8, 8), hidden_units=(16,), latent_dim=D,
        objective=objective, iwae_k=K, **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize("alpha", [0.5, -0.5, 2.0])
def test_renyi_loss_equals_a_scipy_reference_on_both_paths(digits, alpha) -> None:
    vae = _model("bernoulli", objective="renyi", alpha=alpha, n_samples=K)
    assert isinstance(vae.objective, FusedIWAE) and vae.objective.alpha == alpha
    x = _images(digits, "bernoulli")
    for objective in (vae.objective, Renyi(vae.parts, K, alpha)):
        noise, z, _ = _draws(vae, x, fused=isinstance(objective, FusedIWAE))
        terms = objective.terms(tf.constant(x), noise)
        log_lik, log_ratio = _numpy_log_weights(vae, x, "bernoulli", z)
        log_w = log_lik - log_ratio  # β = 1
        expected = -(special.logsumexp((1 - alpha) * log_w, axis=0) - np.log(K)) / (1 - alpha)
        np.testing.assert_allclose(terms.loss.numpy(), expected, rtol=1e-5, atol=2e-3)
        np.testing.assert_allclose(terms.distortion.numpy(), -log_lik.mean(0), rtol=1e-5,
                                   atol=2e-3)  # fmt: skip
        # The order matters: the IWAE's value at the same draws is another number.
        iwae = np.log(K) - special.logsumexp(log_w, axis=0)
        assert np.abs(expected - iwae).max() > 1e-2


def test_alpha_zero_is_the_iwae_at_the_same_draws(digits) -> None:
    vae = _model("beta", kl_weight=0.6)
    x = tf.constant(_images(digits, "beta"))
    for gradient in ("standard", "dreg"):
        renyi = Renyi(vae.parts, K, 0.0, gradient=gradient).terms(x, SEED)
        iwae = IWAE(vae.parts, K).terms(x, SEED)
        for name in ("loss", "rate", "distortion"):
            np.testing.assert_allclose(getattr(renyi, name), getattr(iwae, name), rtol=1e-5,
                                       atol=1e-5)  # fmt: skip
    eps = tf.constant(np.random.default_rng(2).standard_normal((K, BATCH, D)), tf.float32)
    fused = FusedIWAE(vae.parts, K, alpha=0.0).terms(x, eps).loss
    np.testing.assert_allclose(fused, FusedIWAE(vae.parts, K).terms(x, eps).loss, rtol=1e-5)


def test_alpha_near_one_approaches_the_elbo_at_the_same_draws(digits) -> None:
    """L_α → (1/K) Σ_k log w_k = −(distortion + β·rate) of the same K draws."""
    vae = _model("beta", kl_weight=0.6)
    x = tf.constant(_images(digits, "beta"))
    beta = 0.6

    def gap(alpha: float) -> float:
        terms = Renyi(vae.parts, K, alpha).terms(x, SEED)
        elbo_loss = terms.distortion + beta * terms.rate
        return float(tf.reduce_max(tf.abs(terms.loss - elbo_loss)))

    assert gap(1.0 - 1e-4) < 2e-2  # float32 log-sum-exp rounding, divided by 1 − α
    assert gap(0.5) > 10 * gap(1.0 - 1e-4)  # far from 1 it is another number


def test_alpha_is_required_finite_and_not_one() -> None:
    with pytest.raises(ValueError, match=r"alpha=1 is the ELBO's limit.*objective='elbo'"):
        _model("beta", objective="renyi", alpha=1.0)
    with pytest.raises(ValueError, match="objective='renyi' needs alpha"):
        _model("beta", objective="renyi")
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        tfpvae.VAEConfig(objective="renyi", alpha=float("inf"))
    with pytest.raises(ValueError, match=r"alpha=0\.5 does not apply to objective='iwae'.*renyi"):
        tfpvae.VAEConfig(objective="iwae", alpha=0.5)
    with pytest.raises(ValueError, match=r"alpha=0\.5 does not apply to objective='elbo'"):
        _model("beta", objective="elbo", alpha=0.5)
    with pytest.raises(ValueError, match="no closed-form KL"):
        tfpvae.VAEConfig(objective="renyi", alpha=0.5, use_exact_kl=True)
