r"""The ELBO with S Monte Carlo draws per image: the ``"elbo"`` objective.

.. math::

    -\widehat{\mathrm{ELBO}}(x) = -\frac1S\sum_{s=1}^S \log p(x|z_s)
        + \beta\,\widehat{\mathrm{KL}}(q(z|x)\,\|\,p(z)),
    \qquad z_s \sim q(z|x).

The KL comes from the model's :class:`~tfpvae.components.kl.KLEstimator`: the
closed form when the encoder's KL layer (or ``use_exact_kl``) says so, otherwise
the Monte Carlo estimate at the S draws, or at test points of its own.

:class:`ELBO` works with any posterior, prior and likelihood, through the TFP
distributions the networks return. :func:`make_elbo` returns the fused
implementation of :mod:`tfpvae.objectives.fused` instead where the *types* of
the parts allow it: the same objective in plain ops.

Two options change it: ``gradient="stl"`` (sticking the landing,
:mod:`tfpvae.objectives.gradients`) keeps the loss's value and drops the score
term from the KL's gradient, whose rate is then differentiated as the sampled
:math:`\frac1S\sum_s \log q(z_s|x) - \log p(z_s)` at the decoder's draws with
log q through z only (the value stays the configured rate, exact or sampled);
``free_bits=λ`` floors each latent dimension's KL (:mod:`tfpvae.objectives.free_bits`).
"""

from __future__ import annotations

from typing import Any

from tfpvae._backend import tf, tfp
from tfpvae.objectives.base import (
    OBJECTIVES,
    Objective,
    Parts,
    SeededObjective,
    Terms,
    refuse_options,
)
from tfpvae.objectives.estimators import elbo_terms, log_likelihood
from tfpvae.objectives.free_bits import check_free_bits, check_free_bits_value, floored_rate
from tfpvae.objectives.fused import FusedELBO, fused_applies
from tfpvae.objectives.gradients import (
    check_gradient,
    check_path_gradient,
    path_log_prob,
    with_value,
)


class ELBO(SeededObjective):
    """The S-sample ELBO through the TFP distributions of the encoder and decoder.

    Draws come from the posterior family (``Posterior.draws``): ``q.sample(S)`` for
    the Gaussians, flows and any user layer, Gumbel-softmax draws at the layer's
    temperature for the relaxed categorical, all at a stateless seed (``noise``).

    Args:
        parts: The model's :class:`~tfpvae.objectives.base.Parts`.
        n_samples: S, draws of z per image.
        gradient: ``"standard"`` (``None``) or ``"stl"``.
        free_bits: λ ≥ 0 nats per latent dimension; 0 is off.
    """

    def __init__(
        self,
        parts: Parts,
        n_samples: int = 1,
        gradient: str | None = None,
        free_bits: float = 0.0,
    ) -> None:
        super().__init__(parts)
        self.n_samples = int(n_samples)
        self.gradient = check_gradient("elbo", gradient)
        check_path_gradient(self.gradient, parts.encoder.layer)
        self.free_bits = check_free_bits_value(free_bits)
        if self.gradient == "stl" and parts.family.latent_kind != "continuous":
            raise ValueError(
                "gradient='stl' needs log q(z|x) at reparameterised draws, which a relaxed "
                "categorical posterior does not have (its rate is the exact categorical KL); "
                "use the default gradient"
            )
        if self.gradient == "stl" and self.free_bits:
            raise ValueError(
                "gradient='stl' and free_bits do not combine: free bits replaces the sampled "
                "KL whose score term STL drops by per-dimension KLs; use one of them"
            )
        if self.free_bits:
            check_free_bits(probe_posterior(parts), parts.prior.distribution())

    def terms(self, x: tf.Tensor, noise: Any = None, training: bool = False) -> Terms:
        """Per-image terms; ``noise`` is a stateless seed ``[2]`` (``None`` draws one)."""
        parts = self.parts
        seed = self.noise_or_fresh(x, noise)
        q = parts.posterior(x, training=training)
        z = parts.family.draws(q, self.n_samples, parts.temperature, seed=seed)  # [S, batch, d]
        log_lik = log_likelihood(
            x, z, lambda flat: parts.decode(flat, training=training), parts.likelihood
        )
        # The sampled KL's own test points come from a seed derived from the draws'.
        test_seed = tfp.random.split_seed(seed, n=1, salt="kl_test_points")[0]
        prior = parts.prior.distribution()
        terms = elbo_terms(log_lik, q, prior, z, parts.kl, parts.kl_weight, test_seed)
        beta = tf.cast(parts.kl_weight, terms.rate.dtype)
        if self.free_bits:
            floored = floored_rate(q, prior, z, self.free_bits)
            return terms._replace(loss=terms.distortion + beta * floored)
        if self.gradient == "stl":
            path_rate = tf.reduce_mean(path_log_prob(q, z) - prior.log_prob(z), axis=0)
            return terms._replace(loss=with_value(terms.loss, terms.distortion + beta * path_rate))
        return terms


def probe_posterior(parts: Parts) -> Any:
    """q(z|x) of one blank image (with class 0 bound in for a conditional VAE)."""
    shape = parts.encoder.model.input_shape
    if isinstance(shape, list):  # a conditional encoder: [images, one_hot]
        shape = shape[0]
    probe = parts if parts.conditioning is None else parts.given(tf.zeros([1], tf.int32))
    return probe.posterior(tf.zeros([1, *shape[1:]]), training=False)


def make_elbo(
    parts: Parts,
    n_samples: int = 1,
    gradient: str | None = None,
    free_bits: float = 0.0,
    alpha: Any = None,
    **_: Any,
) -> Objective:
    """The ``"elbo"`` objective: fused where the parts' types allow it, else :class:`ELBO`."""
    refuse_options("elbo", alpha=alpha)
    if fused_applies(parts, gradient=gradient, free_bits=free_bits):
        return FusedELBO(parts, n_samples)
    return ELBO(parts, n_samples, gradient=gradient, free_bits=free_bits)


OBJECTIVES.register("elbo", make_elbo)
