"""``fit`` takes what Keras takes: arrays, datasets, generators and ``Sequence`` inputs.

Each test trains a tiny Bernoulli VAE on 48 random binary 8×8 images in batches
of 16 (three per epoch) and checks the steps that ran, the loss and the history.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import tfpvae
from tfpvae._backend import tf, tfk
from tfpvae.components.likelihoods import get_likelihood
from tfpvae.training.tuning import STEPS_PER_EXECUTION

N, BATCH = 48, 16
STEPS = N // BATCH


@pytest.fixture
def images() -> np.ndarray:
    """48 binary 8×8 images, float32."""
    return (np.random.default_rng(0).random((N, 8, 8)) > 0.5).astype(np.float32)


@pytest.fixture
def vae() -> Any:
    """A tiny Bernoulli VAE for 8×8 images."""
    return tfpvae.build_vae(
        likelihood="bernoulli", input_shape=(8, 8), hidden_units=(16,), latent_dim=2
    )


def batches(images: np.ndarray, forever: bool = False) -> Iterator[np.ndarray]:
    """The images in batches of 16, once or endlessly."""
    while True:
        for start in range(0, len(images), BATCH):
            yield images[start : start + BATCH]
        if not forever:
            return


class Batches(tfk.utils.Sequence):
    """A ``Sequence`` of the images in batches of 16 that counts its epochs.

    Args:
        images: The images.
        form: Turns a batch of images into what ``__getitem__`` returns.
    """

    def __init__(self, images: np.ndarray, form: Any = lambda x: x) -> None:
        super().__init__()
        self.images, self.form, self.epochs = images, form, 0

    def __len__(self) -> int:
        return len(self.images) // BATCH

    def __getitem__(self, index: int) -> Any:
        return self.form(self.images[index * BATCH : (index + 1) * BATCH])

    def on_epoch_end(self) -> None:
        self.epochs += 1


def check_run(vae: Any, history: tfk.callbacks.History, steps: int, epochs: int = 1) -> None:
    """``steps`` optimizer steps ran, over ``epochs`` epochs of finite losses."""
    assert int(vae.optimizer.iterations) == steps
    for name in ("loss", "rate", "distortion"):
        assert len(history.history[name]) == epochs, name
        assert np.all(np.isfinite(history.history[name])), name
    assert int(vae._steps_per_execution.numpy()) == STEPS_PER_EXECUTION  # grouping restored


def test_arrays(vae: Any, images: np.ndarray) -> None:
    """Arrays, for comparison: ``ceil(n / batch_size)`` steps per epoch."""
    history = vae.fit(images, batch_size=BATCH, epochs=2, verbose=0)
    check_run(vae, history, 2 * STEPS, epochs=2)


def test_dataset_of_images(vae: Any, images: np.ndarray) -> None:
    """A dataset of ``x`` batches, two epochs."""
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(BATCH)
    check_run(vae, vae.fit(dataset, epochs=2, verbose=0), 2 * STEPS, epochs=2)


def test_dataset_of_pairs(vae: Any, images: np.ndarray) -> None:
    """A dataset of ``(x, x)`` batches."""
    dataset = tf.data.Dataset.from_tensor_slices((images, images)).batch(BATCH)
    check_run(vae, vae.fit(dataset, verbose=0), STEPS)


def test_dataset_of_unknown_length(vae: Any, images: np.ndarray) -> None:
    """A dataset of unknown cardinality: one step per call, and no step counted twice."""
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(BATCH).filter(lambda b: True)
    assert int(dataset.cardinality()) < 0
    check_run(vae, vae.fit(dataset, epochs=2, verbose=0), 2 * STEPS, epochs=2)


def test_dataset_without_static_shapes(vae: Any, images: np.ndarray) -> None:
    """A dataset whose element spec is ``[None, None, None]`` trains on the model's shape."""
    dataset = tf.data.Dataset.from_generator(
        lambda: batches(images), output_signature=tf.TensorSpec([None, None, None])
    )
    check_run(vae, vae.fit(dataset, verbose=0), STEPS)


def test_generator_with_steps_per_epoch(vae: Any, images: np.ndarray) -> None:
    """An endless generator with ``steps_per_epoch`` groups its steps as arrays do."""
    history = vae.fit(batches(images, forever=True), steps_per_epoch=STEPS, epochs=2, verbose=0)
    check_run(vae, history, 2 * STEPS, epochs=2)


def test_generator_without_steps_per_epoch(vae: Any, images: np.ndarray) -> None:
    """A finite generator runs one step per call until it ends."""
    check_run(vae, vae.fit(batches(images), verbose=0), STEPS)


@pytest.mark.parametrize(
    "form",
    [lambda x: (x,), lambda x: (x, x), lambda x: [x, None, np.ones(len(x))]],
    ids=["(x,)", "(x, x)", "[x, None, w]"],
)
def test_generator_batch_forms(vae: Any, images: np.ndarray, form: Any) -> None:
    """Generators may yield ``(x,)``, ``(x, x)`` and ``(x, None, w)`` (a list works too)."""
    check_run(vae, vae.fit((form(b) for b in batches(images)), verbose=0), STEPS)


def test_generator_sample_weights_reach_the_step(vae: Any, images: np.ndarray) -> None:
    """Zero weights from ``(x, None, w)`` batches leave the weights where they were.

    Keras drops the weights of a batch without a target; had they been dropped,
    three Adam steps would have moved every weight.
    """
    before = [w.copy() for w in vae.get_weights()]
    weighted = ((x, None, np.zeros(len(x), np.float32)) for x in batches(images))
    vae.fit(weighted, verbose=0)
    assert int(vae.optimizer.iterations) == STEPS
    for old, new in zip(before, vae.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_sequence(vae: Any, images: np.ndarray) -> None:
    """A ``Sequence``: its length per epoch, and its ``on_epoch_end`` still called."""
    sequence = Batches(images)
    check_run(vae, vae.fit(sequence, epochs=2, verbose=0), 2 * STEPS, epochs=2)
    assert sequence.epochs >= 2


def test_sequence_with_steps_per_epoch(vae: Any, images: np.ndarray) -> None:
    """A weighted ``Sequence`` of ``(x, None, w)`` with ``steps_per_epoch`` below its length."""
    sequence = Batches(images, lambda x: (x, None, np.ones(len(x), np.float32)))
    check_run(vae, vae.fit(sequence, steps_per_epoch=2, verbose=0), 2)


def test_validation_generator(vae: Any, images: np.ndarray) -> None:
    """A finite generator as ``validation_data`` validates every epoch, not just the first."""
    history = vae.fit(
        images, batch_size=BATCH, epochs=2, validation_data=batches(images[:32]), verbose=0
    )
    check_run(vae, history, 2 * STEPS, epochs=2)
    for name in ("val_loss", "val_rate", "val_distortion"):
        assert len(history.history[name]) == 2 and np.all(np.isfinite(history.history[name]))


def test_validation_generator_with_steps(vae: Any, images: np.ndarray) -> None:
    """An endless validation generator with ``validation_steps`` alongside a ``Sequence``."""
    history = vae.fit(
        Batches(images),
        validation_data=batches(images, forever=True),
        validation_steps=2,
        verbose=0,
    )
    check_run(vae, history, STEPS)
    assert np.isfinite(history.history["val_loss"][0])


def test_validation_dataset_of_unknown_length(vae: Any, images: np.ndarray) -> None:
    """A validation dataset of unknown length and shapes needs no ``validation_steps``."""
    validation = tf.data.Dataset.from_generator(
        lambda: batches(images[:32]), output_signature=tf.TensorSpec([None, None, None])
    )
    history = vae.fit(images, batch_size=BATCH, epochs=2, validation_data=validation, verbose=0)
    check_run(vae, history, 2 * STEPS, epochs=2)
    assert len(history.history["val_loss"]) == 2


def labelled(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A batch with class labels as its target."""
    return x, np.arange(len(x)) % 10


def test_generator_of_labels_is_refused(vae: Any, images: np.ndarray) -> None:
    """A generator of ``(images, labels)`` is refused before any step."""
    with pytest.raises(ValueError, match="a VAE reconstructs its input"):
        vae.fit((labelled(x) for x in batches(images)), verbose=0)
    assert int(vae.optimizer.iterations) == 0


def test_other_targets_are_refused(vae: Any, images: np.ndarray) -> None:
    """A ``y`` of the images' shape that is not the images is refused too."""
    with pytest.raises(ValueError, match="that is not x"):
        vae.fit(((x, 1.0 - x) for x in batches(images)), verbose=0)


def test_sequence_of_labels_is_refused(vae: Any, images: np.ndarray) -> None:
    """A ``Sequence`` of ``(images, labels)`` is refused before any step."""
    with pytest.raises(ValueError, match="a VAE reconstructs its input"):
        vae.fit(Batches(images, labelled), verbose=0)


def test_dataset_of_labels_is_refused(vae: Any, images: np.ndarray) -> None:
    """A dataset of ``(images, labels)`` is refused from its element spec."""
    dataset = tf.data.Dataset.from_tensor_slices(labelled(images)).batch(BATCH)
    with pytest.raises(ValueError, match="a VAE reconstructs its input"):
        vae.fit(dataset, verbose=0)


def test_dataset_of_other_images_is_refused(vae: Any, images: np.ndarray) -> None:
    """Images of another shape are refused with both shapes named."""
    dataset = tf.data.Dataset.from_tensor_slices(images.reshape(N, 64)).batch(BATCH)
    with pytest.raises(ValueError, match=r"takes batches of shape \(None, 8, 8\)"):
        vae.fit(dataset, verbose=0)


def test_generator_of_raw_pixels_is_refused(vae: Any, images: np.ndarray) -> None:
    """The first batch is checked as arrays are: raw uint8 pixels say to prepare them."""
    with pytest.raises(ValueError, match=r"tfpvae\.prepare"):
        vae.fit((x.astype(np.uint8) for x in batches(images)), verbose=0)


def test_empty_generator_is_refused(vae: Any) -> None:
    """A generator that yields nothing is refused with a clear message."""
    with pytest.raises(ValueError, match="empty generator"):
        vae.fit(iter([]), verbose=0)


def test_fused_log_prob_without_static_shapes(images: np.ndarray) -> None:
    """The fused log-prob reads the pixel count from the parameters when ``x`` lacks it."""
    likelihood = get_likelihood("beta")
    x = np.clip(images[:4], 0.1, 0.9).reshape(4, 8, 8)
    params = tf.random.stateless_normal([4, likelihood.params_size((8, 8))], seed=[1, 2])

    @tf.function(input_signature=[tf.TensorSpec([None, None, None])])
    def unknown(x: tf.Tensor) -> tf.Tensor:
        return likelihood.log_prob_from_params(params, x)

    np.testing.assert_allclose(
        unknown(x), likelihood.log_prob_from_params(params, tf.constant(x)), rtol=1e-5
    )


@pytest.mark.xla
def test_xla_without_static_shapes(images: np.ndarray) -> None:
    """The XLA-compiled step trains on a ``Sequence`` (rank-only batches) and a shapeless set."""
    vae = tfpvae.build_vae(
        likelihood="bernoulli", input_shape=(8, 8), hidden_units=(16,), latent_dim=2
    )
    assert vae.jit_compile
    check_run(vae, vae.fit(Batches(images), verbose=0), STEPS)
    dataset = tf.data.Dataset.from_generator(
        lambda: batches(images), output_signature=tf.TensorSpec([None, None, None])
    )
    check_run(vae, vae.fit(dataset, verbose=0), 2 * STEPS)


def test_evaluate_takes_a_generator_of_unknown_length(vae, images) -> None:
    """``evaluate`` on a finite generator (no ``steps``) runs every batch, like arrays."""
    on_arrays = vae.evaluate(images[:48], batch_size=16, verbose=0, return_dict=True)

    def batches():
        for start in range(0, 48, 16):
            yield images[start : start + 16]

    streamed = vae.evaluate(batches(), verbose=0, return_dict=True)
    assert set(streamed) == {"loss", "rate", "distortion"}
    assert np.isfinite(streamed["loss"])
    # Fresh noise per call: the two agree within the spread of the per-image loss.
    assert abs(streamed["rate"] - on_arrays["rate"]) < 0.5 * max(1.0, on_arrays["rate"])
    with pytest.raises(ValueError, match="reconstructs"):
        vae.evaluate(((images[:16], np.zeros(16)) for _ in range(2)), verbose=0)
