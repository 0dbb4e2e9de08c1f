"""The training loss is the per-example negative ELBO, and training works."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    SHARED_CACHE,
    continuous_bernoulli_log_pdf,
    needs_fashion_sample,
    numpy_concentration,
    shift_posterior,
)
from scipy import stats

import tfpvae
from tfpvae._backend import tf, tfd, tfk
from tfpvae.io.datasets import load_dataset, prepare
from tfpvae.objectives import FusedELBO

BATCH = 32
N_Z = 1000  # z draws per image for the independent estimate
REPEATS = 60  # evaluate() calls on the same batch


def _beta_log_lik(x, params):
    a, b = numpy_concentration(params[..., 0]), numpy_concentration(params[..., 1])
    return stats.beta.logpdf(x, a, b)


def _bernoulli_log_lik(x, params):
    return stats.bernoulli.logpmf(x, 1.0 / (1.0 + np.exp(-params[..., 0])))


def _cb_log_lik(x, params):
    return continuous_bernoulli_log_pdf(x, 1.0 / (1.0 + np.exp(-params[..., 0])))


NUMPY_LOG_LIK = {"beta": _beta_log_lik, "bernoulli": _bernoulli_log_lik}
NUMPY_LOG_LIK["continuous_bernoulli"] = _cb_log_lik


def independent_negative_elbo(vae, x, rng):
    """−ELBO per image by NumPy/SciPy: closed-form Gaussian KL + MC decoder NLL.

    Only q's mean and covariance are read from the model; the decoder's Dense
    layers are re-run in NumPy in float64 and the likelihood comes from SciPy.

    Returns:
        (mean over the batch, its standard error, mean KL).
    """
    q = vae.encoder(x)
    mu = q.mean().numpy().astype(np.float64)  # [batch, latent]
    cov = q.covariance().numpy().astype(np.float64)  # [batch, latent, latent]
    d = mu.shape[-1]
    chol = np.linalg.cholesky(cov)
    kl = 0.5 * (
        np.trace(cov, axis1=1, axis2=2)
        + np.sum(mu**2, axis=1)
        - d
        - 2.0 * np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), axis=1)
    )
    eps = rng.standard_normal((N_Z, *mu.shape))  # [n_z, batch, latent]
    z = mu + np.einsum("bij,nbj->nbi", chol, eps)
    dense = [layer for layer in vae.decoder.layers if isinstance(layer, tfk.layers.Dense)]
    h = z
    for i, layer in enumerate(dense):
        kernel, bias = (w.astype(np.float64) for w in layer.get_weights())
        h = h @ kernel + bias
        if i < len(dense) - 1:
            h = np.maximum(h, 0.0)
    per_pixel = vae.likelihood.params_per_pixel(vae.config.input_shape)
    params = h.reshape(N_Z, x.shape[0], *x.shape[1:], per_pixel)
    log_lik = NUMPY_LOG_LIK[vae.config.likelihood](x.astype(np.float64), params)
    nll = -log_lik.reshape(N_Z, x.shape[0], -1).sum(axis=-1)  # [n_z, batch]
    per_image = nll.mean(axis=0) + vae.config.kl_weight * kl
    se = np.sqrt(np.sum(nll.var(axis=0, ddof=1) / N_Z)) / x.shape[0]
    return per_image.mean(), se, kl.mean()


MODES = [
    ("beta", "add_loss", True),
    ("beta", "add_loss", False),
    ("beta", "regularizer", True),
    ("beta", "regularizer", False),
    ("bernoulli", "add_loss", True),
    ("continuous_bernoulli", "regularizer", False),
]


@pytest.mark.parametrize(
    "fast_path",
    [
        pytest.param(False, id="tfp-layers", marks=pytest.mark.slow(seconds=15)),
        pytest.param(True, id="fast-path", marks=pytest.mark.xla),
    ],
)
@pytest.mark.parametrize(("likelihood", "kl", "use_exact_kl"), MODES)
def test_evaluate_equals_per_example_negative_elbo(digits, likelihood, kl, use_exact_kl, fast_path):
    beta = 0.8
    vae = tfpvae.build_vae(
        likelihood=likelihood,
        input_shape=(8, 8),
        hidden_units=(32, 16),
        kl=kl,
        use_exact_kl=use_exact_kl,
        kl_weight=beta,
        fast_path=fast_path,
    )
    assert isinstance(vae.objective, FusedELBO) == fast_path
    shift_posterior(vae)
    x = prepare(digits[1][0][:BATCH], likelihood)
    reference, reference_se, mean_kl = independent_negative_elbo(vae, x, np.random.default_rng(0))
    losses = np.array([vae.evaluate(x, x, batch_size=BATCH, verbose=0)[0] for _ in range(REPEATS)])
    se = np.sqrt(losses.var(ddof=1) / REPEATS + reference_se**2)
    assert abs(losses.mean() - reference) < 4 * se, (losses.mean(), reference, se)
    # The check has the power to see the course's mis-scaling: a KL weighted by
    # B or 1/B instead of 1 would move the loss by far more than 4 SE.
    assert 4 * se < beta * mean_kl * (1 - 1 / BATCH)


def test_history_logs_the_beta_elbo_at_the_validation_draw(digits_beta) -> None:
    """The logged val_ numbers are β-weighted −ELBO terms, rebuilt here through TFP.

    The validation pass is one batch whose noise comes from the model's generator;
    its state is read as the pass begins, so the same standard normal draw can be
    pushed through q's own affine map here, and the decoder's distribution and
    ``tfd.kl_divergence`` give the terms at the final weights.
    """
    beta = 0.5
    vae = tfpvae.build_vae(
        input_shape=(8, 8), hidden_units=(32,), use_exact_kl=True, kl_weight=beta
    )
    assert isinstance(vae.objective, FusedELBO)  # it draws eps ~ N(0, I) from vae.noise
    x_train, x_test = digits_beta
    x_val = x_test[:64]

    class NoiseState(tfk.callbacks.Callback):
        def on_test_begin(self, logs=None):
            self.state = vae.noise.state.numpy()

    noise = NoiseState()
    history = vae.fit(
        x_train[:256], x_train[:256], epochs=2, batch_size=64, verbose=0, callbacks=[noise],
        validation_data=(x_val, x_val), validation_batch_size=len(x_val),
    ).history  # fmt: skip
    eps = tf.random.Generator.from_state(noise.state, vae.noise.algorithm).normal(
        [1, len(x_val), vae.config.latent_dim]
    )[0]
    q = vae.encoder(x_val).tensor_distribution
    z = q.mean() + tf.linalg.matvec(q.scale_tril, eps)
    distortion = -vae.decoder(z).log_prob(x_val).numpy()  # [64], nats per image
    rate = tfd.kl_divergence(q, vae.prior).numpy()
    np.testing.assert_allclose(history["val_rate"][-1], rate.mean(), rtol=1e-5)
    np.testing.assert_allclose(history["val_distortion"][-1], distortion.mean(), rtol=1e-5)
    expected_loss = np.mean(distortion + beta * rate)  # the β-ELBO's definition
    np.testing.assert_allclose(history["val_loss"][-1], expected_loss, rtol=1e-5)
    # The draw matters: at another one the distortion is measurably different.
    other = -vae.decoder(q.mean() + tf.linalg.matvec(q.scale_tril, -eps)).log_prob(x_val)
    assert abs(other.numpy().mean() - distortion.mean()) > 1e-3 * abs(distortion.mean())
    assert all(np.isfinite(history[k]).all() for k in ("loss", "rate", "distortion"))


@pytest.mark.slow(seconds=33)
def test_training_lowers_held_out_loss(digits_beta) -> None:
    x_train, x_test = digits_beta
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(64, 32), use_exact_kl=True)
    before = vae.evaluate(x_test, x_test, batch_size=128, verbose=0)[0]
    vae.fit(x_train, x_train, epochs=8, batch_size=32, verbose=0)
    after = vae.evaluate(x_test, x_test, batch_size=128, verbose=0)[0]
    assert np.isfinite(after)
    assert after < before - 20.0, (before, after)


def test_vae_exposes_its_parts() -> None:
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,), likelihood="bernoulli")
    assert isinstance(vae, tfk.Model)
    assert vae.likelihood.name == "bernoulli"
    assert tuple(vae.prior.event_shape) == (2,)
    assert vae.encoder.name == "encoder" and vae.decoder.name == "decoder"
    assert float(vae.kl_weight) == 1.0
    assert vae.optimizer.learning_rate.numpy() == pytest.approx(1e-3)
    faster = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,), learning_rate=0.02)
    assert faster.optimizer.learning_rate.numpy() == pytest.approx(0.02)


@pytest.mark.parametrize(("shape", "architecture"), [((28, 28), "conv"), ((9, 7, 3), "conv")])
def test_conv_architecture_reconstructs_any_image_shape(shape, architecture) -> None:
    vae = tfpvae.build_vae(input_shape=shape, architecture=architecture, hidden_units=(16,))
    x = np.full((3, *shape), 0.5, "float32")
    dist = vae(x)
    assert tuple(dist.event_shape) == shape
    assert np.all(np.isfinite(dist.log_prob(x).numpy()))
    assert any(isinstance(layer, tfk.layers.Conv2DTranspose) for layer in vae.decoder.layers)


def test_mlp_mirrors_hidden_units() -> None:
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(48, 24))
    enc = [layer.units for layer in vae.encoder.layers if isinstance(layer, tfk.layers.Dense)]
    dec = [layer.units for layer in vae.decoder.layers if isinstance(layer, tfk.layers.Dense)]
    assert enc == [48, 24, 5]  # 2 for loc + 3 for the lower-triangular scale
    assert dec == [24, 48, 2 * 64]  # two Beta concentrations per pixel


@pytest.mark.slow(seconds=31)
@pytest.mark.xla
@needs_fashion_sample
def test_beta_vae_trains_one_epoch_on_real_fashion_mnist() -> None:
    (x_train, _), (x_test, _) = load_dataset("fashion_mnist", cache_dir=SHARED_CACHE)
    x_train, x_test = prepare(x_train, "beta"), prepare(x_test, "beta")
    vae = tfpvae.build_vae(likelihood="beta")
    before = vae.evaluate(x_test, x_test, batch_size=200, verbose=0)[0]
    history = vae.fit(
        x_train, x_train, epochs=1, batch_size=32, verbose=0, validation_data=(x_test, x_test)
    ).history
    assert np.isfinite(history["loss"][0])
    assert history["val_loss"][0] < before
