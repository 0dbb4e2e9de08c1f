"""Outlier scores, their AUROC, and ``tfpvae evaluate --outliers``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import HAS_MNIST_SAMPLE, SHARED_CACHE

import tfpvae
from tfpvae.evaluation.outliers import (
    auroc,
    code_length_bits,
    outlier_report,
    outlier_scores,
    png_bits,
)
from tfpvae.interfaces.cli import main


def test_auroc_equals_the_hand_count_of_pairs() -> None:
    inliers, outliers = np.array([0.1, 0.4, 0.35]), np.array([0.8, 0.4])
    # 0.8 beats all three inliers (3); 0.4 beats 0.1 and 0.35 and ties 0.4 (2.5): 5.5 of 6 pairs
    assert auroc(inliers, outliers) == pytest.approx(5.5 / 6, abs=1e-12)
    assert auroc(outliers, inliers) == pytest.approx(0.5 / 6, abs=1e-12)
    assert auroc([1.0, 2.0], [3.0, 4.0]) == 1.0 and auroc([3.0, 4.0], [1.0, 2.0]) == 0.0
    assert auroc([2.0, 2.0, 2.0], [2.0]) == 0.5


def test_auroc_equals_the_pairwise_probability_on_tied_random_scores() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 20, 300).astype(float), rng.integers(3, 25, 200).astype(float)
    pairs = (b[:, None] > a[None, :]).mean() + 0.5 * (b[:, None] == a[None, :]).mean()
    assert auroc(a, b) == pytest.approx(pairs, abs=1e-12)
    with pytest.raises(ValueError, match="at least one"):
        auroc([], [1.0])
    with pytest.raises(ValueError, match="non-finite"):
        auroc([np.nan], [1.0])


def test_png_length_grows_with_what_there_is_to_say() -> None:
    rng = np.random.default_rng(0)
    flat = np.full((1, 28, 28), 17, np.uint8)
    stripes = np.tile((np.arange(28) % 2 * 255).astype(np.uint8), (1, 28, 1))
    noise = rng.integers(0, 256, (1, 28, 28), dtype=np.uint8)
    bits = png_bits(np.concatenate([flat, stripes, noise]))
    assert bits[0] < bits[1] < bits[2]
    assert bits[2] >= 8 * 28 * 28  # noise does not compress below its 8 bits a pixel
    assert np.all(bits % 8 == 0)
    np.testing.assert_array_equal(png_bits(noise[..., None]), bits[2:])  # a channel axis
    with pytest.raises(ValueError, match="8-bit images"):
        png_bits(noise / 255.0)


@pytest.fixture(scope="module")
def digits_model(digits):
    (x_train, _), (x_test, _) = digits
    tfpvae.tfk.utils.set_random_seed(0)
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,), latent_dim=2)
    x = tfpvae.prepare(x_train[:200], "beta")
    vae.fit(x, x, epochs=2, batch_size=50, verbose=0)
    return vae, x, x_test[:40]


def test_scores_are_the_bound_and_its_corrections_in_bits(digits_model) -> None:
    vae, x_train, pixels = digits_model
    x = tfpvae.prepare(pixels, "beta")
    scores = outlier_scores(vae, x, pixels, k=4, seed=3)
    assert set(scores) == {"neg_bound", "complexity"}  # typicality needs reference images
    bound = tfpvae.iwae_bound(vae, x, k=4, seed=3)
    np.testing.assert_allclose(scores["neg_bound"], -bound, rtol=1e-6)
    # Beta density on pixels / 256: 8 bits a pixel more for the 8-bit levels (64 pixels)
    bits = -bound / math.log(2.0) + 64 * 8
    np.testing.assert_allclose(scores["complexity"], bits - png_bits(pixels), rtol=1e-5)
    with_reference = outlier_scores(vae, x, pixels, reference=x_train[:50], k=4, seed=3)
    reference_bits = -tfpvae.iwae_bound(vae, x_train[:50], k=4, seed=4) / math.log(2.0) + 512
    np.testing.assert_allclose(
        with_reference["typicality"], np.abs(bits - reference_bits.mean()), atol=1e-3
    )  # bits in float32: absolute, the differences of numbers of about 500 bits
    with pytest.raises(ValueError, match="same images"):
        outlier_scores(vae, x, pixels[:5])


def test_report_finds_noise_images_among_digits(digits_model) -> None:
    vae, x_train, pixels = digits_model
    noise = np.random.default_rng(1).integers(0, 256, pixels.shape, dtype=np.uint8)
    report = outlier_report(
        vae,
        (tfpvae.prepare(pixels, "beta"), pixels),
        (tfpvae.prepare(noise, "beta"), noise),
        reference=x_train[:50],
        k=4,
    )
    assert set(report["auroc"]) == {"neg_bound", "complexity", "typicality"}
    assert report["auroc"]["neg_bound"] > 0.95  # pure noise is far less likely than digits
    assert report["n_inliers"] == report["n_outliers"] == 40 and report["k"] == 4
    with pytest.raises(ValueError, match="same shape"):
        outlier_report(vae, (tfpvae.prepare(pixels, "beta"), pixels), (noise[:, :4], noise[:, :4]))


@pytest.mark.slow(seconds=15)
def test_evaluate_reports_outlier_aurocs_on_screen_and_in_metrics(
    tmp_path, capsys, monkeypatch
) -> None:
    out = tmp_path / "run"
    train = ["train", "--epochs", "1", "--limit", "100", "--k", "3", "--latent-dim", "3"]
    assert main([*train, "--no-figures", "--quiet", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["active_units"] <= 3 and len(metrics["kl_per_dimension"]) == 3
    capsys.readouterr()
    assert main(["evaluate", str(out), "--k", "3", "--outliers", "digits"]) == 0
    printed = capsys.readouterr().out
    assert "outliers: digits test images (100) against 100 of the model's own" in printed
    assert "latent use: active units" in printed
    report = json.loads((out / "metrics.json").read_text())["outliers"]
    # the same images as inliers and outliers, with the same draws: every score ties
    assert report["auroc"] == {"neg_bound": 0.5, "complexity": 0.5, "typicality": 0.5}
    for name in report["auroc"]:
        assert f"  {name}" in printed
    if HAS_MNIST_SAMPLE:  # 28 × 28 images against the 8 × 8 model: refused in one line
        monkeypatch.setenv("TFPVAE_KERAS_CACHE", str(SHARED_CACHE))
        assert main(["evaluate", str(out), "--k", "2", "--outliers", "mnist"]) == 2
        assert "same shape" in capsys.readouterr().err


def test_a_binarised_model_gets_only_the_bound_score() -> None:
    """Bernoulli bounds are bits of binarised pixels, not of the 8-bit images: the
    scores in bits of the 8-bit image are left out, and code lengths refused."""
    (x, _), _ = tfpvae.load_dataset("digits")
    pixels = x[:20]
    vae = tfpvae.build_vae(likelihood="bernoulli", input_shape=(8, 8), hidden_units=(16,))
    prepared = tfpvae.prepare(pixels, likelihood="bernoulli")
    scores = outlier_scores(vae, prepared, pixels, reference=prepared, k=5)
    assert set(scores) == {"neg_bound"}
    with pytest.raises(ValueError, match="neg_bound"):
        code_length_bits(vae, prepared, k=5)
