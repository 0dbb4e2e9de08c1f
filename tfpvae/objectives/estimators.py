r"""The one ELBO and the one importance-weighted bound, as functions of distributions.

Training (:mod:`tfpvae.objectives.elbo`, :mod:`tfpvae.objectives.iwae`), the
held-out bounds (:mod:`tfpvae.evaluation.bounds`) and the tests all call these;
only the way the draws z are made differs (a seed per batch for training, a key
per image for evaluation).

For draws :math:`z_s \sim q(z|x)`, ``[S, batch, d]``:

.. math::

    -\widehat{\mathrm{ELBO}}_\beta(x) = -\frac1S\sum_s \log p(x|z_s)
        + \beta\,\widehat{\mathrm{KL}}(q\,\|\,p),
    \qquad
    \log w_s = \log p(x|z_s) + \log p(z_s) - \log q(z_s|x),

with the KL from the model's :class:`~tfpvae.components.kl.KLEstimator`.
"""

from __future__ import annotations

from collections.abc import Callable

from tfpvae._backend import tf, tfd
from tfpvae.components.kl import KLEstimator
from tfpvae.components.likelihoods import Likelihood, log_prob
from tfpvae.objectives.base import Terms


def tile_images(x: tf.Tensor, n: int | tf.Tensor) -> tf.Tensor:
    """``n`` copies of the batch ``x`` stacked along the batch axis, ``[n * batch, ...]``."""
    if isinstance(n, int) and n == 1:
        return x
    return tf.tile(x, tf.concat([[n], tf.ones([tf.rank(x) - 1], tf.int32)], axis=0))


def log_likelihood(
    x: tf.Tensor,
    z: tf.Tensor,
    decode: Callable[[tf.Tensor], tfd.Distribution],
    likelihood: Likelihood | None = None,
) -> tf.Tensor:
    """:math:`\\log p(x|z_s)` of each draw, ``[S, batch]``, in one decoder call.

    Args:
        x: Images ``[batch, *event]``.
        z: Draws ``[S, batch, d]``.
        decode: ``z [n, d] → p(x|z)``.
        likelihood: The registered likelihood (its support guard), or ``None``.
    """
    samples = tf.shape(z)[0]
    p = decode(tf.reshape(z, [-1, z.shape[-1]]))  # batch S * batch
    return tf.reshape(log_prob(p, tile_images(x, samples), likelihood), [samples, -1])


def elbo_terms(
    log_lik: tf.Tensor,
    q: tfd.Distribution,
    prior: tfd.Distribution,
    z: tf.Tensor,
    kl: KLEstimator,
    kl_weight: tf.Tensor | float = 1.0,
    seed: tf.Tensor | None = None,
) -> Terms:
    """Per-image ELBO :class:`~tfpvae.objectives.base.Terms` at the draws ``z``.

    Args:
        log_lik: ``[S, batch]`` :math:`\\log p(x|z_s)` (:func:`log_likelihood`).
        q: The posterior, batch shape ``[batch]``.
        prior: p(z).
        z: The draws ``[S, batch, d]`` (the sampled KL's test points by default).
        kl: The KL estimator.
        kl_weight: β.
        seed: Seed of the estimator's own test points, if it has them.
    """
    distortion = -tf.reduce_mean(log_lik, axis=0)  # [batch]
    rate = kl.per_example(q, prior, z, seed=seed)
    return Terms(distortion + tf.cast(kl_weight, rate.dtype) * rate, rate, distortion)


def log_ratio(q: tfd.Distribution, prior: tfd.Distribution, z: tf.Tensor) -> tf.Tensor:
    """:math:`\\log q(z_s|x) - \\log p(z_s)`, ``[S, batch]`` (a flow reuses its forward pass)."""
    return q.log_prob(z) - prior.log_prob(z)


def iwae_terms(log_lik: tf.Tensor, ratio: tf.Tensor, kl_weight: tf.Tensor | float) -> Terms:
    r"""Per-image IWAE :class:`~tfpvae.objectives.base.Terms` from K draws: the Rényi
    bound at α = 0 (:func:`renyi_terms`).

    Args:
        log_lik: ``[K, batch]`` :math:`\log p(x|z_k)`.
        ratio: ``[K, batch]`` :math:`\log q(z_k|x) - \log p(z_k)` (:func:`log_ratio`).
        kl_weight: β (tempers the prior ratio; 1 is the bound).

    Returns:
        The loss :math:`-\log\frac1K\sum_k w_k` and the K-draw averages of the rate
        and distortion, each ``[batch]``.
    """
    return renyi_terms(log_lik, ratio, kl_weight, alpha=0.0)


def log_weights(log_lik: tf.Tensor, ratio: tf.Tensor, kl_weight: tf.Tensor | float) -> tf.Tensor:
    r""":math:`\log w_k = \log p(x|z_k) - \beta\,(\log q(z_k|x) - \log p(z_k))`, ``[K, batch]``."""
    return log_lik - tf.cast(kl_weight, ratio.dtype) * ratio


def renyi_terms(
    log_lik: tf.Tensor, ratio: tf.Tensor, kl_weight: tf.Tensor | float, alpha: float
) -> Terms:
    r"""Per-image terms of the variational Rényi bound (Li & Turner, 2016) from K draws.

    .. math:: \mathcal{L}_\alpha = \frac{1}{1-\alpha}
        \log \frac1K \sum_k w_k^{1-\alpha},

    computed as a log-sum-exp of :math:`(1-\alpha)\log w_k`. α = 0 is the IWAE
    bound (bit for bit: the factor is 1); α → 1 tends to the K-draw ELBO.

    Args:
        log_lik: ``[K, batch]`` :math:`\log p(x|z_k)`.
        ratio: ``[K, batch]`` :math:`\log q(z_k|x) - \log p(z_k)`.
        kl_weight: β, on the log ratio as in :func:`log_weights`.
        alpha: α ≠ 1.

    Returns:
        The loss :math:`-\mathcal{L}_\alpha` and the K-draw averages of the rate and
        distortion, each ``[batch]``.
    """
    k = tf.cast(tf.shape(log_lik)[0], log_lik.dtype)
    power = 1.0 - float(alpha)
    scaled = power * log_weights(log_lik, ratio, kl_weight)
    loss = (tf.math.log(k) - tf.reduce_logsumexp(scaled, axis=0)) / power
    return Terms(loss, tf.reduce_mean(ratio, axis=0), -tf.reduce_mean(log_lik, axis=0))
