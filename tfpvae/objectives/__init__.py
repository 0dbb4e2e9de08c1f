"""Training objectives: the :class:`~tfpvae.objectives.base.Objective` interface, its registry."""

from tfpvae.objectives.base import OBJECTIVES, Objective, Terms, weighted_mean
from tfpvae.objectives.elbo import ELBO, make_elbo
from tfpvae.objectives.fused import FusedELBO

__all__ = ["ELBO", "OBJECTIVES", "FusedELBO", "Objective", "Terms", "make_elbo", "weighted_mean"]
