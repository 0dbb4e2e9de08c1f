"""What ``fit`` does with inputs that are not arrays: generators, ``Sequence`` inputs, datasets.

Keras adapts these itself, but three things it does would break or mislead a VAE:

* it gives generator and ``Sequence`` batches only their *rank*
  (``[None, None, None]`` for 8×8 images), and a dataset may be built the same
  way. :func:`dataset_with_image_shape` and :func:`generator_dataset` give such
  batches the model's image shape (the general path, which reads the pixel count
  from the decoder's parameters, covers a ``Sequence``'s batches);
* it has no length for a generator, which its step grouping (see
  :mod:`tfpvae.training.tuning`) cannot run over; a generator becomes a dataset
  of unknown length, which ``fit`` runs one step per call;
* it drops the weights of an ``(x, None, w)`` batch, and it would train on
  ``(images, labels)`` batches as if the labels were targets.

So every batch here becomes ``x`` or ``(x, x, w)``; a ``y`` that is not the
images themselves is refused (:func:`standard_batch`).
"""

from __future__ import annotations

import collections.abc
import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from tfpvae._backend import tf, tfk

#: What a VAE's batch may be, for messages.
BATCH_FORMS = "x, (x,), (x, x), (x, None, w) or (x, x, w)"


def image_shape(model: Any) -> tuple[int, ...]:
    """The shape of one image that ``model`` takes."""
    return tuple(model.image_shape)


def is_generator(data: Any) -> bool:
    """Whether ``data`` is a Python iterator (a generator) rather than an array or dataset."""
    return isinstance(data, collections.abc.Iterator) and not isinstance(
        data, (tf.data.Dataset, tfk.utils.Sequence, np.ndarray, tf.Tensor)
    )


def is_sequence(data: Any) -> bool:
    """Whether ``data`` is a ``tf_keras.utils.Sequence``."""
    return isinstance(data, tfk.utils.Sequence)


def _labels_error(what: str, x_shape: Any, y_shape: Any) -> ValueError:
    return ValueError(
        f"{what} yields (x, y) with a y of shape {tuple(y_shape)} that is not x "
        f"(shape {tuple(x_shape)}): "
        "a VAE reconstructs its input, so a batch is one of "
        f"{BATCH_FORMS}; drop the labels (e.g. yield x only)"
    )


def refuse_label_inputs(model: Any, x: Any, what: str = "x") -> None:
    """Refuses ``(images, labels)`` handed to a VAE that takes images alone.

    A pair of arrays as ``x``, or a dataset whose elements' inputs are such a
    pair, is what a conditional VAE (one with ``num_classes``) takes; any other
    VAE would fail deep inside Keras, or train on the wrong tensor.

    Raises:
        ValueError: Saying what to pass instead.
    """
    if getattr(model, "num_classes", None):
        return
    if isinstance(x, tf.data.Dataset):
        pair = isinstance(_x_spec(x.element_spec), tuple)
    else:
        pair = isinstance(x, (tuple, list)) and len(x) == 2 and not np.isscalar(x[0])
    if pair:
        raise ValueError(
            f"{what} holds (images, labels), but this VAE models images alone "
            "(it has no num_classes): pass the images only, e.g. fit(x_train) or a dataset "
            "of x batches; labels go to a conditional VAE"
        )


def standard_batch(batch: Any, what: str = "x") -> np.ndarray | tuple[np.ndarray, ...]:
    """One batch of a generator or ``Sequence`` as ``x`` or ``(x, x, w)`` (float32).

    Args:
        batch: ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, w)`` with ``y`` ``None`` or
            the images themselves (a list works as a tuple).
        what: Name of the input, for messages.

    Returns:
        ``x`` when the batch has no weights, else ``(x, x, w)``.

    Raises:
        ValueError: For a dict, more than three parts, or a ``y`` that is not ``x``.
    """
    if isinstance(batch, list):
        batch = tuple(batch)
    if isinstance(batch, dict) or (isinstance(batch, tuple) and not 1 <= len(batch) <= 3):
        raise ValueError(f"{what} must yield batches of the form {BATCH_FORMS}")
    parts = batch if isinstance(batch, tuple) else (batch,)
    x = np.asarray(parts[0], dtype=np.float32)
    y = parts[1] if len(parts) > 1 else None
    if y is not None and y is not parts[0]:
        labels = np.asarray(y)
        if labels.shape != x.shape or not np.array_equal(labels, x):
            raise _labels_error(what, x.shape, labels.shape)
    if len(parts) < 3 or parts[2] is None:
        return x
    return x, x, np.asarray(parts[2], dtype=np.float32).reshape([-1])


def check_first_batch(batch: Any, model: Any, what: str) -> None:
    """Checks one raw batch (images, labels) before any step, with the messages of arrays."""
    parts = tuple(batch) if isinstance(batch, (list, tuple)) else (batch,)
    if parts and not isinstance(parts[0], dict):
        model.check_images(parts[0], what)
    standard_batch(batch, what)


def _spec(model: Any, weighted: bool) -> Any:
    images = tf.TensorSpec([None, *image_shape(model)], tf.float32)
    return (images, images, tf.TensorSpec([None], tf.float32)) if weighted else images


def generator_dataset(model: Any, generator: Iterator, what: str = "x") -> tf.data.Dataset:
    """A Python generator of batches as a dataset of the model's image shape.

    The first batch is read here and checked like an array (its images and its
    ``y``); it decides whether the batches carry weights. The dataset has unknown
    length; its iterators share the generator, so each goes on where the last stopped.

    Args:
        model: The :class:`~tfpvae.VAE` to train.
        generator: Yields batches ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, w)``.
        what: Name of the input, for messages.

    Raises:
        ValueError: On an empty generator, or a first batch that is refused.
    """
    try:
        first = next(generator)
    except StopIteration:
        raise ValueError(f"{what} is an empty generator: it yielded no batch") from None
    check_first_batch(first, model, what)
    weighted = isinstance(standard_batch(first, what), tuple)
    pending = [first]  # served once, to whichever iterator comes first

    def batches() -> Iterator[Any]:
        for batch in itertools.chain([pending.pop()] if pending else [], generator):
            standard = standard_batch(batch, what)
            if isinstance(standard, tuple) != weighted:
                raise ValueError(
                    f"{what} must yield weights with every batch or with none "
                    f"(the first batch {'had' if weighted else 'had no'} weights)"
                )
            yield standard

    return tf.data.Dataset.from_generator(batches, output_signature=_spec(model, weighted))


class ImageSequence(tfk.utils.Sequence):
    """A ``Sequence`` whose batches are :func:`standard_batch` forms of another one.

    Keras keeps what it does for a ``Sequence`` (its length, the per-epoch
    shuffle of the batch order, ``on_epoch_end``, workers).

    Args:
        sequence: The user's ``tf_keras.utils.Sequence``.
        what: Name of the input, for messages.
    """

    def __init__(self, sequence: tfk.utils.Sequence, what: str = "x") -> None:
        super().__init__()
        self.sequence, self.what = sequence, what

    def __len__(self) -> int:
        return len(self.sequence)

    def __getitem__(self, index: int) -> Any:
        return standard_batch(self.sequence[index], self.what)

    def on_epoch_end(self) -> None:
        self.sequence.on_epoch_end()


def sequence_input(model: Any, sequence: tfk.utils.Sequence, what: str = "x") -> ImageSequence:
    """``sequence`` checked on its first batch and wrapped in an :class:`ImageSequence`.

    Raises:
        ValueError: On an empty ``Sequence`` or a first batch that is refused.
    """
    if len(sequence) == 0:
        raise ValueError(f"{what} is an empty Sequence: it has no batch")
    check_first_batch(sequence[0], model, what)
    return ImageSequence(sequence, what)


def _x_spec(element_spec: Any) -> Any:
    return element_spec[0] if isinstance(element_spec, tuple) else element_spec


def dataset_with_image_shape(model: Any, dataset: tf.data.Dataset, what: str = "x") -> Any:
    """``dataset`` with its batches given the model's image shape where it lacks it.

    A dataset built without full shapes (``from_generator`` with a
    ``TensorSpec([None, None, None])``, a ``map`` through ``tf.py_function``)
    gets ``tf.ensure_shape`` on its images (and its targets); one whose
    images' shape is already known is returned unchanged.

    Raises:
        ValueError: If the elements are ``(x, y[, w])`` with a ``y`` that cannot
            be the images (labels), or images of another rank or shape.
    """
    spec = dataset.element_spec
    x_spec = _x_spec(spec)
    if not isinstance(x_spec, tf.TensorSpec):
        return dataset  # a dict or nested inputs: Keras's own checks apply
    shape = [None, *image_shape(model)]
    if not x_spec.shape.is_compatible_with(shape):
        raise ValueError(
            f"{what} yields images of shape {x_spec.shape}, but the model takes batches of "
            f"shape {tuple(shape)}"
        )
    y_spec = spec[1] if isinstance(spec, tuple) and len(spec) > 1 else None
    if isinstance(y_spec, tf.TensorSpec) and not y_spec.shape.is_compatible_with(shape):
        raise _labels_error(what, x_spec.shape, y_spec.shape)
    shaped_y = not isinstance(y_spec, tf.TensorSpec) or y_spec.shape[1:].is_fully_defined()
    if x_spec.shape[1:].is_fully_defined() and shaped_y:
        return dataset

    def shaped(*element: tf.Tensor) -> Any:
        parts = [tf.ensure_shape(element[0], shape)]
        if len(element) > 1:
            parts.append(tf.ensure_shape(element[1], shape))
        parts.extend(element[2:])
        return tuple(parts) if len(parts) > 1 else parts[0]

    return dataset.map(shaped)


def read_generator(model: Any, generator: Iterator, what: str) -> tuple[np.ndarray, ...]:
    """All batches of a finite generator as ``(x, x)`` or ``(x, x, w)`` arrays.

    For ``validation_data``: Keras evaluates it at every epoch's end, and a
    generator read there once would have nothing left for the next epoch.

    Raises:
        ValueError: On an empty generator or a batch that is refused.
    """
    batches: list[Any] = []
    for batch in generator:
        if not batches:
            check_first_batch(batch, model, what)
        batches.append(standard_batch(batch, what))
    if not batches:
        raise ValueError(f"{what} is an empty generator: it yielded no batch")
    if any(isinstance(b, tuple) != isinstance(batches[0], tuple) for b in batches):
        raise ValueError(f"{what} must yield weights with every batch or with none")
    if not isinstance(batches[0], tuple):
        images = np.concatenate(batches)
        return images, images
    images = np.concatenate([b[0] for b in batches])
    return images, images, np.concatenate([b[2] for b in batches])


def labelled_dataset(model: Any, dataset: tf.data.Dataset, what: str = "x") -> tf.data.Dataset:
    """A conditional VAE's ``tf.data`` of ``(images, labels[, w])``, shaped and checked.

    The images get the model's image shape; the labels (class ids ``[batch]`` or
    one-hot rows ``[batch, C]``) are checked as each batch is read, so an id outside
    0..C−1 stops training with a message instead of becoming a row of zeros.

    Raises:
        ValueError: If the elements are not ``(images, labels[, w])`` of tensors, or
            the images or labels have the wrong shape.
    """
    conditioning = model.parts.conditioning
    spec = dataset.element_spec
    pair = isinstance(spec, tuple) and len(spec) in (2, 3)
    if not pair or not all(isinstance(s, tf.TensorSpec) for s in spec[:2]):
        raise ValueError(
            f"{what} must yield (images, labels) or (images, labels, weights) batches: "
            + conditioning.missing()
        )
    shape = [None, *image_shape(model)]
    if not spec[0].shape.is_compatible_with(shape):
        raise ValueError(
            f"{what} yields images of shape {spec[0].shape}, but the model takes batches of "
            f"shape {tuple(shape)}"
        )
    label_shape = spec[1].shape
    c = conditioning.num_classes
    if label_shape.rank is not None and not (
        label_shape.rank == 1 or (label_shape.rank == 2 and label_shape[-1] in (None, 1, c))
    ):
        raise ValueError(
            f"{what} yields labels of shape {label_shape}; a conditional VAE takes class ids "
            f"(batch,) or one-hot rows (batch, {c}) beside the images"
        )

    def checked(images: tf.Tensor, labels: tf.Tensor, *weights: tf.Tensor) -> Any:
        return (tf.ensure_shape(images, shape), conditioning.checked_in_graph(labels), *weights)

    return dataset.map(checked)
