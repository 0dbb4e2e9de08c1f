"""Budgets and data for the tutorial notebooks (kept here so notebooks stay thin).

When the environment variable ``CI`` or ``TFPVAE_SMOKE`` is set, notebooks run on
a *smoke* budget (a few epochs on a small slice). Otherwise they run in *full*
mode on Fashion-MNIST, found through ``TFPVAE_KERAS_CACHE`` (or downloaded), and
fall back to the bundled digits, saying so, when neither works.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from tfpvae._backend import tfk
from tfpvae.components.likelihoods import LIKELIHOODS, get_likelihood
from tfpvae.evaluation.comparison import ComparisonRow, comparison_rows
from tfpvae.interfaces.run import RunData, TrainSettings, fit, load_run_data
from tfpvae.io.datasets import CACHE_ENV, DATASETS, DatasetUnavailableError, load_dataset
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


#: The datasets notebook 03 compares the likelihoods on (both samples are in the shared cache).
STUDY_DATASETS = ("mnist", "fashion_mnist")


def study_datasets() -> tuple[str, ...]:
    """The datasets of the likelihood study: both in full mode, MNIST alone on the smoke budget.

    Each dataset trains one model per likelihood, and building a model is most
    of a smoke run's cost; the second dataset runs the same code.
    """
    return STUDY_DATASETS[:1] if budget().smoke else STUDY_DATASETS


@dataclass
class LikelihoodStudy:
    """Every likelihood trained on one dataset, and the comparison table.

    Attributes:
        dataset: The dataset actually used.
        models: Likelihood name → trained VAE.
        rows: The comparison table (:func:`tfpvae.evaluation.comparison.comparison_rows`)
            on the test images.
        n_train: Training images per model.
        n_test: Test images evaluated.
    """

    dataset: str
    models: dict[str, VAE]
    rows: list[ComparisonRow]
    n_train: int
    n_test: int
    epochs: int

    def describe(self) -> str:
        """One line on what the numbers were computed on."""
        where = "smoke budget" if budget().smoke else "full mode"
        return (
            f"{self.dataset}: {len(self.models)} models, each trained {self.epochs} epochs on "
            f"{self.n_train} training images, evaluated on {self.n_test} test images ({where})"
        )


def likelihood_study(
    dataset: str,
    likelihoods: tuple[str, ...] | None = None,
    epochs: int | None = None,
    k: int | None = None,
    limit: int | None = None,
    n_test: int | None = None,
    batch_size: int = 32,
    seed: int = 0,
    **vae_kwargs,
) -> LikelihoodStudy:
    """Trains one VAE per likelihood on ``dataset`` and puts them in one comparable column.

    Likelihoods on (0, 1) train and are evaluated on uniformly dequantised data
    (fresh noise per image and epoch), so that their bound is one on the 8-bit
    images; the discrete likelihoods train on the levels; the Bernoulli on
    binarised images (and is marked not comparable).

    Args:
        dataset: A registered dataset; falls back to the digits when unavailable.
        likelihoods: Names; default every registered likelihood.
        epochs: Default: 1 on the smoke budget, else 3.
        k: Importance samples; default: 3 on the smoke budget, else 10.
        limit: Training images (and at most as many test images) per model;
            default: 128 on the smoke budget, else 1,500, which keeps the
            256-way categorical (12.8 M decoder weights at 28×28) to about a minute.
        n_test: Test images in the table; default: 32 on the smoke budget, else 400.
        batch_size: Images per step.
        seed: Seed of the data, the weights and the draws.
        **vae_kwargs: Passed to :func:`~tfpvae.build_vae` (default: latent_dim 8,
            one hidden layer of 64, exact KL), the same for every likelihood.
    """
    smoke = budget().smoke
    epochs = epochs or (1 if smoke else 3)
    k = k or (3 if smoke else 10)
    limit = limit or (128 if smoke else 1500)
    n_test = n_test or (32 if smoke else 400)
    try:
        load_dataset(dataset)
    except DatasetUnavailableError as err:
        print(f"{dataset} is not available ({str(err).split(' (')[0]}); using the digits.")
        dataset = "digits"
    models = {}
    data = None
    vae_kwargs = {"latent_dim": 8, "hidden_units": (64,), "use_exact_kl": True, **vae_kwargs}
    for name in likelihoods or tuple(LIKELIHOODS.names()):
        dequantize = get_likelihood(name).data_space.dequantize
        settings = TrainSettings(
            dataset=dataset, limit=limit, epochs=epochs, batch_size=batch_size, seed=seed
        )
        settings = TrainSettings(**{**settings.to_dict(), "dequantize": dequantize})
        data = load_run_data(settings, name)
        tfk.utils.set_random_seed(seed)
        vae = build_vae(likelihood=name, input_shape=data.x_train.shape[1:], **vae_kwargs)
        vae.jit_compile = False  # for a few epochs, XLA's compile costs more than it saves
        fit(vae, data, settings, progress=False, validate=False)  # the table scores the test set
        models[name] = vae
    assert data is not None and data.pixels_test is not None
    pixels = data.pixels_test[:n_test]
    rows = comparison_rows(models, pixels, k=k, seed=seed)
    return LikelihoodStudy(dataset, models, rows, len(data.x_train), len(pixels), epochs)


def prior_samples(models: dict[str, VAE], n: int = 6, seed: int = 1) -> dict[str, np.ndarray]:
    """One draw from p(x|z) for each of ``n`` prior draws z, per model, scaled to [0, 1]."""
    out = {}
    for name, vae in models.items():
        z = vae.prior.sample(n, seed=seed)
        x = vae.decoder(z).sample(seed=seed + 1).numpy()
        out[name] = np.clip(x * vae.likelihood.data_space.unit_scale, 0.0, 1.0)
    return out
