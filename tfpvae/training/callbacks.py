"""Keras callbacks: KL warm-up, Gumbel-softmax temperature annealing, a tqdm progress bar."""

from __future__ import annotations

import importlib.util
import math
import sys
from typing import Any

from tqdm import tqdm

from tfpvae._backend import tfk


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (an IPython kernel app is running)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def notebook_bar_available() -> bool:
    """Whether tqdm can draw a widget bar here (a notebook with ``ipywidgets``)."""
    return in_notebook() and importlib.util.find_spec("ipywidgets") is not None


def notebook_tqdm(**kwargs: Any) -> Any:
    """A ``tqdm.auto`` bar; imported only here, since importing it without
    ``ipywidgets`` in a notebook prints a ``TqdmWarning``."""
    from tqdm.auto import tqdm as auto_tqdm

    return auto_tqdm(**kwargs)


class KLWarmUp(tfk.callbacks.Callback):
    r"""Anneals β linearly from 0 to its target over the first ``epochs`` epochs.

    At epoch e (counting from 0) the model trains with
    :math:`\beta_e = \beta \cdot \min(1, e / N)`, so epoch 0 uses β = 0 and
    epoch N onward the target. The β of each epoch is logged as ``beta``.

    Args:
        epochs: N, the warm-up length; 0 disables it.
        target: The final β; defaults to the model's configured ``kl_weight``.
    """

    def __init__(self, epochs: int, target: float | None = None) -> None:
        super().__init__()
        if epochs < 0:
            raise ValueError(f"warm-up epochs must be >= 0, got {epochs}")
        self.epochs = epochs
        self.target = target

    def beta_at(self, epoch: int) -> float:
        """β for a 0-based epoch."""
        target = self._initial if self.target is None else self.target
        return target if self.epochs == 0 else target * min(1.0, epoch / self.epochs)

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        # The target when none is given: the recipe's β, else β as the model has it now.
        recipe = getattr(model, "config", None)
        self._initial = float(recipe.kl_weight if recipe is not None else model.kl_weight.numpy())

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.model.kl_weight.assign(self.beta_at(epoch))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["beta"] = float(self.model.kl_weight.numpy())


class TemperatureAnnealing(tfk.callbacks.Callback):
    r"""Lowers the Gumbel-softmax temperature τ exponentially over ``epochs`` epochs.

    At epoch e (counting from 0) the model trains at

    .. math:: \tau_e = \tau_0 \left(\frac{\tau_N}{\tau_0}\right)^{\min(1,\, e/N)}
        = \tau_0\, e^{-r \min(e, N)},\qquad r = \frac{\ln(\tau_0/\tau_N)}{N},

    the exponential decay of Jang et al. (2016), stopped at :math:`\tau_N`. The τ
    of each epoch is logged as ``temperature``.

    Args:
        start: :math:`\tau_0`.
        end: :math:`\tau_N`, kept from epoch N on.
        epochs: N; 0 keeps :math:`\tau_0` throughout.

    Raises:
        ValueError: On a non-positive temperature or negative ``epochs``, and when
            training starts on a model without a temperature (a Gaussian posterior).
    """

    def __init__(self, start: float, end: float, epochs: int) -> None:
        super().__init__()
        for name, value in (("start", start), ("end", end)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"temperature {name} must be a finite number > 0, got {value!r}")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"temperature annealing epochs must be an integer >= 0, got {epochs}")
        self.start, self.end, self.epochs = float(start), float(end), epochs

    def temperature_at(self, epoch: int) -> float:
        """τ for a 0-based epoch."""
        if self.epochs == 0:
            return self.start
        return self.start * (self.end / self.start) ** min(1.0, epoch / self.epochs)

    def on_train_begin(self, logs: dict | None = None) -> None:
        if getattr(self.model, "temperature", None) is None:
            raise ValueError(
                "temperature annealing needs a relaxed posterior "
                "(posterior='relaxed_categorical'); drop the temperature schedule"
            )

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.model.temperature.assign(self.temperature_at(epoch))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["temperature"] = float(self.model.temperature.numpy())


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is a terminal (a closed or fake stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class TqdmProgress(tfk.callbacks.Callback):
    """One tqdm bar over all training batches, showing loss, rate and distortion.

    In a terminal the bar redraws one line on stderr. Where stderr is not a
    terminal (a log file, a pipe, CI) there is no bar: each epoch prints one
    line, ``training: epoch 3/10: loss 12.34, rate 1.20, distortion 11.14``. In a
    notebook it is one updating widget (``tqdm.auto``) when ``ipywidgets`` is
    installed, and otherwise no bar at all: a text bar in a notebook leaves
    hundreds of carriage-return fragments in the saved outputs.

    Args:
        epochs: Epochs planned, for the bar's total.
        steps_per_epoch: Batches per epoch.
        initial_epoch: Epochs already done (when resuming).
        **tqdm_kwargs: Passed to ``tqdm``.
    """

    def __init__(self, epochs: int, steps_per_epoch: int, initial_epoch: int = 0, **tqdm_kwargs):
        super().__init__()
        self.total = epochs * steps_per_epoch
        self.initial = initial_epoch * steps_per_epoch
        self.tqdm_kwargs = tqdm_kwargs
        self.epochs = epochs
        self.stream = tqdm_kwargs.get("file", sys.stderr)
        self.lines = False  # one line per epoch instead of a bar
        self.steps_per_epoch = steps_per_epoch
        self.bar: Any = None
        self.epoch = initial_epoch
        self.done_in_epoch = 0

    def on_train_begin(self, logs=None) -> None:
        kwargs = {"total": self.total, "initial": self.initial, "unit": "batch"}
        if in_notebook():
            if notebook_bar_available():
                self.bar = notebook_tqdm(**kwargs, **self.tqdm_kwargs)
        elif is_terminal(self.stream):
            self.bar = tqdm(**kwargs, **self.tqdm_kwargs)
        else:
            self.lines = True

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.epoch = epoch
        self.done_in_epoch = 0

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if self.bar is None:
            return
        # With steps_per_execution > 1 Keras reports only every k-th batch index.
        self.bar.update(batch + 1 - self.done_in_epoch)
        self.done_in_epoch = batch + 1
        if logs:
            self.bar.set_postfix(
                epoch=self.epoch + 1, **{k: f"{float(v):.2f}" for k, v in logs.items()}
            )

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self.lines:
            desc = self.tqdm_kwargs.get("desc")
            values = ", ".join(f"{k} {float(v):.2f}" for k, v in (logs or {}).items())
            head = f"{desc}: " if desc else ""
            print(f"{head}epoch {epoch + 1}/{self.epochs}: {values}", file=self.stream, flush=True)
        if logs and self.bar is not None:
            self.bar.set_postfix(epoch=epoch + 1, **{k: f"{float(v):.2f}" for k, v in logs.items()})

    def on_train_end(self, logs=None) -> None:
        if self.bar is not None:
            self.bar.close()
