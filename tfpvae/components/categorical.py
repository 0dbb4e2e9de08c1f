r"""Discrete latents: N categorical variables of K classes, relaxed by Gumbel-softmax.

The ``"relaxed_categorical"`` posterior family (Jang et al., 2016; Maddison et al., 2016).
The encoder's N·K outputs are logits :math:`\ell_{nk}`, and

* q(z|x) is the distribution of N independent one-hot categoricals,
  ``tfd.Independent(tfd.OneHotCategorical)``, flattened to N·K numbers by a
  ``tfb.Reshape``, with :math:`\pi_{nk} = \mathrm{softmax}_k(\ell_{n\cdot})`;
* the z the decoder sees during training is a draw from
  ``tfd.RelaxedOneHotCategorical`` at the temperature τ (the Gumbel-softmax
  sample :math:`\mathrm{softmax}((\ell + g)/\tau)`, :math:`g \sim \mathrm{Gumbel}(0, 1)`),
  which is reparameterised and tends to the one-hot sample as τ → 0;
* the prior is the uniform categorical, and the rate is the KL of the
  categorical distributions, in closed form,

  .. math:: \mathrm{KL}(q\,\|\,p) = \sum_{n=1}^N \sum_{k=1}^K \pi_{nk} \log(K \pi_{nk}),

  as in Jang et al.'s practice (TFP's KL of ``OneHotCategorical`` pairs).

Held-out bounds (``tfpvae.evaluation.bounds``) sample q itself: they are the ELBO and the
IWAE bound of the discrete model, whose decoder sees exact one-hot codes.
τ is a non-trainable variable of the posterior layer (saved and checkpointed
with the model); ``tfpvae.training.callbacks.TemperatureAnnealing`` lowers it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from tfpvae._backend import tf, tfb, tfd, tfk, tfpl
from tfpvae.components.posteriors import POSTERIORS, Posterior


def one_hot_categoricals(logits: tf.Tensor, name: str = "OneHotCategoricals") -> tfd.Distribution:
    """N one-hot categoricals with logits ``[..., N, K]``, as one event of N·K numbers."""
    n, k = int(logits.shape[-2]), int(logits.shape[-1])
    return tfd.TransformedDistribution(
        tfd.Independent(
            tfd.OneHotCategorical(logits=logits, dtype=tf.float32), reinterpreted_batch_ndims=1
        ),
        tfb.Reshape(event_shape_out=[n * k], event_shape_in=[n, k]),
        name=name,
    )


def uniform_categorical_prior(categorical_dims: int, categories: int) -> tfd.Distribution:
    """The uniform prior: every class of every variable has probability 1/K."""
    return one_hot_categoricals(tf.zeros([categorical_dims, categories]), name="prior")


def categorical_logits(q: tfd.Distribution) -> tf.Tensor:
    """The logits ``[..., N, K]`` of a distribution from :func:`one_hot_categoricals`."""
    return q.distribution.distribution.logits


def relaxed_draws(
    q: tfd.Distribution, n: int, temperature: tf.Tensor, seed: tf.Tensor | None = None
) -> tf.Tensor:
    """``n`` Gumbel-softmax draws at ``temperature`` from q's logits, ``[n, batch, N·K]``."""
    relaxed = tfd.RelaxedOneHotCategorical(temperature, logits=categorical_logits(q))
    return q.bijector.forward(relaxed.sample(n, seed=seed))


class RelaxedOneHotCategoricalLayer(tfpl.DistributionLambda):
    """Logits ``[batch, N·K]`` → q(z|x); its tensor value is a relaxed draw at τ.

    Args:
        categories: K, classes per variable.
        temperature: The initial τ.
        **kwargs: Passed to ``tfpl.DistributionLambda`` (e.g. ``activity_regularizer``).

    Attributes:
        temperature: τ, a non-trainable variable; assign to it to anneal.
    """

    temperature: tf.Variable

    def __init__(self, categories: int, temperature: float = 1.0, **kwargs: Any) -> None:
        self.categories = int(categories)
        super().__init__(
            lambda params: RelaxedOneHotCategoricalLayer.new(params, self.categories),
            convert_to_tensor_fn=lambda q: relaxed_draws(q, 1, self.temperature)[0],
            **kwargs,
        )
        self.initial_temperature = float(temperature)
        self.temperature = self.add_weight(
            "temperature",
            shape=[],
            initializer=tfk.initializers.Constant(self.initial_temperature),
            trainable=False,
        )

    @staticmethod
    def new(params: tf.Tensor, categories: int) -> tfd.Distribution:
        """q(z|x) from logits ``[..., N·K]``."""
        size = int(params.shape[-1])
        logits = tf.reshape(
            params, tf.concat([tf.shape(params)[:-1], [size // categories, categories]], 0)
        )
        return one_hot_categoricals(logits)

    @staticmethod
    def params_size(latent_dim: int) -> int:
        """One logit per class of every variable: N·K = latent_dim."""
        return int(latent_dim)

    def get_config(self) -> dict:
        config = {"categories": self.categories, "temperature": self.initial_temperature}
        return {**tfk.layers.Layer.get_config(self), **config}


@dataclass(frozen=True)
class CategoricalPosterior(Posterior):
    """The ``"relaxed_categorical"`` family; :meth:`specialise` sets K and τ from a config.

    Attributes:
        categories: K.
        temperature: The initial τ.
    """

    default_prior: Any = None
    categories: int = 10
    temperature: float = 1.0

    def __post_init__(self) -> None:
        categories = self.categories
        object.__setattr__(
            self,
            "default_prior",
            lambda latent_dim: uniform_categorical_prior(latent_dim // categories, categories),
        )

    def specialise(self, config: Any) -> CategoricalPosterior:
        return dataclasses.replace(
            self, categories=config.categories, temperature=config.temperature
        )

    def latent_size(self, config: Any) -> int:
        """N·K: the decoder sees the N one-hot vectors side by side."""
        return int(config.categorical_dims) * int(config.categories)

    def params_size(self, latent_dim: int, **options: Any) -> int:
        return RelaxedOneHotCategoricalLayer.params_size(latent_dim)

    def make_layer(self, latent_dim: int, **kwargs: Any) -> tfk.layers.Layer:
        return RelaxedOneHotCategoricalLayer(self.categories, self.temperature, **kwargs)

    def from_params(self, params: tf.Tensor, latent_dim: int) -> tfd.Distribution:
        return RelaxedOneHotCategoricalLayer.new(params, self.categories)

    def draws(
        self,
        q: tfd.Distribution,
        n: int,
        temperature: tf.Variable | None,
        seed: tf.Tensor | None = None,
    ) -> tf.Tensor:
        """``n`` relaxed (Gumbel-softmax) draws at τ; with ``n == 1``, no seed: the layer's own."""
        if n == 1 and seed is None:
            return tf.convert_to_tensor(q)[None]
        return relaxed_draws(q, n, temperature, seed=seed)


POSTERIORS.register(
    "relaxed_categorical",
    CategoricalPosterior(
        RelaxedOneHotCategoricalLayer,
        exact_rate=True,
        latent_kind="categorical",
        learned_priors=False,
    ),
)
