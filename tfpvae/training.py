"""A whole training run: data, model, fit, save, metrics and figures.

The CLI's ``tfpvae train`` is a thin wrapper over :func:`run_training`, and the
notebooks call the same functions, so there is one implementation of a run.

A run directory holds::

    config.json          model config + training settings (see tfpvae.saving)
    model.weights.h5     the weights
    history.csv          one row per epoch: loss, rate, distortion (+ val_)
    metrics.json         held-out ELBO terms and IWAE bound
    latent_before.npy    test-set codes before training (for the comparison figure)
    figures/*.png        the pictures, and figures/interpolation.gif
"""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from tfpvae import plots
from tfpvae._backend import tfk
from tfpvae.callbacks import KLWarmUp, TqdmProgress
from tfpvae.config import VAEConfig, _positive_int
from tfpvae.data import DATASETS, load_dataset, prepare
from tfpvae.evaluate import held_out_metrics
from tfpvae.model import VAE, build_vae_from_config
from tfpvae.saving import atomic_write_text, read_config, save

HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
LATENT_BEFORE_FILE = "latent_before.npy"


@dataclass(frozen=True)
class TrainSettings:
    """How to train, as opposed to what model to train.

    Attributes:
        dataset: A registered dataset; ``digits`` works offline.
        cache_dir: Keras cache for (fashion_)mnist; ``None`` uses ``$TFPVAE_KERAS_CACHE``.
        epochs: Passes over the training set.
        batch_size: Images per step; 32 as in the course.
        seed: Seeds Python, NumPy and TensorFlow.
        warmup_epochs: Epochs over which β rises linearly from 0 (0 = off).
        eval_k: Importance samples for the held-out IWAE bound.
        limit: Use only the first ``limit`` training and test images (smoke runs).
    """

    dataset: str = "digits"
    cache_dir: str | None = None
    epochs: int = 10
    batch_size: int = 32
    seed: int = 0
    warmup_epochs: int = 0
    eval_k: int = 100
    limit: int | None = None

    def __post_init__(self) -> None:
        DATASETS.get(self.dataset)
        for name in ("epochs", "batch_size", "eval_k"):
            _positive_int(name, getattr(self, name))
        if self.limit is not None:
            _positive_int("limit", self.limit)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if isinstance(self.warmup_epochs, bool) or not isinstance(self.warmup_epochs, int):
            raise ValueError(f"warmup_epochs must be an integer, got {self.warmup_epochs!r}")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunData:
    """Prepared train/test images with labels and class names."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]


def load_run_data(settings: TrainSettings, likelihood: str) -> RunData:
    """Loads ``settings.dataset`` and prepares it for ``likelihood``."""
    (x_train, y_train), (x_test, y_test) = load_dataset(settings.dataset, settings.cache_dir)
    if settings.limit is not None:
        x_train, y_train = x_train[: settings.limit], y_train[: settings.limit]
        x_test, y_test = x_test[: settings.limit], y_test[: settings.limit]
    return RunData(
        prepare(x_train, likelihood),
        y_train,
        prepare(x_test, likelihood),
        y_test,
        DATASETS.get(settings.dataset).class_names,
    )


def model_config_for(settings: TrainSettings, **fields: Any) -> VAEConfig:
    """A :class:`VAEConfig` whose ``input_shape`` is the dataset's image shape."""
    return VAEConfig(input_shape=DATASETS.get(settings.dataset).image_shape, **fields)


def prepare_output_dir(out: Path, force: bool) -> None:
    """Creates ``out``; refuses to reuse a non-empty directory unless ``force``."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(
            f"{out} already holds files; choose another --out or pass --force to overwrite"
        )
    out.mkdir(parents=True, exist_ok=True)


def fit(
    vae: VAE,
    data: RunData,
    settings: TrainSettings,
    out: Path | None = None,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Trains ``vae`` on ``data``; writes ``history.csv`` into ``out`` if given."""
    steps = -(-len(data.x_train) // settings.batch_size)
    callbacks: list[tfk.callbacks.Callback] = [KLWarmUp(settings.warmup_epochs)]
    if progress:
        callbacks.append(TqdmProgress(settings.epochs, steps, desc="training"))
    if out is not None:
        callbacks.append(tfk.callbacks.CSVLogger(str(out / HISTORY_FILE)))
    history = vae.fit(
        data.x_train,
        data.x_train,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        validation_data=(data.x_test, data.x_test),
        callbacks=callbacks,
        verbose=0,
    )
    return {k: [float(v) for v in values] for k, values in history.history.items()}


def run_training(
    model_config: VAEConfig,
    settings: TrainSettings,
    out: str | Path,
    force: bool = False,
    progress: bool = True,
) -> tuple[VAE, dict[str, float]]:
    """Trains a VAE and writes a complete run directory.

    Returns:
        The trained model and the held-out metrics.
    """
    out = Path(out)
    prepare_output_dir(out, force)
    data = load_run_data(settings, model_config.likelihood)
    tfk.utils.set_random_seed(settings.seed)
    vae = build_vae_from_config(model_config)
    np.save(out / LATENT_BEFORE_FILE, vae.encode(data.x_test).numpy())
    fit(vae, data, settings, out, progress)
    save(vae, out, extra={"train": settings.to_dict()})
    metrics = write_metrics(vae, data, settings, out)
    write_figures(vae, data, out)
    return vae, metrics


def write_metrics(vae: VAE, data: RunData, settings: TrainSettings, out: Path) -> dict:
    """Computes the held-out metrics on the test split and writes ``metrics.json``."""
    metrics = held_out_metrics(vae, data.x_test, k=settings.eval_k, seed=settings.seed)
    metrics["dataset"] = settings.dataset
    atomic_write_text(out / METRICS_FILE, json.dumps(metrics, indent=2, sort_keys=True))
    return metrics


def read_history(out: Path) -> dict[str, list[float]]:
    """Reads ``history.csv`` into columns."""
    path = Path(out) / HISTORY_FILE
    if not path.is_file():
        return {}
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(row[key]) for row in rows] for key in (rows[0] if rows else {})}


def write_figures(vae: VAE, data: RunData, out: Path) -> list[Path]:
    """Draws every figure of a run into ``out/figures``; returns the paths."""
    fig_dir = Path(out) / "figures"
    fig_dir.mkdir(exist_ok=True)
    x, y, names = data.x_test, data.y_test, data.class_names
    figures = {
        "examples": lambda: plots.plot_examples(x, y, names),
        "reconstructions": lambda: plots.plot_reconstructions(vae, x),
        "prior_samples": lambda: plots.plot_prior_samples(vae),
        "interpolation": lambda: plots.plot_interpolation(vae, x[0], x[1]),
        "history": lambda: plots.plot_history(read_history(out)),
    }
    if vae.config.latent_dim >= 2:
        figures["latent"] = lambda: plots.plot_latent(vae, x, y, names)
        figures["manifold"] = lambda: plots.plot_manifold(vae)
        before = Path(out) / LATENT_BEFORE_FILE
        if before.is_file():
            z_before, z_after = np.load(before), vae.encode(x).numpy()
            figures["latent_before_after"] = lambda: plots.plot_latent_before_after(
                z_before, z_after, y, names
            )
    paths = []
    for name, draw in figures.items():
        fig = draw()
        paths.append(fig_dir / f"{name}.png")
        fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
        plt.close(fig)
    paths.append(plots.save_interpolation_gif(vae, x[0], x[1], fig_dir / "interpolation.gif"))
    return paths


def settings_of(out: str | Path) -> TrainSettings:
    """The training settings stored in a run directory."""
    return TrainSettings(**read_config(out).get("train", {}))
