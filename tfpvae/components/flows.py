r"""The inverse autoregressive flow posterior (Kingma et al., 2016), from TFP's bijectors.

The encoder emits, for every image, a Gaussian base :math:`(\mu, \sigma)` and a
context vector :math:`h`. A draw of q(z|x) is

.. math::

    z_0 = \mu + \sigma \odot \varepsilon,\quad \varepsilon \sim \mathcal N(0, I),
    \qquad z_t = f_t(z_{t-1}; h),\ t = 1..T, \qquad z = z_T,

where every :math:`f_t` is an inverse autoregressive transformation,
``tfb.Invert(tfb.MaskedAutoregressiveFlow(...))``, whose shift :math:`m_t` and
log-scale :math:`s_t` come from a ``tfb.AutoregressiveNetwork`` (MADE) that sees
:math:`z_{t-1}` autoregressively and :math:`h` everywhere:

.. math:: f_t(y; h)_i = \big(y_i - m_{t,i}(y_{<i}, h)\big)\,e^{-s_{t,i}(y_{<i}, h)} .

Sampling is therefore one pass per flow, and, since the Jacobian of each
:math:`f_t` is triangular,

.. math:: \log q(z|x) = \log \mathcal N(z_0; \mu, \sigma^2)
    + \sum_t \sum_i s_{t,i}(z_{t-1}, h) .

A ``tfb.Permute`` (reversal) sits between consecutive flows, so each variable is
conditioned on the others somewhere in the chain; a last ``tfb.Permute`` undoes
their product, so that the coordinates of z line up with the base's. The log-scales are bounded
smoothly, :math:`s = S\tanh(\tilde s / S)` with :math:`S =` :data:`LOG_SCALE_BOUND`,
which is the identity near 0 and keeps a step from blowing up early in training.
With the MADEs' last layers at zero every :math:`f_t` is the identity and q is
the base Gaussian.

The distribution is a ``tfd.TransformedDistribution``; TFP caches the bijectors'
forward pass, so ``q.log_prob`` of q's own samples costs no inverse (the inverse,
d sequential passes per flow, runs only for other points). There is no
closed-form KL: the KL is sampled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfpvae._backend import tf, tfb, tfd, tfk, tfpl

#: Smooth bound S on each flow's log-scale: s = S tanh(raw / S).
LOG_SCALE_BOUND = 3.0
#: Added to the base scale's softplus, as ``tfpl.MultivariateNormalTriL`` does.
SCALE_SHIFT = 1e-5


def iaf_params_size(latent_dim: int, flow_hidden_units: Sequence[int] = (64,)) -> int:
    """Numbers the encoder emits: base loc and scale (2d) and the context h."""
    return 2 * latent_dim + int(flow_hidden_units[0])


class IAFPosterior(tfpl.DistributionLambda):
    """A distribution layer ``params → q(z|x)``, an IAF on a diagonal Gaussian base.

    Its flows' weights are the weights of this layer (they train, save and
    checkpoint with the model).

    Args:
        latent_dim: d.
        num_flows: T, the number of inverse autoregressive flows.
        flow_hidden_units: Hidden widths of each MADE; the context h has the first width.
        convert_to_tensor_fn: How the layer's output becomes a tensor (a sample).
        **kwargs: Passed to ``tfpl.DistributionLambda`` (``name``, ``activity_regularizer``).
    """

    def __init__(
        self,
        latent_dim: int,
        num_flows: int = 2,
        flow_hidden_units: Sequence[int] = (64,),
        convert_to_tensor_fn: Any = tfd.Distribution.sample,
        **kwargs: Any,
    ) -> None:
        super().__init__(self._make_distribution, convert_to_tensor_fn, **kwargs)
        self.latent_dim = int(latent_dim)
        self.flow_hidden_units = tuple(int(u) for u in flow_hidden_units)
        self.context_size = int(flow_hidden_units[0])
        self.made = [
            tfb.AutoregressiveNetwork(
                params=2,
                event_shape=[self.latent_dim],
                conditional=True,
                conditional_event_shape=[self.context_size],
                hidden_units=[int(u) for u in flow_hidden_units],
                activation="elu",
                name=f"made_{t}",
            )
            for t in range(int(num_flows))
        ]

    def get_config(self) -> dict[str, Any]:
        """The layer's sizes (Keras writes them beside a SavedModel; tfpvae rebuilds from
        its own config, so the distribution function, a method of this layer, is not kept)."""
        return {
            "name": self.name,
            "latent_dim": self.latent_dim,
            "num_flows": len(self.made),
            "flow_hidden_units": list(self.flow_hidden_units),
        }

    @staticmethod
    def params_size(
        latent_dim: int, num_flows: int = 2, flow_hidden_units: Sequence[int] = (64,)
    ) -> int:
        """Numbers the encoder must emit (see :func:`iaf_params_size`)."""
        return iaf_params_size(latent_dim, flow_hidden_units)

    def build(self, input_shape: Any) -> None:
        for made in self.made:
            made.build((None, self.latent_dim))
        super().build(input_shape)

    def _shift_and_log_scale(self, made: tfk.layers.Layer, context: tf.Tensor):
        def fn(y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            shift, raw = tf.unstack(made(y, conditional_input=context), num=2, axis=-1)
            return shift, LOG_SCALE_BOUND * tf.tanh(raw / LOG_SCALE_BOUND)

        return fn

    def flow(self, context: tf.Tensor) -> tfb.Bijector:
        """The chain z_0 → z given the context ``h [batch, c]``."""
        steps: list[tfb.Bijector] = []
        reverse = list(range(self.latent_dim))[::-1]
        for t, made in enumerate(self.made):
            if t > 0:
                steps.append(tfb.Permute(permutation=reverse, name=f"permute_{t}"))
            maf = tfb.MaskedAutoregressiveFlow(self._shift_and_log_scale(made, context))
            steps.append(tfb.Invert(maf, name=f"iaf_{t}"))
        if len(self.made) % 2 == 0:  # an odd number of reversals: undo it
            steps.append(tfb.Permute(permutation=reverse, name="permute_back"))
        return tfb.Chain(steps[::-1], name="iaf")  # Chain applies its last bijector first

    def base(self, params: tf.Tensor) -> tfd.Distribution:
        """The diagonal Gaussian base :math:`\\mathcal N(\\mu, \\sigma^2)` of ``params``."""
        d = self.latent_dim
        loc, raw_scale = params[..., :d], params[..., d : 2 * d]
        scale = tf.math.softplus(raw_scale) + SCALE_SHIFT
        return tfd.MultivariateNormalDiag(loc=loc, scale_diag=scale, name="iaf_base")

    def _make_distribution(self, params: tf.Tensor) -> tfd.Distribution:
        context = params[..., 2 * self.latent_dim :]
        return tfd.TransformedDistribution(self.base(params), self.flow(context), name="iaf")


def flow_point(q: tfd.Distribution) -> tf.Tensor:
    """A deterministic code of an IAF posterior: the flow applied to the base mean.

    The mean of q has no closed form; this is q's image of the base's centre
    (and its mean while the flows are the identity).
    """
    q = getattr(q, "tensor_distribution", q)
    return q.bijector.forward(q.distribution.mean())
