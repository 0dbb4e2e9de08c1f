from __future__ import annotations

import numpy as np
import pytest
from conftest import HAS_FASHION_SAMPLE, SHARED_CACHE

from tfpvae.interfaces import tutorial
from tfpvae.io.datasets import CACHE_ENV


@pytest.mark.parametrize(
    ("env", "smoke"),
    [({}, False), ({"CI": "true"}, True), ({"TFPVAE_SMOKE": "1"}, True), ({"CI": "0"}, False)],
)
def test_smoke_mode_follows_the_environment(monkeypatch, env, smoke) -> None:
    for key in tutorial.SMOKE_ENV:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert tutorial.smoke_mode() is smoke
    assert tutorial.budget().smoke is smoke
    assert tutorial.budget().epochs < 5 if smoke else tutorial.budget().epochs >= 20
    assert tutorial.study_datasets() == (("mnist",) if smoke else ("mnist", "fashion_mnist"))


def test_falls_back_to_digits_and_says_so(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("CI", "1")
    monkeypatch.setattr(
        tutorial,
        "load_run_data",
        _failing_for("fashion_mnist", tutorial.load_run_data),
    )
    data, name = tutorial.tutorial_data("beta")
    assert name == "digits" and data.x_train.shape[1:] == (8, 8)
    assert len(data.x_train) == 256  # the smoke slice
    out = capsys.readouterr().out
    assert "Falling back to the bundled 8×8 digits" in out and CACHE_ENV in out


def _failing_for(dataset, real):
    def load(settings, likelihood):
        if settings.dataset == dataset:
            raise tutorial.DatasetUnavailableError("no network (offline)")
        return real(settings, likelihood)

    return load


@pytest.mark.skipif(not HAS_FASHION_SAMPLE, reason="Fashion-MNIST sample absent")
def test_uses_fashion_mnist_through_the_cache(monkeypatch, capsys) -> None:
    monkeypatch.setenv("CI", "1")
    monkeypatch.setenv(CACHE_ENV, str(SHARED_CACHE))
    data, name = tutorial.tutorial_data("beta")
    assert name == "fashion_mnist" and data.x_train.shape == (256, 28, 28)
    assert "sample" in tutorial.dataset_note(name)


def test_train_returns_a_history(monkeypatch) -> None:
    monkeypatch.setenv("CI", "1")
    data, _ = tutorial.tutorial_data("beta", prefer="digits")
    vae, history = tutorial.train(data, epochs=2, hidden_units=(16,), progress=False)
    assert len(history["val_loss"]) == 2 and np.isfinite(history["loss"]).all()
    assert vae.config.input_shape == (8, 8)
