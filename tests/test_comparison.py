"""Uniform dequantisation, and the one column that compares likelihoods (bits/dim of 8-bit data)."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
from scipy import stats

import tfpvae
from tfpvae.components.likelihoods import get_likelihood
from tfpvae.evaluation.bounds import held_out_metrics, iwae_bound
from tfpvae.evaluation.comparison import comparison_rows, eight_bit_bound, format_rows
from tfpvae.interfaces.run import TrainSettings, fit, load_run_data
from tfpvae.io.datasets import prepare
from tfpvae.training.pipeline import array_dataset

PIXELS = np.random.default_rng(0).integers(0, 256, (2000, 4), np.uint8)


def test_uniform_dequantisation_fills_each_cell_and_keeps_the_default() -> None:
    y = prepare(PIXELS, "beta", dequantize="uniform", seed=1)
    assert y.dtype == np.float32 and y.min() > 0 and y.max() < 1
    u = y.astype(np.float64) * 256 - PIXELS  # the noise, in [0, 1)
    assert u.min() >= -1e-4 and u.max() < 1 + 1e-4
    assert abs(u.mean() - 0.5) < 4 * math.sqrt(1 / 12 / u.size)
    np.testing.assert_array_equal(y, prepare(PIXELS, "beta", dequantize="uniform", seed=1))
    assert not np.array_equal(y, prepare(PIXELS, "beta", dequantize="uniform", seed=2))
    np.testing.assert_allclose(prepare(PIXELS, "beta"), (PIXELS + 0.5) / 256, rtol=1e-6)
    with pytest.raises(ValueError, match="takes no options, not dequantize"):
        prepare(PIXELS, "categorical", dequantize="uniform")


def test_the_pipeline_draws_fresh_noise_per_epoch_and_resumes_it() -> None:
    levels = PIXELS[:10].reshape(10, 2, 2)
    stream = array_dataset(levels, 5, shuffle=False, seed=3, first_epoch=0, dequantize=True)
    epochs = [np.concatenate([b[0].numpy() for b in stream.skip(2 * e).take(2)]) for e in (0, 1)]
    for y in epochs:
        np.testing.assert_array_equal(np.floor(y * 256), levels)  # in the pixel's own cell
    assert np.abs(epochs[0] - epochs[1]).min() > 0  # every pixel, a new u
    resumed = array_dataset(levels, 5, shuffle=False, seed=3, first_epoch=1, dequantize=True)
    np.testing.assert_array_equal(
        np.concatenate([b[0].numpy() for b in resumed.take(2)]), epochs[1]
    )
    with pytest.raises(ValueError, match="8-bit levels"):
        array_dataset(levels / 255.0, 5, first_epoch=0, dequantize=True)


def test_dequantised_log_density_minus_log_256_bounds_the_cell_probability() -> None:
    """For a Beta density on [0, 1]: E_u[log p((x+u)/256)] - log 256 <= log P(x), exactly."""
    a, b = 2.0, 5.0
    x = np.array([0, 3, 40, 128, 255])
    exact = np.log(stats.beta.cdf((x + 1) / 256, a, b) - stats.beta.cdf(x / 256, a, b))
    u = np.random.default_rng(5).random((20000, len(x)))
    log_p = stats.beta.logpdf((x + u) / 256, a, b) - math.log(256)
    se = log_p.std(0, ddof=1) / math.sqrt(len(u))
    assert np.all(log_p.mean(0) <= exact + 4 * se)
    assert np.all(np.abs(log_p.mean(0) - exact)[1:4] < 0.01)  # tight where p is nearly flat
    midpoint = stats.beta.logpdf((x + 0.5) / 256, a, b) - math.log(256)
    assert np.any(midpoint > exact)  # the course's fixed shift is no bound


@pytest.fixture(scope="module")
def models() -> dict:
    kw = {"input_shape": (2, 2), "hidden_units": (8,), "latent_dim": 2}
    built = {name: tfpvae.build_vae(likelihood=name, **kw) for name in ("categorical", "beta")}
    # Not comparable: nothing is evaluated, only the likelihood is read.
    return {**built, "bernoulli": types.SimpleNamespace(likelihood=get_likelihood("bernoulli"))}


def test_each_likelihood_reports_its_comparable_number(models) -> None:
    pixels = PIXELS[:30].reshape(30, 2, 2)
    d = 4
    levels = prepare(pixels, "categorical")
    cat = eight_bit_bound(models["categorical"], pixels, k=5, seed=2)
    expected = -iwae_bound(models["categorical"], levels, k=5, seed=2) / (d * math.log(2))
    assert cat["bits_per_dim_8bit"] == pytest.approx(expected.mean(), rel=1e-5)
    assert cat["bits_per_dim_8bit_se"] == pytest.approx(
        expected.std(ddof=1) / math.sqrt(30), rel=1e-4
    )
    assert cat["bound"].startswith("discrete log-likelihood")
    beta = eight_bit_bound(models["beta"], pixels, k=5, seed=2)
    y = prepare(pixels, "beta", dequantize="uniform", seed=2)
    bound = iwae_bound(models["beta"], y, k=5, seed=2) - d * math.log(256)
    assert beta["bits_per_dim_8bit"] == pytest.approx(-bound.mean() / (d * math.log(2)), 1e-5)
    assert beta["bound"].startswith("uniform-dequantised lower bound")
    bern = eight_bit_bound(models["bernoulli"], pixels, k=5)
    assert bern["bits_per_dim_8bit"] is None and bern["bound"] == "binarised data, not comparable"
    metrics = held_out_metrics(models["categorical"], levels, k=5, seed=2, pixels=pixels)
    assert metrics["bits_per_dim_8bit"] == pytest.approx(cat["bits_per_dim_8bit"], rel=1e-6)
    assert metrics["data_space"] == "8-bit levels 0..255"


def test_comparison_rows_and_table(models) -> None:
    pixels = PIXELS[:12].reshape(12, 2, 2)
    rows = comparison_rows(models, pixels, k=3)
    assert [r.likelihood for r in rows] == ["categorical", "beta", "bernoulli"]
    assert rows[0].quantity == "bits/dim of the 8-bit images" and rows[0].bits_per_dim > 0
    assert rows[2].bits_per_dim is None and rows[2].quantity == "binarised pixels {0, 1}"
    table = format_rows(rows)
    assert "—" in table and "binarised data, not comparable" in table
    assert f"{rows[1].bits_per_dim:10.4f}" in table


def test_training_with_uniform_dequantisation() -> None:
    settings = TrainSettings(dataset="digits", limit=64, epochs=2, batch_size=32)
    settings = TrainSettings(**{**settings.to_dict(), "dequantize": "uniform"})
    data = load_run_data(settings, "continuous_bernoulli")
    assert not np.array_equal(data.x_test, prepare(data.pixels_test, "continuous_bernoulli"))
    vae = tfpvae.build_vae(likelihood="continuous_bernoulli", input_shape=(8, 8), hidden_units=(8,))
    history = fit(vae, data, settings, progress=False)
    assert len(history["loss"]) == 2 and np.all(np.isfinite(history["val_loss"]))
    with pytest.raises(ValueError, match="is for likelihoods on"):
        load_run_data(settings, "categorical")
