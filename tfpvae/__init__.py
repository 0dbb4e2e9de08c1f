"""tfpvae: variational autoencoders from TensorFlow Probability's layers.

The public API is listed in ``__all__``.
"""

from tfpvae._backend import tfd, tfk, tfpl
from tfpvae.config import VAEConfig
from tfpvae.decoders import build_decoder
from tfpvae.divergences import KL_ATTACHMENTS, KLTerm, monte_carlo_kl
from tfpvae.encoders import POSTERIORS, build_encoder
from tfpvae.likelihoods import LIKELIHOODS, Likelihood, get_likelihood
from tfpvae.model import VAE, build_vae, build_vae_from_config
from tfpvae.priors import standard_normal_prior
from tfpvae.registry import Registry

__version__ = "0.1.0"

__all__ = [
    "KL_ATTACHMENTS",
    "LIKELIHOODS",
    "POSTERIORS",
    "VAE",
    "KLTerm",
    "Likelihood",
    "Registry",
    "VAEConfig",
    "__version__",
    "build_decoder",
    "build_encoder",
    "build_vae",
    "build_vae_from_config",
    "get_likelihood",
    "monte_carlo_kl",
    "standard_normal_prior",
    "tfd",
    "tfk",
    "tfpl",
]
