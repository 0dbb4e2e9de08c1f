r"""Small analyses: KL reductions, KL estimator spread, latent gaps, and latent use.

Each returns plain NumPy values or dicts so that it can be tested and plotted.

Which latent dimensions a model uses (the total rate alone does not say):

* :func:`active_units` (Burda et al., 2016): unit :math:`u` is *active* when
  :math:`A_u = \mathrm{Cov}_x\big(\mathbb{E}_{q(z|x)}[z_u]\big) > 0.01`, i.e. its
  code moves with the image; a collapsed unit's code is the same for every image.
* :func:`kl_per_dimension`: the mean over images of
  :math:`\mathrm{KL}\big(q(z_u|x)\,\|\,p(z_u)\big)` for each dimension, in
  closed form between the one-dimensional Gaussian marginals,

  .. math:: \mathrm{KL} = \log\frac{s_u}{\sigma_u}
      + \frac{\sigma_u^2 + (\mu_u - m_u)^2}{2 s_u^2} - \frac12 ,

  with :math:`q(z_u|x) = \mathcal N(\mu_u, \sigma_u^2)` and
  :math:`p(z_u) = \mathcal N(m_u, s_u^2)`. For a factorised (diagonal) posterior
  and prior the dimensions' KLs sum to the total KL. For a full-covariance
  posterior (``posterior="full"``) they are the KLs of the *marginals*, and their
  sum falls short of the total KL by the total correlation of q(z|x), which no
  single dimension owns. Posteriors or priors without Gaussian marginals (IAF
  flows, mixture and VampPriors, discrete latents) are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tfpvae._backend import tf, tfd, tfpl
from tfpvae.evaluation.bounds import elbo, iwae_bound
from tfpvae.evaluation.stats import standard_error


def raw_tfp_kl_penalties(q: tfd.Distribution, prior: tfd.Distribution, seed: int = 0) -> dict:
    """What each raw TFP attachment adds to a Keras loss for one batch.

    Args:
        q: A posterior with batch shape ``[B]``.
        prior: p(z).
        seed: Seed for the sampled test points.

    Returns:
        ``{"per_example_kl": mean exact KL, "batch_size": B, and for each of
        "add_loss exact", "add_loss sampled", "regularizer exact",
        "regularizer sampled": the value added}``.
    """
    batch = int(q.batch_shape[0])
    z = q.sample(seed=seed)

    def add_loss(**kwargs) -> float:
        layer = tfpl.KLDivergenceAddLoss(prior, **kwargs)
        layer(q)
        return float(layer.losses[0])

    def regularizer(**kwargs) -> float:
        # Keras divides an activity regulariser's value by the batch size.
        return float(tfpl.KLDivergenceRegularizer(prior, **kwargs)(q)) / batch

    fixed_points = {"test_points_fn": lambda _: z}
    return {
        "per_example_kl": float(tf.reduce_mean(tfd.kl_divergence(q, prior))),
        "batch_size": batch,
        "add_loss exact": add_loss(use_exact_kl=True),
        "add_loss sampled": add_loss(**fixed_points),
        "regularizer exact": regularizer(use_exact_kl=True),
        "regularizer sampled": regularizer(**fixed_points),
    }


def sampled_kl_spread(
    q: tfd.Distribution,
    prior: tfd.Distribution,
    sample_counts: tuple[int, ...] = (1, 10, 100),
    repeats: int = 200,
    seed: int = 0,
) -> dict[int, np.ndarray]:
    """Batch-mean sampled KL estimates, ``repeats`` of them per number of test points.

    Returns:
        ``{S: [repeats] estimates}``; compare with the exact batch mean.
    """
    out = {}
    for i, count in enumerate(sample_counts):
        z = q.sample([repeats, count], seed=seed + i)  # [repeats, S, batch, latent]
        log_ratio = q.log_prob(z) - prior.log_prob(z)  # [repeats, S, batch]
        out[count] = tf.reduce_mean(log_ratio, axis=[1, 2]).numpy()
    return out


def latent_gap_points(codes: np.ndarray, n: int = 8, grid: int = 60) -> np.ndarray:
    """Points in the codes' bounding box that lie farthest from every code.

    Args:
        codes: ``[N, 2]`` latent codes (first two dimensions are used).
        n: Points to return.
        grid: Candidate grid resolution per axis.

    Returns:
        ``[n, 2]`` points, the emptiest first.
    """
    codes = np.asarray(codes)[:, :2]
    lo, hi = codes.min(axis=0), codes.max(axis=0)
    axes = [np.linspace(lo[d], hi[d], grid) for d in range(2)]
    candidates = np.stack(np.meshgrid(*axes), axis=-1).reshape(-1, 2)
    # Distance from each candidate to its nearest code, chunked to bound memory.
    nearest = np.concatenate(
        [
            np.sqrt(((c[:, None, :] - codes[None]) ** 2).sum(-1)).min(axis=1)
            for c in np.array_split(candidates, max(1, len(candidates) // 512))
        ]
    )
    chosen: list[int] = []
    for index in np.argsort(-nearest):
        point = candidates[index]
        spacing = 0.1 * np.linalg.norm(hi - lo)
        if all(np.linalg.norm(point - candidates[j]) > spacing for j in chosen):
            chosen.append(int(index))
        if len(chosen) == n:
            break
    return candidates[chosen].astype(np.float32)


@dataclass(frozen=True)
class ActiveUnits:
    """Which latent units are active (Burda et al., 2016).

    Attributes:
        count: How many units are active.
        active: ``[latent_dim]`` bool, unit u's activity above ``threshold``.
        activity: ``[latent_dim]`` variance over the images of each unit's posterior mean.
        threshold: The activity above which a unit counts as active.
    """

    count: int
    active: np.ndarray
    activity: np.ndarray
    threshold: float


def _given(vae: Any, labels: Any, start: int, batch_size: int) -> dict[str, Any]:
    """``{"labels": ...}`` of one batch for a conditional VAE's calls, else ``{}``."""
    return {} if labels is None else {"labels": labels[start : start + batch_size]}


def _codes(vae: Any, x: np.ndarray, batch_size: int, labels: Any = None) -> np.ndarray:
    """E_q[z | x] (E_q[z | x, y]) of every image, ``[n, latent_dim]``, in batches."""
    x = vae.check_images(x, "x")
    labels = _checked_labels(vae, labels, len(x))
    return np.concatenate(
        [
            np.asarray(vae.encode(x[i : i + batch_size], **_given(vae, labels, i, batch_size)))
            for i in range(0, len(x), batch_size)
        ]
    )


def _checked_labels(vae: Any, labels: Any, n: int) -> Any:
    """A conditional VAE's labels, checked (``None`` for any other model without them)."""
    checked = getattr(vae, "checked_labels", None)
    return labels if checked is None else checked(labels, n)


def active_units(
    vae: Any,
    x: np.ndarray,
    threshold: float = 0.01,
    batch_size: int = 256,
    labels: Any = None,
) -> ActiveUnits:
    r"""Burda et al.'s (2016) active units: :math:`\mathrm{Cov}_x(\mathbb{E}_q[z_u|x]) > 0.01`.

    Args:
        vae: A :class:`~tfpvae.VAE` (its ``encode``: the posterior mean).
        x: Prepared images ``[n, *input_shape]``, n ≥ 2 (held-out ones, typically).
        threshold: The activity above which a unit counts as active.
        batch_size: Images per encoder call.
        labels: A conditional VAE's class ids of ``x`` (required there).

    Returns:
        :class:`ActiveUnits` (the sample variance, ``ddof=1``, of each code).

    Raises:
        ValueError: If fewer than two images are given.
    """
    if len(x) < 2:
        raise ValueError(f"active_units needs at least 2 images to vary over, got {len(x)}")
    activity = _codes(vae, x, batch_size, labels).astype(np.float64).var(axis=0, ddof=1)
    active = activity > threshold
    return ActiveUnits(int(active.sum()), active, activity, float(threshold))


def _gaussian_marginals(dist: tfd.Distribution) -> tuple[tf.Tensor, tf.Tensor] | None:
    """Mean and standard deviation of each dimension when all marginals are Gaussian."""
    inner = dist.distribution if isinstance(dist, tfd.Independent) else dist
    if isinstance(dist, tfd.MultivariateNormalLinearOperator) or isinstance(inner, tfd.Normal):
        return dist.mean(), dist.stddev()
    return None


def kl_per_dimension(
    vae: Any, x: np.ndarray, batch_size: int = 256, labels: Any = None
) -> np.ndarray:
    """Mean over ``x`` of each latent dimension's KL(q(z_u|x) ‖ p(z_u)), nats (module docs).

    Args:
        vae: A :class:`~tfpvae.VAE` with Gaussian posterior and prior marginals.
        x: Prepared images ``[n, *input_shape]``.
        batch_size: Images per encoder call.
        labels: A conditional VAE's class ids of ``x`` (required there): KL(q(z_u|x, y) ‖ p(z_u)).

    Returns:
        ``[latent_dim]`` float64 array.

    Raises:
        ValueError: If q(z|x) or p(z) is not Gaussian in each dimension.
    """
    x = vae.check_images(x, "x")
    labels = _checked_labels(vae, labels, len(x))
    prior = _gaussian_marginals(vae.prior)
    if prior is None:
        raise ValueError(
            f"kl_per_dimension needs a Gaussian prior; this one is {type(vae.prior).__name__} "
            "(a per-dimension KL of a mixture or VampPrior has no closed form)"
        )
    m, s = (np.asarray(t, np.float64) for t in prior)
    total = np.zeros(vae.latent_dim)
    for start in range(0, len(x), batch_size):
        images = tf.convert_to_tensor(x[start : start + batch_size], tf.float32)
        q = vae.posterior(images, **_given(vae, labels, start, batch_size))
        marginals = _gaussian_marginals(q)
        if marginals is None:
            raise ValueError(
                f"kl_per_dimension needs a Gaussian q(z|x) (posterior 'full' or 'diag'); "
                f"this one is {type(q).__name__.lstrip('_')}"
            )
        mu, sigma = (np.asarray(t, np.float64) for t in marginals)  # [batch, d] each
        kl = np.log(s / sigma) + (sigma**2 + (mu - m) ** 2) / (2.0 * s**2) - 0.5
        total += kl.sum(axis=0)
    return total / len(x)


def latent_use(
    vae: Any, x: np.ndarray, threshold: float = 0.01, labels: Any = None
) -> dict[str, Any]:
    """Active units and KL per dimension on ``x``, as plain values for ``metrics.json``.

    ``labels``: a conditional VAE's class ids of ``x`` (required there).

    Returns:
        ``active_units`` (the count), ``active_threshold``, ``unit_activity`` and
        ``kl_per_dimension`` (lists, one number per dimension); ``kl_per_dimension``
        is ``None`` for a model without Gaussian marginals, with the reason in
        ``kl_per_dimension_note``.
    """
    units = active_units(vae, x, threshold, labels=labels)
    out: dict[str, Any] = {
        "active_units": units.count,
        "active_threshold": units.threshold,
        "unit_activity": [float(a) for a in units.activity],
        "kl_per_dimension": None,
    }
    try:
        out["kl_per_dimension"] = [float(v) for v in kl_per_dimension(vae, x, labels=labels)]
    except ValueError as err:
        out["kl_per_dimension_note"] = str(err)
    return out


def decode_points(model: Any, points: np.ndarray) -> np.ndarray:
    """Decodes 2-D points, padding any further latent dimensions with zeros."""
    latent_dim = model.latent_dim
    z = np.zeros((len(points), latent_dim), np.float32)
    z[:, :2] = points
    decoded = model.decode(z)
    return decoded.numpy() if hasattr(decoded, "numpy") else np.asarray(decoded)


def bound_curve(model: Any, x: np.ndarray, ks: tuple[int, ...], seed: int = 0) -> dict:
    """Mean ELBO and IWAE bounds (with standard errors) for each k."""
    terms = elbo(model, x, seed=seed)
    curve: dict[str, Any] = {
        "elbo": float(terms.elbo.mean()),
        "elbo_se": standard_error(terms.elbo),
    }
    curve["k"] = list(ks)
    bounds = [iwae_bound(model, x, k=k, seed=seed + k) for k in ks]
    curve["iwae"] = [float(b.mean()) for b in bounds]
    curve["iwae_se"] = [standard_error(b) for b in bounds]
    return curve


def held_out_summary(model: Any, x: np.ndarray, k: int, seed: int = 0) -> dict[str, float]:
    """Held-out ELBO terms and an IWAE bound, as a flat dict (nats per image)."""
    terms = elbo(model, x, seed=seed).summary()
    terms["iwae"] = float(iwae_bound(model, x, k=k, seed=seed).mean())
    return terms


__all__ = [
    "ActiveUnits",
    "active_units",
    "bound_curve",
    "decode_points",
    "held_out_summary",
    "kl_per_dimension",
    "latent_gap_points",
    "latent_use",
    "raw_tfp_kl_penalties",
    "sampled_kl_spread",
]
