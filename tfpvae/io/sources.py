"""Streaming input from files: a directory of PNG images, or TFRecord shards.

For data that does not fit in memory, training reads, decodes and prepares
images inside ``tf.data``, a batch at a time. Both sources yield
``(x_batch, x_batch)`` float32 pairs in the likelihood's support, prepared by
the same :func:`tfpvae.prepare` as in-memory arrays, and both can be passed
straight to ``vae.fit``. Under a ``tf.distribute`` strategy Keras distributes
them with tf.data's automatic sharding: with several workers, TFRecord shards
are split by file when there are at least as many shards as workers, and
every other source by batch. Pass ``drop_remainder=True`` under several
replicas, so that no replica is left without images.

TFRecord shards hold one ``tf.train.Example`` per image with a single bytes
feature ``"image"``: the PNG encoding of the uint8 image.
:func:`write_tfrecords` writes them from arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfpvae._backend import tf
from tfpvae.components.likelihoods import get_likelihood

IMAGE_FEATURE = "image"


def _channels(image_shape: Sequence[int]) -> int:
    return int(image_shape[2]) if len(image_shape) == 3 else 1


def _prepare_batch(
    batch: tf.Tensor, image_shape: Sequence[int], likelihood: str
) -> tuple[tf.Tensor, tf.Tensor]:
    """Decoded uint8 batch → prepared float32 ``(x, x)`` with the model's image shape."""
    preprocess = get_likelihood(likelihood).preprocess
    x = tf.numpy_function(preprocess, [batch], tf.float32, stateful=False)
    x = tf.reshape(x, [-1, *image_shape])
    return x, x


def _decode(png: tf.Tensor, image_shape: Sequence[int]) -> tf.Tensor:
    image = tf.io.decode_png(png, channels=_channels(image_shape))  # [h, w, c] uint8
    image = tf.ensure_shape(image, [image_shape[0], image_shape[1], _channels(image_shape)])
    return tf.reshape(image, image_shape)


def _finish(
    records: tf.data.Dataset,
    image_shape: Sequence[int],
    likelihood: str,
    batch_size: int,
    drop_remainder: bool,
) -> tf.data.Dataset:
    batches = records.batch(batch_size, drop_remainder=drop_remainder)
    prepared = batches.map(
        lambda b: _prepare_batch(b, image_shape, likelihood), num_parallel_calls=tf.data.AUTOTUNE
    )
    return prepared.prefetch(tf.data.AUTOTUNE)


def png_directory_dataset(
    directory: str | Path,
    image_shape: Sequence[int],
    likelihood: str = "beta",
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Trains from a directory of PNG files without loading them all.

    Args:
        directory: A folder whose ``*.png`` files are the images (any names).
        image_shape: The model's ``input_shape``; every image must have it.
        likelihood: Whose :func:`tfpvae.prepare` to apply.
        batch_size: Images per batch.
        shuffle: A new order of the files every epoch (seeded).
        seed: Seed of the orders.
        drop_remainder: Drop each epoch's last partial batch.

    Returns:
        A ``tf.data.Dataset`` of ``(x, x)`` batches.

    Raises:
        ValueError: If the directory holds no PNG files.
    """
    files = sorted(str(p) for p in Path(directory).glob("*.png"))
    if not files:
        raise ValueError(f"no PNG files in {directory}: pass a directory of *.png images")
    names = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        names = names.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    images = names.map(
        lambda f: _decode(tf.io.read_file(f), image_shape), num_parallel_calls=tf.data.AUTOTUNE
    )
    return _finish(images, image_shape, likelihood, batch_size, drop_remainder)


def tfrecord_dataset(
    files: str | Path | Sequence[str | Path],
    image_shape: Sequence[int],
    likelihood: str = "beta",
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int = 0,
    shuffle_buffer: int = 10_000,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Trains from TFRecord shards written by :func:`write_tfrecords`.

    Args:
        files: A glob pattern (``"data/train-*.tfrecord"``) or a list of shard paths.
        image_shape: The model's ``input_shape``.
        likelihood: Whose :func:`tfpvae.prepare` to apply.
        batch_size: Images per batch.
        shuffle: Shuffle the shard order and the records (seeded buffer).
        seed: Seed of the shuffles.
        shuffle_buffer: Records held for shuffling; memory grows with it.
        drop_remainder: Drop each epoch's last partial batch.

    Raises:
        ValueError: If no shard matches.
    """
    if isinstance(files, (str, Path)):
        paths = sorted(tf.io.gfile.glob(str(files)))
    else:
        paths = [str(f) for f in files]
    if not paths:
        raise ValueError(f"no TFRecord files match {files}")
    shards = tf.data.Dataset.from_tensor_slices(paths)
    if shuffle:
        shards = shards.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    records = shards.interleave(tf.data.TFRecordDataset, num_parallel_calls=tf.data.AUTOTUNE)
    # One cheap pass over the record boundaries tells Keras how long an epoch is.
    count = int(tf.data.TFRecordDataset(paths).reduce(np.int64(0), lambda n, _: n + 1))
    records = records.apply(tf.data.experimental.assert_cardinality(count))
    if shuffle:
        records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    spec = {IMAGE_FEATURE: tf.io.FixedLenFeature([], tf.string)}
    images = records.map(
        lambda r: _decode(tf.io.parse_single_example(r, spec)[IMAGE_FEATURE], image_shape),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return _finish(images, image_shape, likelihood, batch_size, drop_remainder)


def write_pngs(images: np.ndarray, directory: str | Path) -> list[Path]:
    """Writes uint8 images as ``00000.png``, ``00001.png``, … into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(_as_hwc(images)):
        paths.append(directory / f"{i:05d}.png")
        tf.io.write_file(str(paths[-1]), tf.io.encode_png(image))
    return paths


def write_tfrecords(images: np.ndarray, prefix: str | Path, shards: int = 1) -> list[Path]:
    """Writes uint8 images into ``shards`` TFRecord files ``prefix-00000-of-0000N.tfrecord``."""
    hwc = _as_hwc(images)
    per_shard = math.ceil(len(hwc) / shards)
    paths = []
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    for s in range(shards):
        path = Path(f"{prefix}-{s:05d}-of-{shards:05d}.tfrecord")
        with tf.io.TFRecordWriter(str(path)) as writer:
            for image in hwc[s * per_shard : (s + 1) * per_shard]:
                png = tf.io.encode_png(image).numpy()
                feature = {
                    IMAGE_FEATURE: tf.train.Feature(bytes_list=tf.train.BytesList(value=[png]))
                }
                example = tf.train.Example(features=tf.train.Features(feature=feature))
                writer.write(example.SerializeToString())
        paths.append(path)
    return paths


def _as_hwc(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    return images[..., None] if images.ndim == 3 else images
