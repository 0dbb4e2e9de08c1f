"""tfpvae: variational autoencoders from TensorFlow Probability's layers.

The public API is listed in ``__all__``; ``tfpvae.plots`` holds the figures.

Importing the package is cheap: each public name is imported from its module on
first use (PEP 562), so ``tfpvae --help`` answers without loading TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    "tfd": "tfpvae._backend",
    "tfk": "tfpvae._backend",
    "tfpl": "tfpvae._backend",
    "Autoencoder": "tfpvae.autoencoder",
    "build_autoencoder": "tfpvae.autoencoder",
    "KLWarmUp": "tfpvae.callbacks",
    "TqdmProgress": "tfpvae.callbacks",
    "Checkpoints": "tfpvae.checkpoints",
    "VAEConfig": "tfpvae.config",
    "DATASETS": "tfpvae.data",
    "DatasetUnavailableError": "tfpvae.data",
    "class_names": "tfpvae.data",
    "load_dataset": "tfpvae.data",
    "prepare": "tfpvae.data",
    "build_decoder": "tfpvae.decoders",
    "STRATEGIES": "tfpvae.distribute",
    "KL_ATTACHMENTS": "tfpvae.divergences",
    "KLTerm": "tfpvae.divergences",
    "monte_carlo_kl": "tfpvae.divergences",
    "POSTERIORS": "tfpvae.encoders",
    "build_encoder": "tfpvae.encoders",
    "ELBOTerms": "tfpvae.evaluate",
    "bits_per_dim": "tfpvae.evaluate",
    "elbo": "tfpvae.evaluate",
    "held_out_metrics": "tfpvae.evaluate",
    "iwae_bound": "tfpvae.evaluate",
    "NonFiniteGuard": "tfpvae.faults",
    "TrainingFault": "tfpvae.faults",
    "TrainingFaultError": "tfpvae.faults",
    "LIKELIHOODS": "tfpvae.likelihoods",
    "Likelihood": "tfpvae.likelihoods",
    "get_likelihood": "tfpvae.likelihoods",
    "VAE": "tfpvae.model",
    "build_vae": "tfpvae.model",
    "build_vae_from_config": "tfpvae.model",
    "array_dataset": "tfpvae.pipeline",
    "PRECISIONS": "tfpvae.precision",
    "standard_normal_prior": "tfpvae.priors",
    "Registry": "tfpvae.registry",
    "ModelFileError": "tfpvae.saving",
    "load": "tfpvae.saving",
    "save": "tfpvae.saving",
    "png_directory_dataset": "tfpvae.sources",
    "tfrecord_dataset": "tfpvae.sources",
    "write_pngs": "tfpvae.sources",
    "write_tfrecords": "tfpvae.sources",
    "TrainSettings": "tfpvae.training",
    "run_training": "tfpvae.training",
}

if TYPE_CHECKING:
    from tfpvae._backend import tfd, tfk, tfpl
    from tfpvae.autoencoder import Autoencoder, build_autoencoder
    from tfpvae.callbacks import KLWarmUp, TqdmProgress
    from tfpvae.checkpoints import Checkpoints
    from tfpvae.config import VAEConfig
    from tfpvae.data import DATASETS, DatasetUnavailableError, class_names, load_dataset, prepare
    from tfpvae.decoders import build_decoder
    from tfpvae.distribute import STRATEGIES
    from tfpvae.divergences import KL_ATTACHMENTS, KLTerm, monte_carlo_kl
    from tfpvae.encoders import POSTERIORS, build_encoder
    from tfpvae.evaluate import ELBOTerms, bits_per_dim, elbo, held_out_metrics, iwae_bound
    from tfpvae.faults import NonFiniteGuard, TrainingFault, TrainingFaultError
    from tfpvae.likelihoods import LIKELIHOODS, Likelihood, get_likelihood
    from tfpvae.model import VAE, build_vae, build_vae_from_config
    from tfpvae.pipeline import array_dataset
    from tfpvae.precision import PRECISIONS
    from tfpvae.priors import standard_normal_prior
    from tfpvae.registry import Registry
    from tfpvae.saving import ModelFileError, load, save
    from tfpvae.sources import png_directory_dataset, tfrecord_dataset, write_pngs, write_tfrecords
    from tfpvae.training import TrainSettings, run_training

__all__ = [
    "DATASETS",
    "KL_ATTACHMENTS",
    "LIKELIHOODS",
    "POSTERIORS",
    "PRECISIONS",
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
    "Registry",
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


def __getattr__(name: str) -> Any:
    """Imports a public name, or a submodule such as ``tfpvae.plots``, on first use."""
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    else:
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
