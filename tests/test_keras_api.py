"""The VAE honours the tf_keras Model contract, on a fresh model and after training."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import count_calls

import tfpvae
from tfpvae._backend import tf, tfk

SMALL = dict(input_shape=(8, 8), hidden_units=(16,))


@pytest.fixture
def x(digits_beta) -> np.ndarray:
    return digits_beta[0][:96]


def _changed(before: list[np.ndarray], after: list[np.ndarray]) -> bool:
    return any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.mark.slow(seconds=6)
@pytest.mark.parametrize("trained", [False, True], ids=["fresh", "trained"])
def test_batch_calls_predict_and_evaluate(x, trained) -> None:
    vae = tfpvae.build_vae(**SMALL)
    if trained:
        vae.fit(x, epochs=1, batch_size=32, verbose=0)
    step = int(vae.optimizer.iterations.numpy())
    before = vae.get_weights()
    logs = vae.train_on_batch(x[:32], return_dict=True)
    assert set(logs) == {"loss", "rate", "distortion"} and np.isfinite(logs["loss"])
    assert int(vae.optimizer.iterations.numpy()) == step + 1  # exactly one step
    assert _changed(before, vae.get_weights())
    values = vae.train_on_batch(x[:32], x[:32])  # y may be the images themselves
    assert len(values) == 3 and int(vae.optimizer.iterations.numpy()) == step + 2
    test_logs = vae.test_on_batch(x[:32], return_dict=True)
    assert test_logs["rate"] > 0 and np.isfinite(test_logs["distortion"])
    assert vae.predict_on_batch(x[:5]).shape == (5, 8, 8)
    predictions = vae.predict(x, batch_size=32, verbose=0)
    assert predictions.shape == x.shape
    assert np.all((predictions > 0) & (predictions < 1))  # Beta means
    result = vae.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    assert set(result) == {"loss", "rate", "distortion"}
    # fit still groups its steps after the single-batch calls.
    vae.fit(x, epochs=1, batch_size=32, verbose=0)
    assert int(vae.optimizer.iterations.numpy()) == step + 2 + 3


def test_fit_arguments(x) -> None:
    vae = tfpvae.build_vae(**SMALL)
    history = vae.fit(x, epochs=2, batch_size=16, validation_split=0.25, verbose=0)
    assert {"val_loss", "val_rate", "val_distortion"} <= set(history.history)
    assert int(vae.optimizer.iterations.numpy()) == 2 * 5  # 72 training images, 5 batches
    history = vae.fit(
        x, x, epochs=3, initial_epoch=1, batch_size=32, validation_data=(x[:32], x[:32]),
        shuffle=False, verbose=0,
    )  # fmt: skip
    assert history.epoch == [1, 2]
    before = int(vae.optimizer.iterations.numpy())
    vae.fit(x, epochs=2, steps_per_epoch=2, batch_size=16, verbose=0)
    assert int(vae.optimizer.iterations.numpy()) == before + 4


def test_fit_refusals(x) -> None:
    vae = tfpvae.build_vae(**SMALL)
    with pytest.raises(ValueError, match="class_weight does not apply"):
        vae.fit(x, epochs=1, class_weight={0: 1.0}, verbose=0)
    with pytest.raises(ValueError, match="one weight per image"):
        vae.fit(x, epochs=1, sample_weight=np.ones(3), verbose=0)
    with pytest.raises(ValueError, match="finite and non-negative"):
        vae.fit(x, epochs=1, sample_weight=-np.ones(len(x)), verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        vae.fit(x, epochs=1, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="reconstructs its input"):
        vae.fit(x, x[::-1], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="compile it without loss"):
        vae.compile(optimizer="adam", loss="mse")


def test_weight_two_equals_a_duplicated_image_at_fixed_noise(x) -> None:
    vae = tfpvae.build_vae(**SMALL)
    images, weights = x[:6], np.array([2.0, 1.0, 1.0, 3.0, 1.0, 0.0], "float32")
    eps = np.random.default_rng(0).standard_normal((1, 6, 2)).astype("float32")
    repeats = np.repeat(np.arange(6), weights.astype(int))  # image i appears w_i times
    weighted = vae.compute_gradients(images, (eps, None), weights)
    duplicated = vae.compute_gradients(images[repeats], (eps[:, repeats], None))
    np.testing.assert_allclose(weighted[1].numpy(), duplicated[1].numpy(), rtol=1e-6)
    for a, b in zip(weighted[2], duplicated[2], strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
    # And it is not the unweighted loss: the weights reach the objective.
    unweighted = vae.compute_gradients(images, (eps, None))[1].numpy()
    assert abs(unweighted - weighted[1].numpy()) > 1e-3 * abs(unweighted)


@pytest.mark.slow(seconds=12)
def test_weighted_evaluate_equals_duplicated_images_within_4_se(x) -> None:
    # Untrained, the exp map's Betas are near Beta(1, 1), under which every image scores
    # about the same; softplus's are not, so that the weights are visible.
    vae = tfpvae.build_vae(**SMALL, use_exact_kl=True, concentration="softplus")
    images, weights = x[:8], np.array([2, 1, 1, 3, 1, 2, 1, 1], "float32")
    repeats = np.repeat(np.arange(8), weights.astype(int))
    tfk.utils.set_random_seed(5)
    runs = 60
    weighted = [
        vae.evaluate(images, sample_weight=weights, batch_size=8, verbose=0)[0] for _ in range(runs)
    ]
    duplicated = [vae.evaluate(images[repeats], batch_size=12, verbose=0)[0] for _ in range(runs)]
    se = np.sqrt((np.var(weighted, ddof=1) + np.var(duplicated, ddof=1)) / runs)
    assert abs(np.mean(weighted) - np.mean(duplicated)) < 4 * se
    unweighted = [vae.evaluate(images, batch_size=8, verbose=0)[0] for _ in range(runs)]
    assert abs(np.mean(unweighted) - np.mean(duplicated)) > 4 * se  # the check can see weights
    one_batch = vae.test_on_batch(images, sample_weight=weights, return_dict=True)["loss"]
    assert abs(one_batch - np.mean(duplicated)) < 4 * np.std(duplicated, ddof=1)


def test_fit_with_sample_weight_trains_only_on_weighted_images(x) -> None:
    vae = tfpvae.build_vae(**SMALL)
    weights = np.zeros(len(x), "float32")
    before = vae.get_weights()
    history = vae.fit(x, epochs=1, sample_weight=weights, batch_size=32, verbose=0).history
    assert history["loss"] == [0.0]  # every image weighs nothing: an empty mean
    assert vae.training_fault is None  # no 0/0 in the gradient
    assert not _changed(before, vae.get_weights())
    weights[:10] = 1.0
    assert np.isfinite(vae.fit(x, sample_weight=weights, verbose=0).history["loss"][0])


def test_standard_callbacks(x, tmp_path) -> None:
    vae = tfpvae.build_vae(**SMALL)
    best = tmp_path / "best.weights.h5"
    callbacks = [
        tfk.callbacks.EarlyStopping(patience=1, restore_best_weights=True, min_delta=1e9),
        tfk.callbacks.ReduceLROnPlateau(patience=0, factor=0.5, min_delta=1e9),
        tfk.callbacks.ModelCheckpoint(str(best), save_weights_only=True),
        tfk.callbacks.CSVLogger(str(tmp_path / "log.csv")),
        tfk.callbacks.TerminateOnNaN(),
    ]
    first = {}

    class Remember(tfk.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                first["weights"] = self.model.get_weights()

    history = vae.fit(
        x, epochs=5, batch_size=32, validation_data=(x, x), callbacks=[*callbacks, Remember()],
        verbose=0,
    )  # fmt: skip
    # min_delta=1e9: no epoch improves on the first, so training stops after epoch 2
    # and the best (first) weights come back; the plateau halves the rate once.
    assert history.epoch == [0, 1]
    assert not _changed(first["weights"], vae.get_weights())
    assert float(vae.optimizer.learning_rate.numpy()) == pytest.approx(5e-4)
    assert best.is_file()
    header = (tmp_path / "log.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "loss", "rate", "distortion", "val_loss"} <= set(header)


def test_terminate_on_nan_stops_a_run_with_non_finite_input() -> None:
    bad = np.full((32, 8, 8), np.nan, "float32")
    data = tf.data.Dataset.from_tensor_slices(bad).batch(16).map(lambda b: (b, b))
    vae = tfpvae.build_vae(**SMALL)
    with pytest.warns(RuntimeWarning, match="training stopped"):
        history = vae.fit(data, epochs=3, callbacks=[tfk.callbacks.TerminateOnNaN()], verbose=0)
    assert len(history.epoch) == 1


@pytest.mark.slow(seconds=4)
def test_backup_and_restore_resumes_an_interrupted_fit(x, tmp_path) -> None:
    class Interrupt(tfk.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    vae = tfpvae.build_vae(**SMALL)
    backup = tfk.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(KeyboardInterrupt):
        vae.fit(x, epochs=4, batch_size=32, callbacks=[backup, Interrupt()], verbose=0)
    resumed = tfpvae.build_vae(**SMALL)
    history = resumed.fit(x, epochs=4, batch_size=32, callbacks=[backup], verbose=0)
    assert history.epoch == [2, 3]  # epochs 0 and 1 were backed up
    assert int(resumed.optimizer.iterations.numpy()) == 4 * 3


def test_summary_names_the_halves() -> None:
    lines: list[str] = []
    tfpvae.build_vae(**SMALL).summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "encoder" in text and "decoder" in text


@pytest.mark.slow(seconds=4)
def test_epoch_logs_are_the_trackers_results_without_reading_them_again(x, monkeypatch) -> None:
    vae = tfpvae.build_vae(**SMALL, use_exact_kl=True)
    reads = count_calls(monkeypatch, tfpvae.VAE, "get_metrics_result")
    history = vae.fit(x, epochs=2, batch_size=32, verbose=0)
    assert history.history["loss"][-1] == pytest.approx(float(vae.loss_tracker.result()), rel=0)
    result = vae.evaluate(x[:40], batch_size=16, verbose=0, return_dict=True)
    trackers = {m.name: float(m.result()) for m in vae.metrics}
    assert result == pytest.approx(trackers, rel=0)
    history = vae.fit(x, epochs=1, batch_size=32, validation_data=x[:40], verbose=0)
    # The exact KL of the same 40 images, now evaluated with the weights fit ended on.
    rate = vae.evaluate(x[:40], batch_size=16, verbose=0, return_dict=True)["rate"]
    assert history.history["val_rate"][-1] == pytest.approx(rate, rel=1e-6)
    assert history.history["val_rate"][-1] != pytest.approx(result["rate"], rel=1e-6)
    assert reads[0] == 0  # Keras's re-read of every metric (three epochs, four evaluations)


@pytest.mark.slow(seconds=4)
def test_a_subclass_with_its_own_train_step_gets_the_trackers_read_again(x) -> None:
    parts = tfpvae.build_vae(**SMALL)

    class ZeroLogs(tfpvae.VAE):
        def train_step(self, data):
            logs = super().train_step(data)
            return {name: tf.zeros_like(value) for name, value in logs.items()}

    vae = ZeroLogs(parts.encoder, parts.decoder)
    vae.compile(optimizer="adam")
    history = vae.fit(x, epochs=1, batch_size=32, verbose=0)
    loss = history.history["loss"][0]
    assert loss != 0.0 and loss == pytest.approx(float(vae.loss_tracker.result()), rel=0)


def test_reset_metrics_zeroes_every_tracker_and_defers_to_other_metrics(x, monkeypatch) -> None:
    vae = tfpvae.build_vae(**SMALL)
    vae.evaluate(x[:32], verbose=0)
    extra = tfk.metrics.MeanSquaredError()
    extra.update_state([1.0], [3.0])
    trackers = tfpvae.VAE.metrics
    assert float(vae.loss_tracker.count.numpy()) == 32
    with monkeypatch.context() as patch:
        patch.setattr(tfpvae.VAE, "metrics", property(lambda self: [*trackers.fget(self), extra]))
        vae.reset_metrics()
    for tracker in vae.metrics:
        assert [float(v.numpy()) for v in tracker.variables] == [0.0, 0.0]
    assert float(extra.result()) == 0.0  # its own reset_state ran
