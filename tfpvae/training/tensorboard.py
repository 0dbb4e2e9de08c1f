"""TensorBoard logging of a VAE's training: scalars and pictures.

Scalars come from Keras's own ``tf_keras.callbacks.TensorBoard``, which works in
``vae.fit`` like in any Keras model: ``epoch_loss``, ``epoch_rate`` and
``epoch_distortion`` in ``LOG_DIR/train`` and ``LOG_DIR/validation`` (and
``epoch_beta`` in ``train`` where a :class:`~tfpvae.KLWarmUp` logs it, as in
``tfpvae train``). :class:`TensorBoardImages` adds, every N epochs and after the
last one, in ``LOG_DIR/images``:

* ``reconstructions``: each image beside the likelihood mean E[x | z] at its
  posterior mean z = E[z | x];
* ``prior_samples``: the likelihood means at fixed draws from the prior, the same
  draws every time, so that the pictures show how the decoder changes.

``tfpvae train --tensorboard [DIR]`` adds both (:func:`tensorboard_callbacks`).
"""

from __future__ import annotations

import os

import numpy as np

from tfpvae._backend import tf, tfk

#: Subdirectory of the log directory that holds the images.
IMAGES_DIR = "images"


def as_image_batch(images: tf.Tensor) -> tf.Tensor:
    """``[n, H, W]`` or ``[n, H, W, C]`` values in [0, 1] as ``tf.summary.image`` input.

    Images with other than 1, 3 or 4 channels show their first channel.
    """
    images = tf.clip_by_value(tf.convert_to_tensor(images, tf.float32), 0.0, 1.0)
    if images.shape.rank == 3:
        return images[..., None]
    if images.shape[-1] not in (1, 3, 4):
        return images[..., :1]
    return images


class TensorBoardImages(tfk.callbacks.Callback):
    """Writes reconstructions and prior samples to TensorBoard every ``every`` epochs.

    Args:
        log_dir: The TensorBoard log directory; images go to ``log_dir/images``.
        images: Prepared images to reconstruct (a handful, e.g. 8).
        every: Write after every ``every``-th epoch (and after the last one).
        n_samples: Prior draws to decode.
        seed: Stateless seed of the prior draws.
        labels: A conditional VAE's class ids of ``images``; its prior samples are
            then decoded as the classes 0, 1, … in turn.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike,
        images: np.ndarray,
        every: int = 5,
        n_samples: int = 8,
        seed: int = 0,
        labels: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.log_dir = os.fspath(log_dir)
        self.images = np.asarray(images, np.float32)
        self.every = every
        self.n_samples = n_samples
        self.seed = seed
        self.labels = None if labels is None else np.asarray(labels)
        self._writer: tf.summary.SummaryWriter | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, IMAGES_DIR))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every == 0 or epoch + 1 == self.params.get("epochs"):
            self.write(epoch)

    def write(self, step: int) -> None:
        """Writes both pictures at ``step`` (the 0-based epoch, as Keras's scalars)."""
        vae = self.model
        given: dict = {} if self.labels is None else {"labels": self.labels}
        reconstructions = vae.decode(vae.encode(self.images, **given), **given)
        pairs = tf.concat([self.images, reconstructions], axis=2)  # side by side
        # The same stateless seed every time, from the prior as it is now (a learned one moves).
        z = vae.prior.sample(self.n_samples, seed=tf.constant([self.seed, 0]))
        if self.labels is not None:
            given = {"labels": np.arange(self.n_samples) % vae.num_classes}
        samples = vae.decode(z, **given)
        assert self._writer is not None, "write() runs between on_train_begin and on_train_end"
        with self._writer.as_default(step=step):
            tf.summary.image("reconstructions", as_image_batch(pairs), max_outputs=len(pairs))
            tf.summary.image("prior_samples", as_image_batch(samples), max_outputs=len(samples))
        self._writer.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def tensorboard_callbacks(
    log_dir: str | os.PathLike,
    images: np.ndarray,
    images_every: int = 5,
    labels: np.ndarray | None = None,
) -> list[tfk.callbacks.Callback]:
    """Keras's scalar ``TensorBoard`` callback and :class:`TensorBoardImages`, for ``fit``.

    Args:
        log_dir: The log directory.
        images: Images to show reconstructed (the first 8 are used).
        images_every: Epochs between pictures.
        labels: A conditional VAE's class ids of ``images``.
    """
    first = None if labels is None else np.asarray(labels)[:8]
    return [
        tfk.callbacks.TensorBoard(os.fspath(log_dir), write_graph=False, profile_batch=0),
        TensorBoardImages(log_dir, images[:8], every=images_every, labels=first),
    ]
