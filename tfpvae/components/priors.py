"""The prior p(z) and the checks a user-supplied prior must pass."""

from __future__ import annotations

from tfpvae._backend import tf, tfd


def standard_normal_prior(latent_dim: int) -> tfd.Distribution:
    """The default prior :math:`\\mathcal{N}(0, I)` as ``tfd.MultivariateNormalDiag``."""
    return tfd.MultivariateNormalDiag(loc=tf.zeros(latent_dim), name="prior")


def check_prior(prior: object, latent_dim: int) -> tfd.Distribution:
    """Checks that ``prior`` is a distribution over ``R^latent_dim`` with no batch shape.

    Args:
        prior: The candidate prior.
        latent_dim: The latent dimension it must match.

    Returns:
        ``prior`` itself.

    Raises:
        ValueError: If it is not a ``tfd.Distribution`` or its shapes do not fit.
    """
    if not isinstance(prior, tfd.Distribution):
        raise ValueError(f"prior must be a tfd.Distribution, got {type(prior).__name__}")
    event_shape = tuple(prior.event_shape.as_list())
    if event_shape != (latent_dim,):
        raise ValueError(
            f"prior event shape {event_shape} does not match latent_dim={latent_dim}; "
            f"it must be ({latent_dim},)"
        )
    if prior.batch_shape.rank != 0:
        raise ValueError(f"prior must have an empty batch shape, got {prior.batch_shape}")
    return prior
