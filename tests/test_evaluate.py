"""ELBO and IWAE: properties of the bound, and exactness on a closed-form model."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tfpvae
from tfpvae._backend import tf, tfd, tfk, tfpl
from tfpvae.components.draws import image_keys as _image_keys
from tfpvae.components.draws import per_image_draws as _per_image_draws
from tfpvae.evaluation.bounds import (
    bits_per_dim,
    elbo,
    held_out_metrics,
    iwae_bound,
)


@pytest.fixture(scope="module")
def trained(digits_beta):
    tfk.utils.set_random_seed(0)
    x_train, x_test = digits_beta
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(32,), use_exact_kl=True)
    vae.fit(x_train, x_train, epochs=2, batch_size=64, verbose=0)
    return vae, x_test[:120]


def paired_se(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.std(a - b, ddof=1) / math.sqrt(len(a)))


def test_iwae_with_k1_is_the_elbo_in_expectation(trained) -> None:
    vae, x = trained
    x = np.concatenate([x] * 5)  # 600 draws
    k1 = iwae_bound(vae, x, k=1, seed=1)
    terms = elbo(vae, x, seed=2)
    se = math.sqrt(k1.var(ddof=1) / len(k1) + terms.elbo.var(ddof=1) / len(x))
    assert abs(k1.mean() - terms.elbo.mean()) < 4 * se


def test_iwae_does_not_decrease_with_k(trained) -> None:
    vae, x = trained
    bounds = {k: iwae_bound(vae, x, k=k, seed=k) for k in (1, 10, 100)}
    for small, large in ((1, 10), (10, 100)):
        gap = bounds[large].mean() - bounds[small].mean()
        assert gap > -4 * paired_se(bounds[large], bounds[small])
    assert bounds[100].mean() - bounds[1].mean() > 4 * paired_se(bounds[100], bounds[1])


def test_results_do_not_depend_on_batching(trained) -> None:
    vae, x = trained
    x = x[:21]
    small = elbo(vae, x, n_samples=4, batch_size=7, seed=3)
    large = elbo(vae, x, n_samples=4, batch_size=64, seed=3)
    for name in ("elbo", "rate", "distortion"):
        np.testing.assert_allclose(getattr(small, name), getattr(large, name), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(small.elbo, -(small.rate + small.distortion), rtol=1e-6)
    a = iwae_bound(vae, x, k=30, batch_size=7, chunk_size=30, seed=3)
    b = iwae_bound(vae, x, k=30, batch_size=64, chunk_size=7, seed=3)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
    other_seed = iwae_bound(vae, x, k=30, batch_size=64, seed=4)
    assert np.abs(other_seed - b).max() > 1e-3  # the draws do depend on the seed


@pytest.mark.parametrize("family", ["normal", "laplace"])
def test_per_image_draws_follow_each_posterior_whatever_the_batch(family) -> None:
    loc = tf.constant([[0.0, 1.0], [2.0, -1.0], [5.0, 0.5]])
    scale = tf.constant([[1.0, 0.5], [2.0, 0.1], [0.3, 3.0]])
    make = {"normal": tfd.Normal, "laplace": tfd.Laplace}[family]  # affine map, or the fallback
    q = tfd.Independent(make(loc, scale), 1)
    keys = _image_keys(seed=9, start=0, batch=3, stream=0)
    draws = _per_image_draws(q, 4000, keys).numpy()  # [4000, 3, 2]
    alone = _per_image_draws(q[1:2], 4000, keys[1:2]).numpy()  # image 1 in a batch of its own
    np.testing.assert_allclose(alone[:, 0], draws[:, 1], rtol=1e-6)
    std = q.distribution.stddev().numpy()
    se = std / math.sqrt(len(draws))
    assert np.all(np.abs(draws.mean(0) - loc.numpy()) < 4 * se)
    assert np.all(np.abs(draws.std(0) / std - 1.0) < 0.1)


def linear_gaussian_model(latent_dim: int = 2, data_dim: int = 5, noise: float = 0.5, seed=0):
    """z ~ N(0, I), x | z ~ N(Wz + b, σ²I): log p(x) = log N(x; b, WWᵀ + σ²I) exactly.

    The encoder is a deliberately imperfect Gaussian (the exact posterior mean,
    shifted, with a too-wide covariance), so the ELBO is strictly below log p(x)
    and only the importance weighting closes the gap.
    """
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(data_dim, latent_dim)).astype(np.float32)
    b = rng.normal(size=data_dim).astype(np.float32)
    post_cov = np.linalg.inv(np.eye(latent_dim) + w.T @ w / noise**2)
    gain = (post_cov @ w.T / noise**2).astype(np.float32)  # posterior mean = gain (x - b)
    chol = np.linalg.cholesky(1.5 * post_cov).astype(np.float32)

    x_in = tfk.Input(shape=(data_dim,))
    loc = tfk.layers.Lambda(lambda x: tf.matmul(x - b, gain, transpose_b=True) + 0.2)(x_in)
    encoder = tfk.Model(
        x_in,
        tfpl.DistributionLambda(lambda m: tfd.MultivariateNormalTriL(m, scale_tril=chol))(loc),
    )
    z_in = tfk.Input(shape=(latent_dim,))
    mean = tfk.layers.Lambda(lambda z: tf.matmul(z, w, transpose_b=True) + b)(z_in)
    decoder = tfk.Model(
        z_in,
        tfpl.DistributionLambda(lambda m: tfd.Independent(tfd.Normal(m, noise), 1))(mean),
    )
    # A user's own networks, handed to the constructor as they are.
    model = tfpvae.VAE(encoder, decoder, prior=tfd.MultivariateNormalDiag(loc=tf.zeros(latent_dim)))
    cov = (w @ w.T + noise**2 * np.eye(data_dim)).astype(np.float64)
    marginal = tfd.MultivariateNormalTriL(b.astype(np.float64), np.linalg.cholesky(cov))
    x = marginal.sample(400, seed=7).numpy()
    return model, x.astype(np.float32), marginal.log_prob(x).numpy()


def test_iwae_converges_to_the_exact_log_likelihood() -> None:
    model, x, log_px = linear_gaussian_model()
    terms = elbo(model, x, n_samples=1)
    bound = iwae_bound(model, x, k=2000, chunk_size=500, seed=5)
    gap = bound - log_px
    se = float(np.std(gap, ddof=1) / math.sqrt(len(gap)))
    assert abs(gap.mean()) < 4 * se + 1e-4, (gap.mean(), se)
    assert log_px.mean() - terms.elbo.mean() > 0.05  # the ELBO alone is visibly loose


def test_held_out_metrics_and_bits_per_dim(trained) -> None:
    vae, x = trained
    metrics = held_out_metrics(vae, x[:50], k=5)
    assert metrics["n_images"] == 50 and metrics["n_dims"] == 64 and metrics["iwae_k"] == 5
    assert metrics["elbo_bits_per_dim"] == pytest.approx(-metrics["elbo"] / (64 * math.log(2)))
    assert bits_per_dim(64 * math.log(2), 64) == pytest.approx(1.0)


def test_bad_k_raises(trained) -> None:
    vae, x = trained
    with pytest.raises(ValueError, match="k must be >= 1"):
        iwae_bound(vae, x, k=0)
