r"""The VAE: a ``tf_keras.Model`` with a pluggable objective.

``vae(x)`` returns the decoder's distribution p(x|z) at one draw z ~ q(z|x), as
in the course. Training minimises the model's objective
(:mod:`tfpvae.objectives`); for the default ``"elbo"`` that is the per-example
negative ELBO

.. math:: \mathcal{L} = \frac{\sum_i w_i\,\big[-\log p(x_i|z_i)
    + \beta\,\mathrm{KL}(q(z|x_i)\,\|\,p(z))\big]}{\sum_i w_i},

with image weights :math:`w_i` (1 unless ``sample_weight`` is given), logged as
``loss``, ``rate`` (the unweighted KL) and ``distortion`` (the NLL).
"""

from __future__ import annotations

from typing import Any

from tfpvae._backend import tf, tfd, tfk
from tfpvae.components.kl import KLTerm
from tfpvae.components.likelihoods import Likelihood, get_likelihood
from tfpvae.components.posteriors import POSTERIORS
from tfpvae.components.precision import PRECISIONS, Precision
from tfpvae.config import VAEConfig
from tfpvae.models.keras_io import KerasModelIO
from tfpvae.objectives import OBJECTIVES, Terms, weighted_mean
from tfpvae.training import fit as fit_layer
from tfpvae.training.faults import FaultMonitor, TrainingFault
from tfpvae.training.tuning import forget_step_functions, one_step_per_call
from tfpvae.training.validation import check_images


@tfk.utils.register_keras_serializable(package="tfpvae")
class VAE(KerasModelIO, tfk.Model):
    """A variational autoencoder ``x → q(z|x) → z → p(x|z)``.

    Config, cloning and ``save`` come from :class:`~tfpvae.models.keras_io.KerasModelIO`.

    Args:
        config: The validated configuration it was built from.
        encoder: Model ``x → q(z|x)`` (its KL layer adds β·KL to ``losses``).
        decoder: Model ``z → p(x|z)``.
        kl_term: The KL estimator, prior and β shared with the encoder's KL layer.
        custom_prior: Whether the prior was given by the user (a distribution, not
            a name from ``PRIORS``).
        **kwargs: Passed to ``tf_keras.Model``.

    Attributes:
        learned_prior: The :class:`~tfpvae.components.priors.LearnedPrior` layer of a
            learned prior (so that Keras trains, saves and checkpoints its
            variables), or ``None``.
        objective: The bound :class:`~tfpvae.objectives.Objective`.
        noise: The generator the objective draws from (checkpointed with the model).
        training_fault: Where the latest ``fit`` went non-finite, or ``None``.
    """

    def __init__(
        self,
        config: VAEConfig,
        encoder: tfk.Model,
        decoder: tfk.Model,
        kl_term: KLTerm,
        custom_prior: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.config, self.encoder, self.decoder = config, encoder, decoder
        self.kl_term, self.custom_prior = kl_term, custom_prior
        self.learned_prior = kl_term.prior_layer
        self.objective = OBJECTIVES.get(config.objective)(self)
        self.noise = tf.random.Generator.from_seed(fit_layer.next_seed())
        self.fault_monitor = FaultMonitor()
        self.training_fault: TrainingFault | None = None
        self.loss_tracker = tfk.metrics.Mean(name="loss")
        self.rate_tracker = tfk.metrics.Mean(name="rate")
        self.distortion_tracker = tfk.metrics.Mean(name="distortion")

    @property
    def prior(self) -> tfd.Distribution:
        return self.kl_term.prior

    @property
    def kl_weight(self) -> tf.Variable:
        """β, a variable: assign to it to anneal."""
        return self.kl_term.kl_weight

    @property
    def temperature(self) -> tf.Variable | None:
        """τ of a relaxed posterior (a variable: assign to it to anneal), else ``None``."""
        layers = {layer.name: layer for layer in self.encoder.layers}
        return getattr(layers.get("approx_posterior"), "temperature", None)

    @property
    def likelihood(self) -> Likelihood:
        return get_likelihood(self.config.likelihood)

    @property
    def precision(self) -> Precision:
        return PRECISIONS.get(self.config.precision)

    @property
    def metrics(self) -> list:
        return [self.loss_tracker, self.rate_tracker, self.distortion_tracker]

    def call(self, x: tf.Tensor, training: bool | None = None) -> tfd.Distribution:
        """Returns p(x|z) with z drawn from q(z|x) (one draw per image)."""
        approx_posterior = self.encoder(x, training=training)
        return self.decoder(tf.convert_to_tensor(approx_posterior), training=training)

    def encode(self, x: tf.Tensor) -> tf.Tensor:
        """Latent codes ``[batch, latent_dim]``: the posterior mean E[z | x] (for a flow
        posterior, the flow applied to its base mean; see ``Posterior.point``)."""
        return POSTERIORS.get(self.config.posterior).point(self.encoder(x, training=False))

    def decode(self, z: tf.Tensor) -> tf.Tensor:
        """Images: the likelihood's mean E[x | z], ``[batch, *input_shape]``."""
        return self.decoder(z, training=False).mean()

    def compute_gradients(
        self, x: tf.Tensor, noise: Any = None, sample_weight: tf.Tensor | None = None
    ) -> tuple[Terms, tf.Tensor, list[tf.Tensor]]:
        r"""The objective's terms, the loss and its gradients on one (replica's) batch.

        The loss is the weighted mean of the per-image loss over the *global*
        batch: replica r contributes :math:`\sum_{i\in r} w_i\ell_i / \sum_i w_i`,
        and the optimizer sums the replicas' gradients, so the step follows the
        gradient of the global weighted mean, whatever the split.

        Returns:
            (per-image terms, this replica's weighted mean loss, gradients not yet
            summed over replicas) for ``trainable_variables``.
        """
        weights = tf.ones([tf.shape(x)[0]]) if sample_weight is None else sample_weight
        weights = tf.cast(tf.reshape(weights, [-1]), tf.float32)
        with tf.GradientTape() as tape:
            terms = self.objective.terms(x, noise, training=True)
            objective = tf.math.divide_no_nan(
                tf.reduce_sum(weights * terms.loss), _global_sum(weights)
            )
            scaled = self.precision.scale_loss(self.optimizer, objective)
        grads = self.precision.unscale(
            self.optimizer, tape.gradient(scaled, self.trainable_variables)
        )
        return terms, weighted_mean(terms.loss, weights), grads

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        x, _, sample_weight = tfk.utils.unpack_x_y_sample_weight(data)
        terms, loss, grads = self.compute_gradients(x, None, sample_weight)
        # Loss scaling overflows on purpose (and skips those steps); watch only the loss then.
        self.fault_monitor.observe(
            loss, None if self.precision.loss_scaling else grads, self.optimizer.iterations
        )
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        return self._track(terms, sample_weight)

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        x, _, sample_weight = tfk.utils.unpack_x_y_sample_weight(data)
        return self._track(self.objective.terms(x, None, training=False), sample_weight)

    def predict_step(self, data: Any) -> tf.Tensor:
        """Reconstructions: the likelihood's mean E[x | z] at one draw z ~ q(z|x)."""
        x, _, _ = tfk.utils.unpack_x_y_sample_weight(data)
        return self(x, training=False).mean()

    def _track(self, terms: Terms, sample_weight: tf.Tensor | None) -> dict[str, tf.Tensor]:
        """Updates the trackers with per-image values, so epoch values are per-image means."""
        for tracker, values in zip(self.metrics, terms, strict=True):
            tracker.update_state(values, sample_weight=sample_weight)
        return {m.name: m.result() for m in self.metrics}

    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, **kwargs: Any):
        """``tf_keras.Model.fit``; arrays are checked and streamed (:mod:`tfpvae.training.fit`)."""
        return fit_layer.fit(self, super().fit, x, y, batch_size, **kwargs)

    def evaluate(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any):
        """``tf_keras.Model.evaluate``, checking array inputs first."""
        if fit_layer.is_array(x):
            check_images(x, self.config, "x")
        return super().evaluate(x, _target(x, y, kwargs), *args, **kwargs)

    def train_on_batch(self, x: Any, y: Any = None, *args: Any, **kwargs: Any):
        with one_step_per_call(self):
            return super().train_on_batch(x, _target(x, y, kwargs), *args, **kwargs)

    def test_on_batch(self, x: Any, y: Any = None, *args: Any, **kwargs: Any):
        with one_step_per_call(self):
            return super().test_on_batch(x, _target(x, y, kwargs), *args, **kwargs)

    def predict_on_batch(self, x: Any):
        with one_step_per_call(self):
            return super().predict_on_batch(x)

    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, **kwargs: Any) -> None:
        """``tf_keras.Model.compile``; the loss is the objective, so ``loss`` must be ``None``."""
        if loss is not None:
            raise ValueError(
                "a VAE's loss is its objective (VAEConfig.objective); compile it without loss="
            )
        super().compile(optimizer=optimizer, **kwargs)
        forget_step_functions(self)


def _target(x: Any, y: Any, kwargs: dict) -> Any:
    """The target to hand Keras: the images when sample weights come without one.

    Keras drops ``sample_weight`` from a batch that has no target, so a weighted
    call without ``y`` would silently be unweighted.
    """
    return x if y is None and kwargs.get("sample_weight") is not None else y


def _global_sum(values: tf.Tensor) -> tf.Tensor:
    """Sum of ``values`` over this batch and, under several replicas, over all of them."""
    total = tf.reduce_sum(values)
    if tf.distribute.get_strategy().num_replicas_in_sync == 1:
        return total
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, total)
