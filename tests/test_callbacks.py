from __future__ import annotations

import numpy as np
import pytest

import tfpvae
from tfpvae.training.callbacks import KLWarmUp, TqdmProgress


def test_warm_up_anneals_the_beta_actually_used(digits_beta) -> None:
    x = digits_beta[0][:128]
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,), use_exact_kl=True, kl_weight=0.6)
    history = vae.fit(
        x, x, epochs=6, batch_size=32, verbose=0, callbacks=[KLWarmUp(epochs=4)]
    ).history
    expected = [0.0, 0.15, 0.3, 0.45, 0.6, 0.6]
    np.testing.assert_allclose(history["beta"], expected, atol=1e-7)


@pytest.mark.slow(seconds=4)
def test_warm_up_sets_the_beta_the_objective_reads(digits_beta) -> None:
    """At fixed noise, the annealed model's loss equals that of a model built with that β."""
    x = digits_beta[0][:16]
    noise = (np.random.default_rng(0).standard_normal((1, 16, 2)).astype("float32"), None)
    small = dict(input_shape=(8, 8), hidden_units=(16,), use_exact_kl=True)
    annealed = tfpvae.build_vae(**small, kl_weight=0.6)
    warm_up = KLWarmUp(epochs=4)
    warm_up.set_model(annealed)
    for epoch, beta in enumerate([0.0, 0.15, 0.3, 0.45]):
        warm_up.on_epoch_begin(epoch)
        reference = tfpvae.build_vae(**small, kl_weight=beta)
        reference.set_weights(annealed.get_weights())
        got = annealed.objective.terms(x, noise).loss.numpy()
        want = reference.objective.terms(x, noise).loss.numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-5)
        assert epoch == 0 or not np.allclose(got, annealed.objective.terms(x, noise).distortion)


def test_warm_up_rejects_negative_epochs() -> None:
    with pytest.raises(ValueError, match="warm-up epochs must be >= 0"):
        KLWarmUp(-1)


def test_progress_bar_counts_every_batch(digits_beta, capsys, monkeypatch) -> None:
    from tfpvae.training import callbacks

    monkeypatch.setattr(callbacks, "is_terminal", lambda stream: True)
    x = digits_beta[0][:100]
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,))
    bar = TqdmProgress(epochs=2, steps_per_epoch=4)
    vae.fit(x, x, epochs=2, batch_size=25, verbose=0, callbacks=[bar])
    assert bar.bar.n == 8
    assert "distortion" in capsys.readouterr().err


def test_progress_outside_a_terminal_is_one_line_per_epoch(capsys) -> None:
    bar = TqdmProgress(epochs=2, steps_per_epoch=4, desc="training")
    bar.on_train_begin()  # capsys's stderr is no terminal
    for epoch in range(2):  # the calls Keras makes, without training a model
        bar.on_epoch_begin(epoch)
        for batch in range(4):
            bar.on_train_batch_end(batch, {"loss": 1.0})
        bar.on_epoch_end(epoch, {"loss": 1.0 + epoch, "rate": 0.5, "val_loss": 1.25})
    bar.on_train_end()
    err = capsys.readouterr().err
    assert "\r" not in err and bar.bar is None
    assert err.splitlines() == [
        "training: epoch 1/2: loss 1.00, rate 0.50, val_loss 1.25",
        "training: epoch 2/2: loss 2.00, rate 0.50, val_loss 1.25",
    ]


@pytest.mark.parametrize("widgets", [False, True])
def test_progress_in_a_notebook_is_one_widget_or_nothing(capsys, monkeypatch, widgets) -> None:
    from tfpvae.training import callbacks

    drawn = []

    class FakeWidgetBar:
        def __init__(self, **kwargs) -> None:
            drawn.append(kwargs)
            self.n = 0

        def update(self, n: int) -> None:
            self.n += n

        def set_postfix(self, **_) -> None:
            pass

        def close(self) -> None:
            drawn.append("closed")

    monkeypatch.setattr(callbacks, "in_notebook", lambda: True)
    monkeypatch.setattr(callbacks, "notebook_bar_available", lambda: widgets)
    monkeypatch.setattr(callbacks, "notebook_tqdm", FakeWidgetBar)
    bar = TqdmProgress(epochs=2, steps_per_epoch=4)
    bar.on_train_begin()
    for epoch in range(2):  # the calls Keras makes, without training a model
        bar.on_epoch_begin(epoch)
        for batch in range(4):
            bar.on_train_batch_end(batch, {"loss": 1.0, "rate": 0.5})
        bar.on_epoch_end(epoch, {"loss": 1.0, "val_loss": 1.1})
    bar.on_train_end()
    assert capsys.readouterr().err == ""  # never a text bar in a notebook
    if widgets:
        assert bar.bar.n == 8 and drawn == [{"total": 8, "initial": 0, "unit": "batch"}, "closed"]
    else:
        assert bar.bar is None and drawn == []


def test_notebook_detection_is_false_outside_a_kernel() -> None:
    from tfpvae.training.callbacks import in_notebook, notebook_bar_available

    assert not in_notebook() and not notebook_bar_available()
