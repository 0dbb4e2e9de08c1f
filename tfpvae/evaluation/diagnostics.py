"""Small analyses the notebooks show: KL reductions, KL estimator spread, latent gaps.

Each returns plain NumPy values or dicts so that it can be tested and plotted.
"""

from __future__ import annotations

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
    "bound_curve",
    "decode_points",
    "held_out_summary",
    "latent_gap_points",
    "raw_tfp_kl_penalties",
    "sampled_kl_spread",
]
