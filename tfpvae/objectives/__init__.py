"""Training objectives: the :class:`~tfpvae.objectives.base.Objective` interface, its registry."""

from tfpvae._lazy import submodule_getattr
from tfpvae.objectives.base import OBJECTIVES, Objective, Parts, Terms, weighted_mean
from tfpvae.objectives.elbo import ELBO, make_elbo
from tfpvae.objectives.fused import FusedELBO, FusedIWAE, fused_applies
from tfpvae.objectives.gradients import GRADIENTS
from tfpvae.objectives.iwae import IWAE, make_iwae
from tfpvae.objectives.renyi import Renyi, make_renyi

#: ``tfpvae.objectives.<module>`` imports that module on first use.
__getattr__ = submodule_getattr(__name__)

__all__ = [
    "ELBO",
    "GRADIENTS",
    "IWAE",
    "OBJECTIVES",
    "FusedELBO",
    "FusedIWAE",
    "Objective",
    "Parts",
    "Renyi",
    "Terms",
    "fused_applies",
    "make_elbo",
    "make_iwae",
    "make_renyi",
    "weighted_mean",
]
