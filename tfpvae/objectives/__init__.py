"""Training objectives: the :class:`~tfpvae.objectives.base.Objective` interface, its registry."""

from tfpvae.objectives.base import OBJECTIVES, Objective, Terms, weighted_mean
from tfpvae.objectives.elbo import ELBO, make_elbo
from tfpvae.objectives.fused import FusedELBO
from tfpvae.objectives.iwae import IWAE, FusedIWAE, make_iwae

__all__ = [
    "ELBO",
    "IWAE",
    "OBJECTIVES",
    "FusedELBO",
    "FusedIWAE",
    "Objective",
    "Terms",
    "make_elbo",
    "make_iwae",
    "weighted_mean",
]
