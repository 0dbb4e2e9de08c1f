"""tfpvae: variational autoencoders from TensorFlow Probability's layers.

The public API is listed in ``__all__``. The package is laid out in layers, each
importing only from the ones before it (``tests/test_layout.py`` checks this):

* ``components``: trunks, posteriors, priors, likelihoods, KL attachment, precision;
* ``objectives``: what a VAE minimises (the :class:`~tfpvae.objectives.Objective` registry);
* ``config``: :class:`VAEConfig`;
* ``training``: pipeline, checks, fault guard, callbacks, CPU/XLA tuning;
* ``models``: :class:`VAE`, its builders, serving, the autoencoder baseline;
* ``io``: datasets, sources, saving;
* ``evaluation``: held-out bounds, comparisons, diagnostics, figures (``tfpvae.evaluation.plots``);
* ``interfaces``: the CLI, whole training runs, notebook helpers.

Importing the package is cheap: each public name is imported from its module on
first use (PEP 562), so ``tfpvae --help`` answers without loading TensorFlow, and
``import tfpvae`` never loads matplotlib or seaborn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tfpvae import _keras_hook, _native_log, _xla_cache

__version__ = "0.1.0"

# tf_keras.models.load_model finds a saved VAE after a plain `import tfpvae`.
_keras_hook.install()
# Whoever imports TensorFlow next, its start-up log shows at most once (tfpvae._native_log).
_native_log.install()
# Compiled XLA steps are kept between processes, if TensorFlow has not read its flags yet.
_xla_cache.use_compilation_cache()

#: Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    "tfd": "tfpvae._backend",
    "tfk": "tfpvae._backend",
    "tfpl": "tfpvae._backend",
    "CONCENTRATIONS": "tfpvae.components.concentration",
    "KL_ATTACHMENTS": "tfpvae.components.kl",
    "KLTerm": "tfpvae.components.kl",
    "KLEstimator": "tfpvae.components.kl",
    "monte_carlo_kl": "tfpvae.components.kl",
    "LIKELIHOODS": "tfpvae.components.likelihoods",
    "Likelihood": "tfpvae.components.likelihoods",
    "DataSpace": "tfpvae.components.dataspace",
    "ComparisonRow": "tfpvae.evaluation.comparison",
    "comparison_rows": "tfpvae.evaluation.comparison",
    "eight_bit_bound": "tfpvae.evaluation.bounds",
    "active_units": "tfpvae.evaluation.diagnostics",
    "kl_per_dimension": "tfpvae.evaluation.diagnostics",
    "auroc": "tfpvae.evaluation.outliers",
    "outlier_report": "tfpvae.evaluation.outliers",
    "outlier_scores": "tfpvae.evaluation.outliers",
    "get_likelihood": "tfpvae.components.likelihoods",
    "POSTERIORS": "tfpvae.components.posteriors",
    "PlanarPosterior": "tfpvae.components.planar_radial",
    "RadialPosterior": "tfpvae.components.planar_radial",
    "BottomLatent": "tfpvae.components.hierarchy",
    "TwoLayerPosterior": "tfpvae.components.hierarchy",
    "TwoLayerPrior": "tfpvae.components.hierarchy",
    "PRECISIONS": "tfpvae.components.precision",
    "standard_normal_prior": "tfpvae.components.priors",
    "PRIORS": "tfpvae.components.priors",
    "TemperatureAnnealing": "tfpvae.training.callbacks",
    "VAEConfig": "tfpvae.config",
    "ELBOTerms": "tfpvae.evaluation.bounds",
    "bits_per_dim": "tfpvae.evaluation.bounds",
    "elbo": "tfpvae.evaluation.bounds",
    "held_out_metrics": "tfpvae.evaluation.bounds",
    "iwae_bound": "tfpvae.evaluation.bounds",
    "cubo": "tfpvae.evaluation.bounds",
    "gradient_snr": "tfpvae.evaluation.gradients",
    "DATASETS": "tfpvae.io.datasets",
    "DatasetUnavailableError": "tfpvae.io.datasets",
    "class_names": "tfpvae.io.datasets",
    "load_dataset": "tfpvae.io.datasets",
    "prepare": "tfpvae.io.datasets",
    "ModelFileError": "tfpvae.io.saving",
    "load": "tfpvae.io.saving",
    "save": "tfpvae.io.saving",
    "png_directory_dataset": "tfpvae.io.sources",
    "tfrecord_dataset": "tfpvae.io.sources",
    "write_pngs": "tfpvae.io.sources",
    "write_tfrecords": "tfpvae.io.sources",
    "VAE": "tfpvae.models",
    "Autoencoder": "tfpvae.models",
    "build_autoencoder": "tfpvae.models",
    "build_decoder": "tfpvae.models",
    "build_encoder": "tfpvae.models",
    "build_vae": "tfpvae.models",
    "build_vae_from_config": "tfpvae.models",
    "OBJECTIVES": "tfpvae.objectives",
    "GRADIENTS": "tfpvae.objectives",
    "Objective": "tfpvae.objectives",
    "Terms": "tfpvae.objectives",
    "Parts": "tfpvae.objectives",
    "Registry": "tfpvae.registry",
    "KLWarmUp": "tfpvae.training.callbacks",
    "TqdmProgress": "tfpvae.training.callbacks",
    "Checkpoints": "tfpvae.training.checkpoints",
    "STRATEGIES": "tfpvae.training.distribute",
    "NonFiniteGuard": "tfpvae.training.faults",
    "TrainingFault": "tfpvae.training.faults",
    "TrainingFaultError": "tfpvae.training.faults",
    "array_dataset": "tfpvae.training.pipeline",
    "TrainSettings": "tfpvae.interfaces.run",
    "run_training": "tfpvae.interfaces.run",
}

if TYPE_CHECKING:
    from tfpvae._backend import tfd, tfk, tfpl
    from tfpvae.components.concentration import CONCENTRATIONS
    from tfpvae.components.dataspace import DataSpace
    from tfpvae.components.hierarchy import BottomLatent, TwoLayerPosterior, TwoLayerPrior
    from tfpvae.components.kl import KL_ATTACHMENTS, KLEstimator, KLTerm, monte_carlo_kl
    from tfpvae.components.likelihoods import LIKELIHOODS, Likelihood, get_likelihood
    from tfpvae.components.planar_radial import PlanarPosterior, RadialPosterior
    from tfpvae.components.posteriors import POSTERIORS
    from tfpvae.components.precision import PRECISIONS
    from tfpvae.components.priors import PRIORS, standard_normal_prior
    from tfpvae.config import VAEConfig
    from tfpvae.evaluation.bounds import (
        ELBOTerms,
        bits_per_dim,
        cubo,
        eight_bit_bound,
        elbo,
        held_out_metrics,
        iwae_bound,
    )
    from tfpvae.evaluation.comparison import ComparisonRow, comparison_rows
    from tfpvae.evaluation.diagnostics import active_units, kl_per_dimension
    from tfpvae.evaluation.gradients import gradient_snr
    from tfpvae.evaluation.outliers import auroc, outlier_report, outlier_scores
    from tfpvae.interfaces.run import TrainSettings, run_training
    from tfpvae.io.datasets import (
        DATASETS,
        DatasetUnavailableError,
        class_names,
        load_dataset,
        prepare,
    )
    from tfpvae.io.saving import ModelFileError, load, save
    from tfpvae.io.sources import (
        png_directory_dataset,
        tfrecord_dataset,
        write_pngs,
        write_tfrecords,
    )
    from tfpvae.models import (
        VAE,
        Autoencoder,
        build_autoencoder,
        build_decoder,
        build_encoder,
        build_vae,
        build_vae_from_config,
    )
    from tfpvae.objectives import GRADIENTS, OBJECTIVES, Objective, Parts, Terms
    from tfpvae.registry import Registry
    from tfpvae.training.callbacks import KLWarmUp, TemperatureAnnealing, TqdmProgress
    from tfpvae.training.checkpoints import Checkpoints
    from tfpvae.training.distribute import STRATEGIES
    from tfpvae.training.faults import NonFiniteGuard, TrainingFault, TrainingFaultError
    from tfpvae.training.pipeline import array_dataset

__all__ = [
    "CONCENTRATIONS",
    "DATASETS",
    "GRADIENTS",
    "KL_ATTACHMENTS",
    "LIKELIHOODS",
    "OBJECTIVES",
    "POSTERIORS",
    "PRECISIONS",
    "PRIORS",
    "STRATEGIES",
    "VAE",
    "Autoencoder",
    "BottomLatent",
    "Checkpoints",
    "ComparisonRow",
    "DataSpace",
    "DatasetUnavailableError",
    "ELBOTerms",
    "KLEstimator",
    "KLTerm",
    "KLWarmUp",
    "Likelihood",
    "ModelFileError",
    "NonFiniteGuard",
    "Objective",
    "Parts",
    "PlanarPosterior",
    "RadialPosterior",
    "Registry",
    "TemperatureAnnealing",
    "Terms",
    "TqdmProgress",
    "TrainSettings",
    "TrainingFault",
    "TrainingFaultError",
    "TwoLayerPosterior",
    "TwoLayerPrior",
    "VAEConfig",
    "__version__",
    "active_units",
    "array_dataset",
    "auroc",
    "bits_per_dim",
    "build_autoencoder",
    "build_decoder",
    "build_encoder",
    "build_vae",
    "build_vae_from_config",
    "class_names",
    "comparison_rows",
    "cubo",
    "eight_bit_bound",
    "elbo",
    "get_likelihood",
    "gradient_snr",
    "held_out_metrics",
    "iwae_bound",
    "kl_per_dimension",
    "load",
    "load_dataset",
    "monte_carlo_kl",
    "outlier_report",
    "outlier_scores",
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
    """Imports a public name, or a subpackage such as ``tfpvae.evaluation``, on first use."""
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
