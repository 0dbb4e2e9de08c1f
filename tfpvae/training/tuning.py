"""CPU and XLA tuning of the training loop, in one place.

* **Step grouping.** Keras runs :data:`STEPS_PER_EXECUTION` training steps per
  call of its train function, which saves the Python round trip per step that
  costs as much as a step of the course's small model. Callbacks still see every
  epoch; batch-level callbacks see every 16th batch.
* **XLA.** The fused ELBO's step (:mod:`tfpvae.objectives.fused`) is compiled
  with XLA on one replica for trunks where that is faster on a CPU (the MLP).
  Compiling costs about 5–8 s per model on a 2-core CPU and then runs each step
  about twice as fast, so ``TFPVAE_XLA=0`` turns it off for short runs.
* **Single-batch calls.** ``train_on_batch`` and friends hand Keras an iterator
  of one batch, which a grouped train function would run past; they run with
  one step per call instead (:func:`one_step_per_call`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from tfpvae._backend import tf, tfk

#: Training steps per call of Keras's train function.
STEPS_PER_EXECUTION = 16

#: Environment variable: ``0`` (or ``false``/``no``/``off``) builds models without XLA.
XLA_ENV = "TFPVAE_XLA"

#: Keras's cached step functions, by the name of the attribute that holds them.
_STEP_FUNCTIONS = ("train_function", "test_function", "predict_function")


def xla_enabled() -> bool:
    """Whether ``$TFPVAE_XLA`` allows XLA (anything but ``0``/``false``/``no``/``off``)."""
    return os.environ.get(XLA_ENV, "").strip().lower() not in ("0", "false", "no", "off")


def use_xla(xla_friendly: bool, architecture_jit: bool, replicas: int) -> bool:
    """XLA for an objective and trunk it speeds up, on one replica, unless turned off."""
    return xla_enabled() and xla_friendly and architecture_jit and replicas == 1


@contextlib.contextmanager
def steps_per_execution(model: tfk.Model, steps: int) -> Iterator[None]:
    """Temporarily runs ``steps`` training steps per call of the train function."""
    previous = int(model._steps_per_execution.numpy())
    model._steps_per_execution.assign(steps)
    try:
        yield
    finally:
        model._steps_per_execution.assign(previous)


@contextlib.contextmanager
def one_step_per_call(model: tfk.Model) -> Iterator[None]:
    """Runs the ``*_on_batch`` calls with one-step functions, kept apart from ``fit``'s.

    Keras caches one train, test and predict function per model and builds it for
    the steps-per-execution in force when it is first made. Inside this context
    the model sees its one-step functions (made on first use and kept for the
    next call); the grouped ones come back afterwards.
    """
    grouped = {name: getattr(model, name) for name in _STEP_FUNCTIONS}
    single: dict[str, Any] = model.__dict__.setdefault("_tfpvae_single_step", {})
    for name in _STEP_FUNCTIONS:
        object.__setattr__(model, name, single.get(name))
    try:
        with steps_per_execution(model, 1):
            yield
    finally:
        for name in _STEP_FUNCTIONS:
            single[name] = getattr(model, name)
            object.__setattr__(model, name, grouped[name])


def forget_step_functions(model: tfk.Model) -> None:
    """Drops the one-step functions (``compile`` makes new ones necessary)."""
    model.__dict__.pop("_tfpvae_single_step", None)


def unknown_length(data: Any) -> bool:
    """Whether ``data`` is a dataset whose number of batches TensorFlow cannot tell."""
    return isinstance(data, tf.data.Dataset) and int(data.cardinality()) < 0
