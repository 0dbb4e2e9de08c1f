"""Bad input is refused before any step runs, with a message that names the fix."""

from __future__ import annotations

import numpy as np
import pytest

import tfpvae
from tfpvae.evaluation.bounds import elbo, iwae_bound

GOOD = np.full((4, 8, 8), 0.5, "float32")


@pytest.fixture(scope="module")
def vae():
    return tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,))


CASES = [
    (np.zeros((0, 8, 8), "float32"), "x is empty"),
    (np.full((4, 64), 0.5, "float32"), r"shape \(4, 64\).*input_shape=\(64,\)"),
    (np.full((4, 28, 28), 0.5, "float32"), r"takes images of shape \(8, 8\)"),
    (np.full((4, 8, 8), 128, "uint8"), r"raw uint8 pixels; convert them with tfpvae\.prepare"),
    (np.where(np.eye(8, dtype=bool), np.nan, 0.5)[None].astype("float32"), "8 non-finite"),
    (np.where(np.eye(8, dtype=bool), -np.inf, 0.5)[None].astype("float32"), "8 non-finite"),
    (
        np.where(np.arange(2)[:, None, None] == 0, np.inf, np.full((2, 8, 8), 0.5, "float32")),
        "64 non-finite",
    ),
    (np.full((4, 8, 8), 1.0, "float32"), r"outside the beta likelihood's support \(0, 1\)"),
    (np.full((4, 8, 8), -0.2, "float32"), r"use tfpvae\.prepare"),
]


@pytest.mark.parametrize(("bad", "message"), CASES)
def test_fit_evaluate_and_bounds_refuse_bad_images(vae, bad, message) -> None:
    weights = [w.copy() for w in vae.get_weights()]
    with pytest.raises(ValueError, match=message):
        vae.fit(bad, bad, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=message):
        vae.evaluate(bad, bad, verbose=0)
    with pytest.raises(ValueError, match=message):
        elbo(vae, bad)
    with pytest.raises(ValueError, match=message):
        iwae_bound(vae, bad, k=2)
    for before, after in zip(weights, vae.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)  # nothing trained


def test_bad_validation_data_is_refused(vae) -> None:
    with pytest.raises(ValueError, match="validation_data has values"):
        vae.fit(GOOD, GOOD, epochs=1, verbose=0, validation_data=(GOOD * 3, GOOD * 3))


def test_bernoulli_accepts_binary_and_probabilities_but_not_beyond() -> None:
    model = tfpvae.build_vae(likelihood="bernoulli", input_shape=(8, 8), hidden_units=(8,))
    model.evaluate(np.round(GOOD), np.round(GOOD), verbose=0)
    model.evaluate(GOOD * 0.3, GOOD * 0.3, verbose=0)
    with pytest.raises(ValueError, match=r"support \{0, 1\}"):
        model.evaluate(GOOD * 3, GOOD * 3, verbose=0)
