r"""The prior p(z): N(0, I), learned priors chosen by name from :data:`PRIORS`, checks.

Besides any ``tfd.Distribution`` a user passes, a prior is chosen by name:

* ``"standard_normal"``: the posterior family's standard prior, N(0, I) for the
  Gaussians (the uniform categorical for ``relaxed_categorical``);
* ``"mixture"``: a learned mixture of K diagonal Gaussians (TFP's VAE example),

  .. math:: p(z) = \sum_{k=1}^K \pi_k\,\mathcal{N}(z;\,\mu_k,\,\mathrm{diag}(\sigma_k^2)),
      \qquad \pi = \mathrm{softmax}(\ell),\quad \sigma_k = \mathrm{softplus}(\rho_k);

* ``"vamp"``: the VampPrior (Tomczak & Welling, 2018), the posterior averaged
  over K learned pseudo-inputs :math:`u_k`,

  .. math:: p(z) = \frac1K \sum_{k=1}^K q(z \mid u_k).

A learned prior is a :class:`LearnedPrior`: a Keras layer that owns its
variables (so that they are trained, saved and checkpointed with the model) and
builds the current ``tfd.Distribution`` on every :meth:`LearnedPrior.distribution`
call. TFP has no closed-form KL to a mixture, so the KL against them is sampled.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tfpvae._backend import tf, tfb, tfd, tfk
from tfpvae.registry import Registry

#: Smallest scale of a mixture component, so that no component collapses to a point.
MIN_SCALE = 1e-4
#: Pseudo-inputs start uniform on this interval (inside the (0, 1) pixel range).
PSEUDO_INPUT_RANGE = (0.01, 0.99)


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


class LearnedPrior(tfk.layers.Layer, abc.ABC):
    """A prior with trainable variables, owned by Keras.

    The model keeps the layer as an attribute, so its variables are in
    ``trainable_variables``, ``save_weights`` and checkpoints.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(dtype="float32", **kwargs)

    @abc.abstractmethod
    def distribution(self) -> tfd.Distribution:
        """p(z) at the current values of the variables."""

    def bind_posterior(self, posterior_fn: Callable[[tf.Tensor], tfd.Distribution]) -> None:
        """Receives the encoder's ``images → q(z|x)`` (without a KL); most priors ignore it."""


def _constant(value: np.ndarray) -> tfk.initializers.Initializer:
    return tfk.initializers.Constant(np.asarray(value, np.float32))


class MixturePrior(LearnedPrior):
    r"""A learned mixture of K diagonal Gaussians, ``tfd.MixtureSameFamily``.

    Locations start at a fixed-seed draw from N(0, I), scales at 1, weights equal.

    Args:
        latent_dim: d.
        components: K.
        seed: Seed of the initial locations.
    """

    def __init__(self, latent_dim: int, components: int, seed: int = 0, **kwargs) -> None:
        super().__init__(name="mixture_prior", **kwargs)
        self.scale_bijector = tfb.Softplus(low=MIN_SCALE)
        loc = np.random.default_rng(seed).standard_normal((components, latent_dim))
        raw_scale = self.scale_bijector.inverse(tf.ones([components, latent_dim])).numpy()
        self.loc = self.add_weight("loc", shape=loc.shape, initializer=_constant(loc))
        self.raw_scale = self.add_weight(
            "raw_scale", shape=loc.shape, initializer=_constant(raw_scale)
        )
        self.logits = self.add_weight("logits", shape=[components], initializer="zeros")

    def distribution(self) -> tfd.Distribution:
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(logits=self.logits),
            components_distribution=tfd.MultivariateNormalDiag(
                loc=self.loc, scale_diag=self.scale_bijector.forward(self.raw_scale)
            ),
            name="prior",
        )


class VampPrior(LearnedPrior):
    r"""The VampPrior: q(z | u) averaged over K learned pseudo-inputs.

    :math:`u_k = \mathrm{sigmoid}(v_k)` stays inside the pixel range; the
    :math:`u_k` start uniform on :data:`PSEUDO_INPUT_RANGE` (fixed seed). The
    encoder is bound after it is built (:meth:`bind_posterior`); p(z) then
    changes with the encoder's weights as well as with the :math:`u_k`.

    Args:
        input_shape: The image shape.
        components: K, the number of pseudo-inputs.
        seed: Seed of the initial pseudo-inputs.
    """

    def __init__(
        self, input_shape: tuple[int, ...], components: int, seed: int = 0, **kwargs
    ) -> None:
        super().__init__(name="vamp_prior", **kwargs)
        self.pixel_bijector = tfb.Sigmoid()
        u = np.random.default_rng(seed).uniform(*PSEUDO_INPUT_RANGE, (components, *input_shape))
        v = self.pixel_bijector.inverse(tf.constant(u, tf.float32)).numpy()
        self.pseudo_logits = self.add_weight(
            "pseudo_logits", shape=v.shape, initializer=_constant(v)
        )
        self.components = components
        self._posterior_fn: Callable[[tf.Tensor], tfd.Distribution] | None = None

    def pseudo_inputs(self) -> tf.Tensor:
        """The K pseudo-inputs :math:`u_k`, ``[K, *input_shape]``."""
        return self.pixel_bijector.forward(self.pseudo_logits)

    def bind_posterior(self, posterior_fn: Callable[[tf.Tensor], tfd.Distribution]) -> None:
        self._posterior_fn = posterior_fn

    def distribution(self) -> tfd.Distribution:
        if self._posterior_fn is None:
            raise RuntimeError(
                "the VampPrior needs its encoder: build the model with build_vae or build_encoder"
            )
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(logits=tf.zeros([self.components])),
            components_distribution=self._posterior_fn(self.pseudo_inputs()),
            name="prior",
        )


@dataclass(frozen=True)
class Prior:
    """A registered prior.

    Attributes:
        make: ``(latent_dim, components, input_shape) →`` a :class:`LearnedPrior`;
            ``None`` for the posterior family's standard prior.
        needs_gaussian_posterior: The prior is built from the posterior's own
            Gaussian family (the VampPrior), so a flow or discrete posterior cannot
            carry it.
    """

    make: Callable[[int, int, tuple[int, ...]], LearnedPrior] | None = None
    needs_gaussian_posterior: bool = False

    @property
    def learned(self) -> bool:
        """Whether the prior has trainable variables (and so only a sampled KL)."""
        return self.make is not None


#: Prior registry.
PRIORS: Registry[Prior] = Registry("prior")
PRIORS.register("standard_normal", Prior())
PRIORS.register("mixture", Prior(lambda latent_dim, k, shape: MixturePrior(latent_dim, k)))
PRIORS.register(
    "vamp", Prior(lambda latent_dim, k, shape: VampPrior(shape, k), needs_gaussian_posterior=True)
)
