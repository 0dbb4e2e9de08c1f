r"""Two stochastic layers (Burda et al., 2015): ``latent_dim=(z1, z2)``, bottom first.

The model of the IWAE paper's strongest result,

.. math::

    q(z|x) = q(z_1|x)\,q(z_2|z_1), \qquad
    p(x, z) = p(z_2)\,p(z_1|z_2)\,p(x|z_1),

with :math:`p(z_2) = \mathcal N(0, I)` and diagonal Gaussians
:math:`q(z_2|z_1)`, :math:`p(z_1|z_2)` whose means and scales come from small
tanh networks (:class:`GaussianConditional`). The two layers are one latent
vector :math:`z = (z_1, z_2)` of size :math:`d_1 + d_2`: q and p are each a
:class:`StackedLatents` distribution over it, drawn ancestrally (reparameterised)
and scored as

.. math::

    \log q(z|x) = \log q(z_1|x) + \log q(z_2|z_1), \qquad
    \log p(z) = \log p(z_2) + \log p(z_1|z_2),

and the decoder reads :math:`z_1` only (:class:`BottomLatent`). Every objective
that needs only :math:`\log q(z|x) - \log p(z)` at draws of q (the sampled ELBO,
the IWAE bound) therefore applies unchanged; there is no closed-form KL.

The model's *code* is its top layer: ``vae.encode(x)`` is
:math:`\bar z_2 = \mathbb E[z_2 \mid z_1 = \mathbb E[z_1|x]]` and ``vae.decode``
takes a top-layer code :math:`z_2` through :math:`\mathbb E[z_1|z_2]` (or a whole
:math:`(z_1, z_2)`), so the latent figures show :math:`z_2`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tfpvae._backend import tf, tfd, tfk, tfpl
from tfpvae.components.posteriors import LAYER_FAMILIES, POSTERIORS, Posterior
from tfpvae.components.priors import LearnedPrior
from tfpvae.components.stacked import StackedLatents, stacked, top_code

__all__ = [
    "TWO_LAYERS", "BottomLatent", "GaussianConditional", "StackedLatents", "TwoLayerFamily",
    "TwoLayerPosterior", "TwoLayerPrior", "posterior_family", "stacked", "top_code",
]  # fmt: skip

#: Added to the conditional scales' softplus, as ``tfpl.IndependentNormal`` does.
SCALE_SHIFT = 1e-5


class GaussianConditional(tfk.layers.Layer):
    r"""A diagonal Gaussian of ``size`` numbers given an input u: tanh layers, then loc and scale.

    .. math:: \mathcal N\big(\mu(u),\ \mathrm{diag}\,\sigma(u)^2\big),\qquad
        \sigma = \mathrm{softplus}(\rho(u)) + 10^{-5}.

    Calling the layer gives the parameters ``[..., 2 size]``; :meth:`distribution` the
    ``tfd.Independent(tfd.Normal)`` (Keras layers return tensors).

    Args:
        size: The event size of the Gaussian.
        hidden_units: Widths of the tanh layers (the IWAE paper uses two).
        input_size: The size of u (the layer is built for it at once).
    """

    def __init__(
        self, size: int, hidden_units: Sequence[int], input_size: int, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.size, self.input_size = int(size), int(input_size)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.hidden = [
            tfk.layers.Dense(u, activation="tanh", name=f"hidden_{i}")
            for i, u in enumerate(self.hidden_units)
        ]
        self.out = tfk.layers.Dense(2 * self.size, name="loc_and_scale")
        self.build((None, self.input_size))

    def build(self, input_shape: Any) -> None:
        width = self.input_size
        for dense in self.hidden:
            dense.build((None, width))
            width = dense.units
        self.out.build((None, width))
        super().build(input_shape)

    def call(self, u: tf.Tensor) -> tf.Tensor:
        h = u
        for dense in self.hidden:
            h = dense(h)
        return self.out(h)

    def distribution(self, u: tf.Tensor) -> tfd.Distribution:
        """The Gaussian at ``u [..., input_size]``, batch shape ``[...]``."""
        params = self(u)
        loc, raw = params[..., : self.size], params[..., self.size :]
        scale = tf.math.softplus(raw) + SCALE_SHIFT
        return tfd.Independent(tfd.Normal(loc=loc, scale=scale), reinterpreted_batch_ndims=1)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "size": self.size,
            "hidden_units": list(self.hidden_units),
            "input_size": self.input_size,
        }


@tfk.utils.register_keras_serializable(package="tfpvae")
class TwoLayerPosterior(tfpl.DistributionLambda):
    """A distribution layer ``params → q(z1|x) q(z2|z1)`` over ``z = (z1, z2)``.

    ``params`` are those of the bottom family's layer for :math:`z_1`
    (``"full"``: ``tfpl.MultivariateNormalTriL``, ``"diag"``:
    ``tfpl.IndependentNormal``); the network of :math:`q(z_2|z_1)` is this layer's
    (its weights train, save and checkpoint with the encoder).

    Args:
        latent_dims: :math:`(d_1, d_2)`.
        bottom: The registered posterior family of :math:`q(z_1|x)`.
        top_hidden_units: Widths of the tanh layers of :math:`q(z_2|z_1)`.
        convert_to_tensor_fn: How the layer's output becomes a tensor (a draw).
        **kwargs: Passed to ``tfpl.DistributionLambda`` (``name``, ``activity_regularizer``).
    """

    def __init__(
        self,
        latent_dims: Sequence[int],
        bottom: str = "full",
        top_hidden_units: Sequence[int] = (32, 32),
        convert_to_tensor_fn: Any = tfd.Distribution.sample,
        **kwargs: Any,
    ) -> None:
        super().__init__(self._make_distribution, convert_to_tensor_fn, **kwargs)
        d1, d2 = (int(d) for d in latent_dims)
        self.latent_dims, self.bottom = (d1, d2), str(bottom)
        self.top_hidden_units = tuple(int(u) for u in top_hidden_units)
        self.bottom_layer = POSTERIORS.get(self.bottom).layer
        self.top = GaussianConditional(d2, self.top_hidden_units, d1, name="q_z2_given_z1")

    @staticmethod
    def params_size(latent_dims: Sequence[int], bottom: str = "full") -> int:
        """Numbers the encoder emits: those of the bottom family for :math:`z_1`."""
        return POSTERIORS.get(bottom).params_size(int(latent_dims[0]))

    def get_config(self) -> dict[str, Any]:
        """The layer's sizes (its distribution function is a method, never pickled)."""
        return {
            "name": self.name,
            "latent_dims": list(self.latent_dims),
            "bottom": self.bottom,
            "top_hidden_units": list(self.top_hidden_units),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> TwoLayerPosterior:
        """The layer :meth:`get_config` describes (Keras's ``Lambda`` would look for a function)."""
        return cls(**config)

    def _make_distribution(self, params: tf.Tensor) -> tfd.Distribution:
        d1, d2 = self.latent_dims
        first = self.bottom_layer.new(params, d1)
        return StackedLatents(first, self.top.distribution, (d1, d2), top_first=False, name="q")


@tfk.utils.register_keras_serializable(package="tfpvae")
class TwoLayerPrior(LearnedPrior):
    r"""The prior :math:`p(z_2)\,p(z_1|z_2)` with :math:`p(z_2) = \mathcal N(0, I)`.

    Args:
        latent_dims: :math:`(d_1, d_2)`.
        top_hidden_units: Widths of the tanh layers of :math:`p(z_1|z_2)`.
    """

    def __init__(
        self, latent_dims: Sequence[int], top_hidden_units: Sequence[int] = (32, 32), **kwargs
    ) -> None:
        kwargs.pop("dtype", None)  # always float32 (LearnedPrior)
        kwargs.pop("trainable", None)
        super().__init__(name=kwargs.pop("name", "two_layer_prior"), **kwargs)
        d1, d2 = (int(d) for d in latent_dims)
        self.latent_dims = (d1, d2)
        self.top_hidden_units = tuple(int(u) for u in top_hidden_units)
        self.bottom = GaussianConditional(d1, self.top_hidden_units, d2, name="p_z1_given_z2")

    def distribution(self) -> tfd.Distribution:
        d1, d2 = self.latent_dims
        top = tfd.MultivariateNormalDiag(loc=tf.zeros(d2), name="p_z2")
        return StackedLatents(top, self.bottom.distribution, (d1, d2), top_first=True, name="prior")

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "latent_dims": list(self.latent_dims),
            "top_hidden_units": list(self.top_hidden_units),
        }


@tfk.utils.register_keras_serializable(package="tfpvae")
class BottomLatent(tfk.layers.Layer):
    """``z = (z1, z2) → z1``: what the decoder of a two-layer model reads.

    Args:
        size: :math:`d_1`.
    """

    def __init__(self, size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, z: tf.Tensor) -> tf.Tensor:
        return z[..., : self.size]

    def compute_output_shape(self, input_shape: Any) -> tf.TensorShape:
        return tf.TensorShape([*tf.TensorShape(input_shape)[:-1], self.size])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size}


@dataclass(frozen=True)
class TwoLayerFamily(Posterior):
    """The posterior family of :class:`TwoLayerPosterior` (found by the layer's type).

    Attributes:
        bottom: The registered family of :math:`q(z_1|x)` (``"full"`` or ``"diag"``).
        latent_dims: :math:`(d_1, d_2)`.
        top_hidden_units: Widths of the conditional networks.
    """

    bottom: str = "full"
    latent_dims: tuple[int, int] = (2, 2)
    top_hidden_units: tuple[int, ...] = (32, 32)

    def params_size(self, latent_dim: int, **options: Any) -> int:
        return TwoLayerPosterior.params_size(self.latent_dims, self.bottom)

    def make_layer(self, latent_dim: int, **kwargs: Any) -> tfk.layers.Layer:
        return TwoLayerPosterior(self.latent_dims, self.bottom, self.top_hidden_units, **kwargs)

    def check_exact_kl(self, latent_dim: int, prior: tfd.Distribution) -> None:
        raise ValueError(
            "use_exact_kl=True but a model with two stochastic layers has no closed-form KL; "
            "use the sampled KL (use_exact_kl=False, no --exact-kl)"
        )


def _no_default_prior(latent_dim: int) -> Any:
    raise ValueError("a two-layer posterior's prior is a TwoLayerPrior(latent_dims=(z1, z2))")


#: The family of any :class:`TwoLayerPosterior` (codes: the top layer, :func:`top_code`).
TWO_LAYERS = TwoLayerFamily(
    layer=TwoLayerPosterior,
    default_prior=_no_default_prior,
    learned_priors=False,
    exact_kl=False,
    point=top_code,
)
LAYER_FAMILIES[TwoLayerPosterior] = TWO_LAYERS


def posterior_family(config: Any) -> Posterior:
    """The posterior family a config asks for: its named one, or two layers over it.

    Args:
        config: A :class:`~tfpvae.config.VAEConfig` (``latent_dims`` of length 1 or 2).
    """
    family = POSTERIORS.get(config.posterior).specialise(config)
    if len(config.latent_dims) == 1:
        return family
    dims = tuple(config.latent_dims)
    hidden = tuple(config.top_hidden_units)
    return dataclasses.replace(
        TWO_LAYERS,
        bottom=config.posterior,
        latent_dims=dims,
        top_hidden_units=hidden,
        default_prior=lambda _: TwoLayerPrior(dims, hidden),
    )
