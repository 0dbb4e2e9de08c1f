r"""Free bits (Kingma et al., 2016): each latent dimension's KL floored at λ nats.

With ``free_bits=λ`` the ELBO's KL term becomes, over a batch B,

.. math::

    \sum_{d=1}^{D} \max\Big(\lambda,\ \frac{1}{|B|}\sum_{i\in B}\mathrm{KL}_{i,d}\Big)
    \;+\; \frac{1}{|B|}\sum_{i\in B} R_i,

where :math:`\mathrm{KL}_{i,d} = \mathrm{KL}(q(z_d|x_i)\,\|\,p(z_d))` is the KL of
dimension d's marginals. A dimension whose batch-mean KL is below λ costs the
constant λ, so the KL pushes it no further (its KL gradient is zero); the
decoder's gradient is untouched. Per image this is the loss term
:math:`\sum_d [m_d\,\mathrm{KL}_{i,d} + (1-m_d)\,\lambda] + R_i` with
:math:`m_d = 1[\text{batch mean of } \mathrm{KL}_{\cdot,d} > \lambda]` held
constant, whose batch mean is the expression above. The batch is the global one
under several replicas (the per-dimension sums are all-reduced); images count
alike whatever their ``sample_weight``.

The per-dimension KL (:func:`per_dimension_kl`):

* **exact** where TFP has the closed form between the marginals (a Gaussian
  posterior against a Gaussian prior: ``IndependentNormal``, ``MultivariateNormalTriL``),
* **sampled** at the objective's draws otherwise (a factorised posterior of
  another family): :math:`\frac1S\sum_s \log q_d(z_{s,d}) - \log p_d(z_{s,d})`.

The prior must factorise over dimensions (``Independent`` of univariates, or a
Gaussian of diagonal covariance such as N(0, I)). For a *correlated* Gaussian
posterior (``MultivariateNormalTriL``), :math:`\mathrm{KL}(q\|p) = \sum_d
\mathrm{KL}(q_d\|p_d) + R` where :math:`R = \mathrm{KL}(q\,\|\,\prod_d q_d) \ge 0` is
q's total correlation: the marginals' KLs are floored, R is kept as it is
(exact or sampled as the marginals are). For a factorised posterior R = 0.
Posteriors whose marginals have no density in closed form (flows, the relaxed
categorical, mixtures) and priors that do not factorise (mixture, VampPrior) are
refused by :func:`check_free_bits`.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from tfpvae._backend import tf, tfd


def check_free_bits_value(free_bits: Any) -> float:
    """λ as a float ≥ 0, refusing negative or non-finite values with the fix."""
    number = (
        free_bits
        if isinstance(free_bits, numbers.Real) and not isinstance(free_bits, bool)
        else math.nan
    )
    if not math.isfinite(number) or number < 0:
        raise ValueError(
            f"free_bits must be a finite number >= 0 (nats per latent dimension; 0 turns it "
            f"off), got {free_bits!r}; use e.g. free_bits=0.25"
        )
    return float(number)


def _unwrapped(distribution: tfd.Distribution) -> tfd.Distribution:
    return getattr(distribution, "tensor_distribution", distribution)


def marginals(distribution: tfd.Distribution) -> tfd.Distribution | None:
    """The univariate marginals ``[..., d]`` of a distribution over vectors, or ``None``.

    ``Independent`` over univariates gives its components; a multivariate normal
    gives :math:`\\mathcal{N}(\\mu_d, \\Sigma_{dd})`.
    """
    dist = _unwrapped(distribution)
    if isinstance(dist, tfd.Independent):
        ndims = tf.get_static_value(dist.reinterpreted_batch_ndims)  # a Python int, not a tensor
        inner = dist.distribution
        return inner if ndims == 1 and inner.event_shape.rank == 0 else None
    if isinstance(dist, tfd.MultivariateNormalLinearOperator):
        return tfd.Normal(dist.mean(), dist.stddev())
    return None


def factorised(distribution: tfd.Distribution, inspect_values: bool = False) -> bool:
    """Whether the distribution is the product of its :func:`marginals`: by its type, or,
    with ``inspect_values`` (for a fixed prior, eagerly), a diagonal covariance."""
    dist = _unwrapped(distribution)
    if isinstance(dist, tfd.Independent):
        return marginals(dist) is not None
    if isinstance(dist, tfd.MultivariateNormalLinearOperator):
        diagonal = (tf.linalg.LinearOperatorDiag, tf.linalg.LinearOperatorScaledIdentity,
                    tf.linalg.LinearOperatorIdentity)  # fmt: skip
        if isinstance(dist.scale, diagonal):
            return True
        if inspect_values and tf.executing_eagerly():  # a fixed prior's TriL may be diagonal
            cov = np.asarray(dist.covariance())
            return bool(np.array_equal(cov, np.diag(np.diagonal(cov, axis1=-2, axis2=-1))))
    return False


def check_free_bits(q: tfd.Distribution, prior: tfd.Distribution) -> None:
    """Raises ``ValueError`` unless a per-dimension KL between q and the prior is defined."""
    if marginals(q) is None:
        raise ValueError(
            f"free_bits needs each latent dimension's KL, which a {type(_unwrapped(q)).__name__} "
            "posterior does not have in closed form (its marginals); use a Gaussian posterior "
            "(posterior='diag' or 'full') or free_bits=0"
        )
    if marginals(prior) is None or not factorised(prior, inspect_values=True):
        raise ValueError(
            f"free_bits needs a prior that factorises over the latent dimensions (N(0, I), an "
            f"Independent of univariates), not {type(_unwrapped(prior)).__name__}; use "
            "prior='standard_normal' or free_bits=0"
        )


def per_dimension_kl(q: tfd.Distribution, prior: tfd.Distribution, z: tf.Tensor) -> tf.Tensor:
    """KL of each dimension's marginals, ``[batch, d]``: exact where TFP has it, else
    sampled at the draws ``z`` ``[S, batch, d]``."""
    q_d, p_d = marginals(q), marginals(prior)
    if q_d is None or p_d is None:
        check_free_bits(q, prior)  # raises with the reason
    assert q_d is not None and p_d is not None
    try:
        return tfd.kl_divergence(q_d, p_d)
    except NotImplementedError:
        return tf.reduce_mean(q_d.log_prob(z) - p_d.log_prob(z), axis=0)


def _total_correlation(
    q: tfd.Distribution, prior: tfd.Distribution, z: tf.Tensor, per_dim: tf.Tensor
) -> tf.Tensor:
    """R = KL(q ‖ p) − Σ_d KL(q_d ‖ p_d) per image (0 for a factorised q), ``[batch]``."""
    if factorised(q):
        return tf.zeros_like(per_dim[..., 0])
    try:
        full = tfd.kl_divergence(q, prior)
    except NotImplementedError:
        full = tf.reduce_mean(q.log_prob(z) - prior.log_prob(z), axis=0)
    return full - tf.reduce_sum(per_dim, axis=-1)


def _global_mean(values: tf.Tensor) -> tf.Tensor:
    """Mean over the batch axis of ``[batch, d]``, over every replica's batch."""
    total = tf.reduce_sum(values, axis=0)
    count = tf.cast(tf.shape(values)[0], values.dtype)
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        both = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.concat([total, count[None]], 0))
        total, count = both[:-1], both[-1]
    return tf.math.divide_no_nan(total, count)


def floored_rate(
    q: tfd.Distribution, prior: tfd.Distribution, z: tf.Tensor, free_bits: float
) -> tf.Tensor:
    r"""The KL term of each image with every dimension floored at ``free_bits`` nats.

    :math:`\sum_d [m_d\,\mathrm{KL}_{i,d} + (1-m_d)\,\lambda] + R_i`, ``[batch]``,
    whose batch mean is :math:`\sum_d \max(\lambda, \overline{\mathrm{KL}}_d) + \bar R`.

    Args:
        q: The posterior, batch shape ``[batch]``.
        prior: p(z), factorised.
        z: The draws ``[S, batch, d]`` (for sampled marginals and R).
        free_bits: λ ≥ 0.
    """
    per_dim = per_dimension_kl(q, prior, z)  # [batch, d]
    above = tf.cast(_global_mean(tf.stop_gradient(per_dim)) > free_bits, per_dim.dtype)  # [d]
    floored = above * per_dim + (1.0 - above) * tf.cast(free_bits, per_dim.dtype)
    return tf.reduce_sum(floored, axis=-1) + _total_correlation(q, prior, z, per_dim)
