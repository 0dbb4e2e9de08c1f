"""A non-finite step stops training, restores the last good weights and says where."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import count_calls

import tfpvae
from tfpvae._backend import tf
from tfpvae.interfaces.cli import main
from tfpvae.interfaces.run import read_history
from tfpvae.training.checkpoints import Checkpoints
from tfpvae.training.faults import FaultMonitor, _all_finite

BATCH, BAD_BATCH = 16, 5


def _images(n: int = 160) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(0.05, 0.95, size=(n, 8, 8)).astype("float32")


@pytest.mark.xla  # the monitor runs inside the compiled step
def test_fault_is_located_to_the_batch_and_weights_are_restored() -> None:
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,))
    x = _images()
    vae.fit(x, epochs=1, batch_size=BATCH, verbose=0)  # one good epoch
    good = [v.numpy().copy() for v in vae.trainable_variables]
    poisoned = x.copy()
    poisoned[BAD_BATCH * BATCH + 3, 2, 2] = np.nan  # a dataset skips array validation
    data = tf.data.Dataset.from_tensor_slices(poisoned).batch(BATCH)
    with pytest.warns(RuntimeWarning, match=f"epoch 2, batch {BAD_BATCH + 1} of 10"):
        history = vae.fit(data, epochs=3, initial_epoch=1, verbose=0)
    fault = vae.training_fault
    assert (fault.epoch, fault.batch, fault.steps_per_epoch, fault.restored_epoch) == (
        1, BAD_BATCH, 10, 1
    )  # fmt: skip
    assert math.isnan(fault.loss) and fault.learning_rate == pytest.approx(1e-3)
    assert len(history.history["loss"]) == 1  # the run stopped in the faulty epoch
    for before, after in zip(good, vae.trainable_variables, strict=True):
        np.testing.assert_array_equal(before, after.numpy())
    vae.fit(x, epochs=1, batch_size=BATCH, verbose=0)  # the next fit starts clean
    assert vae.training_fault is None


def test_fault_in_a_later_epoch_restores_the_end_of_the_one_before() -> None:
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,))
    clean = _images()
    poisoned = clean.copy()
    poisoned[BAD_BATCH * BATCH, 0, 0] = np.inf
    # 20 batches read 10 per epoch from one iterator: epoch 0 is clean, epoch 1 is not.
    data = tf.data.Dataset.from_tensor_slices(np.concatenate([clean, poisoned])).batch(BATCH)
    after_epoch: dict[int, list[np.ndarray]] = {}
    keep = tfpvae.tfk.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: after_epoch.setdefault(
            e, [v.numpy().copy() for v in vae.trainable_variables]
        )
    )
    with pytest.warns(RuntimeWarning, match=f"epoch 2, batch {BAD_BATCH + 1} of 10"):
        vae.fit(data, epochs=3, steps_per_epoch=10, callbacks=[keep], verbose=0)
    assert vae.training_fault.restored_epoch == 1
    for expected, got in zip(after_epoch[0], vae.trainable_variables, strict=True):
        np.testing.assert_array_equal(expected, got.numpy())


def test_fault_in_the_last_batch_of_an_epoch_is_not_kept_as_good(monkeypatch) -> None:
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,))
    clean = _images()
    poisoned = clean.copy()
    poisoned[-1, 4, 4] = np.nan  # the last batch of the second epoch
    data = tf.data.Dataset.from_tensor_slices(np.concatenate([clean, poisoned])).batch(BATCH)
    reads = count_calls(monkeypatch, FaultMonitor, "fault_step")
    vae.fit(clean, epochs=2, batch_size=BATCH, verbose=0)
    assert reads[0] == 2  # one read per group of steps (an epoch here), none more at its end
    after_epoch: list[list[np.ndarray]] = []
    keep = tfpvae.tfk.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: after_epoch.append(
            [v.numpy() for v in vae.trainable_variables]
        )
    )
    with pytest.warns(RuntimeWarning, match="epoch 2, batch 10 of 10"):
        vae.fit(data, epochs=3, steps_per_epoch=10, callbacks=[keep], verbose=0)
    assert vae.training_fault.restored_epoch == 1
    for expected, got in zip(after_epoch[0], vae.trainable_variables, strict=True):
        np.testing.assert_array_equal(expected, got.numpy())


@pytest.mark.xla
def test_overflowing_gradient_is_a_fault_even_with_a_finite_loss() -> None:
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,), learning_rate=1e30)
    with pytest.warns(RuntimeWarning, match="training stopped"):
        vae.fit(_images(), epochs=3, batch_size=BATCH, verbose=0)
    assert vae.training_fault is not None and vae.training_fault.epoch == 0
    assert all(np.isfinite(v.numpy()).all() for v in vae.trainable_variables)


@pytest.mark.slow(seconds=95)
def test_cli_fault_keeps_the_last_good_checkpoint_and_history(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    common = ["--limit", "200", "--hidden-units", "16", "--k", "3", "--out", str(out), "--quiet",
              "--no-figures"]  # fmt: skip
    assert main(["train", "--epochs", "2", *common]) == 0
    capsys.readouterr()
    saved_model = tfpvae.load(out)

    # A huge step size drives epoch 3 into overflow.
    code = main(["train", "--resume", "--epochs", "4", "--learning-rate", "1e12", *common])
    err = capsys.readouterr().err.strip()
    assert code == 3 and len(err.splitlines()) == 1
    assert "non-finite step" in err and "at epoch 3, batch" in err
    assert "keeps epoch 2: continue with --resume" in err
    history = read_history(out)
    assert history["epoch"] == [0, 1, 2]
    assert all(math.isfinite(v) for v in history["loss"][:2]) and not math.isfinite(
        history["loss"][2]
    )
    # The checkpoint holds the weights of the last good epoch: those the finished run saved.
    probe = tfpvae.build_vae_from_config(saved_model.config)
    assert Checkpoints(probe, out / "checkpoints").restore() == 2
    for a, b in zip(saved_model.trainable_variables, probe.trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    # Resuming with a sane step size finishes the run with a gap-free history.
    assert main(["train", "--resume", "--epochs", "4", "--learning-rate", "1e-3", *common]) == 0
    history = read_history(out)
    assert history["epoch"] == [0, 1, 2, 3]
    assert all(math.isfinite(v) for v in history["loss"])
    assert json.loads((out / "config.json").read_text())["model"]["learning_rate"] == 1e-3


@pytest.mark.parametrize(("concentration", "ceiling"), [("exp", 3e3), ("softplus", 1e6)])
def test_beta_concentrations_stay_bounded_for_extreme_parameters(concentration, ceiling) -> None:
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(4,), concentration=concentration)
    last = vae.decoder.layers[-2]
    kernel, bias = last.get_weights()
    last.set_weights([kernel * 0.0, np.full_like(bias, 1e30)])  # softplus(1e30) = 1e30
    dist = vae.decoder(np.zeros((2, 2), "float32"))
    alpha = dist.distribution.concentration1.numpy()
    beta = dist.distribution.concentration0.numpy()
    assert np.isfinite(alpha).all() and alpha.max() <= ceiling and beta.max() <= ceiling
    assert np.isfinite(dist.log_prob(np.full((2, 8, 8), 0.5, "float32")).numpy()).all()


@pytest.mark.parametrize("shape", [(), (7,), (5, 3), (3, 3, 2, 4)])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_all_finite_sees_one_bad_entry_anywhere(shape, bad) -> None:
    rng = np.random.default_rng(1)
    grads = [tf.constant(rng.normal(size=s).astype("float32")) for s in [(4, 6), shape, (6,)]]
    assert bool(_all_finite(tf.constant(1.5), grads))
    assert bool(tf.function(_all_finite, jit_compile=True)(tf.constant(1.5), grads))
    values = rng.normal(size=shape).astype("float32")
    values[np.unravel_index(values.size // 2, shape) if shape else ()] = bad
    poisoned = [grads[0], tf.constant(values), grads[2]]
    assert not bool(_all_finite(tf.constant(1.5), poisoned))
    assert not bool(tf.function(_all_finite, jit_compile=True)(tf.constant(1.5), poisoned))
    assert not bool(_all_finite(tf.constant(bad, tf.float32), grads))


def test_all_finite_sees_opposite_infinities_that_cancel() -> None:
    grads = [tf.constant([[np.inf, 1.0], [2.0, -np.inf]], tf.float32)]
    assert not bool(_all_finite(tf.constant(0.0), grads))
