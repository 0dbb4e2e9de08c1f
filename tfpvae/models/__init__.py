"""Models: the VAE, its encoder and decoder builders, and the autoencoder baseline."""

from tfpvae._lazy import submodule_getattr
from tfpvae.models.autoencoder import Autoencoder, build_autoencoder
from tfpvae.models.build import build_vae, build_vae_from_config
from tfpvae.models.decoder import build_decoder
from tfpvae.models.encoder import build_encoder
from tfpvae.models.vae import VAE

#: ``tfpvae.models.<module>`` imports that module on first use.
__getattr__ = submodule_getattr(__name__)

__all__ = [
    "VAE",
    "Autoencoder",
    "build_autoencoder",
    "build_decoder",
    "build_encoder",
    "build_vae",
    "build_vae_from_config",
]
