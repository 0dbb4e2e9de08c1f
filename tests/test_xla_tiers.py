"""When an XLA model's steps compile: after work enough (``XLA_MIN_IMAGES``), or as told."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import steps_compile_with_xla

import tfpvae
from tfpvae._backend import tf
from tfpvae.training import tuning


def _model():
    vae = tfpvae.build_vae(input_shape=(8, 8), latent_dim=2, hidden_units=(8,))
    assert vae.jit_compile  # the MLP's fused step is one XLA speeds up
    return vae


def _images(n: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(0.05, 0.95, (n, 8, 8)).astype("float32")


def test_a_short_first_fit_runs_plain_and_enough_work_switches_to_xla(monkeypatch) -> None:
    monkeypatch.setenv("TFPVAE_XLA", "auto")
    monkeypatch.setattr(tuning, "XLA_MIN_IMAGES", 1_000)
    vae = _model()
    x = _images(300)
    vae.fit(x, epochs=2, batch_size=100, verbose=0)  # 600 images asked for
    assert not steps_compile_with_xla(vae) and not steps_compile_with_xla(vae, "test")
    vae.evaluate(x, verbose=0)  # 900: still short of 1,000
    assert not steps_compile_with_xla(vae)
    vae.fit(x, epochs=1, batch_size=100, verbose=0)  # 1,200: the step compiles from here
    assert steps_compile_with_xla(vae) and steps_compile_with_xla(vae, "test")
    traces = vae.train_function.experimental_get_tracing_count()
    history = vae.fit(x, epochs=3, batch_size=100, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    # Each loop was traced once for fit's batches: neither is traced again.
    assert vae.train_function.experimental_get_tracing_count() == traces


def test_the_switch_keeps_training_where_it_was(monkeypatch) -> None:
    """The plain and the XLA loop train the same variables and count the same steps."""
    monkeypatch.setenv("TFPVAE_XLA", "auto")
    monkeypatch.setattr(tuning, "XLA_MIN_IMAGES", 500)
    vae = _model()
    x = _images(200)
    vae.fit(x, epochs=2, batch_size=50, verbose=0)  # plain: 8 steps
    before = [v.numpy() for v in vae.trainable_variables]
    vae.fit(x, epochs=1, batch_size=50, verbose=0)  # XLA: 4 more
    assert int(vae.optimizer.iterations.numpy()) == 12
    assert int(vae._train_counter.numpy()) == 4  # Keras counts the steps of each fit
    after = [v.numpy() for v in vae.trainable_variables]
    assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True))


def test_validation_during_a_short_fit_keeps_it_plain(monkeypatch) -> None:
    """fit's validation runs on its cached dataset: not a stream of unknown length.

    The images alone are a VAE's validation data, as they are its training data.
    """
    monkeypatch.setenv("TFPVAE_XLA", "auto")
    vae = _model()
    x = _images(96)
    history = vae.fit(x[:64], validation_data=x[64:], epochs=2, batch_size=32, verbose=0)
    assert len(history.history["val_loss"]) == 2
    assert not tuning.compiles_now(vae) and not steps_compile_with_xla(vae)
    # A tuple, as Keras takes arrays, works too.
    history = vae.fit(x[:64], validation_data=(x[64:],), epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(history.history["val_loss"][0])


def test_inputs_of_unknown_length_count_as_work_enough(monkeypatch) -> None:
    monkeypatch.setenv("TFPVAE_XLA", "auto")
    vae = _model()
    x = _images(64)
    vae.fit(tf.data.Dataset.from_tensor_slices(x).batch(32), epochs=1, verbose=0)
    assert steps_compile_with_xla(vae)


def test_on_batch_calls_count_their_images(monkeypatch) -> None:
    monkeypatch.setenv("TFPVAE_XLA", "auto")
    monkeypatch.setattr(tuning, "XLA_MIN_IMAGES", 100)
    vae = _model()
    x = _images(40)
    vae.train_on_batch(x)
    vae.test_on_batch(x)
    assert not tuning.compiles_now(vae)
    vae.train_on_batch(x)  # 120 images
    assert tuning.compiles_now(vae)


@pytest.mark.parametrize(
    ("value", "first_fit_compiles"), [("1", True), ("always", True), ("", False)]
)
def test_the_environment_chooses_when(monkeypatch, value, first_fit_compiles) -> None:
    monkeypatch.setenv("TFPVAE_XLA", value)
    vae = _model()
    vae.fit(_images(64), epochs=1, batch_size=32, verbose=0)
    assert steps_compile_with_xla(vae) is first_fit_compiles


def test_an_unknown_setting_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("TFPVAE_XLA", "sometimes")
    with pytest.raises(ValueError, match="TFPVAE_XLA='sometimes'"):
        _model()


def test_predict_compiles_its_step_only_with_work_enough(monkeypatch) -> None:
    """Keras's own predict loop traces its step under the model's tier."""
    from tf_keras.src.engine import training

    monkeypatch.setenv("TFPVAE_XLA", "auto")
    monkeypatch.setattr(tuning, "XLA_MIN_IMAGES", 1_000)
    vae = _model()
    x = _images(300)
    vae.fit(x, epochs=2, batch_size=100, verbose=0)  # 600 images
    jit_asked: list = []
    function = training.tf.function

    def spy(*args, **kwargs):
        jit_asked.append(kwargs.get("jit_compile"))
        return function(*args, **kwargs)

    monkeypatch.setattr(training.tf, "function", spy)
    assert vae.predict(x[:100], verbose=0).shape == (100, 8, 8)  # 700
    assert jit_asked and True not in jit_asked
    vae.predict(x, verbose=0)  # 1,000: from here the step compiles
    assert True in jit_asked
    assert vae.jit_compile  # the model's own flag is left as it was
