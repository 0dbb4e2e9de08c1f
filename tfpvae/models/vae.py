r"""The VAE: any encoder, decoder and prior, trained on a per-example objective.

``VAE(encoder, decoder, prior)`` takes the networks a user writes with TFP's
layers: an encoder ``x → q(z|x)`` (with or without a ``KLDivergenceAddLoss`` or
``KLDivergenceRegularizer``), a decoder ``z → p(x|z)`` and a prior. ``vae(x)``
returns p(x|z) at one draw z ~ q(z|x), as in the course. Training minimises the
objective (:mod:`tfpvae.objectives`); for ``"elbo"`` the per-example negative ELBO

.. math:: \mathcal{L} = \frac{\sum_i w_i\,\big[-\log p(x_i|z_i)
    + \beta\,\mathrm{KL}(q(z|x_i)\,\|\,p(z))\big]}{\sum_i w_i}
    + \textstyle\sum(\text{the networks' own losses}),

with image weights :math:`w_i` (1 unless ``sample_weight`` is given), logged as
``loss``, ``rate`` (the unweighted KL) and ``distortion`` (the NLL). The KL layer's
own batch loss is not part of it (:mod:`tfpvae.components.parts`); the layers'
other losses (``kernel_regularizer``, ``add_loss``) are, as Keras adds them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfpvae._backend import tf, tfd, tfk
from tfpvae.components.conditioning import not_conditional
from tfpvae.models.keras_io import KerasModelIO
from tfpvae.models.model_parts import resolve_parts
from tfpvae.objectives import Parts, Terms
from tfpvae.training import steps
from tfpvae.training.validation import check_images


@tfk.utils.register_keras_serializable(package="tfpvae")
class VAE(KerasModelIO, steps.KerasSteps, tfk.Model):
    """A variational autoencoder ``x → q(z|x) → z → p(x|z)`` from its parts.

    Args:
        encoder: A ``tf_keras`` model or layer mapping images to a ``tfd.Distribution``
            over z, e.g. a ``Sequential`` ending in ``tfpl.MultivariateNormalTriL``
            and, optionally, ``tfpl.KLDivergenceAddLoss`` (whose settings are used:
            exact or sampled, test points, ``distribution_b`` as the prior and
            ``weight`` as β).
        decoder: A model mapping z ``[batch, d]`` to a distribution over images.
        prior: p(z): a ``tfd.Distribution``, or a Keras layer holding trainable
            variables (a :class:`~tfpvae.components.priors.LearnedPrior`, or any layer
            that returns a distribution when called with ``0.``). ``None``: the KL
            layer's ``distribution_b``, else N(0, I).
        objective: A name from ``tfpvae.OBJECTIVES`` (``"elbo"``, ``"iwae"``, ``"renyi"``) or a
            function ``(parts, **options) → Objective``.
        kl_weight: β, a float or a ``tf.Variable``; ``None``: the KL layer's ``weight``,
            else 1.
        use_exact_kl: Overrides the KL layer's setting (``None`` keeps it; without a
            KL layer the default is the closed form where TFP has one).
        n_samples: Draws of z per image for ``"elbo"``; K, the draws of ``"renyi"``.
        iwae_k: Importance samples per image for ``"iwae"``.
        alpha: α of ``objective="renyi"`` (≠ 1; 0 is the IWAE bound); refused by the others.
        gradient: The gradient estimator (``tfpvae.objectives.gradients.GRADIENTS``):
            ``None``/``"standard"``, ``"dreg"`` (``"iwae"``, ``"renyi"``) or ``"stl"``
            (``"elbo"``). The loss value is the same; the gradient differs.
        free_bits: λ ≥ 0: each latent dimension's batch-mean KL floored at λ nats
            (``"elbo"``; 0 is off; see ``tfpvae.objectives.free_bits``).
        fast_path: Let the fused objectives run where the parts' types allow.
        precision: ``"float32"`` or a mixed policy name (loss scaling).
        recipe: A :class:`~tfpvae.models.keras_io.Recipe` (the
            :class:`~tfpvae.config.VAEConfig`) when ``build_vae`` made the networks;
            kept for saving, nothing reads it at run time.
        **kwargs: Passed to ``tf_keras.Model``.
    """

    def __init__(
        self,
        encoder: Any,
        decoder: Any,
        prior: Any = None,
        *,
        objective: Any = "elbo",
        kl_weight: float | tf.Variable | None = None,
        use_exact_kl: bool | None = None,
        n_samples: int = 1,
        iwae_k: int = 5,
        alpha: float | None = None,
        gradient: str | None = None,
        free_bits: float = 0.0,
        fast_path: bool = True,
        precision: str = "float32",
        recipe: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.encoder, self.decoder, self.recipe = encoder, decoder, recipe
        self.noise = tf.random.Generator.from_seed(steps.next_seed())
        resolved = resolve_parts(
            encoder, decoder, prior, kl_weight, use_exact_kl, self.noise, fast_path
        )
        self.parts: Parts = resolved.parts
        self.prior_layer = resolved.parts.prior.layer  # tracked: trained, saved, checkpointed
        fixed = resolved.parts.prior.fixed
        if fixed is not None and fixed.variables:
            self.prior_variables = fixed  # tracked: a distribution's own variables train too
        self.kl_weight = resolved.parts.kl_weight
        self.image_shape: tuple[int, ...] = resolved.image_shape
        # The code's size (the top layer's with two stochastic layers, see `encode`).
        self.latent_dim: int = resolved.parts.code_size
        self.latent_dims: tuple[int, ...] = resolved.parts.latent_dims
        # Set options only: a factory that takes none of them still works without them.
        options = dict(alpha=alpha, gradient=gradient, free_bits=free_bits or None)
        self.settings = dict(
            objective=objective, use_exact_kl=use_exact_kl, n_samples=int(n_samples),
            iwae_k=int(iwae_k), fast_path=bool(fast_path), precision=precision,
            **{name: value for name, value in options.items() if value is not None},
        )  # fmt: skip
        self.objective = steps.make_objective(objective, self.parts, n_samples, iwae_k, **options)
        self.precision = steps.precision_of(precision)
        self.loss_tracker = tfk.metrics.Mean(name="loss")
        self.rate_tracker = tfk.metrics.Mean(name="rate")
        self.distortion_tracker = tfk.metrics.Mean(name="distortion")

    @property
    def prior(self) -> tfd.Distribution:
        """p(z) as it is now (a learned prior's distribution at its variables' values)."""
        return self.parts.prior.distribution()

    @property
    def likelihood(self) -> Any:
        """The registered likelihood of the decoder's layer, or ``None`` for a user's own."""
        return self.parts.likelihood

    @property
    def temperature(self) -> tf.Variable | None:
        """τ of a relaxed posterior (a variable: assign to it to anneal), else ``None``."""
        return self.parts.temperature

    @property
    def config(self) -> Any:
        """The :class:`~tfpvae.config.VAEConfig` of a ``build_vae`` model, else ``None``."""
        return None if self.recipe is None else self.recipe.config

    @property
    def metrics(self) -> list:
        return [self.loss_tracker, self.rate_tracker, self.distortion_tracker]

    @property
    def num_classes(self) -> int | None:
        """C of a conditional VAE (both networks take the one-hot label), else ``None``."""
        conditioning = self.parts.conditioning
        return None if conditioning is None else conditioning.num_classes

    def given(self, labels: Any, n: Any = None, what: str = "labels") -> Parts:
        """The parts with ``labels`` bound in (a conditional VAE); the parts themselves otherwise.

        In-memory labels are checked (class ids 0..C−1, or one-hot rows; a single id
        stands for ``n`` copies of it).

        Raises:
            ValueError: Labels for an unconditional model, none for a conditional one,
                or labels out of range.
        """
        return self.parts.given(self.checked_labels(labels, n, what))

    def checked_labels(self, labels: Any, n: Any = None, what: str = "labels") -> Any:
        """``labels`` as int32 class ids when they are in memory (see :meth:`given`)."""
        conditioning = self.parts.conditioning
        if conditioning is None and labels is not None:
            raise ValueError(not_conditional(what))
        if conditioning is not None and labels is None:
            raise ValueError(conditioning.missing(what))
        if conditioning is not None and tf.executing_eagerly():
            if np.ndim(labels) == 0 and n is not None:
                labels = np.full([int(n)], labels)
            labels = conditioning.check(labels, None if n is None else int(n), what)
        return labels

    def call(self, x: Any, training: bool | None = None) -> tfd.Distribution:
        """Returns p(x|z) with z drawn from q(z|x) (one draw per image).

        A conditional VAE takes ``(images, labels)`` and returns p(x|z, y), z ~ q(z|x, y).
        """
        if self.num_classes is not None:
            if not isinstance(x, (tuple, list)) or len(x) != 2:
                raise ValueError(self.parts.conditioning.missing())  # type: ignore[union-attr]
            x, labels = x
            one_hot = self.parts.conditioning.one_hot(  # type: ignore[union-attr]
                self.checked_labels(labels, steps.rows_of(x))
            )
            approx_posterior = self.encoder([x, one_hot], training=training)
            return self.decoder(
                [tf.convert_to_tensor(approx_posterior), one_hot], training=training
            )
        approx_posterior = self.encoder(x, training=training)
        return self.decoder(tf.convert_to_tensor(approx_posterior), training=training)

    def posterior(
        self, x: tf.Tensor, training: bool | None = False, labels: Any = None
    ) -> tfd.Distribution:
        """q(z | x) (q(z | x, y) with ``labels``), computed without the encoder's KL layer."""
        return self.given(labels, steps.rows_of(x)).posterior(x, training=training)

    def encode(self, x: tf.Tensor, labels: Any = None) -> tf.Tensor:
        """Latent codes ``[batch, latent_dim]``: E[z | x] (a flow: its base mean pushed through).

        With two stochastic layers the code is the top layer's, E[z2 | z1 = E[z1 | x]],
        and ``latent_dim`` is z2's size (``latent_dims`` holds both). ``labels``: the
        class ids of a conditional VAE (E[z | x, y]).
        """
        return self.parts.family.point(self.posterior(x, labels=labels))

    def decode(self, z: tf.Tensor, labels: Any = None) -> tf.Tensor:
        """Images: the likelihood's mean E[x | z] (E[x | z, y]), ``[batch, *image_shape]``.

        With two stochastic layers ``z`` is a code of the top layer ``[batch, z2]``
        (decoded at z1 = E[z1 | z2]) or a whole ``(z1, z2)`` ``[batch, z1 + z2]``.
        ``labels``: the class ids of a conditional VAE, one per row of ``z``.
        """
        full = self.parts.full_latent(z)
        return self.given(labels, steps.rows_of(z)).decode(full, training=False).mean()

    def sample(
        self, n: int, seed: int | None = None, mean: bool = True, labels: Any = None
    ) -> tf.Tensor:
        """``n`` images from the model: z ~ p(z), then E[x | z] (or, with ``mean=False``, a draw).

        Args:
            n: How many.
            seed: An int for reproducible images; ``None`` draws from the model's generator.
            mean: The likelihood's mean; ``False`` samples x ~ p(x | z).
            labels: A conditional VAE's classes, required there: ``n`` class ids (or one
                id for all ``n``); image i is E[x | z_i, y_i]. The draws of z depend on
                ``seed`` only, so the same seed with other labels decodes the same z.

        Raises:
            ValueError: For a conditional VAE without labels, or labels for another one.
        """
        parts = self.given(labels, n)
        if seed is None:
            stateless = self.noise.uniform_full_int([2], tf.int32)
        else:
            stateless = tf.constant([int(seed), 0], tf.int32)
        z_seed, x_seed = tf.unstack(tf.random.experimental.stateless_split(stateless, 2))
        z = tf.reshape(self.prior.sample(int(n), seed=z_seed), [int(n), self.parts.latent_dim])
        p = parts.decode(z, training=False)
        return p.mean() if mean else p.sample(seed=x_seed)

    def compute_gradients(
        self,
        x: tf.Tensor,
        noise: Any = None,
        sample_weight: tf.Tensor | None = None,
        labels: Any = None,
    ) -> tuple[Terms, tf.Tensor, list[tf.Tensor]]:
        r"""The objective's terms, the loss and its gradients on one (replica's) batch.

        The loss is the weighted mean of the per-image loss over the *global*
        batch, plus the networks' own losses (regularisers, ``add_loss``) once:
        replica r contributes :math:`\sum_{i\in r} w_i\ell_i / \sum_i w_i` and
        its share of those losses, and the optimizer sums the replicas' gradients.

        ``labels`` are a conditional VAE's class ids (or one-hot rows), bound into its
        networks for this batch (:meth:`~tfpvae.objectives.Objective.given`).

        Returns:
            (per-image terms, this replica's weighted mean loss, gradients not yet
            summed over replicas) for ``trainable_variables``.
        """
        x = steps.with_image_shape(x, self.image_shape)
        objective = self.objective.given(self.checked_labels(labels))
        with tf.GradientTape() as tape:
            terms = objective.terms(x, noise, training=True)
            objective, loss = steps.batch_loss(terms, sample_weight, self.parts.network_losses())
            scaled = self.precision.scale_loss(self.optimizer, objective)
        grads = self.precision.unscale(
            self.optimizer, tape.gradient(scaled, self.trainable_variables)
        )
        return terms, loss, grads

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        x, labels, sample_weight = self._unpack(data)
        terms, loss, grads = self.compute_gradients(x, None, sample_weight, labels)
        self.fault_monitor.observe(
            loss, None if self.precision.loss_scaling else grads, self.optimizer.iterations
        )
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        return self._track(terms, sample_weight)

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        x, labels, sample_weight = self._unpack(data)
        x = steps.with_image_shape(x, self.image_shape)
        objective = self.objective.given(self.checked_labels(labels))
        return self._track(objective.terms(x, None, training=False), sample_weight)

    def predict_step(self, data: Any) -> tf.Tensor:
        """Reconstructions: the likelihood's mean E[x | z] at one draw z ~ q(z|x)."""
        x, labels, _ = self._unpack(data)
        return self((x, labels) if self.num_classes is not None else x, training=False).mean()

    def _unpack(self, data: Any) -> tuple[Any, Any, Any]:
        """``(images, labels or None, sample_weight)`` of a batch.

        A conditional VAE's batch is ``(images, labels[, w])`` (or ``((images, labels),)``);
        any other VAE's ``y`` is its target, the images themselves, and is dropped.
        """
        x, y, sample_weight = tfk.utils.unpack_x_y_sample_weight(data)
        if self.num_classes is None:
            return x, None, sample_weight
        if isinstance(x, (tuple, list)) and len(x) == 2 and y is None:
            x, y = x
        if y is None:
            raise ValueError(self.parts.conditioning.missing())  # type: ignore[union-attr]
        return x, y, sample_weight

    def _track(self, terms: Terms, sample_weight: tf.Tensor | None) -> dict[str, tf.Tensor]:
        """Updates the trackers with per-image values, so epoch values are per-image means."""
        for tracker, values in zip(self.metrics, terms, strict=True):
            tracker.update_state(values, sample_weight=sample_weight)
        return {m.name: m.result() for m in self.metrics}

    def _validate_and_get_metrics_result(self, logs: Any) -> Any:
        """The logs of an epoch (Keras's hook after every ``fit`` epoch and ``evaluate``).

        Keras reads every metric again here, for steps that may run out of order
        (a parameter-server cluster) or replicas whose trackers the last step saw
        only in part. On one replica this class's own steps return exactly those
        results (:meth:`_track`, after the step's updates), so the logs Keras has
        already read are kept: its nine eager reads cost about 1 ms per epoch.
        """
        cls = type(self)
        own_steps = cls.train_step is VAE.train_step and cls.test_step is VAE.test_step
        one_replica = self.distribute_strategy.num_replicas_in_sync == 1
        if own_steps and one_replica and getattr(self, "_cluster_coordinator", None) is None:
            names = {metric.name for metric in self.metrics}
            if isinstance(logs, dict) and set(logs) == names:
                return logs
        return super()._validate_and_get_metrics_result(logs)

    def check_images(self, x: Any, what: str = "x") -> Any:
        """``x`` as a NumPy array, checked against the image shape and the likelihood."""
        return check_images(x, self.image_shape, self.likelihood, what)
