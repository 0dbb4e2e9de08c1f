"""The ``"iwae"`` objective: its loss, its K = 1 case and its gradient, checked independently.

Both implementations are checked: the fused one at explicit standard normal
noise, the general (TFP) one at a fixed stateless seed, whose draws are
reproduced with ``q.sample(K, seed)``.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import numpy_mlp
from scipy import special, stats
from test_fastpath import _numpy_log_lik

import tfpvae
from tfpvae._backend import tf
from tfpvae.io.datasets import prepare
from tfpvae.objectives import ELBO, IWAE, FusedELBO, FusedIWAE

BATCH, K, D = 6, 4, 3
SEED = tf.constant([7, 11], tf.int32)


def _model(likelihood: str, k: int = K, **kwargs):
    return tfpvae.build_vae(
        likelihood=likelihood, input_shape=(8, 8), hidden_units=(16,), latent_dim=D,
        objective="iwae", iwae_k=k, **kwargs,
    )  # fmt: skip


def _images(digits, likelihood: str) -> np.ndarray:
    return prepare(digits[1][0][:BATCH], likelihood)


def _draws(vae, x, fused: bool, k: int = K):
    """(noise for the objective, z [k, batch, d] as NumPy, eps [k, batch, d])."""
    q = vae.encoder(x)
    chol = q.tensor_distribution.scale_tril.numpy().astype(np.float64)
    mu = q.mean().numpy().astype(np.float64)
    if fused:
        eps = np.random.default_rng(5).standard_normal((k, BATCH, D)).astype("float32")
        z = mu + np.einsum("bij,kbj->kbi", chol, eps)
        return tf.constant(eps), z, eps
    z = q.sample(k, seed=SEED).numpy().astype(np.float64)
    eps = np.linalg.solve(chol[None], (z - mu)[..., None])[..., 0]  # L⁻¹(z − μ)
    return SEED, z, eps.astype("float32")


def _numpy_log_weights(vae, x, likelihood, z) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log p(x|z_k), log q(z_k|x) − log p(z_k)) by SciPy, each [k, batch]."""
    q = vae.encoder(x)
    mu = q.mean().numpy().astype(np.float64)
    cov = q.covariance().numpy().astype(np.float64)
    log_lik = np.stack([
        _numpy_log_lik(likelihood, x.astype(np.float64),
                       numpy_mlp(vae.decoder, z_k).reshape(BATCH, 8, 8, -1))
        for z_k in z
    ])  # fmt: skip
    log_q = np.array([
        [stats.multivariate_normal.logpdf(z[k, i], mu[i], cov[i]) for i in range(BATCH)]
        for k in range(len(z))
    ])  # fmt: skip
    log_p = stats.multivariate_normal.logpdf(z, np.zeros(D), np.eye(D))
    return log_lik, log_q - log_p


@pytest.mark.parametrize("likelihood", ["beta", "bernoulli"])
def test_iwae_loss_equals_an_independent_computation(digits, likelihood) -> None:
    vae = _model(likelihood)
    x = _images(digits, likelihood)
    for objective in (FusedIWAE(vae.parts, K), IWAE(vae.parts, K)):
        noise, z, _ = _draws(vae, x, fused=isinstance(objective, FusedIWAE))
        _check_terms(vae, x, likelihood, objective.terms(tf.constant(x), noise), z)


def _check_terms(vae, x, likelihood, terms, z) -> None:
    log_lik, log_ratio = _numpy_log_weights(vae, x, likelihood, z)
    expected = np.log(K) - special.logsumexp(log_lik - log_ratio, axis=0)
    np.testing.assert_allclose(terms.loss.numpy(), expected, rtol=1e-5, atol=2e-3)
    np.testing.assert_allclose(terms.rate.numpy(), log_ratio.mean(0), rtol=1e-4, atol=2e-4)
    np.testing.assert_allclose(terms.distortion.numpy(), -log_lik.mean(0), rtol=1e-5, atol=2e-3)
    # Jensen: the K-sample bound is at least the average of the single-draw ELBOs.
    assert np.all(terms.loss.numpy() <= (terms.rate + terms.distortion).numpy() + 1e-4)


def test_iwae_with_one_sample_is_the_elbo_at_the_same_draw(digits) -> None:
    vae = _model("beta", k=1)
    x = tf.constant(_images(digits, "beta"))
    noise, _, _ = _draws(vae, x, fused=True, k=1)
    pairs = [
        (FusedIWAE(vae.parts, 1).terms(x, noise), FusedELBO(vae.parts, 1).terms(x, (noise, None)))
    ]
    pairs.append((IWAE(vae.parts, 1).terms(x, SEED), ELBO(vae.parts, 1).terms(x, SEED)))
    for iwae, elbo in pairs:
        for name in ("loss", "rate", "distortion"):
            np.testing.assert_allclose(getattr(iwae, name), getattr(elbo, name), rtol=1e-5,
                                       atol=1e-5)  # fmt: skip


def test_iwae_gradient_is_the_self_normalised_average_of_single_draw_gradients(digits) -> None:
    r"""∇(−log ¹⁄ₖ Σ w_k) = Σ_k w̃_k ∇(−log w_k), w̃ = softmax(log w), at the same draws.

    Each −log w_k is the single-draw ELBO loss of :class:`FusedELBO` at ε_k, an
    independent implementation for both objectives.
    """
    vae = _model("bernoulli")
    assert isinstance(vae.objective, FusedIWAE)
    x = tf.constant(_images(digits, "bernoulli"))
    for objective in (FusedIWAE(vae.parts, K), IWAE(vae.parts, K)):
        _check_gradient(vae, x, objective)


def _check_gradient(vae, x, objective) -> None:
    noise, _, eps = _draws(vae, x, fused=isinstance(objective, FusedIWAE))
    variables = vae.trainable_variables
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(objective.terms(x, noise, training=True).loss)
    grads = tape.gradient(loss, variables)

    single = FusedELBO(vae.parts, 1)
    neg_log_w = [single.terms(x, (tf.constant(eps[k : k + 1]), None)).loss for k in range(K)]
    weights = special.softmax(-np.array(neg_log_w, np.float64), axis=0)  # [K, batch], constant
    with tf.GradientTape() as tape:
        surrogate = sum(
            tf.reduce_sum(weights[k].astype("float32") * single.terms(
                x, (tf.constant(eps[k : k + 1]), None), training=True).loss)
            for k in range(K)
        ) / BATCH  # fmt: skip
    expected = tape.gradient(surrogate, variables)
    for var, got, want in zip(variables, grads, expected, strict=True):
        scale = np.abs(want.numpy()).max() + 1e-3
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=2e-4 * scale,
                                   err_msg=var.name)  # fmt: skip


def test_iwae_k_is_validated_and_chosen_by_the_config() -> None:
    with pytest.raises(ValueError, match=r"iwae_k must be a positive integer.*use iwae_k >= 1"):
        tfpvae.VAEConfig(objective="iwae", iwae_k=0)
    with pytest.raises(ValueError, match="iwae_k must be a positive integer"):
        tfpvae.VAEConfig(iwae_k=2.5)
    config = tfpvae.VAEConfig(objective="iwae", iwae_k=7, n_samples=2)
    assert tfpvae.VAEConfig.from_json(config.to_json()) == config
    assert tfpvae.VAEConfig(iwae_k=1).iwae_k == 1
