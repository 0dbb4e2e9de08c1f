"""Budgets and data for the tutorial notebooks (kept here so notebooks stay thin).

When the environment variable ``CI`` or ``TFPVAE_SMOKE`` is set, notebooks run on
a *smoke* budget (a few epochs on a small slice). Otherwise they run in *full*
mode on Fashion-MNIST, found through ``TFPVAE_KERAS_CACHE`` (or downloaded), and
fall back to the bundled digits, saying so, when neither works.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tfpvae._backend import tfk
from tfpvae.interfaces.run import RunData, TrainSettings, fit, load_run_data
from tfpvae.io.datasets import CACHE_ENV, DATASETS, DatasetUnavailableError
from tfpvae.models import VAE, build_vae

SMOKE_ENV = ("CI", "TFPVAE_SMOKE")


def smoke_mode() -> bool:
    """Whether ``CI`` or ``TFPVAE_SMOKE`` is set to something other than ``0``/``false``."""
    return any(os.environ.get(k, "").lower() not in ("", "0", "false", "no") for k in SMOKE_ENV)


@dataclass(frozen=True)
class Budget:
    """How much work a notebook does.

    Attributes:
        epochs: Training epochs per model.
        limit: Images per split (``None``: all).
        k: Importance samples for IWAE bounds.
        repeats: Repetitions for Monte Carlo spreads.
        smoke: Whether this is the smoke budget.
    """

    epochs: int
    limit: int | None
    k: int
    repeats: int
    smoke: bool


def budget() -> Budget:
    """The smoke budget under CI, the full one otherwise."""
    if smoke_mode():
        return Budget(epochs=2, limit=256, k=10, repeats=30, smoke=True)
    return Budget(epochs=30, limit=None, k=500, repeats=300, smoke=False)


def tutorial_data(likelihood: str = "beta", prefer: str = "fashion_mnist") -> tuple[RunData, str]:
    """Fashion-MNIST (or ``prefer``) prepared for ``likelihood``, else the digits.

    Returns:
        The data and the name of the dataset actually used. Prints which one it
        is, and why when it fell back.
    """
    limit = budget().limit
    try:
        data = load_run_data(TrainSettings(dataset=prefer, limit=limit), likelihood)
        name = prefer
    except DatasetUnavailableError as err:
        print(f"{prefer} is not available ({str(err).split(' (')[0]}); set {CACHE_ENV}.")
        print("Falling back to the bundled 8×8 digits.")
        data = load_run_data(TrainSettings(dataset="digits", limit=limit), likelihood)
        name = "digits"
    print(
        f"data: {name}, {len(data.x_train)} training and {len(data.x_test)} test images "
        f"of shape {data.x_train.shape[1:]}" + (" (smoke budget)" if budget().smoke else "")
    )
    return data, name


def train(
    data: RunData,
    epochs: int | None = None,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = True,
    **vae_kwargs,
) -> tuple[VAE, dict[str, list[float]]]:
    """Builds a VAE for ``data`` and trains it with validation on the test split.

    Args:
        data: From :func:`tutorial_data`.
        epochs: Defaults to the budget's.
        batch_size: Images per step.
        seed: Seeds Python, NumPy and TensorFlow first.
        progress: Show a progress bar (see :func:`tfpvae.interfaces.run.fit`).
        **vae_kwargs: Passed to :func:`~tfpvae.build_vae` (``input_shape`` is set).

    Returns:
        The model and its history.
    """
    settings = TrainSettings(epochs=epochs or budget().epochs, batch_size=batch_size, seed=seed)
    tfk.utils.set_random_seed(seed)
    vae = build_vae(input_shape=data.x_train.shape[1:], **vae_kwargs)
    return vae, fit(vae, data, settings, progress=progress)


def dataset_note(name: str) -> str:
    """One line on what the numbers were computed on, for notebook outputs."""
    if name == "fashion_mnist" and os.environ.get(CACHE_ENV):
        return (
            "Numbers below are on the Fashion-MNIST found through $TFPVAE_KERAS_CACHE; "
            "with the 2,000-image sample they are sample numbers, not full-dataset ones."
        )
    return f"Numbers below are on {name} ({DATASETS.get(name).image_shape} images)."
