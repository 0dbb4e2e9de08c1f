"""CPU and XLA tuning of the training loop, in one place.

* **Step grouping.** Keras runs :data:`STEPS_PER_EXECUTION` training steps per
  call of its train function, which saves the Python round trip per step that
  costs as much as a step of the course's small model, and a longer loop keeps
  the CPU's threads busy between steps (at batch 32 on the MLP a step took
  0.82 ms in 16-step calls, 0.72 ms in 64-step and 0.69 ms in 250-step ones).
  Callbacks still see every epoch; batch-level callbacks see every 128th batch
  (or an epoch's last).
* **XLA.** The fused ELBO's step (:mod:`tfpvae.objectives.fused`) is compiled
  with XLA on one replica for trunks where that is faster on a CPU (the MLP),
  once the model has work enough to repay the compile (:data:`XLA_MIN_IMAGES`
  images asked for by its calls so far, :func:`add_work`); until then its
  steps run as plain graphs (:class:`Tiered`). On this 2-core CPU a first
  compile of the default model's step took about 1.2 s and then saved about
  40 µs per image at batch 32, so a notebook's first ``fit`` of 2 epochs on
  1,600 images (3,200 images) is quicker without it; a compile found in the
  persistent cache (below) loads in about 0.1 s and repays itself within a few
  thousand images. ``TFPVAE_XLA=1`` compiles from the first step, ``0`` never.
* **One trace per step.** Keras traces its step inside the loop of its train
  function, twice (AutoGraph probes a loop body once before building it), and
  converts every function the step calls with AutoGraph. :class:`TracedStep`
  makes the model's ``train_step``/``test_step``/``predict_step`` one
  ``tf.function`` traced without AutoGraph (falling back to AutoGraph for a
  network that needs it), which the loop calls: on the course's MLP this cut the
  first epoch's CPU time from 6.8 s to 4.2 s.
* **Compiled steps kept between processes.** ``import tfpvae`` points
  TensorFlow's persistent XLA cache at a directory (:mod:`tfpvae._xla_cache`),
  so a later process that builds the same model loads its compiled step instead
  of compiling it again. The calls of an XLA model's step functions run inside
  the native log filter (:class:`QuietCalls`), as loading logs two harmless errors.
* **Loops without AutoGraph.** On one replica the train and test functions
  are :func:`step_loop`: Keras's loop over ``steps_per_execution`` written as a
  ``tf.while_loop``, so that AutoGraph converts neither it nor what it calls.
* **Single-batch calls.** ``train_on_batch`` and friends hand Keras an iterator
  of one batch, which a grouped train function would run past; they run with
  one step per call instead (:func:`one_step_per_call`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Iterator
from typing import Any

from tfpvae._backend import tf, tfk
from tfpvae._native_log import native_log_filter, native_log_level
from tfpvae._xla_cache import cache_in_use

#: Training steps per call of Keras's train function.
STEPS_PER_EXECUTION = 128

#: Environment variable: ``0`` (``false``/``no``/``off``) builds models without XLA,
#: ``1`` (``true``/``yes``/``on``/``always``) compiles their steps from the first one,
#: unset (or ``auto``) compiles them once the model has work enough (:data:`XLA_MIN_IMAGES`).
XLA_ENV = "TFPVAE_XLA"
_XLA_MODES = {
    **dict.fromkeys(("", "auto"), "auto"),
    **dict.fromkeys(("1", "true", "yes", "on", "always"), "always"),
    **dict.fromkeys(("0", "false", "no", "off"), "off"),
}

#: Images (counted over a model's ``fit``, ``evaluate``, ``predict`` and ``*_on_batch``
#: calls, epochs times images for ``fit``) from which an XLA model's steps are compiled.
XLA_MIN_IMAGES = 5_000

#: Where a model keeps the images its calls have asked for (in its ``__dict__``,
#: untracked by Keras).
_WORK = "_tfpvae_work"

#: Keras's cached step functions, by the name of the attribute that holds them.
_STEP_FUNCTIONS = ("train_function", "test_function", "predict_function")


def xla_mode() -> str:
    """``"auto"``, ``"always"`` or ``"off"``, from ``$TFPVAE_XLA`` (see :data:`XLA_ENV`).

    Raises:
        ValueError: For a value that names none of them.
    """
    value = os.environ.get(XLA_ENV, "").strip().lower()
    if value not in _XLA_MODES:
        raise ValueError(
            f"{XLA_ENV}={value!r}: use 1 (compile from the first step), 0 (never) or auto"
        )
    return _XLA_MODES[value]


def xla_enabled() -> bool:
    """Whether ``$TFPVAE_XLA`` allows XLA (any mode of :func:`xla_mode` but ``"off"``)."""
    return xla_mode() != "off"


def add_work(model: tfk.Model, images: int | float | None) -> None:
    """Counts the images a call of ``model`` asks for towards :data:`XLA_MIN_IMAGES`.

    Args:
        model: The model called.
        images: Images the call will run through the model (epochs times images
            for ``fit``); ``None`` where that is unknown (a generator, a dataset),
            which counts as work enough.
    """
    done = model.__dict__.get(_WORK, 0)
    model.__dict__[_WORK] = math.inf if images is None else done + images


def compiles_now(model: tfk.Model) -> bool:
    """Whether ``model``'s step functions run their steps compiled with XLA now.

    An XLA model (``model.jit_compile``) compiles once its calls have asked for
    :data:`XLA_MIN_IMAGES` images in all (:func:`add_work`), or from the first
    step with ``TFPVAE_XLA=1``. It never goes back.
    """
    if not model.jit_compile:
        return False
    return xla_mode() == "always" or model.__dict__.get(_WORK, 0) >= XLA_MIN_IMAGES


def use_xla(xla_friendly: bool, architecture_jit: bool, replicas: int) -> bool:
    """XLA for an objective and trunk it speeds up, on one replica, unless turned off."""
    return xla_enabled() and xla_friendly and architecture_jit and replicas == 1


class QuietCalls:
    """A Keras step function whose calls run inside the native log filter.

    TensorFlow compiles an XLA function on the first call with each new input
    signature or shape (a new trace, a generator's odd batch, not only the first
    call), and when it finds the compiled code in the persistent cache it logs
    two harmless errors (:data:`tfpvae._native_log.XLA_CACHE_NOISE`) while it
    loads it. The filter costs about 0.05 ms a call, against 128 steps per call
    of ``fit``. Attributes are the wrapped function's.
    """

    def __init__(self, function: Any) -> None:
        self._function = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with native_log_filter(native_log_level()):
            return self._function(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._function, name)


def quiet_calls(model: tfk.Model, name: str, before: Any) -> Any:
    """The model's ``name`` function (just made by Keras), its calls quiet.

    Only a function Keras has just made (not ``before``) of a model compiled with
    XLA while the persistent cache is in use is wrapped (:class:`QuietCalls`).
    """
    function = getattr(model, name)
    if function is None or function is before or not model._jit_compile or not cache_in_use():
        return function
    quiet = QuietCalls(function)
    object.__setattr__(model, name, quiet)
    return quiet


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


class TracedStep:
    """A model's step method as one ``tf.function``, traced without AutoGraph.

    Traced once per input signature and model (the steps are plain TensorFlow,
    so AutoGraph's source transformation of every function they call is wasted
    work). A network whose ``call`` branches on tensors in Python
    (``OperatorNotAllowedInGraphError`` when traced plainly) gets AutoGraph.

    Args:
        method: The bound step method, e.g. ``VAE.train_step.__get__(model)``.
        reduce_retracing: Let TensorFlow generalise shapes after a second one (the
            training steps); ``False`` keeps every trace's shapes static, for
            functions whose Python code needs the batch size (the held-out bounds
            draw per image by slicing q).
    """

    def __init__(self, method: Any, reduce_retracing: bool = True) -> None:
        self._method = method
        self._reduce = reduce_retracing
        self._plain = tf.function(method, autograph=False, reduce_retracing=reduce_retracing)
        self._converted: Any = None

    def __call__(self, *args: Any) -> Any:
        if self._converted is None:
            try:
                return self._plain(*args)
            except tf.errors.OperatorNotAllowedInGraphError:
                self._converted = tf.function(self._method, reduce_retracing=self._reduce)
        return self._converted(*args)

    def tracing_count(self) -> int:
        """How many times the step has been traced (for tests of retracing)."""
        count = self._plain.experimental_get_tracing_count()
        if self._converted is not None:
            count += self._converted.experimental_get_tracing_count()
        return count


#: The step methods :func:`trace_steps_once` replaces, by the Keras function that calls them.
STEP_METHODS = {"train": "train_step", "test": "test_step", "predict": "predict_step"}


def trace_step_once(model: tfk.Model, kind: str, force: bool = False) -> None:
    """Gives ``model`` a :class:`TracedStep` of its ``kind`` step (on one replica).

    The step is kept until ``compile`` (:func:`forget_step_functions`) or ``force``,
    so the grouped and the one-step functions share its traces. Under several
    replicas the step's all-reduces stay in Keras's own function. It is held in
    the instance's ``__dict__`` (a plain attribute would be tracked, and saved, by Keras).
    """
    name = STEP_METHODS[kind]
    if model.distribute_strategy.num_replicas_in_sync > 1 or (name in model.__dict__ and not force):
        return
    if model.run_eagerly or tf.config.functions_run_eagerly():  # compile(run_eagerly=True)
        model.__dict__.pop(name, None)
        return
    model.__dict__[name] = TracedStep(getattr(type(model), name).__get__(model))


def plain_loop_applies(model: tfk.Model) -> bool:
    """Whether :func:`step_loop` can stand in for Keras's train or test function."""
    return (
        model.distribute_strategy.num_replicas_in_sync == 1
        and getattr(model, "_cluster_coordinator", None) is None
        and not model.run_eagerly
        and not tf.config.functions_run_eagerly()
        and not getattr(model, "autotune_steps_per_execution", False)
    )


class Tiered:
    """A model's step function, made plain or with an XLA step as :func:`compiles_now` says.

    Each call runs the function for the model's tier, each made on first use and
    kept, so a model switches to XLA once (at the start of the call that brings
    its work to :data:`XLA_MIN_IMAGES`) and no function is traced twice. While a
    function runs, ``model._jit_compile`` is its tier's: Keras's own functions
    (``predict``) read it when they trace. Attributes not defined here are those
    of the function in use.

    Args:
        model: A compiled model.
        make: Makes the function for a tier: ``make(jit) -> function``.
    """

    def __init__(self, model: tfk.Model, make: Any) -> None:
        self._model = model
        self._make = make
        self._made: dict[bool, Any] = {}

    def _for(self, jit: bool) -> Any:
        if jit not in self._made:
            self._made[jit] = self._make(jit)
        return self._made[jit]

    def current(self) -> Any:
        """The function the next call runs."""
        return self._for(compiles_now(self._model))

    def __call__(self, iterator: Any) -> Any:
        model = self._model
        jit, flag = compiles_now(model), model._jit_compile
        function = self._for(jit)
        if jit == bool(flag):
            return function(iterator)
        # The plain tier of an XLA model; set without Keras's attribute tracking.
        object.__setattr__(model, "_jit_compile", jit)
        try:
            return function(iterator)
        finally:
            object.__setattr__(model, "_jit_compile", flag)

    def experimental_get_tracing_count(self) -> int:
        """Traces of both tiers' functions together (for tests of retracing)."""
        return sum(f.experimental_get_tracing_count() for f in self._made.values())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current(), name)


def step_loop(model: tfk.Model, kind: str) -> Tiered:
    """Keras's grouped ``train_function`` or ``test_function`` (:func:`_step_loop`), tiered."""
    return Tiered(model, functools.partial(_step_loop, model, kind))


def tiered_predict(model: tfk.Model, keras_make: Any) -> Tiered:
    """Keras's ``predict_function`` (made by ``keras_make(force=True)``), tiered.

    ``keras_make`` also sets ``model.predict_function``, which keeps the tiered one.
    """

    def make(jit: bool) -> Any:
        keep = getattr(model, "predict_function", None)
        made = keras_make(force=True)
        object.__setattr__(model, "predict_function", keep)
        return made

    return Tiered(model, make)


def _step_loop(model: tfk.Model, kind: str, jit: bool) -> Any:
    """Keras's grouped ``train_function`` or ``test_function``, built without AutoGraph.

    Keras writes the loop over ``steps_per_execution`` as a Python ``for`` over
    ``tf.range``, which AutoGraph converts (with the functions it calls) each
    time a model makes the function: 0.3 of the 2.3 CPU-s of a first result.
    This is the same loop as a ``tf.while_loop``: one step, then the rest while
    the step count is below the model's ``steps_per_execution`` (read when the
    function runs, as Keras reads it), each step counted on the model's
    ``_train_counter`` or ``_test_counter`` and, with ``jit``, compiled with
    XLA. It is used on one replica only (:func:`plain_loop_applies`).

    Args:
        model: A compiled model.
        kind: ``"train"`` or ``"test"``.
        jit: Compile the step with XLA.
    """
    method = STEP_METHODS[kind]
    counter = model._train_counter if kind == "train" else model._test_counter

    def run_step(data: Any) -> Any:
        outputs = getattr(model, method)(data)
        tensors = tf.nest.flatten(outputs, expand_composites=True)
        first = [t for t in tensors if not isinstance(t, tf.Variable)][:1]
        with tf.control_dependencies(first):  # the step has run before it is counted
            counter.assign_add(1)
        return outputs

    # Each function is a partial: TensorFlow's retracing warning counts traces by a
    # function's code, which every model's loops share, while each model traces its
    # own once per input structure (train_on_batch, fit, a generator, validation...).
    # A partial has no code of its own, so the count is per model, as Keras's is.
    if jit:
        run_step = tf.function(
            functools.partial(run_step), jit_compile=True, reduce_retracing=True, autograph=False
        )
    steps = model._steps_per_execution

    def loop(iterator: Any) -> Any:
        outputs = run_step(next(iterator))
        one = tf.constant(1, steps.dtype)
        _, outputs = tf.while_loop(
            lambda done, _: done < steps,
            lambda done, _: (done + one, run_step(next(iterator))),
            (one, outputs),
        )
        return outputs

    return tf.function(functools.partial(loop), reduce_retracing=True, autograph=False)


def forget_step_functions(model: tfk.Model) -> None:
    """Drops the one-step functions and traced steps (``compile`` makes new ones necessary)."""
    model.__dict__.pop("_tfpvae_single_step", None)
    for name in STEP_METHODS.values():
        model.__dict__.pop(name, None)


def unknown_length(data: Any) -> bool:
    """Whether ``data`` is a dataset whose number of batches TensorFlow cannot tell."""
    return isinstance(data, tf.data.Dataset) and int(data.cardinality()) < 0
