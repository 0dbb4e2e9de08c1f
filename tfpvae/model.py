r"""The VAE model and :func:`build_vae`.

``VAE`` is a ``tf_keras.Model`` whose call returns the decoder's output
distribution. Its compiled loss is the likelihood's negative log-prob applied
directly to that distribution; the KL arrives through the encoder's TFP layer (or
activity regulariser), scaled per example (see :mod:`tfpvae.divergences`). The
training and test steps therefore minimise the per-example negative ELBO

.. math:: \mathcal{L} = \frac1B\sum_{i=1}^B \big[-\log p(x_i|z_i)\big]
    + \beta\,\frac1B\sum_{i=1}^B \mathrm{KL}(q(z|x_i)\,\|\,p(z)),

and log ``rate`` (unweighted mean KL) and ``distortion`` (mean NLL) beside it.

When the prior is the default N(0, I), ``fit`` and ``evaluate`` compute that same
objective through :mod:`tfpvae.fastpath` (plain ops on the same layers, XLA-compiled);
``VAEConfig(fast_path=False)`` keeps them on the TFP layer graph.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from tfpvae._backend import tf, tfd, tfk
from tfpvae.architectures import ARCHITECTURES
from tfpvae.config import VAEConfig
from tfpvae.decoders import build_decoder
from tfpvae.divergences import KLTerm
from tfpvae.encoders import POSTERIORS, build_encoder
from tfpvae.fastpath import FastObjective
from tfpvae.faults import FaultMonitor, NonFiniteGuard, TrainingFault
from tfpvae.likelihoods import Likelihood, get_likelihood
from tfpvae.pipeline import ArrayStream, array_dataset, steps_per_epoch
from tfpvae.precision import PRECISIONS, Precision
from tfpvae.validation import check_images

#: Fast-path noise: ``eps [batch, d]`` and optional ``kl_eps [S, batch, d]``.
Noise = tuple[tf.Tensor, tf.Tensor | None]

#: Training steps per call of Keras's train function. Callbacks still see every
#: epoch; batch-level callbacks see every STEPS_PER_EXECUTION-th batch.
STEPS_PER_EXECUTION = 16

#: Environment variable: ``0`` (or ``false``/``no``/``off``) builds models without
#: XLA. Compiling the fast-path step costs about 5–8 s per model on a 2-core CPU
#: and then runs each step about twice as fast, so short runs (and the test suite)
#: start sooner without it.
XLA_ENV = "TFPVAE_XLA"


class VAE(tfk.Model):
    """A variational autoencoder ``x → q(z|x) → z → p(x|z)``.

    Args:
        config: The validated configuration it was built from.
        encoder: Model ``x → q(z|x)`` with the KL attached.
        decoder: Model ``z → p(x|z)``.
        **kwargs: Passed to ``tf_keras.Model``.

    Attributes:
        encoder, decoder: The two halves.
        prior: p(z).
        likelihood: The registered :class:`~tfpvae.likelihoods.Likelihood`.
        kl_weight: β as a ``tf.Variable`` (assign to anneal).
        config: The :class:`~tfpvae.config.VAEConfig`.
        training_fault: Where the latest ``fit`` went non-finite
            (:class:`~tfpvae.faults.TrainingFault`), or ``None``.
    """

    def __init__(self, config: VAEConfig, encoder: tfk.Model, decoder: tfk.Model, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.encoder = encoder
        self.decoder = decoder
        self.loss_tracker = tfk.metrics.Mean(name="loss")
        self.rate_tracker = tfk.metrics.Mean(name="rate")
        self.distortion_tracker = tfk.metrics.Mean(name="distortion")
        self.fast_objective: FastObjective | None = None
        if config.fast_path and encoder.standard_prior:
            gaussian = POSTERIORS.get(config.posterior).fast_params
            self.fast_objective = FastObjective(self, gaussian)
        # Noise for the fast path; seeded from NumPy so that set_random_seed fixes it.
        self.noise = tf.random.Generator.from_seed(_next_seed())
        self.fault_monitor = FaultMonitor()
        self.training_fault: TrainingFault | None = None
        self._stream: ArrayStream | None = None  # the latest fit's array pipeline

    @property
    def prior(self) -> tfd.Distribution:
        return self.encoder.prior

    @property
    def likelihood(self) -> Likelihood:
        return get_likelihood(self.config.likelihood)

    @property
    def kl_term(self) -> KLTerm:
        return self.encoder.kl_term

    @property
    def kl_weight(self) -> tf.Variable:
        return self.kl_term.kl_weight

    @property
    def precision(self) -> Precision:
        return PRECISIONS.get(self.config.precision)

    def call(self, x: tf.Tensor, training: bool | None = None) -> tfd.Distribution:
        """Returns p(x|z) with z drawn from q(z|x) (one draw per image)."""
        approx_posterior = self.encoder(x, training=training)
        z = tf.convert_to_tensor(approx_posterior)  # the same draw the KL test point used
        return self.decoder(z, training=training)

    def encode(self, x: tf.Tensor) -> tf.Tensor:
        """Latent codes: the posterior mean E[z | x], ``[batch, latent_dim]``."""
        return self.encoder(x, training=False).mean()

    def decode(self, z: tf.Tensor) -> tf.Tensor:
        """Images: the likelihood's mean E[x | z], ``[batch, *input_shape]``."""
        return self.decoder(z, training=False).mean()

    @property
    def metrics(self) -> list:
        return [self.loss_tracker, self.rate_tracker, self.distortion_tracker]

    def _step_terms(
        self, x: tf.Tensor, y: tf.Tensor, noise: Noise | None, training: bool
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Forward pass; returns (loss, rate, distortion), each a mean over this batch."""
        if self.fast_objective is not None:
            eps, kl_eps = noise if noise is not None else self.draw_noise(tf.shape(x)[0])
            rate_vec, distortion_vec = self.fast_objective.terms(x, y, eps, kl_eps, training)
            rate, distortion = _batch_mean(rate_vec), _batch_mean(distortion_vec)
            return distortion + tf.cast(self.kl_weight, rate.dtype) * rate, rate, distortion
        likelihood_dist = self(x, training=training)
        distortion = tf.reduce_mean(self.loss(y, likelihood_dist))  # mean −log p(x|z)
        kl_penalty = tf.add_n(self.losses)  # β × mean KL, from the TFP layer
        rate = self.kl_term.last_rate
        return distortion + kl_penalty, rate, distortion

    def draw_noise(self, batch: tf.Tensor) -> Noise:
        """Fresh standard normal noise for the fast path: ``(eps, kl_eps)``.

        ``eps`` is ``[batch, latent_dim]``; ``kl_eps`` is ``[kl_samples, batch,
        latent_dim]`` when the sampled KL uses separate test points, else ``None``.
        """
        config = self.config
        eps = self.noise.normal([batch, config.latent_dim])
        kl_eps = None
        if not config.use_exact_kl and config.kl_samples > 1:
            kl_eps = self.noise.normal([config.kl_samples, batch, config.latent_dim])
        return eps, kl_eps

    def compute_gradients(
        self, x: tf.Tensor, y: tf.Tensor | None = None, noise: Noise | None = None
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, list[tf.Tensor]]:
        r"""The training step's loss terms and gradients on one (replica's) batch.

        Under a ``tf.distribute`` strategy with R replicas, replica r holds
        :math:`B_r` of the global batch's :math:`B = \sum_r B_r` images. Its
        gradient is taken of :math:`\frac{B_r}{B}\,\bar\ell_r`, where
        :math:`\bar\ell_r` is its own mean −ELBO (KL included once, from
        whichever attachment). The optimizer sums gradients over replicas, so the
        step follows :math:`\nabla\frac1B\sum_i \ell_i`: the per-example −ELBO
        of the global batch, whatever the split.

        Args:
            x: Images.
            y: Targets; ``None`` means ``x``.
            noise: Fast-path noise from :meth:`draw_noise`; ``None`` draws it.

        Returns:
            (loss, rate, distortion) as means over this replica's batch, and the
            gradients (not yet summed over replicas) for ``trainable_variables``.
        """
        y = x if y is None else y
        with tf.GradientTape() as tape:
            loss, rate, distortion = self._step_terms(x, y, noise, training=True)
            objective = loss * _replica_share(x)
            objective = self.precision.scale_loss(self.optimizer, objective)
        grads = tape.gradient(objective, self.trainable_variables)
        return loss, rate, distortion, self.precision.unscale(self.optimizer, grads)

    def _update_trackers(self, loss: tf.Tensor, rate: tf.Tensor, distortion: tf.Tensor, x):
        batch = tf.cast(tf.shape(x)[0], loss.dtype)
        # Weighting by batch size makes epoch values true per-example means.
        self.loss_tracker.update_state(loss, sample_weight=batch)
        self.rate_tracker.update_state(rate, sample_weight=batch)
        self.distortion_tracker.update_state(distortion, sample_weight=batch)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        x, y = _unpack(data)
        loss, rate, distortion, grads = self.compute_gradients(x, y)
        # Loss scaling overflows on purpose (and skips those steps); watch only the loss then.
        watched = None if self.precision.loss_scaling else grads
        self.fault_monitor.observe(loss, watched, self.optimizer.iterations)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        return self._update_trackers(loss, rate, distortion, x)

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        x, y = _unpack(data)
        loss, rate, distortion = self._step_terms(x, y, None, training=False)
        return self._update_trackers(loss, rate, distortion, x)

    def fit(self, x=None, y=None, batch_size: int | None = None, **kwargs):
        """``tf_keras.Model.fit``, feeding in-memory arrays through ``tf.data``.

        When ``x`` is an array (and ``y`` is ``None`` or the same images), it is
        checked (see :mod:`tfpvae.validation`) and streamed through
        :class:`tfpvae.pipeline.ArrayStream`: a seeded order per epoch, whole-batch
        gathers, prefetch. On one replica the stream is kept for the next ``fit``
        on the same images (a copy of them stays with the model until then). An array
        ``validation_data`` goes through :func:`tfpvae.pipeline.array_dataset`.
        Datasets pass straight through. Under several replicas each epoch drops
        its last partial batch, so that no replica is left without images.

        A :class:`~tfpvae.faults.NonFiniteGuard` is added unless one is given: a
        non-finite loss or gradient stops training, restores the last good weights
        and optimizer state, and sets :attr:`training_fault` (and warns). A dataset
        of unknown length runs one step per call, as Keras needs to see where its
        epochs end.
        """
        if _is_array(x):
            check_images(x, self.config, "x")
        validation = kwargs.get("validation_data")
        if isinstance(validation, tuple) and _is_array(validation[0]):
            check_images(validation[0], self.config, "validation_data")
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if not any(isinstance(c, NonFiniteGuard) for c in callbacks):
            callbacks.insert(0, NonFiniteGuard())
        if _is_array(x) and (y is None or y is x or _is_array(y)):
            if y is not None and y is not x and not np.array_equal(np.asarray(x), np.asarray(y)):
                raise ValueError("a VAE reconstructs its input: y must be x (or None)")
            batch_size = batch_size or 32
            drop = self.distribute_strategy.num_replicas_in_sync > 1
            steps = steps_per_epoch(len(x), batch_size, drop_remainder=drop)
            if steps == 0:
                raise ValueError(
                    f"batch_size {batch_size} is larger than the {len(x)} training images, so "
                    "an epoch would have no full batch to split across replicas; lower batch_size"
                )
            shuffle, seed = bool(kwargs.pop("shuffle", True)), _next_seed()
            first_epoch = int(kwargs.get("initial_epoch", 0))
            if drop:  # distributed: a dataset of constants, which tf.distribute can rewrite
                x = array_dataset(x, batch_size, shuffle, seed, drop, first_epoch)
            else:
                x = self._training_stream(x, batch_size, shuffle).start(seed, first_epoch)
            y = None
            kwargs.setdefault("steps_per_epoch", steps)
            if isinstance(validation, tuple) and _is_array(validation[0]):
                kwargs["validation_data"] = array_dataset(
                    validation[0], batch_size, shuffle=False, drop_remainder=drop
                )
            batch_size = None
        # Keras can group steps only when it knows where an epoch ends.
        one_step_per_call = _unknown_length(x) and kwargs.get("steps_per_epoch") is None
        with _steps_per_execution(self, 1) if one_step_per_call else contextlib.nullcontext():
            history = super().fit(x, y, batch_size=batch_size, callbacks=callbacks, **kwargs)
        if self.training_fault is not None:
            warnings.warn(self.training_fault.message(), RuntimeWarning, stacklevel=2)
        return history

    def _training_stream(self, x, batch_size: int, shuffle: bool) -> ArrayStream:
        """The training stream of ``x``: the previous ``fit``'s when it holds the same images."""
        if self._stream is None or not self._stream.serves(x, batch_size, shuffle, False):
            self._stream = None  # release the old copy of the images before making the new one
            self._stream = ArrayStream(x, batch_size, shuffle, drop_remainder=False)
        return self._stream

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """``tf_keras.Model.evaluate``, checking array inputs first (see ``tfpvae.validation``)."""
        if _is_array(x):
            check_images(x, self.config, "x")
        return super().evaluate(x, y, *args, **kwargs)

    def get_config(self) -> dict:
        return self.config.to_dict()


def _unpack(data: Any) -> tuple[tf.Tensor, tf.Tensor]:
    """(x, target) of a batch; the target defaults to x."""
    x, y, sample_weight = tfk.utils.unpack_x_y_sample_weight(data)
    if sample_weight is not None:
        raise ValueError("tfpvae's VAE does not support sample weights")
    return x, x if y is None else y


def _batch_mean(values: tf.Tensor) -> tf.Tensor:
    """Mean over the batch, 0 for an empty batch (a replica may get none)."""
    count = tf.cast(tf.shape(values)[0], values.dtype)
    return tf.math.divide_no_nan(tf.reduce_sum(values), count)


def _replica_share(x: tf.Tensor) -> tf.Tensor:
    """This replica's share B_r / B of the global batch (1 without replicas)."""
    if tf.distribute.get_strategy().num_replicas_in_sync == 1:
        return tf.constant(1.0)
    local = tf.cast(tf.shape(x)[0], tf.float32)
    total = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, local)
    return local / total


def xla_enabled() -> bool:
    """Whether ``$TFPVAE_XLA`` allows XLA (anything but ``0``/``false``/``no``/``off``)."""
    return os.environ.get(XLA_ENV, "").strip().lower() not in ("0", "false", "no", "off")


def _use_xla(vae: VAE, strategy: tf.distribute.Strategy) -> bool:
    """XLA for the fast-path step of an architecture it speeds up, on one replica."""
    return (
        xla_enabled()
        and vae.fast_objective is not None
        and ARCHITECTURES.get(vae.config.architecture).jit_compile
        and strategy.num_replicas_in_sync == 1
    )


def _unknown_length(data: Any) -> bool:
    return isinstance(data, tf.data.Dataset) and int(data.cardinality()) < 0


@contextlib.contextmanager
def _steps_per_execution(model: tfk.Model, steps: int) -> Iterator[None]:
    """Temporarily runs ``steps`` training steps per call of the train function."""
    previous = int(model._steps_per_execution.numpy())
    model._steps_per_execution.assign(steps)
    try:
        yield
    finally:
        model._steps_per_execution.assign(previous)


def _is_array(value: Any) -> bool:
    return isinstance(value, (np.ndarray, tf.Tensor))


def _next_seed() -> int:
    """A shuffle seed drawn from NumPy's global state (fixed by ``set_random_seed``)."""
    return int(np.random.randint(2**31 - 1))


def build_vae(
    likelihood: str = "beta",
    latent_dim: int = 2,
    hidden_units: tuple[int, ...] = (256, 64),
    input_shape: tuple[int, ...] = (28, 28),
    architecture: str = "mlp",
    posterior: str = "full",
    kl: str = "add_loss",
    use_exact_kl: bool = False,
    kl_weight: float = 1.0,
    kl_samples: int = 1,
    prior: tfd.Distribution | None = None,
    learning_rate: float = 1e-3,
    strategy: tf.distribute.Strategy | None = None,
    **config_fields: Any,
) -> VAE:
    """Builds and compiles a VAE the way the course does, with a per-example ELBO.

    Args:
        likelihood: ``"beta"``, ``"bernoulli"`` or ``"continuous_bernoulli"``.
        latent_dim: Size of z.
        hidden_units: Encoder Dense widths; mirrored in the decoder.
        input_shape: Image shape, e.g. ``(28, 28)`` or ``(8, 8)``.
        architecture: ``"mlp"`` or ``"conv"``.
        posterior: ``"full"`` (MultivariateNormalTriL) or ``"diag"`` (IndependentNormal).
        kl: ``"add_loss"`` (KLDivergenceAddLoss) or ``"regularizer"`` (KLDivergenceRegularizer).
        use_exact_kl: Closed-form KL instead of sampling.
        kl_weight: β.
        kl_samples: Test points per example for the sampled KL.
        prior: Any ``tfd.Distribution`` over ``R^latent_dim``; ``None`` is N(0, I).
        learning_rate: Adam's step size.
        strategy: A ``tf.distribute.Strategy``; the model is built and compiled in
            its scope. ``None`` uses the current one (one device by default).
        **config_fields: Further :class:`~tfpvae.config.VAEConfig` fields
            (``conv_filters``, ``precision``, ``fast_path``).

    Returns:
        A compiled :class:`VAE`. ``vae(x)`` is p(x|z); ``vae.encoder(x)`` is q(z|x).

    Raises:
        ValueError: On an unknown name or an invalid value.

    Example:
        >>> import numpy as np
        >>> from tfpvae import build_vae
        >>> vae = build_vae(likelihood="beta", input_shape=(8, 8))
        >>> vae(np.full((4, 8, 8), 0.5, "float32")).event_shape
        TensorShape([8, 8])
    """
    config = VAEConfig(
        likelihood=likelihood,
        latent_dim=latent_dim,
        hidden_units=tuple(hidden_units),
        input_shape=tuple(input_shape),
        architecture=architecture,
        posterior=posterior,
        kl=kl,
        use_exact_kl=use_exact_kl,
        kl_weight=kl_weight,
        kl_samples=kl_samples,
        learning_rate=learning_rate,
        **config_fields,
    )
    return build_vae_from_config(config, prior=prior, strategy=strategy)


def build_vae_from_config(
    config: VAEConfig,
    prior: tfd.Distribution | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> VAE:
    """Builds and compiles a :class:`VAE` from a :class:`~tfpvae.config.VAEConfig`.

    Args:
        config: The configuration.
        prior: p(z); ``None`` is N(0, I).
        strategy: Build and compile inside ``strategy.scope()``; ``None`` uses the
            current strategy.

    The optimizer's slots are created here, so that a checkpoint can be restored
    into the model before its first step. XLA compiles the fast-path step on one
    replica; with several, the step's all-reduces run without XLA. Setting
    ``TFPVAE_XLA=0`` turns XLA off.
    """
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        encoder = build_encoder(config, prior=prior)
        decoder = build_decoder(config)
        vae = VAE(config, encoder, decoder, name="vae")
        optimizer = vae.precision.optimizer(tfk.optimizers.Adam(config.learning_rate))
        vae.compile(
            optimizer=optimizer,
            loss=vae.likelihood.negative_log_prob,
            jit_compile=_use_xla(vae, strategy),
            steps_per_execution=STEPS_PER_EXECUTION,
        )
        vae.build((None, *config.input_shape))
        optimizer.build(vae.trainable_variables)
    return vae
