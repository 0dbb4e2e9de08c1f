"""The ``tf.data`` pipeline for in-memory arrays (files stream through ``tfpvae.io.sources``).

Keras's own adapter for NumPy arrays slices and shuffles element by element on
the Python side of every epoch; for a model as small as the course's VAE that
costs as much as the training step. :func:`array_dataset` keeps the images in
one tensor, shuffles only the *indices* and gathers whole batches, with a
prefetch so that the input work overlaps the step.

The order of epoch ``e`` is a permutation drawn from the stateless seed
``(seed, e)``. It depends on nothing else, so a run resumed at epoch ``e``
sees exactly the batches an uninterrupted run would have seen.

The prefetch buffer is fixed (:data:`PREFETCH_BATCHES`) and tf.data's autotuner
is off for these pipelines. A batch is one gather, so there is nothing to tune.
With the autotuner on, deleting a used iterator, which Keras does at the end of
every ``fit``, took about 0.63 s in 10 of 60 trials on a 2-core VM (after two
training calls each); with it off, the slowest of 60 took 3.8 ms.
"""

from __future__ import annotations

import numpy as np

from tfpvae._backend import tf
from tfpvae._backend import tf_dataset_ops as _dataset_ops
from tfpvae.components.dequantize import uniform_dequantize

#: Batches the pipeline gathers ahead of the training step.
PREFETCH_BATCHES = 2
#: Folded into an epoch's order seed to give its dequantisation noise seeds.
NOISE_STREAM = 1


# The pipeline's functions are straight-line TensorFlow: tf.data need not convert them
# with AutoGraph (0.15 s of a first fit), hence ``do_not_convert``.
_plain = tf.autograph.experimental.do_not_convert


@_plain
def epoch_permutation(n: int, seed: int | tf.Tensor | tf.Variable, epoch: tf.Tensor) -> tf.Tensor:
    """The order of the ``n`` examples in ``epoch``: a function of ``(seed, epoch)`` only."""
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.argsort(tf.random.stateless_uniform([n], seed=key))


@_plain
def noise_key(seed: int | tf.Tensor | tf.Variable, epoch: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
    """The dequantisation seed of batch ``batch`` of ``epoch``: a function of those only."""
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)])
    key = tf.random.experimental.stateless_fold_in(key, NOISE_STREAM)
    return tf.random.experimental.stateless_fold_in(key, tf.cast(batch, tf.int64))


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Tells ``tf.distribute`` to split this dataset by batches, not by files.

    Datasets built from tensors have no files to split; without this option
    multi-worker training warns and falls back to the same split anyway.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _untuned(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Turns tf.data's autotuner off (see the module docstring for why)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def _index_batches(
    order: tf.Tensor, mask: tf.Tensor, n: int, batch_size: int, drop_remainder: bool
) -> tf.data.Dataset:
    """The ``(indices, mask)`` batches of one epoch, whole rows of one reshaped tensor.

    ``Dataset.batch`` copies its input element by element (about 0.3 ms of a
    tf.data thread per 256-image batch, beside a 2.6 ms step on two cores); the
    full batches here are rows of ``order`` reshaped to ``[batches, batch_size]``,
    and a final partial batch (when it is neither dropped nor padded) follows as
    one element.
    """
    full = n // batch_size
    rows = tf.data.Dataset.from_tensor_slices(
        (
            tf.reshape(order[: full * batch_size], [full, batch_size]),
            tf.reshape(mask[: full * batch_size], [full, batch_size]),
        )
    )
    if drop_remainder or n == full * batch_size:
        return rows
    rest = tf.data.Dataset.from_tensors((order[full * batch_size :], mask[full * batch_size :]))
    return rows.concatenate(rest)


def _batches(
    images: tf.Tensor,
    batch_size: int,
    shuffle: bool,
    seed: int | tf.Variable,
    drop_remainder: bool,
    first_epoch: int | tf.Variable | None,
    weights: tf.Tensor | None = None,
    dequantize: bool = False,
    labels: tf.Tensor | None = None,
    pad_remainder: bool = False,
) -> tf.data.Dataset:
    """``(x, x[, w])`` batches; ``seed``/``first_epoch`` may be variables read per epoch.

    With ``weights`` each batch carries its images' weights; with ``labels`` (a
    conditional VAE's class ids) the second element is the batch's labels, not x.
    With ``dequantize``,
    ``images`` are 8-bit levels and each batch is ``(levels + u) / 256`` with ``u``
    drawn from :func:`noise_key`. With ``pad_remainder`` (and no ``drop_remainder``)
    an epoch's last batch is filled up to ``batch_size`` with copies of its first
    image at weight 0, and every batch carries weights: one batch shape, so a
    compiled step is compiled once (see :func:`array_dataset`).
    """
    n = int(images.shape[0])
    pad = -n % batch_size if pad_remainder and not drop_remainder else 0
    weighted = weights is not None or pad_remainder

    @_plain
    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        order = epoch_permutation(n, seed, epoch) if shuffle else tf.range(n, dtype=tf.int64)
        order = tf.cast(order, tf.int64)
        mask = tf.ones([n], tf.float32)
        if pad:  # the filler repeats the last batch's first image, at weight 0
            order = tf.concat([order, tf.fill([pad], order[n - (n % batch_size)])], axis=0)
            mask = tf.concat([mask, tf.zeros([pad], tf.float32)], axis=0)
        batches = _index_batches(order, mask, n + pad, batch_size, drop_remainder)
        if not dequantize:
            return batches
        return batches.enumerate().map(_plain(lambda i, b: (b[0], b[1], noise_key(seed, epoch, i))))

    if first_epoch is None:
        batches = one_epoch(tf.constant(0, tf.int64))
    else:  # epochs first_epoch, first_epoch + 1, ... (the offset is read when an epoch starts)
        epochs = tf.data.Dataset.range(np.iinfo(np.int64).max // 2)
        batches = epochs.flat_map(_plain(lambda e: one_epoch(e + tf.cast(first_epoch, tf.int64))))

    @_plain
    def gather(idx: tf.Tensor, mask: tf.Tensor, key: tf.Tensor | None = None) -> tuple:
        batch = tf.gather(images, idx)  # [batch, ...]
        if key is not None:
            batch = uniform_dequantize(batch, key)
        second = batch if labels is None else tf.gather(labels, idx)  # the labels follow too
        if not weighted:
            return batch, second
        if weights is None:
            return batch, second, mask
        return batch, second, tf.gather(weights, idx) * mask  # the weights follow their images

    return _untuned(shard_by_data(batches.map(gather).prefetch(PREFETCH_BATCHES)))


def array_dataset(
    x: np.ndarray | tf.Tensor,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = False,
    first_epoch: int | None = None,
    sample_weight: np.ndarray | tf.Tensor | None = None,
    dequantize: bool = False,
    labels: np.ndarray | tf.Tensor | None = None,
    pad_remainder: bool = False,
) -> tf.data.Dataset:
    """A dataset of ``(x_batch, x_batch)`` pairs for training an autoencoder.

    Args:
        x: Images ``[n, ...]`` (float32); with ``dequantize``, the 8-bit levels
            (uint8, or integer-valued floats 0..255).
        sample_weight: Optional ``[n]`` weights; the elements are then
            ``(x_batch, x_batch, w_batch)``.
        batch_size: Images per batch.
        shuffle: Draw a new order every epoch.
        seed: Seed of the orders.
        drop_remainder: Drop each epoch's final partial batch.
        first_epoch: ``None`` gives one pass (finite, for evaluation). An
            integer ``e`` gives an endless stream of epochs ``e, e+1, …``, each
            ``ceil(n / batch_size)`` batches long (``floor`` with
            ``drop_remainder``); ``fit`` takes ``steps_per_epoch`` from
            :func:`steps_per_epoch`.
        dequantize: Serve ``(x + u) / 256`` with a fresh ``u ~ U[0, 1)`` per
            pixel, image and epoch (uniform dequantisation, see
            :mod:`tfpvae.components.dequantize`), seeded by ``(seed, epoch, batch)``, so a
            resumed run sees the same noise.
        labels: A conditional VAE's ``[n]`` class ids; the elements are then
            ``(x_batch, labels_batch[, w_batch])``.
        pad_remainder: Fill each epoch's last partial batch up to ``batch_size``
            with weight-0 copies of one of its images, so all batches have one
            static shape (an XLA step compiles once, not once more for the last
            batch). The elements then carry weights, ``(x_batch, x_batch,
            w_batch)``; a per-image weighted mean (the loss, the trackers) is
            unchanged, as weight-0 images add nothing to either sum.

    Returns:
        A prefetched ``tf.data.Dataset``.

    Raises:
        ValueError: With ``dequantize``, if ``x`` is not 8-bit levels.
    """
    if dequantize:
        levels = np.asarray(x)
        if levels.size and (levels.min() < 0 or levels.max() > 255 or np.any(levels % 1)):
            raise ValueError("dequantize=True needs 8-bit levels (integers 0..255), e.g. uint8")
    images = tf.convert_to_tensor(x, tf.float32)
    weights = None if sample_weight is None else tf.convert_to_tensor(sample_weight, tf.float32)
    ids = None if labels is None else tf.convert_to_tensor(labels, tf.int32)
    return _batches(
        images, batch_size, shuffle, seed, drop_remainder, first_epoch, weights, dequantize, ids,
        pad_remainder,
    )  # fmt: skip


class ArrayStream:
    """An endless :func:`array_dataset` stream kept from one ``fit`` call to the next.

    Building a dataset traces its functions and copies the images (0.10–0.16 s
    here), and a new dataset's first batch takes another 0.05–0.13 s; for the
    one-epoch ``fit`` calls of a notebook or benchmark loop (8192 images at batch
    256: about 0.7 s of steps) that is a fifth or more. The stream keeps one
    copy of the images and reads its seed and first epoch from variables, so a
    later ``fit`` on the same images only sets those two numbers (:meth:`start`).
    :meth:`serves` compares the images element by element (against a view of the
    stream's tensor, not a copy), so an array edited in place is never served stale.

    A ``fit`` that continues the previous one (:meth:`for_fit`) goes further and
    continues its *iterator*: making one instantiates the pipeline's functions,
    about 13 ms per ``fit`` on the course's MLP, which was the largest fixed cost
    of a short ``fit`` once the steps were traced.

    Args:
        x: Images ``[n, ...]``.
        batch_size: Images per batch.
        shuffle: Draw a new order every epoch.
        drop_remainder: Drop each epoch's final partial batch.
        pad_remainder: Pad it with weight-0 images instead (see :func:`array_dataset`).
    """

    def __init__(
        self,
        x: np.ndarray | tf.Tensor,
        batch_size: int,
        shuffle: bool,
        drop_remainder: bool,
        pad_remainder: bool = False,
    ) -> None:
        self.images = tf.convert_to_tensor(x, tf.float32)
        self.settings = (batch_size, shuffle, drop_remainder, pad_remainder)
        with tf.init_scope():
            self._seed = tf.Variable(0, dtype=tf.int64, trainable=False, name="stream_seed")
            self._first_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="first_epoch")
        self._dataset = _batches(
            self.images, batch_size, shuffle, self._seed, drop_remainder, self._first_epoch,
            pad_remainder=pad_remainder,
        )  # fmt: skip
        self._live: tf.data.Iterator | None = None  # at the start of stream epoch _next_epoch
        self._next_epoch = 0

    def holds(self, x: np.ndarray | tf.Tensor) -> bool:
        """Whether this stream holds exactly the images ``x`` (compared element by element)."""
        return same_values(np.asarray(x), _view(self.images))

    def serves(
        self,
        x: np.ndarray | tf.Tensor,
        batch_size: int,
        shuffle: bool,
        drop_remainder: bool,
        pad_remainder: bool = False,
        held: bool = False,
    ) -> bool:
        """Whether this stream holds exactly the images ``x`` with these settings.

        ``held=True`` says the caller has just seen :meth:`holds` ``(x)`` answer yes.
        """
        if self.settings != (batch_size, shuffle, drop_remainder, pad_remainder):
            return False
        return held or self.holds(x)

    def start(self, seed: int, first_epoch: int) -> tf.data.Dataset:
        """The stream of epochs ``first_epoch, first_epoch + 1, …`` ordered by ``seed``."""
        self._live = None  # its later epochs would read the new seed
        self._seed.assign(seed)
        self._first_epoch.assign(first_epoch)
        return self._dataset

    def for_fit(self, seed: int, first_epoch: int) -> tf.data.Dataset:
        """The stream for a ``fit`` that starts at its epoch ``first_epoch``.

        If the previous ``fit`` ran only whole epochs (:meth:`fit_ended`) and this
        one starts at epoch 0 or at the epoch after them, it continues that fit's
        iterator: its epochs are the stream's next ones, ordered by the stream's
        seed, and ``seed`` is not used. Otherwise the stream starts afresh
        (:meth:`start`). Either way epoch ``e`` of the stream is ordered by
        ``(stream seed, e)`` alone, so a run resumed in a new process at epoch
        ``e`` still sees the batches an uninterrupted run would have seen.

        Returns:
            A dataset whose iterator (Keras makes one per ``fit``) is the kept one.
        """
        if self._live is None or first_epoch not in (0, self._next_epoch):
            self.start(seed, first_epoch)
            self._next_epoch = first_epoch
        return _ContinuedDataset(self._dataset, self)

    def fit_ended(self, whole_epochs: int | None) -> None:
        """Records how a ``fit`` on :meth:`for_fit`'s dataset ended.

        Args:
            whole_epochs: The epochs it ran, all of them whole; ``None`` if one
                was cut short or the fit failed, which drops the iterator (its
                position is no longer at the start of an epoch).
        """
        if whole_epochs is None:
            self._live = None
        else:
            self._next_epoch += whole_epochs

    def iterator(self) -> tf.data.Iterator:
        """The kept iterator, made on first use."""
        if self._live is None:
            self._live = iter(self._dataset)
        return self._live


class _ContinuedDataset(_dataset_ops.UnaryUnchangedStructureDataset):
    """A stream's dataset whose ``iter()`` is the stream's kept iterator.

    Keras calls ``iter()`` on its input once per ``fit`` (when ``steps_per_epoch``
    is given, as it is here). It is the only part of tf.data's dataset class this
    changes, and it needs TensorFlow's own base class for datasets that keep
    their input's structure.
    """

    def __init__(self, dataset: tf.data.Dataset, stream: ArrayStream) -> None:
        self._stream = stream
        super().__init__(dataset, dataset._variant_tensor)

    def __iter__(self) -> tf.data.Iterator:
        return self._stream.iterator()


#: Elements compared at a time by :func:`same_values` (a 256 KiB float32 block).
_COMPARE_BLOCK = 1 << 16


def _view(tensor: tf.Tensor) -> np.ndarray:
    """A read-only NumPy view of an eager tensor's buffer (``numpy()`` would copy it)."""
    view = getattr(tensor, "_numpy", tensor.numpy)()
    view = view.view()
    view.flags.writeable = False
    return view


def same_values(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` have one shape and equal elements, compared block by block.

    ``np.array_equal`` on two 25 MB image arrays allocates a 6 MB temporary whose
    first touch costs more than the comparison (11 ms against about 1 ms here);
    blocks of :data:`_COMPARE_BLOCK` elements keep the temporaries in cache.
    """
    if a.shape != b.shape:
        return False
    a, b = a.reshape(-1), b.reshape(-1)
    return all(
        np.array_equal(a[i : i + _COMPARE_BLOCK], b[i : i + _COMPARE_BLOCK])
        for i in range(0, a.size, _COMPARE_BLOCK)
    )


def steps_per_epoch(n: int, batch_size: int, drop_remainder: bool = False) -> int:
    """Batches in one epoch of ``n`` examples."""
    return n // batch_size if drop_remainder else -(-n // batch_size)
