"""tfpvae: variational autoencoders from TensorFlow Probability's layers.

The public API is listed in ``__all__``; ``tfpvae.plots`` holds the figures.
"""

from tfpvae._backend import tfd, tfk, tfpl
from tfpvae.autoencoder import Autoencoder, build_autoencoder
from tfpvae.callbacks import KLWarmUp, TqdmProgress
from tfpvae.checkpoints import Checkpoints
from tfpvae.comparison import ComparisonRow, comparison_rows, eight_bit_bound
from tfpvae.config import VAEConfig
from tfpvae.data import DATASETS, DatasetUnavailableError, class_names, load_dataset, prepare
from tfpvae.decoders import build_decoder
from tfpvae.distribute import STRATEGIES
from tfpvae.divergences import KL_ATTACHMENTS, KLTerm, monte_carlo_kl
from tfpvae.encoders import POSTERIORS, build_encoder
from tfpvae.evaluate import ELBOTerms, bits_per_dim, elbo, held_out_metrics, iwae_bound
from tfpvae.faults import NonFiniteGuard, TrainingFault, TrainingFaultError
from tfpvae.likelihoods import LIKELIHOODS, DataSpace, Likelihood, get_likelihood
from tfpvae.model import VAE, build_vae, build_vae_from_config
from tfpvae.pipeline import array_dataset
from tfpvae.precision import PRECISIONS
from tfpvae.priors import standard_normal_prior
from tfpvae.registry import Registry
from tfpvae.saving import ModelFileError, load, save
from tfpvae.sources import png_directory_dataset, tfrecord_dataset, write_pngs, write_tfrecords
from tfpvae.training import TrainSettings, run_training

__version__ = "0.1.0"

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
    "ComparisonRow",
    "DataSpace",
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
    "comparison_rows",
    "eight_bit_bound",
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
