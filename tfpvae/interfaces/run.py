"""A whole training run: data, model, fit, save, metrics and figures.

The CLI's ``tfpvae train`` is a thin wrapper over :func:`run_training`, and the
notebooks call the same functions, so there is one implementation of a run.
A run killed at any moment continues with ``run_training(..., resume=True)``
(``tfpvae train --resume``) from its latest checkpoint, and sees the same
batches and noise as an uninterrupted run would have.

A run directory holds::

    config.json          model config + training settings (see tfpvae.io.saving),
                         written before the first epoch; data locations are absolute
                         (tfpvae.interfaces.locations)
    checkpoints/         the state after the latest finished epoch (tfpvae.training.checkpoints)
    model.weights.h5     the weights, written when training has finished
    history.csv          one row per epoch: loss, rate, distortion (+ val_)
    metrics.json         held-out ELBO terms and IWAE bound
    latent_before.npy    test-set codes before training (for the comparison figure)
    figures/*.png        the pictures, and figures/interpolation.gif
    tensorboard/         TensorBoard logs, with ``--tensorboard`` (tfpvae.training.tensorboard)
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from tfpvae._backend import tf, tfk
from tfpvae.components.dequantize import DEQUANTIZERS
from tfpvae.components.likelihoods import get_likelihood
from tfpvae.config import VAEConfig, _positive_int
from tfpvae.evaluation import plots
from tfpvae.evaluation.bounds import held_out_metrics
from tfpvae.evaluation.diagnostics import latent_use
from tfpvae.interfaces.locations import cache_dir_to_record, run_cache_dir
from tfpvae.io.datasets import DATASETS, load_dataset, prepare
from tfpvae.io.saving import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    ModelFileError,
    atomic_write_text,
    read_config,
    save,
    write_config,
)
from tfpvae.models import VAE, build_vae_from_config
from tfpvae.registry import Registry
from tfpvae.training.callbacks import KLWarmUp, TemperatureAnnealing, TqdmProgress
from tfpvae.training.checkpoints import Checkpoints, EpochCheckpoint
from tfpvae.training.distribute import (
    STRATEGIES,
    is_worker_directory,
    make_strategy,
    worker_directory,
    worker_role,
)
from tfpvae.training.faults import TrainingFaultError
from tfpvae.training.pipeline import array_dataset, steps_per_epoch
from tfpvae.training.tensorboard import tensorboard_callbacks

HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
LATENT_BEFORE_FILE = "latent_before.npy"
CHECKPOINT_DIR = "checkpoints"
FIGURES_DIR = "figures"
TENSORBOARD_DIR = "tensorboard"
#: Key of ``config.json`` holding the working directory the run was trained in.
CWD_KEY = "cwd"
#: What a run writes into its directory (``--force`` removes exactly these).
RUN_FILES = (
    CONFIG_FILE,
    WEIGHTS_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    LATENT_BEFORE_FILE,
    CHECKPOINT_DIR,
    FIGURES_DIR,
    TENSORBOARD_DIR,
)
#: Settings a resumed run may change; every other one must match the stored run.
RESUMABLE_CHANGES = {
    "epochs",
    "cache_dir",
    "learning_rate",
    "strategy",
    "tensorboard",
    "tensorboard_images_every",
}


@dataclass(frozen=True)
class TrainSettings:
    """How to train, as opposed to what model to train.

    Attributes:
        dataset: A registered dataset; ``digits`` works offline.
        cache_dir: Keras cache for (fashion_)mnist; ``None`` uses ``$TFPVAE_KERAS_CACHE``.
            A run records it as an absolute path (:mod:`tfpvae.interfaces.locations`).
        epochs: Passes over the training set.
        batch_size: Images per step; 32 as in the course.
        seed: Seeds Python, NumPy and TensorFlow.
        warmup_epochs: Epochs over which β rises linearly from 0 (0 = off).
        eval_k: Importance samples for the held-out IWAE bound.
        limit: Use only the first ``limit`` training and test images (smoke runs).
        deterministic: Enable TensorFlow's op determinism, so that the same seed
            and config give bit-identical weights.
        strategy: A ``tf.distribute`` strategy name (see ``tfpvae.training.distribute``).
        tensorboard: TensorBoard log directory (see ``tfpvae.training.tensorboard``), or
            ``None`` for no logs.
        tensorboard_images_every: Epochs between TensorBoard's pictures.
        dequantize: How a likelihood on (0, 1) sees the 8-bit pixels: ``None``
            (the course's fixed shift) or ``"uniform"`` (a fresh ``u ~ U[0, 1)``
            per image and epoch in training, one fixed draw for the test split;
            see ``tfpvae.components.dequantize``).
        temperature_end: The Gumbel-softmax temperature reached after
            ``temperature_epochs`` (``posterior="relaxed_categorical"``).
        temperature_epochs: Epochs over which the temperature falls exponentially
            from the model's ``temperature`` to ``temperature_end`` (0 = constant).
    """

    dataset: str = "digits"
    cache_dir: str | None = None
    epochs: int = 10
    batch_size: int = 32
    seed: int = 0
    warmup_epochs: int = 0
    eval_k: int = 100
    limit: int | None = None
    deterministic: bool = False
    strategy: str = "default"
    tensorboard: str | None = None
    tensorboard_images_every: int = 5
    dequantize: str | None = None
    temperature_end: float = 0.5
    temperature_epochs: int = 0

    def __post_init__(self) -> None:
        DATASETS.get(self.dataset)
        STRATEGIES.get(self.strategy)
        if self.dequantize is not None:
            DEQUANTIZERS.get(self.dequantize)
        for name in ("epochs", "batch_size", "eval_k", "tensorboard_images_every"):
            _positive_int(name, getattr(self, name))
        if self.limit is not None:
            _positive_int("limit", self.limit)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if isinstance(self.warmup_epochs, bool) or not isinstance(self.warmup_epochs, int):
            raise ValueError(f"warmup_epochs must be an integer, got {self.warmup_epochs!r}")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if self.cache_dir is not None and not isinstance(self.cache_dir, str):
            raise ValueError(f"cache_dir must be a path, got {self.cache_dir!r}")
        if self.tensorboard is not None and not isinstance(self.tensorboard, str):
            raise ValueError(f"tensorboard must be a directory, got {self.tensorboard!r}")
        if not isinstance(self.deterministic, bool):
            raise ValueError(f"deterministic must be true or false, got {self.deterministic!r}")
        TemperatureAnnealing(1.0, self.temperature_end, self.temperature_epochs)  # validates

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunData:
    """Prepared train/test images with labels and class names.

    ``pixels_train``/``pixels_test`` are the uint8 images they were prepared
    from; with ``dequantize="uniform"`` training draws from ``pixels_train`` and
    ``x_train`` is one fixed draw (for figures and the latent plots).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    pixels_train: np.ndarray | None = None
    pixels_test: np.ndarray | None = None
    dequantize: str | None = None


def load_run_data(settings: TrainSettings, likelihood: str) -> RunData:
    """Loads ``settings.dataset`` and prepares it for ``likelihood``.

    Raises:
        ValueError: If ``settings.dequantize`` is set for a likelihood that does
            not model pixels in (0, 1).
    """
    (x_train, y_train), (x_test, y_test) = load_dataset(settings.dataset, settings.cache_dir)
    if settings.limit is not None:
        x_train, y_train = x_train[: settings.limit], y_train[: settings.limit]
        x_test, y_test = x_test[: settings.limit], y_test[: settings.limit]
    options: dict[str, Any] = {}
    if settings.dequantize is not None:
        if get_likelihood(likelihood).data_space.dequantize is None:
            raise ValueError(
                f"dequantize={settings.dequantize!r} is for likelihoods on (0, 1); the "
                f"{likelihood} likelihood models {get_likelihood(likelihood).data_space.name}"
            )
        options = {"dequantize": settings.dequantize, "seed": settings.seed}
    return RunData(
        prepare(x_train, likelihood, **options),
        y_train,
        prepare(x_test, likelihood, **options),
        y_test,
        DATASETS.get(settings.dataset).class_names,
        pixels_train=x_train,
        pixels_test=x_test,
        dequantize=settings.dequantize,
    )


def given(vae: VAE, labels: np.ndarray) -> dict[str, Any]:
    """``{"labels": labels}`` for a conditional VAE's calls, ``{}`` for any other."""
    return {} if vae.num_classes is None else {"labels": labels}


def _training_data(vae: VAE, data: RunData, settings: TrainSettings, initial_epoch: int) -> dict:
    """``fit``'s data: the arrays, or with uniform dequantisation a fresh-noise stream.

    A conditional VAE's are ``(images, labels)``.
    """
    conditional = vae.num_classes is not None
    if data.dequantize != "uniform" or data.pixels_train is None:
        target = data.y_train if conditional else data.x_train
        return {"x": data.x_train, "y": target, "batch_size": settings.batch_size}
    drop = vae.distribute_strategy.num_replicas_in_sync > 1
    stream = array_dataset(
        data.pixels_train,
        settings.batch_size,
        seed=settings.seed,
        drop_remainder=drop,
        first_epoch=initial_epoch,
        dequantize=True,
        labels=data.y_train if conditional else None,
    )
    steps = steps_per_epoch(len(data.pixels_train), settings.batch_size, drop)
    return {"x": stream, "steps_per_epoch": steps}


def model_config_for(settings: TrainSettings, **fields: Any) -> VAEConfig:
    """A :class:`VAEConfig` whose ``input_shape`` is the dataset's image shape.

    ``num_classes=True`` (``--conditional``) is the dataset's number of classes, and
    ``False`` is ``None`` (unconditional).

    Raises:
        ValueError: For a conditional model of a dataset without labels.
    """
    dataset = DATASETS.get(settings.dataset)
    if fields.get("num_classes") is True:
        if not dataset.class_names:
            raise ValueError(
                f"--conditional needs a labelled dataset; {settings.dataset!r} has no classes"
            )
        fields["num_classes"] = len(dataset.class_names)
    elif fields.get("num_classes") is False:
        fields["num_classes"] = None
    return VAEConfig(input_shape=dataset.image_shape, **fields)


def prepare_output_dir(out: Path, force: bool) -> None:
    """Creates ``out``; refuses to reuse a non-empty directory unless ``force``.

    ``worker-N`` folders do not count: other workers of the same multi-worker run
    may create theirs inside the chief's directory before the chief starts. With
    ``force``, the files of an earlier run are removed first, so that a new run
    that stops early never sits beside the old run's weights; other files stay.
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if out.is_dir() and any(not is_worker_directory(p) for p in out.iterdir()) and not force:
        raise FileExistsError(
            f"{out} already holds files; choose another --out or pass --force to overwrite"
        )
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def check_batch_size(settings: TrainSettings, data: RunData) -> None:
    """Refuses a batch larger than the training set (almost always a ``limit`` slip)."""
    if settings.batch_size > len(data.x_train):
        raise ValueError(
            f"batch_size {settings.batch_size} is larger than the {len(data.x_train)} "
            "training images; lower --batch-size or raise --limit"
        )


def fit(
    vae: VAE,
    data: RunData,
    settings: TrainSettings,
    out: Path | None = None,
    progress: bool = True,
    initial_epoch: int = 0,
    checkpoints: Checkpoints | None = None,
    validate: bool = True,
) -> dict[str, list[float]]:
    """Trains ``vae`` on ``data`` from ``initial_epoch`` to ``settings.epochs``.

    Appends one row per epoch to ``out/history.csv`` if ``out`` is given, and
    writes a checkpoint after every finite epoch if ``checkpoints`` is given.
    With ``validate`` (default) the test split is scored after every epoch.

    Raises:
        TrainingFaultError: If a step went non-finite (the weights are those of
            the last finite epoch).
    """
    steps = -(-len(data.x_train) // settings.batch_size)
    callbacks: list[tfk.callbacks.Callback] = [KLWarmUp(settings.warmup_epochs)]
    if settings.temperature_epochs:
        callbacks.append(
            TemperatureAnnealing(
                vae.config.temperature, settings.temperature_end, settings.temperature_epochs
            )
        )
    if progress:
        callbacks.append(
            TqdmProgress(settings.epochs, steps, initial_epoch=initial_epoch, desc="training")
        )
    if out is not None:
        callbacks.append(tfk.callbacks.CSVLogger(str(out / HISTORY_FILE), append=True))
    if checkpoints is not None:
        callbacks.append(EpochCheckpoint(checkpoints))
    if settings.tensorboard is not None:
        callbacks += tensorboard_callbacks(
            settings.tensorboard,
            data.x_test,
            settings.tensorboard_images_every,
            **given(vae, data.y_test),
        )
    validation = (data.x_test, data.y_test if vae.num_classes is not None else data.x_test)
    with warnings.catch_warnings():  # raised below instead
        warnings.filterwarnings("ignore", "training stopped", RuntimeWarning)
        history = vae.fit(
            **_training_data(vae, data, settings, initial_epoch),
            epochs=settings.epochs,
            initial_epoch=initial_epoch,
            validation_data=validation if validate else None,
            callbacks=callbacks,
            verbose=0,
        )
    if vae.training_fault is not None:
        kept = ""
        if checkpoints is not None:
            kept = (
                f". {checkpoints.directory} keeps epoch {checkpoints.latest_epoch()}: "
                "continue with --resume and a lower --learning-rate"
            )
        raise TrainingFaultError(vae.training_fault.message() + kept)
    return {k: [float(v) for v in values] for k, values in history.history.items()}


def check_resumable_dir(out: Path) -> dict[str, Any]:
    """The stored config of the run in ``out``, or a ``ModelFileError`` if there is none."""
    if not (Path(out) / CONFIG_FILE).is_file():
        raise ModelFileError(
            f"nothing to resume in {out}: it holds no {CONFIG_FILE}; start the run without --resume"
        )
    return read_config(out)


def check_resumable(out: Path, model_config: VAEConfig, settings: TrainSettings) -> None:
    """Checks that ``out`` holds a run started with the same model and settings.

    Raises:
        ValueError: (a ``ModelFileError`` for missing files) naming the first
            difference, or saying that there is nothing to resume.
    """
    stored = check_resumable_dir(out)
    before = {**stored["model"], **stored.get("train", {})}
    now = {**model_config.to_dict(), **settings.to_dict()}
    for key in sorted(set(before) | set(now)):
        if key not in RESUMABLE_CHANGES and before.get(key) != now.get(key):
            raise ValueError(
                f"cannot resume {out}: {key} is {now.get(key)!r} now but was "
                f"{before.get(key)!r}; drop that option or start a new run with another --out"
            )


def keep_history(out: Path, epochs: int) -> None:
    """Keeps only the complete rows of ``history.csv`` for the first ``epochs`` epochs.

    A resumed run appends from its checkpoint's epoch; rows written after that
    checkpoint (or torn by a kill) would otherwise repeat or break the file.
    """
    path = out / HISTORY_FILE
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    if not lines:
        return
    header, kept = lines[0], [lines[0]]
    width = len(header.split(","))
    for line in lines[1:]:
        fields = line.split(",")
        if len(fields) == width and fields[0].isdigit() and int(fields[0]) < epochs:
            kept.append(line)
    atomic_write_text(path, "\n".join(kept) + "\n" if len(kept) > 1 else "")


def run_training(
    model_config: VAEConfig,
    settings: TrainSettings,
    out: str | Path,
    force: bool = False,
    progress: bool = True,
    resume: bool = False,
    figures: bool = True,
) -> tuple[VAE, dict[str, float] | None]:
    """Trains a VAE and writes a complete run directory.

    Args:
        model_config: The model.
        settings: How to train it (including the ``tf.distribute`` strategy).
        out: The run directory. In a multi-worker run the chief writes here and
            worker N into ``out/worker-N``
            (see :func:`tfpvae.training.distribute.worker_directory`).
        force: Reuse a non-empty ``out``, replacing its run.
        progress: Show a progress bar.
        resume: Continue the run in ``out`` from its latest checkpoint (a run
            whose epochs are all done only gets its metrics and figures
            rewritten). ``settings.epochs`` may be raised to train longer.
        figures: Draw ``figures/`` (about 2–5 CPU-seconds); without them,
            :func:`write_figures` or ``tfpvae plot`` draws them later.

    Returns:
        The trained model and the held-out metrics (``None`` on a non-chief worker,
        which writes no metrics or figures).

    Raises:
        TrainingFaultError: If a step went non-finite. ``out`` keeps the
            checkpoint of the last finite epoch and the history.
    """
    strategy = make_strategy(settings.strategy)  # first: multi-worker needs a fresh runtime
    chief, _ = worker_role(strategy)
    out = worker_directory(Path(out), strategy)
    if resume:
        if force:
            raise ValueError("--resume continues a run and --force replaces it; choose one")
        check_resumable(out, model_config, settings)
    else:
        prepare_output_dir(out, force)
    data = load_run_data(settings, model_config.likelihood)
    check_batch_size(settings, data)
    if settings.deterministic:
        tf.config.experimental.enable_op_determinism()
    tfk.utils.set_random_seed(settings.seed)
    vae = build_vae_from_config(model_config, strategy=strategy)
    if settings.temperature_epochs and vae.temperature is None:
        raise ValueError(
            "a temperature schedule (temperature_epochs > 0) needs "
            "posterior='relaxed_categorical'; drop --temperature-epochs"
        )
    checkpoints = Checkpoints(vae, out / CHECKPOINT_DIR)
    initial_epoch = checkpoints.restore() if resume else 0
    vae.optimizer.learning_rate.assign(model_config.learning_rate)  # may change on resume
    # Recorded with absolute data locations, so that the run works from any directory.
    settings = dataclasses.replace(settings, cache_dir=cache_dir_to_record(settings.cache_dir))
    extra = {"train": settings.to_dict(), CWD_KEY: os.getcwd()}
    write_config(vae, out, extra=extra)
    if not (out / LATENT_BEFORE_FILE).is_file():
        staging = out / f".{LATENT_BEFORE_FILE}.tmp"
        with staging.open("wb") as handle:
            np.save(handle, vae.encode(data.x_test, **given(vae, data.y_test)).numpy())
        os.replace(staging, out / LATENT_BEFORE_FILE)
    keep_history(out, initial_epoch)
    if initial_epoch == 0:
        checkpoints.write(0)  # so that even a fault in the first epoch leaves a checkpoint
    if initial_epoch < settings.epochs:
        fit(vae, data, settings, out, progress and chief, initial_epoch, checkpoints)
    save(vae, out, extra=extra)
    if not chief:
        return vae, None
    metrics = write_metrics(vae, data, settings, out)
    if figures:
        write_figures(vae, data, out)
    return vae, metrics


def write_metrics(
    vae: VAE,
    data: RunData,
    settings: TrainSettings,
    out: Path,
    extra: dict | None = None,
    cubo_n: float | None = None,
) -> dict:
    """Computes the held-out metrics on the test split and writes ``metrics.json``.

    They include the latent use (:func:`~tfpvae.evaluation.diagnostics.latent_use`),
    with ``cubo_n`` the CUBO bracket (:func:`~tfpvae.evaluation.bounds.held_out_metrics`),
    and whatever ``extra`` holds (e.g. ``outliers``).
    """
    metrics: dict[str, Any] = held_out_metrics(
        vae,
        data.x_test,
        k=settings.eval_k,
        seed=settings.seed,
        pixels=data.pixels_test,
        **given(vae, data.y_test),
        cubo_n=cubo_n,
    )
    metrics["dataset"] = settings.dataset
    metrics.update(latent_use(vae, data.x_test, **given(vae, data.y_test)))
    metrics.update(extra or {})
    atomic_write_text(out / METRICS_FILE, json.dumps(metrics, indent=2, sort_keys=True))
    return metrics


def read_history(out: Path) -> dict[str, list[float]]:
    """Reads ``history.csv`` into columns."""
    path = Path(out) / HISTORY_FILE
    if not path.is_file():
        return {}
    with path.open() as handle:
        rows = [row for row in csv.DictReader(handle) if None not in row.values()]
    return {key: [float(row[key]) for row in rows] for key in (rows[0] if rows else {})}


def write_figures(vae: VAE, data: RunData, out: Path) -> list[Path]:
    """Draws every figure of a run into ``out/figures``; returns the paths."""
    fig_dir = Path(out) / FIGURES_DIR
    fig_dir.mkdir(exist_ok=True)
    x, y, names = data.x_test, data.y_test, data.class_names
    conditional = vae.num_classes is not None
    a, b = plots.contrasting_pair(
        y, vae.encode(x, **given(vae, y)).numpy()
    )  # two classes, far apart
    figures = {
        "examples": lambda: plots.plot_examples(x, y, names),
        "reconstructions": lambda: plots.plot_reconstructions(vae, x, **given(vae, y)),
        "history": lambda: plots.plot_history(read_history(out)),
    }
    if conditional:  # one row per class; the latent figures decode without a label
        figures["class_samples"] = lambda: plots.plot_class_samples(vae, class_names=names)
    else:
        figures["prior_samples"] = lambda: plots.plot_prior_samples(vae)
        figures["interpolation"] = lambda: plots.plot_interpolation(vae, x[a], x[b])
    latent_kind = vae.parts.family.latent_kind
    figures.update(LATENT_FIGURES.get(latent_kind)(vae, data, Path(out)))
    paths = []
    for name, draw in figures.items():
        fig = draw()
        paths.append(fig_dir / f"{name}.png")
        fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
        plt.close(fig)
    if not conditional:
        paths.append(plots.save_interpolation_gif(vae, x[a], x[b], fig_dir / "interpolation.gif"))
    return paths


def _continuous_latent_figures(vae: VAE, data: RunData, out: Path) -> dict:
    """A traversal, the KL per dimension; for d ≥ 2 codes by class, manifold, before/after."""
    x, y, names = data.x_test, data.y_test, data.class_names
    use = latent_use(vae, x, **given(vae, y))
    figures = {}
    if vae.num_classes is None:  # the sweeps decode without a label
        figures["traversal"] = lambda: plots.plot_traversal(
            vae, x, dims=range(min(vae.latent_dim, 10))
        )
    if use["kl_per_dimension"] is not None:
        figures["kl_per_dimension"] = lambda: plots.plot_kl_per_dimension(
            np.asarray(use["kl_per_dimension"]),
            np.asarray(use["unit_activity"]) > use["active_threshold"],
        )
    if vae.latent_dim >= 2:
        figures["latent"] = lambda: plots.plot_latent(vae, x, y, names)
        if vae.num_classes is None:  # a conditional decoder needs a label for each tile
            train_codes = vae.encode(data.x_train).numpy()  # the grid spans where the codes are
            figures["manifold"] = lambda: plots.plot_manifold(vae, codes=train_codes)
        before = out / LATENT_BEFORE_FILE
        if before.is_file():
            z_before, z_after = np.load(before), vae.encode(x, **given(vae, y)).numpy()
            figures["latent_before_after"] = lambda: plots.plot_latent_before_after(
                z_before, z_after, y, names
            )
    return figures


def _categorical_latent_figures(vae: VAE, data: RunData, out: Path) -> dict:
    """The decoded grid of categories (not for a conditional decoder, which needs labels)."""
    return {} if vae.num_classes is not None else {"categories": lambda: plots.plot_categories(vae)}


#: The latent figures of a posterior family (its ``latent_kind``): name → drawing function.
LATENT_FIGURES: Registry = Registry("latent figures")
LATENT_FIGURES.register("continuous", _continuous_latent_figures)
LATENT_FIGURES.register("categorical", _categorical_latent_figures)


def settings_of(out: str | Path, cache_dir: str | os.PathLike | None = None) -> TrainSettings:
    """The training settings stored in a run directory, with the cache to read its data from.

    Args:
        out: The run directory.
        cache_dir: Read the data from this Keras cache instead (``--cache-dir``).
            Without it ``$TFPVAE_KERAS_CACHE`` wins over the recorded cache
            (see :mod:`tfpvae.interfaces.locations`).
    """
    payload = read_config(out)
    settings = TrainSettings(**payload.get("train", {}))
    found = run_cache_dir(out, settings.cache_dir, payload.get(CWD_KEY), cache_dir)
    return dataclasses.replace(settings, cache_dir=found)
