"""The ``tf.data`` pipeline for in-memory arrays (files stream through ``tfpvae.sources``).

Keras's own adapter for NumPy arrays slices and shuffles element by element on
the Python side of every epoch; for a model as small as the course's VAE that
costs as much as the training step. :func:`array_dataset` keeps the images in
one tensor, shuffles only the *indices* and gathers whole batches, with a
prefetch so that the input work overlaps the step.

The order of epoch ``e`` is a permutation drawn from the stateless seed
``(seed, e)``. It depends on nothing else, so a run resumed at epoch ``e``
sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import numpy as np

from tfpvae._backend import tf


def epoch_permutation(n: int, seed: int, epoch: tf.Tensor) -> tf.Tensor:
    """The order of the ``n`` examples in ``epoch``: a function of ``(seed, epoch)`` only."""
    key = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.argsort(tf.random.stateless_uniform([n], seed=key))


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Tells ``tf.distribute`` to split this dataset by batches, not by files.

    Datasets built from tensors have no files to split; without this option
    multi-worker training warns and falls back to the same split anyway.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def array_dataset(
    x: np.ndarray | tf.Tensor,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = False,
    first_epoch: int | None = None,
) -> tf.data.Dataset:
    """A dataset of ``(x_batch, x_batch)`` pairs for training an autoencoder.

    Args:
        x: Images ``[n, ...]`` (float32).
        batch_size: Images per batch.
        shuffle: Draw a new order every epoch.
        seed: Seed of the orders.
        drop_remainder: Drop each epoch's final partial batch.
        first_epoch: ``None`` gives one pass (finite, for evaluation). An
            integer ``e`` gives an endless stream of epochs ``e, e+1, …``, each
            ``ceil(n / batch_size)`` batches long (``floor`` with
            ``drop_remainder``); ``fit`` takes ``steps_per_epoch`` from
            :func:`steps_per_epoch`.

    Returns:
        A prefetched ``tf.data.Dataset``.
    """
    images = tf.convert_to_tensor(x, tf.float32)
    n = int(images.shape[0])

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        order = epoch_permutation(n, seed, epoch) if shuffle else tf.range(n, dtype=tf.int64)
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder)

    if first_epoch is None:
        batches = one_epoch(tf.constant(0, tf.int64))
    else:
        batches = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max).flat_map(one_epoch)

    def gather(idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch = tf.gather(images, idx)  # [batch, ...]
        return batch, batch

    return shard_by_data(batches.map(gather).prefetch(tf.data.AUTOTUNE))


def steps_per_epoch(n: int, batch_size: int, drop_remainder: bool = False) -> int:
    """Batches in one epoch of ``n`` examples."""
    return n // batch_size if drop_remainder else -(-n // batch_size)
