"""tfpvae: variational autoencoders from TensorFlow Probability's layers.

The public API is listed in ``__all__``; ``tfpvae.plots`` holds the figures.
"""

from tfpvae._backend import tfd, tfk, tfpl
from tfpvae.autoencoder import Autoencoder, build_autoencoder
from tfpvae.callbacks import KLWarmUp, TqdmProgress
from tfpvae.config import VAEConfig
from tfpvae.data import DATASETS, DatasetUnavailableError, class_names, load_dataset, prepare
from tfpvae.decoders import build_decoder
from tfpvae.divergences import KL_ATTACHMENTS, KLTerm, monte_carlo_kl
from tfpvae.encoders import POSTERIORS, build_encoder
from tfpvae.evaluate import ELBOTerms, bits_per_dim, elbo, held_out_metrics, iwae_bound
from tfpvae.likelihoods import LIKELIHOODS, Likelihood, get_likelihood
from tfpvae.model import VAE, build_vae, build_vae_from_config
from tfpvae.priors import standard_normal_prior
from tfpvae.registry import Registry
from tfpvae.saving import ModelFileError, load, save
from tfpvae.training import TrainSettings, run_training

__version__ = "0.1.0"

__all__ = [
    "DATASETS",
    "KL_ATTACHMENTS",
    "LIKELIHOODS",
    "POSTERIORS",
    "VAE",
    "Autoencoder",
    "DatasetUnavailableError",
    "ELBOTerms",
    "KLTerm",
    "KLWarmUp",
    "Likelihood",
    "ModelFileError",
    "Registry",
    "TqdmProgress",
    "TrainSettings",
    "VAEConfig",
    "__version__",
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
    "prepare",
    "run_training",
    "save",
    "standard_normal_prior",
    "tfd",
    "tfk",
    "tfpl",
]
