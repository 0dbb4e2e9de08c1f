"""The model's building blocks: trunks, posteriors, priors, likelihoods, KL attachment, precision.

Nothing here depends on :class:`~tfpvae.config.VAEConfig`: the blocks take sizes
and names, and ``tfpvae.models`` assembles them.
"""

# Registers the "relaxed_categorical" posterior beside the Gaussians of posteriors.py.
from tfpvae._lazy import submodule_getattr
from tfpvae.components import categorical as _categorical  # noqa: F401

#: ``tfpvae.components.<module>`` imports that module on first use.
__getattr__ = submodule_getattr(__name__)
