"""What ``VAE.fit`` does around Keras's own ``fit``: arrays, checks, the guard, grouping.

A VAE reconstructs its input, so ``fit(x)`` (or ``fit(x, x)``) is the whole call.
For in-memory arrays this module

* checks the images (:func:`~tfpvae.training.validation.check_images`) and the
  sample weights, and refuses ``class_weight`` (a VAE has no classes);
* splits off ``validation_split`` the way Keras does (the last fraction of the
  images, before any shuffling);
* streams the images through :mod:`tfpvae.training.pipeline`: a seeded order per
  epoch and whole-batch gathers, the last partial batch padded with weight-0
  images so that every batch has one shape (an XLA step compiles once). On one
  replica, unweighted, the stream is kept for the next ``fit`` on the same
  images (:class:`~tfpvae.training.pipeline.ArrayStream`), which skips their
  checks (done when the stream was made) and, after a ``fit`` of whole epochs,
  continues its iterator (:class:`WholeEpochs` counts them);
* adds a :class:`~tfpvae.training.faults.NonFiniteGuard` unless one is given.

A conditional VAE (``num_classes``) takes ``(images, labels)``: the labels are
checked and streamed beside their images (batches ``(x, labels[, w])``), and a
``tf.data`` of ``(images, labels[, w])`` has its labels checked as it is read.

Generators, ``Sequence`` inputs and datasets go through :mod:`tfpvae.training.inputs`:
their batches get the model's image shape and the ``x`` / ``(x, x, w)`` form, and
a generator becomes a dataset. An input of unknown length (a generator, a
dataset of unknown cardinality) without ``steps_per_epoch``, or such a
``validation_data`` without ``validation_steps``, runs one step per call, since
Keras needs to see where its epochs end to group steps.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from tfpvae._backend import tf, tfk
from tfpvae.training import inputs
from tfpvae.training.faults import NonFiniteGuard
from tfpvae.training.pipeline import ArrayStream, array_dataset, steps_per_epoch
from tfpvae.training.tuning import add_work, steps_per_execution, unknown_length

#: The latest unweighted training stream of each model, kept for its next ``fit``.
_STREAMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def is_array(value: Any) -> bool:
    """Whether ``value`` is an in-memory array (NumPy or an eager tensor)."""
    return isinstance(value, (np.ndarray, tf.Tensor))


def next_seed() -> int:
    """A seed drawn from NumPy's global state (fixed by ``set_random_seed``)."""
    return int(np.random.randint(2**31 - 1))


def kept_stream(model: Any) -> ArrayStream | None:
    """The training stream ``model``'s next ``fit`` may reuse, if any."""
    return _STREAMS.get(model)


def check_sample_weight(sample_weight: Any, n: int, what: str = "sample_weight") -> np.ndarray:
    """``sample_weight`` as ``[n]`` float32, refusing a wrong length or bad values."""
    weights = np.asarray(sample_weight, dtype=np.float32)
    if weights.shape != (n,):
        raise ValueError(
            f"{what} must hold one weight per image, shape ({n},); got {weights.shape}"
        )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f"{what} must be finite and non-negative")
    return weights


def _check_target(x: Any, y: Any) -> None:
    if y is not None and y is not x and not np.array_equal(np.asarray(x), np.asarray(y)):
        raise ValueError(
            f"a VAE reconstructs its input: y must be x (or None), not an array of shape "
            f"{np.shape(y)} (labels?); call fit(x) without them"
        )


def _split(
    x: Any, weights: np.ndarray | None, fraction: float, labels: np.ndarray | None = None
) -> tuple[Any, ...]:
    """Keras's ``validation_split``: the last ``fraction`` of the images (weights, labels).

    Returns ``(images, weights, validation_data, labels)``.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_split must be in (0, 1), got {fraction}")
    cut = int(len(x) * (1.0 - fraction))
    if cut == 0 or cut == len(x):
        raise ValueError(
            f"validation_split={fraction} leaves no images on one side of {len(x)}; "
            "change the fraction or pass validation_data"
        )
    x = np.asarray(x)
    target = x if labels is None else labels
    kept = None if labels is None else labels[:cut]
    if weights is None:
        return x[:cut], None, (x[cut:], target[cut:]), kept
    return x[:cut], weights[:cut], (x[cut:], target[cut:], weights[cut:]), kept


def _validation_input(model: Any, validation: Any, steps: int | None, drop: bool) -> Any:
    """A generator, ``Sequence`` or dataset ``validation_data`` in the form fit needs.

    A generator without ``validation_steps`` is read whole (see
    :func:`~tfpvae.training.inputs.read_generator`), in batches of its first batch's size.
    """
    what = "validation_data"
    if model.num_classes is not None:
        return _labelled_stream(model, validation, what)
    if inputs.is_generator(validation):
        if steps is not None:
            return inputs.generator_dataset(model, validation, what)
        images, _, *weights = inputs.read_generator(model, validation, what)
        weight = weights[0] if weights else None
        return array_dataset(images, len(images), False, drop_remainder=drop, sample_weight=weight)
    if inputs.is_sequence(validation):
        return inputs.sequence_input(model, validation, what)
    if isinstance(validation, tf.data.Dataset):
        return inputs.dataset_with_image_shape(model, validation, what)
    return validation


def _validation_dataset(model: Any, validation: Any, batch_size: int, drop: bool) -> Any:
    """Array ``validation_data`` (images alone, or a tuple) as a dataset; anything else unchanged.

    Keras takes arrays only as ``(x, y[, w])`` tuples; a VAE's target is its input,
    so the images alone are taken too.
    """
    if is_array(validation):
        validation = (validation,)
    if not (isinstance(validation, tuple) and is_array(validation[0])):
        return validation
    images = model.check_images(validation[0], "validation_data")
    target = validation[1] if len(validation) > 1 else None
    labels = None
    if model.num_classes is not None:
        labels = model.checked_labels(target, len(images), "the labels of validation_data")
    else:
        _check_target(validation[0], target)
    weights = None
    if len(validation) > 2 and validation[2] is not None:
        weights = check_sample_weight(validation[2], len(images), "validation sample_weight")
    return array_dataset(
        images, batch_size, False, drop_remainder=drop, sample_weight=weights, labels=labels,
        pad_remainder=not drop and pads_exactly(model),
    )  # fmt: skip


def pads_exactly(model: Any) -> bool:
    """Whether weight-0 copies filling the last batch leave every term of a step unchanged.

    The loss and the trackers are weighted means, so filler never counts there. What
    sees the whole batch does not weight: free bits' per-dimension batch means,
    activity regularisers and batch normalisation in the networks. With any of those
    the last partial batch is kept as it is (one more trace, exact terms).
    """
    if getattr(model.objective, "free_bits", 0.0):
        return False
    networks = [model.encoder, model.decoder]
    if model.prior_layer is not None:
        networks.append(model.prior_layer)
    for network in networks:
        for layer in network._flatten_layers(include_self=True):
            if getattr(layer, "activity_regularizer", None) is not None and not _is_kl_layer(layer):
                return False
            if isinstance(layer, tfk.layers.BatchNormalization):
                return False
    return True


def _is_kl_layer(layer: Any) -> bool:
    """A TFP KL regulariser on the posterior layer, which the objective never runs."""
    return type(layer.activity_regularizer).__name__ == "KLDivergenceRegularizer"


def _training_data(
    model: Any,
    x: Any,
    weights: Any,
    batch_size: int,
    kwargs: dict,
    labels: Any = None,
    held: bool = False,
) -> tuple[Any, ArrayStream | None]:
    """The endless stream of training batches for arrays (kwargs gain ``steps_per_epoch``).

    ``held`` says the kept stream was just found to hold exactly ``x``.

    Returns:
        The dataset, and the kept stream it comes from (whose :meth:`~ArrayStream.fit_ended`
        the caller reports to) or ``None``.
    """
    drop = model.distribute_strategy.num_replicas_in_sync > 1
    steps = steps_per_epoch(len(x), batch_size, drop_remainder=drop)
    if steps == 0:
        raise ValueError(
            f"batch_size {batch_size} is larger than the {len(x)} training images, so "
            "an epoch would have no full batch to split across replicas; lower batch_size"
        )
    shuffle, seed = bool(kwargs.pop("shuffle", True)), next_seed()
    first_epoch = int(kwargs.get("initial_epoch", 0))
    kwargs.setdefault("steps_per_epoch", steps)
    pad = not drop and pads_exactly(model)
    if drop or weights is not None or labels is not None:  # constants tf.distribute can rewrite
        dataset = array_dataset(
            x, batch_size, shuffle, seed, drop, first_epoch, weights, labels=labels,
            pad_remainder=pad,
        )  # fmt: skip
        return dataset, None
    stream = _STREAMS.get(model)
    if stream is None or not stream.serves(x, batch_size, shuffle, False, pad, held=held):
        _STREAMS.pop(model, None)  # release the old copy of the images before making the new one
        stream = _STREAMS[model] = ArrayStream(x, batch_size, shuffle, False, pad_remainder=pad)
    if kwargs["steps_per_epoch"] != steps:  # the user's epochs are not the stream's
        return stream.start(seed, first_epoch), None
    return stream.for_fit(seed, first_epoch), stream


class WholeEpochs(tfk.callbacks.Callback):
    """Counts the epochs a ``fit`` ran, if all were whole (for its kept stream).

    An epoch is cut short when a callback stops training inside it (the
    non-finite guard, ``TerminateOnNaN``); :meth:`count` is then ``None``, as it
    is when training never reached its end.
    """

    def __init__(self, steps: int) -> None:
        super().__init__()
        self._steps, self._whole, self._cut, self._ended, self._batches = steps, 0, False, False, 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._batches = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches = batch + 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._batches == self._steps:
            self._whole += 1
        else:
            self._cut = True

    def on_train_end(self, logs: dict | None = None) -> None:
        self._ended = True

    def count(self) -> int | None:
        """The whole epochs run, or ``None`` if one was cut short or training did not end."""
        return self._whole if self._ended and not self._cut else None


class StepCount(tfk.callbacks.Callback):
    """Keeps ``optimizer.iterations`` at the steps that ran on an input of unknown length.

    Keras finds the end of such an input by one more call of its train function,
    which fails on the empty iterator. Without XLA, the optimizer's step counter
    (which depends on no input) is still incremented in that call, so each epoch
    would count one step too many (and learning-rate schedules, checkpoints and
    resumed runs would see it). This callback puts the counter back at each
    epoch's end: the count at its start plus the batches Keras reported.
    """

    def __init__(self) -> None:
        super().__init__()
        self._start: int | None = None
        self._batches = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start, self._batches = int(self.model.optimizer.iterations.numpy()), 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches = batch + 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._restore()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._start is None:
            return
        iterations = self.model.optimizer.iterations
        if int(iterations.numpy()) > self._start + self._batches:
            iterations.assign(self._start + self._batches)
        self._start = None


def _streamed_input(model: Any, x: Any, what: str = "x") -> Any:
    """A generator, ``Sequence`` or dataset ``x`` given the model's image shape and batch form."""
    if model.num_classes is not None:
        return _labelled_stream(model, x, what)
    if inputs.is_generator(x):
        return inputs.generator_dataset(model, x, "x")
    if inputs.is_sequence(x):
        return inputs.sequence_input(model, x, "x")
    if isinstance(x, tf.data.Dataset):
        return inputs.dataset_with_image_shape(model, x, "x")
    return x


def _labelled_stream(model: Any, x: Any, what: str) -> Any:
    """A conditional VAE's dataset, checked; generators and ``Sequence`` inputs are refused."""
    if isinstance(x, tf.data.Dataset):
        return inputs.labelled_dataset(model, x, what)
    if inputs.is_generator(x) or inputs.is_sequence(x):
        raise ValueError(
            f"a conditional VAE takes {what} as arrays (images, labels) or a tf.data of "
            "(images, labels); wrap a generator in tf.data.Dataset.from_generator with an "
            "output_signature of (images, labels)"
        )
    return x


def _labelled_arrays(model: Any, x: Any, y: Any, what: str = "x") -> tuple[Any, Any]:
    """``(images, labels)`` of a conditional VAE's arrays: ``x=(images, labels)`` or ``x, y``.

    Raises:
        ValueError: Without labels, or with images or labels that are refused.
    """
    if isinstance(x, (tuple, list)) and len(x) == 2 and y is None:
        x, y = x
    if not is_array(x):
        raise ValueError(model.parts.conditioning.missing())
    images = model.check_images(x, what)
    return images, model.checked_labels(y, len(images), f"the labels of {what}")


def _is_labelled(model: Any, x: Any) -> bool:
    """Whether ``x`` is a conditional VAE's in-memory ``(images, labels)``."""
    pair = isinstance(x, (tuple, list)) and len(x) == 2 and is_array(x[0])
    return model.num_classes is not None and (is_array(x) or pair)


def evaluate(model: Any, keras_evaluate: Callable[..., Any], x: Any, y: Any, *args: Any,
             **kwargs: Any) -> Any:  # fmt: skip
    """Runs ``keras_evaluate`` on checked arrays, or on streamed inputs as ``fit`` takes them.

    Images alone (on one replica, without ``steps``) are evaluated as a stream
    padded to whole batches with weight-0 images, as ``fit`` trains on them, so
    the compiled test step sees one batch shape. An input of unknown length
    without ``steps`` is evaluated one step per call, since Keras groups steps
    only where it knows where the data ends.
    """
    inputs.refuse_label_inputs(model, x, "x")
    if _is_labelled(model, x):
        x, y = _labelled_arrays(model, x, y)
        add_work(model, len(x))
    elif is_array(x):
        images = model.check_images(x, "x")
        add_work(model, len(images))
        if kwargs.get("steps") is None and model.distribute_strategy.num_replicas_in_sync == 1:
            weights = kwargs.pop("sample_weight", None)
            weights = None if weights is None else check_sample_weight(weights, len(images))
            batch_size = kwargs.pop("batch_size", None) or 32
            pad = pads_exactly(model)
            x = array_dataset(images, batch_size, False, sample_weight=weights, pad_remainder=pad)
            y = None
    else:
        x = _streamed_input(model, x)
        # fit's validation (Keras's cached evaluation data) is counted with fit's work
        add_work(model, 0 if kwargs.get("_use_cached_eval_dataset") else None)
    one_step = unknown_length(x) and kwargs.get("steps") is None
    with steps_per_execution(model, 1) if one_step else contextlib.nullcontext():
        return keras_evaluate(x, y, *args, **kwargs)


def fit(
    model: Any,
    keras_fit: Callable[..., Any],
    x: Any = None,
    y: Any = None,
    batch_size: int | None = None,
    **kwargs: Any,
) -> tfk.callbacks.History:
    """Runs ``keras_fit`` (Keras's ``Model.fit`` of ``model``) on prepared inputs.

    Args:
        model: A :class:`~tfpvae.VAE`.
        keras_fit: ``super().fit`` of that model.
        x: The images, as for ``tf_keras.Model.fit``. A conditional VAE takes
            ``(images, labels)`` arrays, or a ``tf.data`` of ``(images, labels[, weights])``
            (``validation_data`` likewise).
        y: ``None`` or the images themselves; a conditional VAE's labels, when ``x``
            holds only the images.
        batch_size: As for ``tf_keras.Model.fit``.
        **kwargs: As for ``tf_keras.Model.fit``.

    Raises:
        ValueError: On ``class_weight``, a ``y`` that is not ``x``, bad images or
            sample weights, or a ``validation_split`` that leaves no images.
    """
    if kwargs.get("class_weight") is not None:
        raise ValueError(
            "class_weight does not apply to a VAE (it has no classes); "
            "weight images with sample_weight instead"
        )
    callbacks = list(kwargs.pop("callbacks", None) or [])
    if not any(isinstance(c, NonFiniteGuard) for c in callbacks):
        callbacks.insert(0, NonFiniteGuard())
    inputs.refuse_label_inputs(model, x, "x")
    stream: ArrayStream | None = None
    if is_array(x) or _is_labelled(model, x):
        labels, held = None, False
        if model.num_classes is not None:
            x, labels = _labelled_arrays(model, x, y)
        else:
            _check_target(x, y)
            kept = _STREAMS.get(model)
            held = kept is not None and kept.holds(x)
            if not held:  # a kept stream's images were checked when it was made
                x = model.check_images(x, "x")
        weights = kwargs.pop("sample_weight", None)
        weights = None if weights is None else check_sample_weight(weights, len(x))
        split = kwargs.pop("validation_split", 0.0)
        if split and kwargs.get("validation_data") is None:
            x, weights, kwargs["validation_data"], labels = _split(x, weights, split, labels)
            held = False  # the kept stream held all of x, not the part that trains
        batch_size = batch_size or 32
        drop = model.distribute_strategy.num_replicas_in_sync > 1
        kwargs["validation_data"] = _validation_dataset(
            model, kwargs.get("validation_data"), batch_size, drop
        )
        x, stream = _training_data(model, x, weights, batch_size, kwargs, labels, held)
        epochs = int(kwargs.get("epochs", 1)) - int(kwargs.get("initial_epoch", 0))
        add_work(model, max(epochs, 0) * kwargs["steps_per_epoch"] * batch_size)
        if stream is not None:
            whole_epochs = WholeEpochs(kwargs["steps_per_epoch"])
            callbacks.append(whole_epochs)
        y, batch_size = None, None
    else:
        x = _streamed_input(model, x)
        add_work(model, None)  # its length is the stream's to tell
    drop = model.distribute_strategy.num_replicas_in_sync > 1
    validation_steps = kwargs.get("validation_steps")
    validation = _validation_input(model, kwargs.get("validation_data"), validation_steps, drop)
    kwargs["validation_data"] = validation
    if unknown_length(x):
        callbacks.insert(0, StepCount())
    # Keras can group steps only when it knows where an epoch ends.
    one_step = (unknown_length(x) and kwargs.get("steps_per_epoch") is None) or (
        unknown_length(validation) and validation_steps is None
    )
    try:
        with steps_per_execution(model, 1) if one_step else contextlib.nullcontext():
            history = keras_fit(x, y, batch_size=batch_size, callbacks=callbacks, **kwargs)
    finally:
        if stream is not None:
            stream.fit_ended(whole_epochs.count())
    if model.training_fault is not None:
        warnings.warn(model.training_fault.message(), RuntimeWarning, stacklevel=3)
    return history
