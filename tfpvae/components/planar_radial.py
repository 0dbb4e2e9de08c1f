r"""Amortised planar and radial flow posteriors (Rezende & Mohamed, 2015).

The encoder's Dense layer emits, for every image, a diagonal Gaussian base
:math:`(\mu, \sigma)` and the raw parameters of K flows, so that the flows are
amortised: each image has its own. A draw of q(z|x) is

.. math::

    z_0 = \mu + \sigma\odot\varepsilon,\quad \varepsilon\sim\mathcal N(0, I),\qquad
    z_k = f_k(z_{k-1}),\ k = 1..K,\qquad z = z_K,

with every :math:`f_k` a :class:`~tfpvae.components.bijectors.Planar` or
:class:`~tfpvae.components.bijectors.Radial` bijector, whose invertibility
condition holds for any raw parameters, and

.. math:: \log q(z|x) = \log\mathcal N(z_0; \mu, \sigma^2)
    - \sum_{k=1}^K \log\left|\det\frac{\partial f_k}{\partial z_{k-1}}\right| .

Numbers per image (the layer's ``params_size``): 2d for the base, then per flow
2d + 1 (planar: u, w, b) or d + 2 (radial: :math:`z_0, \tilde\alpha, \tilde\beta`).

The distribution is a ``tfd.TransformedDistribution``, as for the IAF
(:mod:`tfpvae.components.flows`): TFP caches each flow's forward pass, so
``q.log_prob`` of q's own draws is exact and costs no inverse, and the ELBO, the
IWAE and the held-out bounds use it unchanged. The layers have no weights of
their own (the encoder's Dense layer carries them all). There is no closed-form
KL: the KL is sampled.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tfpvae._backend import tf, tfb, tfd, tfk, tfpl
from tfpvae.components.bijectors import Planar, Radial
from tfpvae.components.flows import SCALE_SHIFT


class AmortisedFlowPosterior(tfpl.DistributionLambda):
    """A distribution layer ``params → q(z|x)``: K amortised flows on a diagonal Gaussian.

    Subclasses name the flow (:class:`PlanarPosterior`, :class:`RadialPosterior`).

    Args:
        latent_dim: d.
        num_flows: K ≥ 1, the number of flows.
        convert_to_tensor_fn: How the layer's output becomes a tensor (a sample).
        **kwargs: Passed to ``tfpl.DistributionLambda`` (``name``, ``activity_regularizer``).

    Raises:
        ValueError: If ``num_flows`` is not a positive integer.

    Example:
        >>> import numpy as np
        >>> from tfpvae import PlanarPosterior
        >>> PlanarPosterior.params_size(2, num_flows=3)  # 2d + K (2d + 1)
        19
        >>> q = PlanarPosterior(2, num_flows=3)(np.zeros((5, 19), "float32"))
        >>> z = q.sample(4, seed=(1, 2))
        >>> q.log_prob(z).shape  # log q of q's own draws, from the cached forward pass
        TensorShape([4, 5])
    """

    #: The flow's name (``"planar"``, ``"radial"``).
    flow: ClassVar[str]

    @staticmethod
    def flow_size(latent_dim: int) -> int:
        """Raw numbers per flow (a subclass says)."""
        raise NotImplementedError("a subclass of AmortisedFlowPosterior gives its flow's size")

    @staticmethod
    def make_flow(params: tf.Tensor, latent_dim: int, name: str) -> tfb.Bijector:
        """The bijector of ``params [batch, flow_size(d)]`` (a subclass says)."""
        raise NotImplementedError("a subclass of AmortisedFlowPosterior makes its flow")

    def __init__(
        self,
        latent_dim: int,
        num_flows: int = 2,
        convert_to_tensor_fn: Any = tfd.Distribution.sample,
        **kwargs: Any,
    ) -> None:
        _check_num_flows(num_flows, self.flow)
        self.latent_dim = int(latent_dim)
        self.num_flows = int(num_flows)
        super().__init__(self._make_distribution, convert_to_tensor_fn, **kwargs)

    def get_config(self) -> dict[str, Any]:
        """The layer's name and sizes; ``from_config`` rebuilds it from them."""
        return {"name": self.name, "latent_dim": self.latent_dim, "num_flows": self.num_flows}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> AmortisedFlowPosterior:
        """The layer of :meth:`get_config`."""
        return cls(**config)

    @classmethod
    def params_size(cls, latent_dim: int, num_flows: int = 2) -> int:
        """Numbers the encoder emits per image: 2d for the base, then each flow's."""
        _check_num_flows(num_flows, cls.flow)
        d = int(latent_dim)
        return 2 * d + int(num_flows) * cls.flow_size(d)

    @classmethod
    def new(
        cls, params: tf.Tensor, latent_dim: int, num_flows: int | None = None
    ) -> tfd.Distribution:
        """q(z|x) from ``params [batch, params_size]``; K follows from their width if not given.

        Raises:
            ValueError: If the width is not :meth:`params_size` for some K ≥ 1.
        """
        d = int(latent_dim)
        params = tf.convert_to_tensor(params)
        width = int(params.shape[-1])
        per_flow = cls.flow_size(d)
        if num_flows is None:
            num_flows = (width - 2 * d) // per_flow
        if num_flows < 1 or width != cls.params_size(d, num_flows):
            raise ValueError(
                f"posterior={cls.flow!r} with latent_dim={d} takes 2d + K·{per_flow} numbers per "
                f"image for K ≥ 1 flows, got {width}; size the Dense layer in front with "
                f"{cls.__name__}.params_size(latent_dim, num_flows)"
            )
        loc, raw_scale = params[..., :d], params[..., d : 2 * d]
        base = tfd.MultivariateNormalDiag(
            loc=loc, scale_diag=tf.math.softplus(raw_scale) + SCALE_SHIFT, name=f"{cls.flow}_base"
        )
        flows = []
        for k in range(int(num_flows)):
            start = 2 * d + k * per_flow
            flows.append(cls.make_flow(params[..., start : start + per_flow], d, f"{cls.flow}_{k}"))
        # tfb.Chain applies its last bijector first: f_K ∘ … ∘ f_1.
        return tfd.TransformedDistribution(base, tfb.Chain(flows[::-1]), name=cls.flow)

    def _make_distribution(self, params: tf.Tensor) -> tfd.Distribution:
        return self.new(params, self.latent_dim, self.num_flows)


@tfk.utils.register_keras_serializable(package="tfpvae")
class PlanarPosterior(AmortisedFlowPosterior):
    r"""K amortised planar flows :math:`z + \hat u\tanh(w^\top z + b)` on a diagonal Gaussian."""

    flow = "planar"

    @staticmethod
    def flow_size(latent_dim: int) -> int:
        """u and w (d each) and b."""
        return 2 * latent_dim + 1

    @staticmethod
    def make_flow(params: tf.Tensor, latent_dim: int, name: str) -> tfb.Bijector:
        """A :class:`~tfpvae.components.bijectors.Planar` of ``(u, w, b)``."""
        d = latent_dim
        return Planar(params[..., :d], params[..., d : 2 * d], params[..., 2 * d :], name=name)


@tfk.utils.register_keras_serializable(package="tfpvae")
class RadialPosterior(AmortisedFlowPosterior):
    r"""K amortised radial flows :math:`z + \beta(z - z_0)/(\alpha + \|z - z_0\|)` on a
    diagonal Gaussian."""

    flow = "radial"

    @staticmethod
    def flow_size(latent_dim: int) -> int:
        """z₀ (d), α̃ and β̃."""
        return latent_dim + 2

    @staticmethod
    def make_flow(params: tf.Tensor, latent_dim: int, name: str) -> tfb.Bijector:
        """A :class:`~tfpvae.components.bijectors.Radial` of ``(z₀, α̃, β̃)``."""
        d = latent_dim
        return Radial(params[..., :d], params[..., d : d + 1], params[..., d + 1 :], name=name)


def _check_num_flows(num_flows: object, flow: str) -> None:
    if isinstance(num_flows, bool) or not isinstance(num_flows, int) or num_flows < 1:
        raise ValueError(
            f"num_flows must be a positive integer (the number of {flow} flows), got "
            f"{num_flows!r}; use num_flows >= 1, e.g. 4"
        )
