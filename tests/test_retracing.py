"""A second fit or evaluate does not retrace; the padded last batch changes no number."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import tfpvae
from tfpvae._backend import tf
from tfpvae.objectives import Terms
from tfpvae.training.fit import kept_stream
from tfpvae.training.pipeline import array_dataset
from tfpvae.training.steps import batch_loss


def _traces(vae) -> dict[str, int | None]:
    """Traces of Keras's functions and of the model's steps (None: never made)."""
    counts: dict[str, int | None] = {}
    for kind in ("train", "test"):
        function = getattr(vae, f"{kind}_function")
        counts[f"{kind}_function"] = function and function.experimental_get_tracing_count()
        step = vae.__dict__.get(f"{kind}_step")
        counts[f"{kind}_step"] = step and step.tracing_count()
    return counts


@pytest.mark.xla
def test_fit_fit_evaluate_evaluate_trace_each_function_once(digits_beta) -> None:
    x = digits_beta[0][:70]  # batches of 32, 32 and a last one of 6
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,))
    assert vae.jit_compile  # the case where a new batch shape means a new XLA compile
    vae.fit(x, batch_size=32, epochs=2, verbose=0)
    after_fit = _traces(vae)
    assert after_fit == {"train_function": 1, "train_step": 1, "test_function": None,
                         "test_step": None}  # fmt: skip
    vae.fit(x, batch_size=32, epochs=1, verbose=0)
    assert _traces(vae) == after_fit
    first = vae.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    second = vae.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    assert _traces(vae) == {"train_function": 1, "train_step": 1, "test_function": 1,
                            "test_step": 1}  # fmt: skip
    assert np.isfinite(first["loss"]) and np.isfinite(second["loss"])
    # Every training batch has one static shape, so XLA compiles the step once.
    images = kept_stream(vae).start(0, 0).element_spec[0]
    assert images.shape.as_list() == [32, 8, 8]


def test_padded_epoch_serves_each_image_once_and_the_filler_at_weight_0() -> None:
    x = np.arange(70 * 4, dtype=np.float32).reshape(70, 2, 2)
    weights = np.linspace(0.5, 2.0, 70).astype(np.float32)
    batches = list(array_dataset(x, 32, True, seed=3, sample_weight=weights, pad_remainder=True))
    assert [b[0].shape[0] for b in batches] == [32, 32, 32]
    images = np.concatenate([b[0].numpy() for b in batches])  # [96, 2, 2]
    w = np.concatenate([b[2].numpy() for b in batches])
    kept = w > 0
    assert kept.sum() == 70 and np.all(w[-26:] == 0.0)
    order = np.argsort(images[kept][:, 0, 0])
    np.testing.assert_array_equal(images[kept][order], x)  # each image exactly once
    np.testing.assert_array_equal(w[kept][order], weights)  # with its own weight


def test_weight_0_filler_leaves_the_loss_unchanged() -> None:
    rng = np.random.default_rng(0)
    loss = rng.normal(100.0, 10.0, size=6).astype(np.float32)
    padded = np.concatenate([loss, np.full(26, loss[0], np.float32)])
    mask = np.concatenate([np.ones(6, np.float32), np.zeros(26, np.float32)])
    terms = Terms(tf.constant(padded), tf.constant(padded), tf.constant(padded))
    objective, mean = batch_loss(terms, tf.constant(mask), [])
    np.testing.assert_allclose(objective.numpy(), loss.mean(), rtol=1e-6)
    np.testing.assert_allclose(mean.numpy(), loss.mean(), rtol=1e-6)


def test_evaluate_of_a_partial_batch_equals_its_unpadded_mean(digits_beta) -> None:
    """evaluate pads 10 images to a batch of 32; the fixed-KL rate is exact per image."""
    x = digits_beta[1][:10]
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,), use_exact_kl=True)
    q = vae.posterior(tf.constant(x))
    rate = q.kl_divergence(vae.prior).numpy()  # the closed form, per image
    result = vae.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    np.testing.assert_allclose(result["rate"], rate.mean(), rtol=1e-5)


def test_run_eagerly_runs_the_step_eagerly(digits_beta) -> None:
    """compile(run_eagerly=True) is honoured: the step is not wrapped in a tf.function."""
    seen = []
    x = digits_beta[0][:64]
    vae = tfpvae.build_vae(input_shape=x.shape[1:], hidden_units=(16,))
    vae.compile(optimizer="adam", run_eagerly=True)
    original = vae.objective.terms

    def spy(*args, **kwargs):
        seen.append(tf.executing_eagerly())
        return original(*args, **kwargs)

    vae.objective.terms = spy
    vae.fit(x, epochs=1, batch_size=32, verbose=0)
    assert seen and all(seen)


def test_no_filler_where_a_term_sees_the_whole_batch(digits_beta) -> None:
    """Free bits' batch means, activity regularisers and batch norm would count weight-0
    filler, so those models keep their last partial batch as it is."""
    from tfpvae._backend import tfd, tfk, tfpl
    from tfpvae.training.fit import pads_exactly

    shape = digits_beta[0].shape[1:]
    assert pads_exactly(tfpvae.build_vae(input_shape=shape, hidden_units=(16,)))
    free = tfpvae.build_vae(input_shape=shape, hidden_units=(16,), posterior="diag", free_bits=0.1)
    assert not pads_exactly(free)

    def user_vae(hidden):
        encoder = tfk.Sequential([
            tfk.layers.InputLayer(shape), tfk.layers.Flatten(), hidden,
            tfk.layers.Dense(tfpl.IndependentNormal.params_size(2)), tfpl.IndependentNormal(2),
        ])  # fmt: skip
        decoder = tfk.Sequential([
            tfk.layers.InputLayer((2,)), tfk.layers.Dense(int(np.prod(shape))),
            tfk.layers.Reshape(shape),
            tfpl.DistributionLambda(lambda t: tfd.Independent(tfd.Normal(t, 1.0), 2)),
        ])  # fmt: skip
        return tfpvae.VAE(encoder, decoder)

    assert pads_exactly(user_vae(tfk.layers.Dense(8)))
    assert not pads_exactly(user_vae(tfk.layers.Dense(8, activity_regularizer="l2")))
    assert not pads_exactly(user_vae(tfk.layers.BatchNormalization()))


def test_the_step_loops_and_the_pipeline_are_traced_without_autograph(monkeypatch) -> None:
    """Keras's train/test loops and the array pipeline's functions need no AutoGraph;
    converting them cost 0.5 CPU-s of a first result. Only the networks' own layers are."""
    from tensorflow.python.autograph.pyct import transpiler

    converted: list[str] = []
    transform = transpiler.PyToPy.transform_function

    def recording(self, fn, *args, **kwargs):
        converted.append(f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}")
        return transform(self, fn, *args, **kwargs)

    monkeypatch.setattr(transpiler.PyToPy, "transform_function", recording)
    x = np.random.default_rng(0).uniform(0.05, 0.95, (70, 4, 4)).astype("float32")
    vae = tfpvae.build_vae(input_shape=(4, 4), hidden_units=(8,))
    vae.fit(x, epochs=2, batch_size=32, verbose=0)
    vae.evaluate(x, batch_size=32, verbose=0)
    assert int(vae.optimizer.iterations) == 6  # 3 steps per epoch, all of them run
    assert int(vae._train_counter) == 6 and int(vae._test_counter) == 3
    loops = [name for name in converted if "make_train_function" in name or "make_test" in name]
    assert loops == [], loops
    ours = [name for name in converted if name.startswith("tfpvae.training")]
    assert ours == [], ours


def test_a_users_session_of_calls_raises_no_retracing_warning() -> None:
    """Each model traces its loops once per input structure; TensorFlow's warning about
    frequent retracing counts per function code, so the loops must not share one count
    across models and kinds (it fired on a reloaded model's evaluate)."""
    from tfpvae._backend import tfk

    logger = tf.get_logger()
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    keep = Keep()
    logger.addHandler(keep)
    try:
        x = np.random.default_rng(0).uniform(0.05, 0.95, (96, 4, 4)).astype("float32")
        for _ in range(2):
            vae = tfpvae.build_vae(input_shape=(4, 4), hidden_units=(8,))
            vae.train_on_batch(x[:32])
            vae.fit(x, epochs=1, batch_size=32, validation_split=0.25, verbose=0)
            vae.fit((x[i : i + 16] for i in range(0, 96, 16)), steps_per_epoch=6, verbose=0)
            vae.evaluate(x, batch_size=32, verbose=0)
            tfk.backend.clear_session()
    finally:
        logger.removeHandler(keep)
    assert not [m for m in messages if "retracing" in m], messages
