"""Posterior families q(z | x), chosen by name from :data:`POSTERIORS`.

Each family is a TFP distribution layer with the ``params_size``/``new``
contract, so the Dense layer in front of it sizes itself:

* ``"full"``: ``tfpl.MultivariateNormalTriL``, the course's choice, a Gaussian
  with a full lower-triangular scale;
* ``"diag"``: ``tfpl.IndependentNormal``, a Gaussian with a diagonal scale;
* ``"iaf"``: :class:`~tfpvae.components.flows.IAFPosterior`, an inverse
  autoregressive flow on a diagonal Gaussian (no closed-form KL);
* ``"planar"``, ``"radial"``: :class:`~tfpvae.components.planar_radial.PlanarPosterior`
  and :class:`~tfpvae.components.planar_radial.RadialPosterior`, ``num_flows``
  amortised planar or radial flows (Rezende & Mohamed, 2015) on a diagonal Gaussian
  (no closed-form KL).

A family may take :class:`~tfpvae.config.VAEConfig` fields (``config_fields``),
which the encoder passes to ``params_size`` and ``make_layer`` by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tfpvae._backend import tf, tfd, tfk, tfpl
from tfpvae.components.flows import IAFPosterior, flow_point
from tfpvae.components.kl import has_closed_form_kl
from tfpvae.components.planar_radial import PlanarPosterior, RadialPosterior
from tfpvae.components.priors import standard_normal_prior
from tfpvae.registry import Registry


def independent_standard_normal(latent_dim: int) -> tfd.Distribution:
    """N(0, I) as ``Independent(Normal)``, the family of ``IndependentNormal``."""
    return tfd.Independent(
        tfd.Normal(loc=tf.zeros(latent_dim), scale=1.0), reinterpreted_batch_ndims=1, name="prior"
    )


@dataclass(frozen=True)
class Posterior:
    """A posterior family.

    Attributes:
        layer: The ``tfpl`` layer class (``params_size``/``new`` contract).
        default_prior: latent_dim → the N(0, I) prior in a family that has a
            closed-form KL with this posterior.
        exact_rate: The rate is always the family's closed-form KL (whatever
            ``use_exact_kl`` says).
        latent_kind: Which latent figures fit the family (``"continuous"``, ``"categorical"``).
        learned_priors: Whether registered priors other than the standard one apply.
        exact_kl: Whether a closed-form KL to the default prior exists
            (``VAEConfig`` refuses ``use_exact_kl=True`` otherwise).
        config_fields: Names of config fields the layer takes as keyword arguments.
        point: q(z|x) → a deterministic code ``[batch, d]`` (``VAE.encode``); the mean.
    """

    layer: Any  # a tfpl layer class (its params_size and new are static/class methods)
    default_prior: Callable[[int], tfd.Distribution]
    exact_rate: bool = False
    latent_kind: str = "continuous"
    learned_priors: bool = True

    def specialise(self, config: Any) -> Posterior:
        """The family with the options it reads from ``config`` (none for the Gaussians)."""
        return self

    def latent_size(self, config: Any) -> int | None:
        """The size of z fixed by the family's own options; ``None`` when ``latent_dim`` is free."""
        return None

    def from_params(self, params: tf.Tensor, latent_dim: int) -> tfd.Distribution:
        """q(z | x) from the encoder's parameters, without any KL attachment."""
        return self.layer.new(params, latent_dim)

    def draws(
        self,
        q: tfd.Distribution,
        n: int,
        temperature: tf.Variable | None,
        seed: tf.Tensor | None = None,
    ) -> tf.Tensor:
        """``n`` reparameterised draws of z per image for training, ``[n, batch, latent]``.

        ``q.sample``: a flow posterior's log q at these z then reuses the forward pass
        (TFP's bijector cache). A stateless ``seed`` ``[2]`` fixes the draws.
        """
        return q.sample(n, seed=seed)

    exact_kl: bool = True
    config_fields: tuple[str, ...] = ()
    point: Callable[[tfd.Distribution], tf.Tensor] = lambda q: q.mean()

    def params_size(self, latent_dim: int, **options: Any) -> int:
        """Numbers the encoder must emit for this family (``options``: its config fields)."""
        return int(self.layer.params_size(latent_dim, **options))

    def make_layer(self, latent_dim: int, **kwargs: Any) -> tfk.layers.Layer:
        """The distribution layer that ends the encoder."""
        return self.layer(latent_dim, **kwargs)

    def options(self, config: Any) -> dict[str, Any]:
        """The values of this family's ``config_fields`` in ``config``."""
        return {name: getattr(config, name) for name in self.config_fields}

    def check_exact_kl(self, latent_dim: int, prior: tfd.Distribution) -> None:
        """Raises ``ValueError`` unless TFP has a closed-form KL from this family to ``prior``."""
        probe = self.from_params(tf.zeros([1, self.params_size(latent_dim)]), latent_dim)
        if not has_closed_form_kl(probe, prior):
            raise ValueError(
                f"use_exact_kl=True but TFP has no closed-form KL between "
                f"{type(probe).__name__} and {type(prior).__name__}; "
                "use use_exact_kl=False (sampled KL) or a prior of a matching family"
            )


#: Posterior registry.
POSTERIORS: Registry[Posterior] = Registry("posterior")
POSTERIORS.register("full", Posterior(tfpl.MultivariateNormalTriL, standard_normal_prior))
POSTERIORS.register("diag", Posterior(tfpl.IndependentNormal, independent_standard_normal))
POSTERIORS.register(
    "iaf",
    Posterior(
        IAFPosterior,
        independent_standard_normal,
        exact_kl=False,
        config_fields=("num_flows", "flow_hidden_units"),
        point=flow_point,
    ),
)


def _amortised_flow(layer: Any) -> Posterior:
    """The family of a planar or radial flow layer: sampled KL, its flows' count from config."""
    return Posterior(
        layer, independent_standard_normal, exact_kl=False, config_fields=("num_flows",),
        point=flow_point,
    )  # fmt: skip


POSTERIORS.register("planar", _amortised_flow(PlanarPosterior))
POSTERIORS.register("radial", _amortised_flow(RadialPosterior))

#: Families of tfpvae's own posterior layers that no ``posterior`` name selects, by layer
#: class (two stochastic layers, :mod:`tfpvae.components.hierarchy`, registers its own).
LAYER_FAMILIES: dict[type, Posterior] = {}

#: The family of a posterior layer tfpvae does not know: TFP's own ``sample`` and ``mean``.
GENERIC_POSTERIOR = Posterior(layer=None, default_prior=standard_normal_prior, exact_kl=False)


def family_of(layer: Any) -> Posterior:
    """The registered family whose layer class is exactly ``type(layer)``, else the generic one.

    Chosen by type, so a user's own ``DistributionLambda`` is drawn and summarised
    through TFP (``q.sample``, ``q.mean()``) and a tfpvae layer by its own family.
    """
    if layer is None:
        return GENERIC_POSTERIOR
    found = POSTERIORS.find(lambda entry: type(layer) is entry.layer)
    return found or LAYER_FAMILIES.get(type(layer), GENERIC_POSTERIOR)
