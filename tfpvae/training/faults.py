"""Numerical faults during training: detect a non-finite step, stop, restore.

The training step reports its loss and gradients to a :class:`FaultMonitor`,
which remembers, inside the compiled step, the optimizer step at which the loss
or a gradient first stopped being finite. :class:`NonFiniteGuard` reads that
after each group of steps. On a fault it stops training, puts back the weights
from the end of the last finite epoch, and leaves a :class:`TrainingFault` on
the model naming the epoch and batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tfpvae._backend import tf, tfk


class TrainingFaultError(RuntimeError):
    """Training stopped on a non-finite loss; the message says where and what was kept."""


@dataclass(frozen=True)
class TrainingFault:
    """Where a run went non-finite and what was restored.

    Attributes:
        epoch: 0-based epoch of the faulty step (as in ``history.csv``).
        batch: 0-based batch within that epoch.
        steps_per_epoch: Batches per epoch, for the message.
        loss: The loss of the faulty step (nan or ±inf; finite if only a
            gradient overflowed).
        restored_epoch: Epochs completed by the restored weights.
        learning_rate: The optimizer's step size, for the advice.
    """

    epoch: int
    batch: int
    steps_per_epoch: int
    loss: float
    restored_epoch: int
    learning_rate: float

    def message(self) -> str:
        """One line for logs and the CLI."""
        what = f"loss {self.loss:g}" if not math.isfinite(self.loss) else "a gradient overflowed"
        kept = (
            f"the end of epoch {self.restored_epoch}"
            if self.restored_epoch > 0
            else "their values before training"
        )
        return (
            f"training stopped: non-finite step ({what}) at epoch {self.epoch + 1}, "
            f"batch {self.batch + 1} of {self.steps_per_epoch}; the weights were restored "
            f"to {kept}. Lower the learning rate (it was {self.learning_rate:g}) or check the data"
        )


def _entry_sum(tensor: tf.Tensor) -> tf.Tensor:
    """The sum of all entries of ``tensor`` as a float32 scalar, through a matrix-vector product.

    XLA on CPU sums a tensor to a scalar in one serial chain of additions (about
    1.4 ns per entry here); multiplying by a vector of ones runs vectorised in the
    matmul kernel and leaves only one row per output to add up.
    """
    tensor = tf.cast(tensor, tf.float32)
    if tensor.shape.rank is None or tensor.shape.rank < 2:
        return tf.reduce_sum(tensor)
    matrix = tf.reshape(tensor, [-1, tensor.shape[-1]])  # [rows, columns]
    return tf.reduce_sum(tf.linalg.matvec(matrix, tf.ones([matrix.shape[-1]], tf.float32)))


def _all_finite(loss: tf.Tensor, grads: list[tf.Tensor] | None) -> tf.Tensor:
    """Whether the loss and every gradient entry are finite, from one scalar sum.

    A nan or ±inf anywhere makes the sum non-finite (inf − inf is nan, and nan
    and inf pass through a product with ones). The sum of finite entries
    overflows only when gradients approach 1e38, which is a fault too. An
    elementwise ``is_finite`` over all gradients cost 10% of the compiled step,
    a plain ``reduce_sum`` of each gradient 1 ms of a 9 ms batch-32 step, and the
    matrix-vector sums of :func:`_entry_sum` 0.4 ms.
    """
    total = tf.reduce_sum(tf.cast(loss, tf.float32))
    for g in grads or []:
        if g is not None:
            total += _entry_sum(g)
    return tf.math.is_finite(total)


class FaultMonitor:
    """Remembers the first optimizer step whose loss or gradients were not finite.

    The state lives in two variables that the compiled training step updates;
    under several replicas the finiteness is agreed by an all-reduce, so every
    replica records the same step.
    """

    def __init__(self) -> None:
        first_replica = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.first_step = tf.Variable(
            -1, dtype=tf.int64, trainable=False, aggregation=first_replica, name="fault_step"
        )
        self.loss = tf.Variable(0.0, trainable=False, aggregation=first_replica, name="fault_loss")

    def observe(self, loss: tf.Tensor, grads: list[tf.Tensor] | None, step: tf.Tensor) -> None:
        """Records ``step`` if it is the first non-finite one (call inside the step)."""
        finite = _all_finite(loss, grads)
        if tf.distribute.get_strategy().num_replicas_in_sync > 1:
            bad = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, tf.cast(tf.logical_not(finite), tf.float32)
            )
            finite = tf.equal(bad, 0.0)
        first = tf.logical_and(tf.logical_not(finite), self.first_step < 0)
        self.first_step.assign(tf.where(first, tf.cast(step, tf.int64), self.first_step))
        self.loss.assign(tf.where(first, tf.cast(loss, tf.float32), self.loss))

    def reset(self) -> None:
        self.first_step.assign(-1)
        self.loss.assign(0.0)

    def fault_step(self) -> int | None:
        """The recorded optimizer step, or ``None`` if every step was finite."""
        step = int(self.first_step.numpy())
        return None if step < 0 else step


class NonFiniteGuard(tfk.callbacks.Callback):
    """Stops training at the first non-finite step and restores the last good weights.

    "Good" weights are those at the end of the latest epoch whose steps were all
    finite (or the starting weights); the optimizer's state is restored with them.
    ``VAE.fit`` adds this guard by default; afterwards ``vae.training_fault`` is
    a :class:`TrainingFault` or ``None``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._good: list[tf.Tensor] = []  # values of self._state
        self._state: list[tf.Variable] = []
        self._good_epoch: int | None = None
        self._epoch = 0
        self._epoch_start_step = 0
        self._checked = False  # whether no step has run since the last check found none

    def on_train_begin(self, logs=None) -> None:
        self.model.fault_monitor.reset()
        self.model.training_fault = None
        # The weights and the optimizer's slots (a faulty step poisons both); listed
        # once per fit, as walking the model's layers for them costs 13 ms.
        self._state = [*self.model.trainable_variables, *self.model.optimizer.variables]
        self._good = self._snapshot()
        self._good_epoch = None  # set by the first epoch (``initial_epoch`` when resuming)

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._epoch = epoch
        if self._good_epoch is None:
            self._good_epoch = epoch
        self._epoch_start_step = int(self.model.optimizer.iterations.numpy())

    def on_train_batch_begin(self, batch: int, logs=None) -> None:
        self._checked = False

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self._checked = not self._check()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        # Keras ends an epoch right after its last batch (and any validation, which
        # runs no training step): that batch's check stands (one read fewer per epoch).
        if not self._checked and self._check():
            return
        self._good_epoch = epoch + 1
        # After the last epoch no step can fault, so its snapshot would never be
        # read (37 variables of the course's MLP: about 8 ms per one-epoch fit).
        if epoch + 1 < int(self.params.get("epochs") or 0):
            self._good = self._snapshot()

    def _snapshot(self) -> list[tf.Tensor]:
        # Eager reads share the variables' buffers until the next update writes them,
        # which then copies (TensorFlow's copy-on-write for shared buffers; XLA writes
        # new ones): no host copy here (``numpy()`` took 2-3 ms per snapshot). ``value()``
        # is the read alone (``read_value()`` adds an identity op: 1.3 against 0.4 ms).
        return [v.value() for v in self._state]

    def _check(self) -> bool:
        """True if a fault has happened (handling it the first time)."""
        model = self.model
        if model.training_fault is not None:
            return True
        step = model.fault_monitor.fault_step()
        if step is None:
            return False
        for variable, value in zip(self._state, self._good, strict=True):
            variable.assign(value)
        model.stop_training = True
        model.training_fault = TrainingFault(
            epoch=self._epoch,
            batch=step - self._epoch_start_step,
            steps_per_epoch=int(self.params.get("steps") or 0),
            loss=float(model.fault_monitor.loss.numpy()),
            restored_epoch=self._good_epoch or 0,
            learning_rate=float(tfk.backend.get_value(model.optimizer.learning_rate)),
        )
        return True
