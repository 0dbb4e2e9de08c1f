"""tfpvae: variational autoencoders from TensorFlow Probability's layers.

The public API is listed in ``__all__``. The package is laid out in layers, each
importing only from the ones before it (``tests/test_layout.py`` checks this):

* ``components``: trunks, posteriors, priors, likelihoods, KL attachment, precision;
* ``objectives``: what a VAE minimises (the :class:`~tfpvae.objectives.Objective` registry);
* ``config``: :class:`VAEConfig`;
* ``training``: pipeline, checks, fault guard, callbacks, CPU/XLA tuning;
* ``models``: :class:`VAE`, its builders, the autoencoder baseline;
* ``evaluation``: held-out bounds, diagnostics, figures;
* ``io``: datasets, sources, saving;
* ``interfaces``: the CLI, whole training runs, notebook helpers.

``import tfpvae`` does not import matplotlib or seaborn: the names that need them
(:func:`run_training`, :class:`TrainSettings`) load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from tfpvae._backend import tfd, tfk, tfpl
from tfpvae.components.kl import KL_ATTACHMENTS, KLTerm, monte_carlo_kl
from tfpvae.components.likelihoods import LIKELIHOODS, Likelihood, get_likelihood
from tfpvae.components.posteriors import POSTERIORS
from tfpvae.components.precision import PRECISIONS
from tfpvae.components.priors import PRIORS, standard_normal_prior
from tfpvae.config import VAEConfig
from tfpvae.evaluation.bounds import ELBOTerms, bits_per_dim, elbo, held_out_metrics, iwae_bound
from tfpvae.io.datasets import DATASETS, DatasetUnavailableError, class_names, load_dataset, prepare
from tfpvae.io.saving import ModelFileError, load, save
from tfpvae.io.sources import png_directory_dataset, tfrecord_dataset, write_pngs, write_tfrecords
from tfpvae.models import (
    VAE,
    Autoencoder,
    build_autoencoder,
    build_decoder,
    build_encoder,
    build_vae,
    build_vae_from_config,
)
from tfpvae.objectives import OBJECTIVES, Objective, Terms
from tfpvae.registry import Registry
from tfpvae.training.callbacks import KLWarmUp, TemperatureAnnealing, TqdmProgress
from tfpvae.training.checkpoints import Checkpoints
from tfpvae.training.distribute import STRATEGIES
from tfpvae.training.faults import NonFiniteGuard, TrainingFault, TrainingFaultError
from tfpvae.training.pipeline import array_dataset

__version__ = "0.1.0"

#: Public names whose modules import matplotlib: loaded on first access.
_LAZY = {"TrainSettings": "tfpvae.interfaces.run", "run_training": "tfpvae.interfaces.run"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tfpvae' has no attribute {name!r}")


__all__ = [
    "DATASETS",
    "KL_ATTACHMENTS",
    "LIKELIHOODS",
    "OBJECTIVES",
    "POSTERIORS",
    "PRECISIONS",
    "PRIORS",
    "STRATEGIES",
    "VAE",
    "Autoencoder",
    "Checkpoints",
    "DatasetUnavailableError",
    "ELBOTerms",
    "KLTerm",
    "KLWarmUp",
    "Likelihood",
    "ModelFileError",
    "NonFiniteGuard",
    "Objective",
    "Registry",
    "TemperatureAnnealing",
    "Terms",
    "TqdmProgress",
    "TrainSettings",
    "TrainingFault",
    "TrainingFaultError",
    "VAEConfig",
    "__version__",
    "array_dataset",
    "bits_per_dim",
    "build_autoencoder",
    "build_decoder",
    "build_encoder",
    "build_vae",
    "build_vae_from_config",
    "class_names",
    "elbo",
    "get_likelihood",
    "held_out_metrics",
    "iwae_bound",
    "load",
    "load_dataset",
    "monte_carlo_kl",
    "png_directory_dataset",
    "prepare",
    "run_training",
    "save",
    "standard_normal_prior",
    "tfd",
    "tfk",
    "tfpl",
    "tfrecord_dataset",
    "write_pngs",
    "write_tfrecords",
]
