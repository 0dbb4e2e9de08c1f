r"""The Keras machinery around a VAE's step: calls, loss reduction, grouping, faults.

:class:`KerasSteps` is a mixin of :class:`tfpvae.VAE` that holds what a Keras
user calls besides the step itself: ``fit`` (arrays checked and streamed,
:mod:`tfpvae.training.fit`), ``evaluate``, the ``*_on_batch`` calls (one step per
call, :mod:`tfpvae.training.tuning`) and ``compile`` (whose loss is the
objective). The fault monitor lives here too; :class:`~tfpvae.training.faults.NonFiniteGuard`
reads it after each epoch.

:func:`batch_loss` is the one reduction of per-image losses: the weighted mean
over the global batch, plus the networks' own losses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfpvae._backend import tf, tfk
from tfpvae.components.precision import PRECISIONS, Precision
from tfpvae.objectives import OBJECTIVES, Objective, Parts, Terms, weighted_mean
from tfpvae.training import fit as fit_layer
from tfpvae.training.faults import FaultMonitor, TrainingFault
from tfpvae.training.tuning import (
    add_work,
    forget_step_functions,
    one_step_per_call,
    plain_loop_applies,
    quiet_calls,
    step_loop,
    tiered_predict,
    trace_step_once,
)

next_seed = fit_layer.next_seed


def make_objective(
    objective: Any, parts: Parts, n_samples: int, iwae_k: int, **options: Any
) -> Objective:
    """The objective named ``objective`` in ``OBJECTIVES`` (or a factory) over ``parts``.

    ``options`` (``alpha``, ``gradient``, ``free_bits``) reach the factory only when
    set (not ``None``), so a factory that takes none of them still works without them.
    """
    factory = OBJECTIVES.get(objective) if isinstance(objective, str) else objective
    if not callable(factory):
        raise ValueError(
            f"objective must be a name from tfpvae.OBJECTIVES ({', '.join(OBJECTIVES.names())}) "
            f"or a function (parts, **options) -> Objective, got {type(objective).__name__}"
        )
    given = {name: value for name, value in options.items() if value is not None}
    made = factory(parts, n_samples=int(n_samples), iwae_k=int(iwae_k), **given)
    if not isinstance(made, Objective):
        raise ValueError(f"the objective factory returned {type(made).__name__}, not an Objective")
    return made


def precision_of(name: str) -> Precision:
    """The registered precision policy ``name``."""
    return PRECISIONS.get(name)


def with_image_shape(x: tf.Tensor, image_shape: Sequence[int]) -> tf.Tensor:
    """``x`` with its static shape set to ``[batch, *image_shape]`` where it was unknown.

    Batches from generators, ``Sequence``\\ s and datasets built without a full
    element spec reach the step without static dimensions; the fused objectives
    need them.
    """
    x = tf.convert_to_tensor(x)
    if x.shape.rank is None or not x.shape[1:].is_fully_defined():
        x = tf.ensure_shape(x, [None, *image_shape])
    return x


def _global_sum(values: tf.Tensor) -> tf.Tensor:
    """Sum of ``values`` over this batch and, under several replicas, over all of them."""
    total = tf.reduce_sum(values)
    if tf.distribute.get_strategy().num_replicas_in_sync == 1:
        return total
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, total)


def batch_loss(
    terms: Terms, sample_weight: tf.Tensor | None, network_losses: Sequence[tf.Tensor]
) -> tuple[tf.Tensor, tf.Tensor]:
    r"""What one replica minimises, and its weighted mean loss for the fault monitor.

    .. math:: \frac{\sum_{i \in r} w_i \ell_i}{\sum_{i} w_i}
        + \frac{1}{R}\sum_j \Omega_j

    over images i of this replica r and all R replicas, with the networks' own
    losses :math:`\Omega_j` (regularisers, ``add_loss``) shared between replicas,
    so the summed gradients are those of the global objective.
    """
    weights = tf.ones_like(terms.loss) if sample_weight is None else sample_weight
    weights = tf.cast(tf.reshape(weights, [-1]), tf.float32)
    objective = tf.math.divide_no_nan(tf.reduce_sum(weights * terms.loss), _global_sum(weights))
    if network_losses:
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        extra = tf.add_n([tf.cast(loss, tf.float32) for loss in network_losses])
        objective += extra / replicas
    return objective, weighted_mean(terms.loss, weights)


def _target(x: Any, y: Any, kwargs: dict) -> Any:
    """The target to hand Keras: the images when sample weights come without one.

    Keras drops ``sample_weight`` from a batch that has no target, so a weighted
    call without ``y`` would silently be unweighted.
    """
    return x if y is None and kwargs.get("sample_weight") is not None else y


def _is_pair(x: Any) -> bool:
    """Whether ``x`` is an in-memory ``(images, labels)`` pair."""
    return isinstance(x, (tuple, list)) and len(x) == 2 and fit_layer.is_array(x[0])


def rows_of(x: Any) -> int | None:
    """The number of rows of ``x`` where it is known in Python, else ``None``."""
    first = getattr(x, "shape", None)
    return None if first is None or not len(first) or first[0] is None else int(first[0])


def _batch_images(x: Any) -> int | None:
    """Images in a ``*_on_batch`` call's ``x`` (a conditional VAE's ``(images, labels)``)."""
    return rows_of(x[0] if isinstance(x, (tuple, list)) and x else x)


class KerasSteps:
    """``fit``, ``evaluate``, ``*_on_batch`` and ``compile`` of a VAE (a mixin).

    Attributes:
        fault_monitor: Where the compiled step records a non-finite step.
        training_fault: Where the latest ``fit`` went non-finite, or ``None``.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fault_monitor = FaultMonitor()
        self.training_fault: TrainingFault | None = None

    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, **kwargs: Any):
        """``tf_keras.Model.fit``; arrays are checked and streamed (:mod:`tfpvae.training.fit`)."""
        return fit_layer.fit(self, super().fit, x, y, batch_size, **kwargs)  # type: ignore[misc]

    def evaluate(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any):
        """``tf_keras.Model.evaluate``; arrays are checked, generators and Sequences
        taken as ``fit`` takes them (:func:`tfpvae.training.fit.evaluate`)."""
        keras_evaluate = super().evaluate  # type: ignore[misc]
        return fit_layer.evaluate(self, keras_evaluate, x, _target(x, y, kwargs), *args, **kwargs)

    def train_on_batch(self, x: Any, y: Any = None, *args: Any, **kwargs: Any):
        add_work(self, _batch_images(x))
        with one_step_per_call(self):
            return super().train_on_batch(x, _target(x, y, kwargs), *args, **kwargs)  # type: ignore[misc]

    def test_on_batch(self, x: Any, y: Any = None, *args: Any, **kwargs: Any):
        add_work(self, _batch_images(x))
        with one_step_per_call(self):
            return super().test_on_batch(x, _target(x, y, kwargs), *args, **kwargs)  # type: ignore[misc]

    def predict(self, x: Any, *args: Any, **kwargs: Any):
        """``tf_keras.Model.predict``; its images count towards the model's XLA tier."""
        add_work(self, _batch_images(x) if fit_layer.is_array(x) or _is_pair(x) else None)
        return super().predict(x, *args, **kwargs)  # type: ignore[misc]

    def predict_on_batch(self, x: Any):
        add_work(self, _batch_images(x))
        with one_step_per_call(self):
            return super().predict_on_batch(x)  # type: ignore[misc]

    def reset_metrics(self) -> None:
        """``tf_keras.Model.reset_metrics``: every metric back to its initial state.

        Keras calls this at the start of every epoch and every ``evaluate``. A
        ``Mean`` tracker's state is its total and count, set to zero here by one
        assignment each (Keras's own ``reset_state`` converts each zero through
        NumPy first: 0.2 against 0.07 ms for the three trackers).
        """
        for metric in self.metrics:  # type: ignore[attr-defined]
            if type(metric) is tfk.metrics.Mean:
                for variable in metric.variables:
                    variable.assign(tf.zeros((), variable.dtype), read_value=False)
            else:
                metric.reset_state()

    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, **kwargs: Any) -> None:
        """``tf_keras.Model.compile``; the loss is the objective, so ``loss`` must be ``None``."""
        if loss is not None:
            raise ValueError(
                "a VAE's loss is its objective (VAE(..., objective=...)); compile it without loss="
            )
        if kwargs.pop("from_serialized", False) and getattr(self, "_is_compiled", False):
            # tf_keras.models.load_model compiles again from the SavedModel's compile
            # config; from_config already compiled the model with that optimizer,
            # whose variables Keras restores, so that compile stands.
            return
        # The padded and weighted streams carry sample weights that the loss and the
        # trackers use; an empty list tells Keras no weighted metric is missing.
        kwargs.setdefault("weighted_metrics", [])
        super().compile(optimizer=optimizer, **kwargs)  # type: ignore[misc]
        forget_step_functions(self)

    # Keras's step functions call the model's step traced once (tuning.TracedStep).
    # An XLA model's step functions run quietly (tuning.QuietCalls: cache-load noise).
    # On one replica the loop around them is tfpvae's, traced without AutoGraph (step_loop),
    # and each function compiles its step with XLA only once the model has work enough
    # (tuning.Tiered; predict keeps Keras's loop).
    def make_train_function(self, force: bool = False):
        trace_step_once(self, "train", force)
        before = getattr(self, "train_function", None)
        if plain_loop_applies(self) and (before is None or force):
            self.train_function = step_loop(self, "train")
        else:
            super().make_train_function(force)  # type: ignore[misc]
        return quiet_calls(self, "train_function", before)

    def make_test_function(self, force: bool = False):
        trace_step_once(self, "test", force)
        before = getattr(self, "test_function", None)
        if plain_loop_applies(self) and (before is None or force):
            self.test_function = step_loop(self, "test")
        else:
            super().make_test_function(force)  # type: ignore[misc]
        return quiet_calls(self, "test_function", before)

    def make_predict_function(self, force: bool = False):
        trace_step_once(self, "predict", force)
        before = getattr(self, "predict_function", None)
        if plain_loop_applies(self) and (before is None or force):
            keras_make = super().make_predict_function  # type: ignore[misc]
            self.predict_function = tiered_predict(self, keras_make)
        else:
            super().make_predict_function(force)  # type: ignore[misc]
        return quiet_calls(self, "predict_function", before)


__all__ = [
    "KerasSteps",
    "batch_loss",
    "make_objective",
    "precision_of",
    "rows_of",
    "with_image_shape",
]
