"""The fast path computes the same per-example −ELBO as the TFP layers.

On fixed weights and a fixed noise draw, its rate and distortion equal (1) an
independent NumPy/SciPy computation and (2) the TFP distributions of the Keras
graph evaluated at the same z, to float tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    continuous_bernoulli_log_pdf,
    numpy_concentration,
    numpy_mlp,
    shift_posterior,
    steps_compile_with_xla,
)
from scipy import stats

import tfpvae
from tfpvae._backend import tf, tfd, tfk
from tfpvae.io.datasets import prepare
from tfpvae.objectives import ELBO, FusedELBO

BATCH = 16


def _numpy_log_lik(likelihood: str, x: np.ndarray, params: np.ndarray) -> np.ndarray:
    if likelihood == "beta":
        a, b = numpy_concentration(params[..., 0]), numpy_concentration(params[..., 1])
        per_pixel = stats.beta.logpdf(x, a, b)
    elif likelihood == "bernoulli":
        per_pixel = stats.bernoulli.logpmf(x, 1.0 / (1.0 + np.exp(-params[..., 0])))
    else:
        per_pixel = continuous_bernoulli_log_pdf(x, 1.0 / (1.0 + np.exp(-params[..., 0])))
    return per_pixel.reshape(len(x), -1).sum(axis=1)


def _setup(
    digits, likelihood="beta", posterior="full", use_exact_kl=False, kl_samples=1, compiled=False
):
    vae = tfpvae.build_vae(
        likelihood=likelihood,
        input_shape=(8, 8),
        hidden_units=(32, 16),
        latent_dim=3,
        posterior=posterior,
        use_exact_kl=use_exact_kl,
        kl_samples=kl_samples,
    )
    shift_posterior(vae, 1.0)
    x = prepare(digits[1][0][:BATCH], likelihood)
    rng = np.random.default_rng(3)
    eps = rng.standard_normal((BATCH, 3)).astype("float32")
    kl_eps = rng.standard_normal((kl_samples, BATCH, 3)).astype("float32")
    noise = (eps[None], None if kl_samples == 1 else kl_eps)
    terms_of = vae.objective.terms
    if compiled:  # the same numbers from the XLA-compiled function the training step runs
        terms_of = tf.function(lambda x, noise: vae.objective.terms(x, noise), jit_compile=True)
    terms = terms_of(tf.constant(x), noise)
    return vae, x, eps, kl_eps, terms.rate.numpy(), terms.distortion.numpy()


CASES = [
    ("beta", "full", False, 1),
    ("beta", "full", True, 3),
    ("beta", "diag", False, 4),
    ("bernoulli", "full", False, 1),
    ("continuous_bernoulli", "diag", True, 1),
]


@pytest.mark.parametrize(
    "compiled",
    [pytest.param(False, id="eager"), pytest.param(True, id="xla", marks=pytest.mark.xla)],
)
@pytest.mark.parametrize(("likelihood", "posterior", "use_exact_kl", "kl_samples"), CASES)
def test_fast_terms_equal_an_independent_computation(
    digits, likelihood, posterior, use_exact_kl, kl_samples, compiled
) -> None:
    vae, x, eps, kl_eps, rate, distortion = _setup(
        digits, likelihood, posterior, use_exact_kl, kl_samples, compiled
    )
    q = vae.encoder(x)
    mu = q.mean().numpy().astype(np.float64)
    variance = q.variance().numpy().astype(np.float64)
    cov = q.covariance().numpy() if posterior == "full" else np.eye(3) * variance[:, None, :]
    chol = np.linalg.cholesky(cov.astype(np.float64))
    z = mu + np.einsum("bij,bj->bi", chol, eps)
    params = numpy_mlp(vae.decoder, z).reshape(BATCH, 8, 8, -1)
    expected_distortion = -_numpy_log_lik(likelihood, x.astype(np.float64), params)
    if use_exact_kl:
        cov = chol @ np.transpose(chol, (0, 2, 1))
        expected_rate = 0.5 * (np.trace(cov, axis1=1, axis2=2) + np.sum(mu**2, 1) - 3) - np.sum(
            np.log(np.diagonal(chol, axis1=1, axis2=2)), 1
        )
    else:
        test_eps = eps[None] if kl_samples == 1 else kl_eps
        zs = mu + np.einsum("bij,sbj->sbi", chol, test_eps)
        log_q = stats.multivariate_normal  # per example, by the density itself
        expected_rate = np.mean(
            [
                [
                    log_q.logpdf(zs[s, i], mu[i], chol[i] @ chol[i].T)
                    - stats.multivariate_normal.logpdf(zs[s, i], np.zeros(3), np.eye(3))
                    for i in range(BATCH)
                ]
                for s in range(len(test_eps))
            ],
            axis=0,
        )
    np.testing.assert_allclose(rate, expected_rate, rtol=1e-4, atol=2e-4)
    np.testing.assert_allclose(distortion, expected_distortion, rtol=1e-5, atol=2e-3)


@pytest.mark.parametrize(("likelihood", "posterior", "use_exact_kl", "kl_samples"), CASES)
def test_fast_terms_equal_the_tfp_layers_at_the_same_z(
    digits, likelihood, posterior, use_exact_kl, kl_samples
) -> None:
    vae, x, eps, kl_eps, rate, distortion = _setup(
        digits, likelihood, posterior, use_exact_kl, kl_samples
    )
    q = vae.encoder(x).tensor_distribution
    scale = q.scale_tril if posterior == "full" else tf.linalg.diag(q.distribution.scale)
    z = q.mean() + tf.linalg.matvec(scale, eps)
    tfp_distortion = vae.likelihood.negative_log_prob(x, vae.decoder(z))
    np.testing.assert_allclose(distortion, tfp_distortion.numpy(), rtol=1e-5, atol=2e-3)
    if use_exact_kl:
        tfp_rate = tfd.kl_divergence(q, vae.prior).numpy()
        np.testing.assert_allclose(rate, tfp_rate, rtol=0, atol=1e-5)  # exact, even with 3
    else:
        test_eps = eps[None] if kl_samples == 1 else kl_eps
        zs = q.mean() + tf.linalg.matvec(scale, test_eps)
        tfp_rate = tf.reduce_mean(q.log_prob(zs) - vae.prior.log_prob(zs), axis=0).numpy()
        np.testing.assert_allclose(rate, tfp_rate, rtol=1e-4, atol=1e-4)


def test_fast_path_is_used_only_where_it_applies() -> None:
    small = dict(input_shape=(8, 8), hidden_units=(8,))
    assert isinstance(tfpvae.build_vae(**small).objective, FusedELBO)
    assert isinstance(tfpvae.build_vae(**small, fast_path=False).objective, ELBO)
    # The path follows the prior's type and values, never its name.
    standard = tfd.MultivariateNormalDiag(loc=tf.zeros(2), name="my_prior")
    assert isinstance(tfpvae.build_vae(**small, prior=standard).objective, FusedELBO)
    shifted = tfd.MultivariateNormalDiag(loc=tf.ones(2), name="prior")
    assert isinstance(tfpvae.build_vae(**small, prior=shifted).objective, ELBO)
    wide = tfd.MultivariateNormalDiag(loc=tf.zeros(2), scale_diag=[1.0, 2.0])
    assert isinstance(tfpvae.build_vae(**small, prior=wide).objective, ELBO)
    learnable = tfd.MultivariateNormalDiag(loc=tf.Variable(tf.zeros(2)))
    assert isinstance(tfpvae.build_vae(**small, prior=learnable).objective, ELBO)


def _projected_gradients(vae, x: np.ndarray, direction: list[np.ndarray], runs: int) -> np.ndarray:
    """``runs`` gradients of the training loss, each at fresh noise, projected on ``direction``."""
    step = tf.function(lambda x: vae.compute_gradients(x, None, None)[2])
    x = tf.constant(x)
    return np.array(
        [
            sum(float(np.sum(g.numpy() * d)) for g, d in zip(step(x), direction, strict=True))
            for _ in range(runs)
        ]
    )


def test_fast_and_layer_paths_train_with_the_same_expected_gradient(digits_beta) -> None:
    """Same weights, same batch: the two paths' gradients agree in expectation, within 4 SE.

    Their noise cannot be shared (one pushes eps through q, the other samples through
    TFP), so each gradient is an independent Monte Carlo draw; the comparison is of
    their projections on one fixed direction (a separate, earlier gradient).
    """
    tfk.utils.set_random_seed(0)
    small = dict(input_shape=(8, 8), hidden_units=(32,))
    fast = tfpvae.build_vae(**small)
    layers = tfpvae.build_vae(**small, fast_path=False)
    layers.set_weights(fast.get_weights())
    assert isinstance(fast.objective, FusedELBO) and isinstance(layers.objective, ELBO)
    x = digits_beta[1][:64]
    direction = [g.numpy() for g in fast.compute_gradients(tf.constant(x), None, None)[2]]
    runs = 60
    a = _projected_gradients(fast, x, direction, runs)
    b = _projected_gradients(layers, x, direction, runs)
    se = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / runs)
    assert abs(a.mean() - b.mean()) < 4 * se, (a.mean(), b.mean(), se)
    # The check has power: a gradient 10% off along this direction would be seen.
    assert 4 * se < 0.1 * abs(a.mean()), (a.mean(), se)


@pytest.mark.xla
@pytest.mark.parametrize(("architecture", "xla"), [("mlp", True), ("conv", False)])
def test_xla_is_used_where_it_is_faster(architecture, xla) -> None:
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,), architecture=architecture)
    assert vae.jit_compile is xla  # tf_keras's public flag ...
    assert steps_compile_with_xla(vae) is xla  # ... and the step Keras traces for fit
    layers = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,), fast_path=False)
    assert layers.jit_compile is False and not steps_compile_with_xla(layers)


@pytest.mark.parametrize(("value", "xla"), [("0", False), ("off", False), ("1", True), ("", True)])
def test_xla_can_be_turned_off_by_the_environment(monkeypatch, value, xla) -> None:
    monkeypatch.setenv("TFPVAE_XLA", value)
    assert tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,)).jit_compile is xla
