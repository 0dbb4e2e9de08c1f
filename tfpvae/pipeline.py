"""Input pipelines: in-memory arrays to ``tf.data`` with a seeded shuffle.

Keras's own adapter for NumPy arrays slices and shuffles element by element on
the Python side of every epoch; for a model as small as the course's VAE that
costs as much as the training step. :func:`array_dataset` keeps the images in
one tensor, shuffles only the *indices* (seeded, reshuffled each epoch), gathers
whole batches, and prefetches, so the input work overlaps the step.
"""

from __future__ import annotations

import numpy as np

from tfpvae._backend import tf


def array_dataset(
    x: np.ndarray | tf.Tensor,
    batch_size: int,
    shuffle: bool = True,
    seed: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """A dataset of ``(x_batch, x_batch)`` pairs for training an autoencoder.

    Args:
        x: Images ``[n, ...]`` (float32).
        batch_size: Images per batch.
        shuffle: Reshuffle the order every epoch.
        seed: Seed of the shuffle; the sequence of epochs is reproducible.
        drop_remainder: Drop a final partial batch.

    Returns:
        A prefetched ``tf.data.Dataset``.
    """
    images = tf.convert_to_tensor(x, tf.float32)
    n = int(images.shape[0])
    indices = tf.data.Dataset.range(n)
    if shuffle:
        indices = indices.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    batches = indices.batch(batch_size, drop_remainder=drop_remainder)

    def gather(idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch = tf.gather(images, idx)  # [batch, ...]
        return batch, batch

    return batches.map(gather).prefetch(tf.data.AUTOTUNE)
