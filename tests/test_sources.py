"""Streaming sources: PNG directories and TFRecord shards feed fit like arrays do."""

from __future__ import annotations

import numpy as np
import pytest

import tfpvae
from tfpvae._backend import tf
from tfpvae.io.datasets import prepare
from tfpvae.io.sources import png_directory_dataset, tfrecord_dataset, write_pngs, write_tfrecords


@pytest.fixture(scope="module")
def raw(digits) -> np.ndarray:
    return digits[0][0][:70]  # uint8 [70, 8, 8]


def _all_images(dataset) -> np.ndarray:
    batches = [x.numpy() for x, y in dataset]
    for x, y in dataset.take(1):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    return np.concatenate(batches)


def test_png_directory_yields_the_prepared_images_in_order(tmp_path, raw) -> None:
    write_pngs(raw, tmp_path / "png")
    dataset = png_directory_dataset(tmp_path / "png", (8, 8), "beta", batch_size=16, shuffle=False)
    np.testing.assert_array_equal(_all_images(dataset), prepare(raw, "beta"))


def test_tfrecord_shards_yield_every_image_once_shuffled(tmp_path, raw) -> None:
    paths = write_tfrecords(raw, tmp_path / "records" / "train", shards=3)
    assert len(paths) == 3
    dataset = tfrecord_dataset(
        str(tmp_path / "records" / "train-*"), (8, 8), "bernoulli", batch_size=16, seed=1
    )
    got = _all_images(dataset)
    expected = prepare(raw, "bernoulli")
    assert not np.array_equal(got, expected)  # shuffled...
    key = lambda a: sorted(map(bytes, a.reshape(len(a), -1)))  # noqa: E731
    assert key(got) == key(expected)  # ...but every image exactly once


def test_drop_remainder_gives_only_full_batches(tmp_path, raw) -> None:
    write_pngs(raw, tmp_path / "png")
    dataset = png_directory_dataset(tmp_path / "png", (8, 8), batch_size=16, drop_remainder=True)
    assert [x.shape[0] for x, _ in dataset] == [16] * 4


def test_fit_trains_from_files(tmp_path, raw) -> None:
    write_tfrecords(raw, tmp_path / "train")
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,))
    before = [w.copy() for w in vae.get_weights()]
    dataset = tfrecord_dataset(str(tmp_path / "train-*"), (8, 8), batch_size=16)
    history = vae.fit(dataset, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert any(not np.array_equal(a, b) for a, b in zip(before, vae.get_weights(), strict=True))


def test_missing_files_are_named(tmp_path) -> None:
    with pytest.raises(ValueError, match="no PNG files in"):
        png_directory_dataset(tmp_path, (8, 8))
    with pytest.raises(ValueError, match="no TFRecord files match"):
        tfrecord_dataset(str(tmp_path / "*.tfrecord"), (8, 8))
    with pytest.raises(ValueError, match="expected uint8 images"):
        write_pngs(np.zeros((2, 8, 8), "float32"), tmp_path)


def test_fit_accepts_a_dataset_of_unknown_length(raw) -> None:
    x = prepare(raw, "beta")
    unknown = tf.data.Dataset.from_tensor_slices(x).filter(lambda _: True).batch(16)
    assert int(unknown.cardinality()) < 0
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,))
    assert np.isfinite(vae.fit(unknown.map(lambda b: (b, b)), epochs=1, verbose=0).history["loss"])
    assert int(vae._steps_per_execution.numpy()) > 1  # restored afterwards
