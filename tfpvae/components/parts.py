r"""What a VAE reads off the encoder, decoder and prior it is handed, by their types.

:class:`~tfpvae.VAE` takes any ``tf_keras`` encoder ``x → q(z|x)`` and decoder
``z → p(x|z)``. Once, at construction, this module looks at them:

* **The KL attachment.** A trailing ``tfpl.KLDivergenceAddLoss`` layer, or a
  ``tfpl.KLDivergenceRegularizer`` as the posterior layer's
  ``activity_regularizer``. Its settings become the model's
  :class:`~tfpvae.components.kl.KLEstimator` (exact or sampled, test points), its
  ``distribution_b`` the prior (unless one is given) and its ``weight`` β
  (unless ``kl_weight`` is given). The layer's own batch loss is never part of
  the objective: the posterior is computed from the network *in front of* the
  posterior layer and that layer's distribution function, so neither the add-loss
  layer nor the regulariser runs during training.
* **The posterior and likelihood layers.** When a graph model (``Sequential`` or
  functional) ends in a ``tfpl.DistributionLambda``, the network that feeds it is
  split off (:attr:`Network.params`); the fused objectives use it when the layer
  is of a type they know (:mod:`tfpvae.objectives.fused`).
* **The prior.** A ``tfd.Distribution``, or a Keras layer with trainable
  variables: a :class:`~tfpvae.components.priors.LearnedPrior` (its
  ``distribution()``) or any layer or model that returns a distribution when
  called with a dummy argument (TFP's convention for ``distribution_b``).

* **A label input.** A graph network with a second input of width C (``[images,
  one_hot]``, ``[z, one_hot]``) is conditional (:mod:`tfpvae.components.conditioning`);
  :meth:`Network.given` binds a batch's one-hot labels into it.

Nothing here is looked up by a layer's name or a config string.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfpvae._backend import tf, tfd, tfk, tfpl
from tfpvae.components.conditioning import BoundInputs, Conditioning, conditioning_of
from tfpvae.components.kl import KLEstimator
from tfpvae.components.likelihoods import LIKELIHOODS, Likelihood
from tfpvae.components.priors import LearnedPrior

#: The KL layers tfpvae takes its settings from.
KL_LAYER = tfpl.KLDivergenceAddLoss
KL_REGULARIZER = tfpl.KLDivergenceRegularizer


@dataclass(frozen=True)
class KLAttachment:
    """The settings of the KL layer an encoder carries.

    Attributes:
        estimator: Exact or sampled, and the test points.
        prior: The layer's ``distribution_b`` (a distribution, a Keras model or a
            callable returning one).
        weight: The layer's ``weight``, or ``None``.
    """

    estimator: KLEstimator
    prior: Any
    weight: Any


@dataclass(frozen=True)
class Network:
    """A network that ends in a distribution layer.

    Attributes:
        model: The network as the user gave it.
        layer: Its distribution layer (a ``tfpl.DistributionLambda``), or ``None``
            when it is not a graph model ending in one.
        params: ``model.inputs → the distribution layer's input``, or ``None``.
        conditioning: The label input of a conditional network (a second input
            ``[batch, C]``, :mod:`tfpvae.components.conditioning`), else ``None``.
        bound: Whether the labels are bound in (:meth:`given`): then ``model`` and
            ``params`` take the first input alone.
    """

    model: Any
    layer: Any = None
    params: Any = None
    conditioning: Conditioning | None = None
    bound: bool = False

    def given(self, one_hot: tf.Tensor) -> Network:
        """This conditional network with the one-hot labels ``[batch, C]`` bound in."""
        params = None if self.params is None else BoundInputs(self.params, one_hot)
        return Network(
            BoundInputs(self.model, one_hot), self.layer, params, self.conditioning, True
        )

    def distribution(self, inputs: tf.Tensor, training: bool | None = None) -> tfd.Distribution:
        """The distribution the network gives for ``inputs``, without any KL layer.

        The distribution layer's own function of its parameters, so that neither a
        ``KLDivergenceAddLoss`` after it nor its activity regulariser runs.

        Raises:
            ValueError: For a conditional network whose labels are not bound in.
        """
        if self.conditioning is not None and not self.bound:
            raise ValueError(self.conditioning.missing())
        if self.params is None:
            return self.model(inputs, training=training)
        return self.layer._make_distribution_fn(self.params(inputs, training=training))


def _producer(tensor: Any) -> Any:
    """The layer that made a Keras symbolic tensor."""
    return tensor._keras_history.layer


def _graph_output_layer(model: Any) -> Any:
    """The layer that makes a graph model's single output, or ``None``."""
    outputs = getattr(model, "outputs", None)
    if not isinstance(model, tfk.Model) or not outputs or len(outputs) != 1:
        return None
    try:
        return _producer(outputs[0])
    except AttributeError:
        return None


def _kl_of(regularizer: Any) -> KLAttachment:
    """The :class:`KLAttachment` of a ``tfpl.KLDivergenceRegularizer``."""
    fn = regularizer.test_points_fn
    estimator = KLEstimator(
        use_exact_kl=bool(regularizer.use_exact_kl),
        # TFP's default test point is q's own sample: the objective's draw plays it.
        test_points_fn=None if fn is tf.convert_to_tensor else fn,
    )
    return KLAttachment(estimator, regularizer.distribution_b, regularizer.weight)


def inspect_encoder(encoder: Any) -> tuple[Network, KLAttachment | None]:
    """Splits ``encoder`` into its posterior network and its KL attachment.

    Raises:
        ValueError: If the encoder is not a Keras layer or model, or holds a KL layer
            somewhere tfpvae cannot take it out of (its batch loss would be counted
            twice).
    """
    if not isinstance(encoder, tfk.layers.Layer):
        raise ValueError(
            f"encoder must be a tf_keras model or layer mapping images to a tfd.Distribution, "
            f"got {type(encoder).__name__}"
        )
    last = _graph_output_layer(encoder)
    kl = None
    posterior_layer = last
    if isinstance(last, KL_LAYER):
        kl = _kl_of(last._regularizer)  # TFP keeps its settings on this regulariser
        posterior_layer = _producer(last.input)
    if isinstance(posterior_layer, tfpl.DistributionLambda):
        if isinstance(posterior_layer.activity_regularizer, KL_REGULARIZER):
            if kl is not None:
                raise ValueError(
                    "the encoder attaches its KL twice (a KLDivergenceRegularizer and a "
                    "KLDivergenceAddLoss); keep one"
                )
            kl = _kl_of(posterior_layer.activity_regularizer)
        params = tfk.Model(encoder.inputs, posterior_layer.input, name="posterior_params")
        return Network(encoder, posterior_layer, params, conditioning_of(encoder, "encoder")), kl
    hidden = [
        layer
        for layer in encoder._flatten_layers(include_self=False)
        if isinstance(layer, KL_LAYER)
        or isinstance(getattr(layer, "activity_regularizer", None), KL_REGULARIZER)
    ]
    if hidden:
        raise ValueError(
            "the encoder holds a KL layer that is not at its end; tfpvae counts the KL itself, "
            "once per example: end a Sequential or functional encoder in the posterior layer "
            "and its KLDivergenceAddLoss, or remove the KL layer and pass prior= to VAE"
        )
    return Network(encoder), None


def inspect_decoder(decoder: Any) -> Network:
    """The decoder as a :class:`Network` (its likelihood layer split off where it can be)."""
    if not isinstance(decoder, tfk.layers.Layer):
        raise ValueError(
            f"decoder must be a tf_keras model or layer mapping z to a tfd.Distribution, "
            f"got {type(decoder).__name__}"
        )
    last = _graph_output_layer(decoder)
    if isinstance(last, tfpl.DistributionLambda):
        return Network(
            decoder,
            last,
            tfk.Model(decoder.inputs, last.input, name="likelihood_params"),
            conditioning_of(decoder, "decoder"),
        )
    return Network(decoder)


def likelihood_of(layer: Any) -> Likelihood | None:
    """The registered likelihood whose layer class is exactly ``type(layer)``, if any,
    with that layer's settings (e.g. the Beta's concentration map)."""
    entry = LIKELIHOODS.find(lambda entry: type(layer) is entry.layer)
    return None if entry is None else entry.for_layer(layer)


class PriorSource:
    """Where p(z) comes from: a fixed distribution, or a layer rebuilt at every use.

    Args:
        prior: A ``tfd.Distribution``, a :class:`~tfpvae.components.priors.LearnedPrior`,
            a Keras layer or model returning a distribution when called with ``0.``,
            or a callable of no arguments returning one.

    Attributes:
        layer: The Keras layer holding the prior's variables, or ``None``.
    """

    def __init__(self, prior: Any) -> None:
        self.layer = prior if isinstance(prior, tfk.layers.Layer) else None
        self._fixed = prior if isinstance(prior, tfd.Distribution) else None
        self._fn: Callable[[], tfd.Distribution] | None = None
        if isinstance(prior, LearnedPrior):
            self._fn = prior.distribution
        elif self.layer is not None:
            self._fn = lambda: self.layer(0.0)
        elif self._fixed is None:
            if not callable(prior):
                raise ValueError(
                    f"prior must be a tfd.Distribution or a Keras layer holding its variables, "
                    f"got {type(prior).__name__}"
                )
            self._fn = prior

    def distribution(self) -> tfd.Distribution:
        """p(z) as it is now."""
        return self._fixed if self._fn is None else self._fn()

    @property
    def fixed(self) -> tfd.Distribution | None:
        """The distribution when the prior has no layer behind it."""
        return self._fixed


def is_standard_normal(prior: tfd.Distribution | None) -> bool:
    """Whether ``prior`` is N(0, I) with no variables (by its type and values)."""
    if prior is None or prior.trainable_variables:
        return False
    inner = getattr(prior, "distribution", None)
    gaussian = isinstance(prior, tfd.MultivariateNormalLinearOperator) or (
        isinstance(prior, tfd.Independent)
        and isinstance(inner, tfd.Normal)
        and prior.reinterpreted_batch_ndims == 1
    )
    if not gaussian or not tf.executing_eagerly():
        return False
    d = int(prior.event_shape[-1])
    mean = np.asarray(prior.mean())
    if isinstance(prior, tfd.Independent):
        spread = np.diag(np.asarray(prior.stddev()) ** 2)
    else:
        spread = np.asarray(prior.covariance())
    return bool(np.array_equal(mean, np.zeros(d)) and np.array_equal(spread, np.eye(d)))
