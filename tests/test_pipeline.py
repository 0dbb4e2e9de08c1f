"""The in-memory training stream: seeded epoch orders, and reuse between fit calls."""

from __future__ import annotations

import numpy as np
import pytest

import tfpvae
from tfpvae.training.fit import kept_stream
from tfpvae.training.pipeline import ArrayStream, array_dataset

N, BATCH = 23, 5  # 5 batches per epoch, the last one of 3 images


def _labelled(n: int = N) -> np.ndarray:
    """Image i is constant at (i + 1) / (n + 1), so a batch tells which images it holds."""
    return (
        np.repeat(((np.arange(n) + 1.0) / (n + 1.0))[:, None, None], 16, axis=1)
        .reshape(n, 4, 4)
        .astype("float32")
    )


def _indices(dataset, batches: int) -> list[list[int]]:
    out = []
    for x, y in dataset.take(batches):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
        out.append([round(v * (N + 1)) - 1 for v in x.numpy()[:, 0, 0]])
    return out


def _epochs(dataset, count: int) -> list[list[int]]:
    batches = _indices(dataset, 5 * count)
    return [[i for batch in batches[5 * e : 5 * e + 5] for i in batch] for e in range(count)]


def test_each_epoch_is_a_permutation_fixed_by_seed_and_epoch() -> None:
    x = _labelled()
    first, second, third = _epochs(array_dataset(x, BATCH, seed=7, first_epoch=0), 3)
    for order in (first, second, third):
        assert sorted(order) == list(range(N))
    assert len({tuple(first), tuple(second), tuple(third)}) == 3
    # A stream that starts at epoch 1 (a resumed run) sees exactly epochs 1 and 2.
    assert _epochs(array_dataset(x, BATCH, seed=7, first_epoch=1), 2) == [second, third]
    assert _epochs(array_dataset(x, BATCH, seed=8, first_epoch=0), 1) != [first]
    one_pass = _indices(array_dataset(x, BATCH, shuffle=False), 10)
    assert [i for batch in one_pass for i in batch] == list(range(N))
    assert [len(batch) for batch in one_pass] == [5, 5, 5, 5, 3]


def test_a_kept_stream_follows_the_seed_and_first_epoch_it_is_started_with() -> None:
    x = _labelled()
    stream = ArrayStream(x, BATCH, shuffle=True, drop_remainder=False)
    for seed, first_epoch in [(7, 0), (7, 2), (3, 1), (7, 0)]:
        expected = _epochs(array_dataset(x, BATCH, seed=seed, first_epoch=first_epoch), 2)
        assert _epochs(stream.start(seed, first_epoch), 2) == expected, (seed, first_epoch)


def _iterated_epochs(iterator, count: int) -> list[list[int]]:
    """``count`` epochs read from an iterator (as Keras reads them), as image indices."""
    epochs = []
    for _ in range(count):
        batches = [next(iterator)[0].numpy()[:, 0, 0] for _ in range(5)]
        epochs.append([round(v * (N + 1)) - 1 for batch in batches for v in batch])
    return epochs


def test_a_fit_of_whole_epochs_is_continued_by_the_next_and_anything_else_restarts() -> None:
    x = _labelled()
    stream = ArrayStream(x, BATCH, shuffle=True, drop_remainder=False)
    expected = _epochs(array_dataset(x, BATCH, seed=7, first_epoch=0), 4)
    first = iter(stream.for_fit(7, 0))
    assert _iterated_epochs(first, 2) == expected[:2]
    stream.fit_ended(2)
    # The next fit (epoch 0, a new seed) continues: same iterator, the stream's epochs 2, 3.
    again = iter(stream.for_fit(99, 0))
    assert again is first
    assert _iterated_epochs(again, 1) == expected[2:3]
    stream.fit_ended(1)
    assert iter(stream.for_fit(5, 3)) is first  # Keras's idiom: initial_epoch = epochs so far
    assert _iterated_epochs(first, 1) == expected[3:4]
    # A fit cut short mid-epoch: the next one starts afresh from its own seed and epoch.
    stream.fit_ended(None)
    fresh = iter(stream.for_fit(3, 1))
    assert fresh is not first
    assert _iterated_epochs(fresh, 2) == _epochs(array_dataset(x, BATCH, seed=3, first_epoch=1), 2)
    stream.fit_ended(2)
    # An initial_epoch that is neither 0 nor where the stream stands restarts there too.
    other = iter(stream.for_fit(3, 7))
    assert other is not fresh
    assert _iterated_epochs(other, 1) == _epochs(array_dataset(x, BATCH, seed=3, first_epoch=7), 1)


@pytest.mark.slow(seconds=4)
def test_fit_continues_the_iterator_only_after_whole_epochs() -> None:
    from tfpvae._backend import tfk

    class StopInsideTheEpoch(tfk.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None) -> None:
            self.model.stop_training = True

    vae = tfpvae.build_vae(input_shape=(4, 4), hidden_units=(8,))
    vae.compile(optimizer="adam", steps_per_execution=1)  # one batch per call, so it can stop
    x = _labelled()
    vae.fit(x, epochs=2, batch_size=BATCH, verbose=0)
    stream = kept_stream(vae)
    first = stream.iterator()
    history = vae.fit(x, epochs=1, batch_size=BATCH, verbose=0)
    assert stream.iterator() is first and len(history.history["loss"]) == 1
    vae.fit(x, epochs=1, batch_size=BATCH, verbose=0, callbacks=[StopInsideTheEpoch()])
    assert kept_stream(vae) is stream
    assert stream.iterator() is not first  # stopped after one of five batches: not reused
    second = stream.iterator()
    vae.fit(x, epochs=1, batch_size=BATCH, verbose=0, steps_per_epoch=2)  # the user's epochs
    assert stream.iterator() is not second


@pytest.mark.slow(seconds=4)
def test_fit_keeps_the_stream_only_while_the_images_are_the_same() -> None:
    vae = tfpvae.build_vae(input_shape=(4, 4), hidden_units=(8,))
    x = _labelled()
    vae.fit(x, epochs=1, batch_size=BATCH, verbose=0)
    kept = kept_stream(vae)
    vae.fit(x, epochs=1, batch_size=BATCH, verbose=0)
    assert kept_stream(vae) is kept
    vae.fit(x.copy(), epochs=1, batch_size=BATCH, verbose=0)  # equal images: still kept
    assert kept_stream(vae) is kept
    x[4] = 0.5  # edited in place: the next fit must see the new values
    vae.fit(x, epochs=1, batch_size=BATCH, verbose=0)
    assert kept_stream(vae) is not kept
    np.testing.assert_array_equal(kept_stream(vae).images.numpy(), x)
    kept = kept_stream(vae)
    vae.fit(x, epochs=1, batch_size=BATCH + 1, verbose=0)
    assert kept_stream(vae) is not kept and kept_stream(vae).settings[0] == BATCH + 1
    vae.fit(x, epochs=1, batch_size=BATCH + 1, shuffle=False, verbose=0)
    assert kept_stream(vae).settings[1] is False
    # The same images with a validation split: the stream holds the training part only.
    vae.fit(x, epochs=1, batch_size=BATCH + 1, shuffle=False, validation_split=0.4, verbose=0)
    np.testing.assert_array_equal(kept_stream(vae).images.numpy(), x[: int(N * 0.6)])


def test_array_pipelines_run_without_the_autotuner() -> None:
    """With tf.data's autotuner on, deleting a used iterator (the end of every ``fit``)
    sometimes took 0.6 s; the array pipelines turn it off and prefetch a fixed buffer."""
    x = np.full((10, 2, 2), 0.5, "float32")
    stream = ArrayStream(x, 4, shuffle=True, drop_remainder=False).start(0, 0)
    for dataset in (stream, array_dataset(x, 4), array_dataset(x, 4, first_epoch=0)):
        assert dataset.options().autotune.enabled is False
        assert len(list(dataset.take(3))) == 3


def test_batches_are_whole_rows_padded_or_dropped_as_asked() -> None:
    x = _labelled()
    padded = list(array_dataset(x, BATCH, shuffle=False, pad_remainder=True))
    assert [len(b[0]) for b in padded] == [5] * 5
    assert padded[0][0].shape.is_fully_defined()  # one static batch shape for XLA
    ids = [round(v * (N + 1)) - 1 for b in padded for v in b[0].numpy()[:, 0, 0]]
    assert ids == [*range(N), 20, 20]  # the filler repeats the last batch's first image ...
    np.testing.assert_array_equal(padded[-1][2].numpy(), [1, 1, 1, 0, 0])  # ... at weight 0
    dropped = list(array_dataset(x, BATCH, shuffle=False, drop_remainder=True))
    assert [len(b[0]) for b in dropped] == [5] * 4
