r"""The KL term of the ELBO, attached the TFP way and scaled per example.

The negative ELBO of one image is

.. math::

    -\mathrm{ELBO}(x) = \underbrace{-\mathbb{E}_{q(z|x)}[\log p(x|z)]}_{\text{distortion}}
        + \beta\,\underbrace{\mathrm{KL}(q(z|x)\,\|\,p(z))}_{\text{rate}} .

Keras averages the compiled loss over the batch, so the KL that is added to it must
be the batch **mean**. TFP's two attachments do not agree on that:

* ``tfpl.KLDivergenceAddLoss`` adds ``reduce_sum`` of its KL tensor. With
  ``use_exact_kl=True`` that tensor is per example, so it adds the batch **sum**;
  when sampling with its default ``test_points_reduce_axis=None`` it adds the batch
  **mean**.
* ``tfpl.KLDivergenceRegularizer`` returns the same kind of sum, and Keras divides
  every activity regulariser by the batch size.

tfpvae configures TFP's KL function so that it returns the batch sum in *every*
mode (per-example test points, ``kl_samples`` of them, averaged over the sample
axis only) and then divides by the batch size exactly once: itself for
``add_loss``, through Keras for ``regularizer``. β is applied here too, so the
unweighted rate can be reported even while β is annealed from 0.

The attachment is what a course-style encoder carries: ``encoder.losses`` after
a call holds β times the batch-mean KL. :class:`~tfpvae.VAE`'s objective needs the
KL of every image (sample weights), so the ELBO objective asks the same
:class:`KLTerm` for it through :meth:`KLTerm.per_example`, the estimator the
attachment uses, at its own draws; the tests hold the two to each other at one
z. (The IWAE objective weighs each draw by ``log p(z) - log q(z|x)`` itself.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tfpvae._backend import tf, tfd, tfk, tfpl
from tfpvae.components.priors import LearnedPrior
from tfpvae.registry import Registry


@tf.autograph.experimental.do_not_convert  # straight-line code: no AutoGraph conversion
def _batch_size(distribution: tfd.Distribution) -> tf.Tensor:
    """Number of examples in a posterior with batch shape ``[batch]``."""
    return tf.cast(tf.reduce_prod(distribution.batch_shape_tensor()), distribution.dtype)


class KLTerm:
    r"""The per-example KL estimator and the β that weights it.

    Args:
        prior: p(z): a distribution, or a :class:`~tfpvae.components.priors.LearnedPrior`
            whose distribution is rebuilt from its variables at every use.
        use_exact_kl: Use the closed form ``tfd.kl_divergence(q, p)``. Otherwise
            use the Monte Carlo estimate
            :math:`\frac1S\sum_s \log q(z_s|x) - \log p(z_s)`, :math:`z_s \sim q`.
        kl_samples: S, the test points per example when sampling. With S = 1 the
            KL layer's test point is the layer's own sample (TFP's default), and
            the ELBO objective's the z its decoder sees.
        kl_weight: β.

    Attributes:
        prior_layer: The :class:`~tfpvae.components.priors.LearnedPrior`, or ``None``.
        kl_weight: A non-trainable ``tf.Variable`` holding β; assign to it to anneal.
    """

    def __init__(
        self,
        prior: tfd.Distribution | LearnedPrior,
        use_exact_kl: bool = False,
        kl_samples: int = 1,
        kl_weight: float = 1.0,
    ) -> None:
        if isinstance(prior, LearnedPrior) and use_exact_kl:
            raise ValueError(
                f"use_exact_kl=True but the {prior.name} is learned and TFP has no closed-form "
                "KL to it; use the sampled KL (use_exact_kl=False, no --exact-kl)"
            )
        self.prior_layer = prior if isinstance(prior, LearnedPrior) else None
        self._prior = prior
        self.use_exact_kl = bool(use_exact_kl)
        self.kl_samples = int(kl_samples)
        self.kl_weight = tf.Variable(float(kl_weight), trainable=False, name="kl_weight")

    @property
    def source(self) -> tfd.Distribution | LearnedPrior:
        """The prior as given: a distribution, or the learned prior's layer."""
        return self._prior

    @property
    def prior(self) -> tfd.Distribution:
        """p(z); a learned prior's distribution at its variables' current values."""
        return self._prior if self.prior_layer is None else self.prior_layer.distribution()

    def tfp_kwargs(self) -> dict:
        """Arguments for TFP's KL layer / regulariser that make it return the batch sum."""
        if self.kl_samples == 1:
            test_points_fn: Callable = tf.convert_to_tensor  # [batch, latent]
            reduce_axis: tuple | int = ()  # keep [batch]
        else:
            test_points_fn = SampleTestPoints(self.kl_samples)  # [samples, batch, latent]
            reduce_axis = 0  # average over samples only -> [batch]
        return dict(
            # TFP builds a callable prior anew at every call (a learned one must be).
            distribution_b=self._prior if self.prior_layer is None else lambda: self.prior,
            use_exact_kl=self.use_exact_kl,
            test_points_fn=test_points_fn,
            test_points_reduce_axis=reduce_axis,
            weight=None,  # β is applied in `weighted`, from the variable
        )

    @tf.autograph.experimental.do_not_convert
    def weighted(self, batch_total: tf.Tensor) -> tf.Tensor:
        """β × a KL total."""
        return tf.cast(self.kl_weight, batch_total.dtype) * batch_total

    def per_example(self, q: tfd.Distribution, test_points: tf.Tensor | None) -> tf.Tensor:
        """The unweighted KL of every image against this term's prior, ``[batch]``
        (:meth:`KLEstimator.per_example` at ``test_points``)."""
        return KLEstimator(self.use_exact_kl).per_example(q, self.prior, test_points)


class SampleTestPoints:
    """``test_points_fn`` of S fresh draws from q: ``q → q.sample(S)`` ``[S, batch, d]``.

    A named callable rather than a lambda, so that the fused objective can read S
    off it (:attr:`n`) and a saved model can record it.

    Args:
        n: S, the test points per example.
    """

    def __init__(self, n: int) -> None:
        self.n = int(n)

    def __call__(self, q: tfd.Distribution, seed: tf.Tensor | None = None) -> tf.Tensor:
        return q.sample(self.n, seed=seed)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SampleTestPoints) and other.n == self.n

    def __hash__(self) -> int:
        return hash(("SampleTestPoints", self.n))


@dataclass(frozen=True)
class KLEstimator:
    r"""The one per-example estimator of KL(q(z|x) ‖ p(z)), shared by every objective.

    * exact: ``tfd.kl_divergence(q, p)``, whatever draws are handed in;
    * sampled: :math:`\frac1S\sum_s \log q(t_s|x) - \log p(t_s)` at test points
      :math:`t_s`: the objective's own draws of z when ``test_points_fn`` is
      ``None`` (TFP's default, ``tf.convert_to_tensor``, is one draw of q), else
      ``test_points_fn(q)``. The mean runs over every axis of the test points but
      the batch axis, so the result is per example whatever
      ``test_points_reduce_axis`` a TFP KL layer was given.

    Attributes:
        use_exact_kl: Closed form instead of Monte Carlo; ``None``: the closed form
            when TFP has one, else Monte Carlo ("best effort", as held-out numbers use).
        test_points_fn: ``q → [..., batch, d]`` test points, or ``None``.
    """

    use_exact_kl: bool | None = False
    test_points_fn: Callable | None = None

    @property
    def own_test_points(self) -> int | None:
        """S when the test points are S draws of their own (:class:`SampleTestPoints`)."""
        fn = self.test_points_fn
        return fn.n if isinstance(fn, SampleTestPoints) and not self.use_exact_kl else None

    @property
    def plain_test_points(self) -> bool:
        """Whether the test points are the objective's draws or S draws of their own
        (what the fused objectives can play), or the KL is exact."""
        fn = self.test_points_fn
        return self.use_exact_kl or fn is None or isinstance(fn, SampleTestPoints)

    def per_example(
        self,
        q: tfd.Distribution,
        prior: tfd.Distribution,
        draws: tf.Tensor | None,
        seed: tf.Tensor | None = None,
    ) -> tf.Tensor:
        """The KL of every image, ``[batch]``.

        Args:
            q: The posterior, batch shape ``[batch]``.
            prior: p(z).
            draws: ``[S, batch, d]`` draws of z from q (ignored when exact or when the
                estimator has test points of its own).
            seed: A stateless seed for :class:`SampleTestPoints` test points.
        """
        if self.use_exact_kl:
            return tfd.kl_divergence(q, prior)
        if self.use_exact_kl is None:
            try:
                return tfd.kl_divergence(q, prior)
            except NotImplementedError:
                pass  # no closed form: the Monte Carlo estimate below
        if self.test_points_fn is None:
            points = draws
        elif isinstance(self.test_points_fn, SampleTestPoints):
            points = self.test_points_fn(q, seed=seed)
        else:
            points = self.test_points_fn(q)
        log_ratio = q.log_prob(points) - prior.log_prob(points)  # [..., batch]
        leading = log_ratio.shape.rank - 1
        return tf.reduce_mean(log_ratio, axis=list(range(leading))) if leading else log_ratio


class PerExampleKLDivergenceAddLoss(tfpl.KLDivergenceAddLoss):
    """``tfpl.KLDivergenceAddLoss`` that adds β × the batch **mean** of the KL.

    Args:
        kl_term: The estimator and β.
        **kwargs: Passed to ``tf_keras.layers.Layer``.
    """

    def __init__(self, kl_term: KLTerm, **kwargs) -> None:
        super().__init__(**kl_term.tfp_kwargs(), **kwargs)
        self.kl_term = kl_term

    def call(self, distribution_a: tfd.Distribution) -> tfd.Distribution:
        batch_total = self._regularizer(distribution_a)  # TFP's Σ_batch KL
        self.add_loss(self.kl_term.weighted(batch_total) / _batch_size(distribution_a))
        return distribution_a


class PerExampleKLDivergenceRegularizer(tfpl.KLDivergenceRegularizer):
    """``tfpl.KLDivergenceRegularizer`` returning β × the batch **sum** of the KL.

    Keras divides activity regularisers by the batch size, which turns the sum into
    the per-example mean.

    ``DistributionLambda`` hands Keras both the distribution and its sampled value
    as outputs, so tf_keras calls the regulariser once for each; only the call on
    the distribution contributes, the tensor gets zero.

    Args:
        kl_term: The estimator and β.
    """

    def __init__(self, kl_term: KLTerm) -> None:
        super().__init__(**kl_term.tfp_kwargs())
        self.kl_term = kl_term

    def __call__(self, distribution_a: tfd.Distribution | tf.Tensor) -> tf.Tensor:
        if not isinstance(distribution_a, tfd.Distribution):
            return tf.zeros([], dtype=distribution_a.dtype)  # the sampled value: no KL
        return self.kl_term.weighted(self._kl_divergence_fn(distribution_a))


@dataclass(frozen=True)
class KLAttachment:
    """How the KL reaches the Keras loss.

    Attributes:
        posterior_kwargs: Extra keyword arguments for the posterior layer.
        after_posterior: A layer applied to the posterior's output, or ``None``.
    """

    posterior_kwargs: dict
    after_posterior: tfk.layers.Layer | None


def _attach_add_loss(kl_term: KLTerm) -> KLAttachment:
    return KLAttachment({}, PerExampleKLDivergenceAddLoss(kl_term, name="kl_add_loss"))


def _attach_regularizer(kl_term: KLTerm) -> KLAttachment:
    return KLAttachment({"activity_regularizer": PerExampleKLDivergenceRegularizer(kl_term)}, None)


#: KL attachment registry: name → function of a :class:`KLTerm`.
KL_ATTACHMENTS: Registry[Callable[[KLTerm], KLAttachment]] = Registry("kl")
KL_ATTACHMENTS.register("add_loss", _attach_add_loss)
KL_ATTACHMENTS.register("regularizer", _attach_regularizer)


def has_closed_form_kl(q: tfd.Distribution, p: tfd.Distribution) -> bool:
    """Whether TFP has a closed-form KL(q ‖ p) for these two distributions."""
    try:
        tfd.kl_divergence(q, p)
    except NotImplementedError:
        return False
    return True


def rate_estimate(q: tfd.Distribution, p: tfd.Distribution, z: tf.Tensor) -> tf.Tensor:
    """KL(q ‖ p) per example, best effort (:class:`KLEstimator` with ``use_exact_kl=None``):
    the closed form when TFP has it, else ``log q(z) - log p(z)`` averaged over the
    draws ``z`` (``[S, batch, ...]``, or one draw ``[batch, ...]``, which a flow then
    scores from its cached forward pass)."""
    return KLEstimator(use_exact_kl=None).per_example(q, p, z)


def monte_carlo_kl(
    q: tfd.Distribution, p: tfd.Distribution, n_samples: int, seed: int | None = None
) -> tuple[tf.Tensor, tf.Tensor]:
    r"""Per-example Monte Carlo KL and its standard error.

    .. math:: \widehat{KL} = \frac1S \sum_s \log q(z_s) - \log p(z_s),\quad z_s \sim q

    Args:
        q: Posterior with batch shape ``[batch]``.
        p: Prior.
        n_samples: S.
        seed: Seed for the draws.

    Returns:
        ``(estimate, standard_error)``, each of shape ``[batch]``.
    """
    z = q.sample(n_samples, seed=seed)  # [S, batch, latent]
    log_ratio = q.log_prob(z) - p.log_prob(z)  # [S, batch]
    estimate = tf.reduce_mean(log_ratio, axis=0)
    se = tf.math.reduce_std(log_ratio, axis=0) / tf.sqrt(tf.cast(n_samples, log_ratio.dtype))
    return estimate, se
