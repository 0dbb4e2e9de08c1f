r"""The objective interface: what a VAE minimises, image by image.

An :class:`Objective` is made from a model's :class:`Parts`: the posterior and
likelihood networks, the prior, the KL estimator and β. It never sees the model
itself, its config or its layers' names. :meth:`Objective.terms` returns, for
every image of a batch, the loss that training minimises and the two quantities
the progress bar and the history show beside it:

* ``rate``: the KL from q(z|x) to p(z) (or its estimate), unweighted;
* ``distortion``: :math:`-\mathbb{E}_{q(z|x)}\log p(x|z)` (or its estimate).

The training and test steps of :class:`~tfpvae.VAE` reduce these vectors the
same way for every objective (a weighted mean over images, see
:func:`weighted_mean`), so an objective never needs to know about sample
weights, replicas or loss scaling. Objectives are chosen by name from
:data:`OBJECTIVES`; an entry maps ``(parts, options)`` to an :class:`Objective`.
"""

from __future__ import annotations

import abc
import copy
import dataclasses
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from tfpvae._backend import tf, tfd
from tfpvae.components.conditioning import Conditioning, not_conditional
from tfpvae.components.kl import KLEstimator
from tfpvae.components.likelihoods import Likelihood
from tfpvae.components.parts import Network, PriorSource
from tfpvae.components.posteriors import Posterior
from tfpvae.components.stacked import stacked
from tfpvae.registry import Registry


class Terms(NamedTuple):
    """Per-image terms, each ``[batch]``.

    Attributes:
        loss: What training minimises (β-weighted where the objective has a β).
        rate: The unweighted KL term.
        distortion: The negative expected log-likelihood.
    """

    loss: tf.Tensor
    rate: tf.Tensor
    distortion: tf.Tensor


@dataclass(frozen=True)
class Parts:
    """What an objective may use of a model: its parts, never the model.

    Attributes:
        encoder: The posterior network (:class:`~tfpvae.components.parts.Network`).
        decoder: The likelihood network.
        prior: Where p(z) comes from (:class:`~tfpvae.components.parts.PriorSource`).
        kl: The per-example KL estimator.
        kl_weight: β, a variable.
        family: The posterior family (draws and codes), chosen by the layer's type.
        likelihood: The registered likelihood of the decoder's layer, or ``None``.
        latent_dim: Size of z (of the whole ``(z1, z2)`` for two stochastic layers).
        noise: The model's checkpointed generator, for draws when none are given.
        fast_path: Whether the fused objectives may be used where they apply.
        latent_dims: The stochastic layers' sizes, bottom first: ``(latent_dim,)``, or
            ``(z1, z2)`` (:mod:`tfpvae.components.hierarchy`); empty means one layer.
        conditioning: The class label y of a conditional VAE (both networks take its
            one-hot; :mod:`tfpvae.components.conditioning`), else ``None``.
    """

    encoder: Network
    decoder: Network
    prior: PriorSource
    kl: KLEstimator
    kl_weight: tf.Variable
    family: Posterior
    likelihood: Likelihood | None
    latent_dim: int
    noise: tf.random.Generator
    fast_path: bool = True
    latent_dims: tuple[int, ...] = ()

    @property
    def code_size(self) -> int:
        """The size of a code (``VAE.encode``, ``VAE.decode``): the top layer's."""
        return self.latent_dims[-1] if self.latent_dims else self.latent_dim

    def full_latent(self, z: tf.Tensor) -> tf.Tensor:
        """``z`` as the decoder takes it: a code ``[..., code_size]`` of the top layer is
        completed top-down by the prior's means, ``(E[z1 | z2], z2)``; a whole z is kept."""
        z = tf.cast(z, tf.float32)
        width = z.shape[-1]
        if width == self.latent_dim:
            return z
        chain = stacked(self.prior.distribution())
        if chain is None or width != self.code_size:
            raise ValueError(
                f"z has {width} numbers; this model takes codes of {self.code_size}"
                + (f" (its top layer) or a whole z of {self.latent_dim}" if chain else "")
            )
        return chain.complete(z)

    conditioning: Conditioning | None = None

    def given(self, labels: Any) -> Parts:
        """These parts with a batch's labels bound into both networks (a conditional VAE).

        The bound encoder and decoder take images and z alone, as an unconditional
        model's do, so an objective computes q(z|x, y) and p(x|z, y) through
        :meth:`posterior` and :meth:`decode` without seeing y.

        Args:
            labels: Class ids ``[batch]`` or one-hot rows ``[batch, C]``; ``None``
                returns the parts unchanged for an unconditional model.

        Raises:
            ValueError: Labels for an unconditional model, or none for a conditional one.
        """
        if self.conditioning is None:
            if labels is not None:
                raise ValueError(not_conditional())
            return self
        if labels is None:
            raise ValueError(self.conditioning.missing())
        one_hot = self.conditioning.one_hot(labels)
        return dataclasses.replace(
            self, encoder=self.encoder.given(one_hot), decoder=self.decoder.given(one_hot)
        )

    @property
    def temperature(self) -> tf.Variable | None:
        """τ of a relaxed posterior layer, else ``None``."""
        return getattr(self.encoder.layer, "temperature", None)

    def network_losses(self) -> list[tf.Tensor]:
        """The losses the networks and a prior layer added in their latest calls.

        Weight regularisers and ``add_loss`` of the layers in front of the
        distribution layers (read after the objective has called them), the
        prior layer's own; never the KL layer's, which the objective does not call.
        """
        networks = [net.params if net.params is not None else net.model
                    for net in (self.encoder, self.decoder)]  # fmt: skip
        if self.prior.layer is not None:
            networks.append(self.prior.layer)
        return [loss for network in networks for loss in network.losses]

    def posterior(self, x: tf.Tensor, training: bool | None = None) -> tfd.Distribution:
        """q(z | x), without the KL layer."""
        return self.encoder.distribution(x, training=training)

    def decode(self, z: tf.Tensor, training: bool | None = None) -> tfd.Distribution:
        """p(x | z)."""
        return self.decoder.distribution(z, training=training)


class Objective(abc.ABC):
    """A training objective over a model's :class:`Parts`.

    Subclasses say whether their step is worth compiling with XLA
    (:attr:`xla_friendly`), how to draw their noise and how to turn a batch
    into :class:`Terms`.
    """

    #: Whether the step is plain ops that XLA fuses well (the fused Gaussian ELBO).
    xla_friendly: bool = False

    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    @abc.abstractmethod
    def draw_noise(self, generator: tf.random.Generator, batch: tf.Tensor) -> Any:
        """Noise for :meth:`terms`, drawn from ``generator``."""

    @abc.abstractmethod
    def terms(self, x: tf.Tensor, noise: Any = None, training: bool = False) -> Terms:
        """Per-image :class:`Terms` of the images ``x``.

        Args:
            x: Images ``[batch, *input_shape]``.
            noise: From :meth:`draw_noise`; ``None`` draws fresh noise.
            training: Passed to the Keras layers.
        """

    def given(self, labels: Any) -> Objective:
        """This objective over its parts with a batch's labels bound in (:meth:`Parts.given`).

        A shallow copy whose :attr:`parts` are bound; an objective that holds other
        objectives overrides this to bind them too. Unconditional parts and ``None``
        labels give ``self``.
        """
        parts = self.parts.given(labels)
        if parts is self.parts:
            return self
        bound = copy.copy(self)
        bound.parts = parts
        return bound

    def noise_or_fresh(self, x: tf.Tensor, noise: Any) -> Any:
        """``noise`` itself, or fresh noise from the model's generator when it is ``None``."""
        return noise if noise is not None else self.draw_noise(self.parts.noise, tf.shape(x)[0])


class SeededObjective(Objective):
    """An objective that samples through TFP at a stateless seed ``[2]``.

    The seed comes from the model's checkpointed generator, so a resumed run draws
    what an unbroken one would.
    """

    def draw_noise(self, generator: tf.random.Generator, batch: tf.Tensor) -> tf.Tensor:
        """A stateless seed ``[2]`` for TFP's sampler."""
        return generator.uniform_full_int([2], tf.int32)


def weighted_mean(values: tf.Tensor, weights: tf.Tensor | None) -> tf.Tensor:
    r""":math:`\sum_i w_i v_i / \sum_i w_i` (plain mean without weights; 0 for no images).

    With this normalisation an image of weight 2 counts exactly as two copies
    of it would.
    """
    if weights is None:
        weights = tf.ones_like(values)
    weights = tf.cast(weights, values.dtype)
    return tf.math.divide_no_nan(tf.reduce_sum(weights * values), tf.reduce_sum(weights))


#: Objective registry: name → ``(parts, **options) → Objective``; options ``n_samples``,
#: ``iwae_k``, and, only when set, ``alpha``, ``gradient`` and ``free_bits``.
OBJECTIVES: Registry[Callable[..., Objective]] = Registry("objective")

#: What to use instead, for an option an objective does not take.
_OPTION_HINTS = {
    "alpha": "alpha is the order of the Rényi bound: use objective='renyi'",
    "free_bits": "free bits floor the ELBO's KL term: use objective='elbo'",
}


def refuse_options(objective: str, **given: Any) -> None:
    """Raises ``ValueError`` for any option in ``given`` that is set (not ``None``; for
    ``free_bits``, not 0 either).

    Args:
        objective: The objective's name, for the message.
        **given: Options the objective does not take (``alpha``, ``free_bits``).
    """
    for name, value in given.items():
        off = value is None or (
            name == "free_bits" and isinstance(value, numbers.Real) and not value
        )
        if not off:
            raise ValueError(
                f"{name}={value!r} does not apply to objective={objective!r}; "
                f"{_OPTION_HINTS.get(name, f'leave {name} out')}, or leave {name} out"
            )
