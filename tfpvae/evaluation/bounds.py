r"""Held-out numbers you can trust: the ELBO, its terms, the IWAE bound and the CUBO.

All results are per image, in nats; :func:`bits_per_dim` converts. Bits per
dimension are those of the density in the data space the likelihood is defined
on (e.g. the dequantised (0, 1) images for the Beta), so compare them only
between models on the same data space.

Everything is computed in batches of images and, for the IWAE bound, in chunks of
importance samples, so 10,000 images × k = 1,000 fit in a few hundred MB.
The draws for image ``i`` come from the stateless seed ``(seed, 2 i + stream)``
(:mod:`tfpvae.components.draws`): for the Gaussian posteriors, standard normal
noise pushed through the posterior's own affine map, so an image's numbers do
not depend on the batch or chunk sizes, nor on the other images. A flow is drawn
for the whole batch from its first image's key (reproducible, batch-dependent).

A conditional VAE's bounds are on :math:`\log p(x|y)`; every function here takes
its class ids as ``labels=`` (required for such a model, refused for any other).

:func:`held_out_metrics` with ``pixels`` adds the number that is comparable
across likelihoods: bits per dimension of the 8-bit images (see
:mod:`tfpvae.evaluation.comparison`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfpvae._backend import tf
from tfpvae.components.draws import image_keys as _image_keys
from tfpvae.evaluation.stats import standard_error
from tfpvae.evaluation.streaming import elbo_function, powers_function
from tfpvae.io.datasets import prepare

#: Decoder parameters (floats) per decoder call of the evaluation: about 64 MB, so
#: that a 256-way categorical over 28×28 pixels (200,704 per image) stays small.
PARAMS_PER_CALL = 2**24


def bits_per_dim(nats: np.ndarray | float, n_dims: int) -> np.ndarray | float:
    r"""Converts nats per image to bits per dimension: :math:`\text{nats} / (D \ln 2)`."""
    return np.asarray(nats) / (n_dims * math.log(2.0))


@dataclass(frozen=True)
class ELBOTerms:
    r"""Per-image ELBO and its terms, in nats.

    Attributes:
        elbo: :math:`-(\text{distortion} + \text{rate})` (β = 1: the true bound).
        rate: :math:`\mathrm{KL}(q(z|x)\,\|\,p(z))`.
        distortion: :math:`-\mathbb{E}_q \log p(x|z)`, averaged over ``n_samples`` draws.
        n_dims: Dimensions per image, for bits per dimension.
    """

    elbo: np.ndarray
    rate: np.ndarray
    distortion: np.ndarray
    n_dims: int

    def summary(self) -> dict[str, float]:
        """Means, standard errors and bits per dimension, for ``metrics.json``."""
        out = {}
        for name in ("elbo", "rate", "distortion"):
            values = getattr(self, name)
            out[name] = float(values.mean())
            out[f"{name}_se"] = standard_error(values)
        out["elbo_bits_per_dim"] = float(bits_per_dim(-out["elbo"], self.n_dims))
        return out


def _checked(vae: Any, x: np.ndarray, labels: Any = None) -> tuple[np.ndarray, Any]:
    """Validates ``x`` against the model's image shape and likelihood, and its labels.

    Raises:
        ValueError: For a conditional VAE without labels (or one label per image),
            labels out of range, or labels for an unconditional VAE.
    """
    x = vae.check_images(x, "x")
    return x, vae.checked_labels(labels, len(x))


def _label_batches(x: np.ndarray, labels: Any, batch_size: int):
    """``(start, images, labels or None)`` per batch, for the traced bound functions."""
    for start in range(0, len(x), batch_size):
        batch = None if labels is None else tf.convert_to_tensor(labels[start : start + batch_size])
        yield start, tf.convert_to_tensor(x[start : start + batch_size], tf.float32), batch


def elbo(
    vae: Any,
    x: np.ndarray,
    n_samples: int = 1,
    batch_size: int = 256,
    seed: int = 0,
    labels: Any = None,
) -> ELBOTerms:
    r"""The ELBO of each image and its rate and distortion.

    Args:
        vae: A :class:`~tfpvae.VAE`, built by ``build_vae`` or from a user's networks.
        x: Prepared images ``[n, *input_shape]``.
        n_samples: z draws per image for the distortion.
        batch_size: Images per batch.
        seed: Seed for the draws.
        labels: A conditional VAE's class ids ``[n]`` (required there): the bound
            of :math:`\log p(x|y)` with q(z|x, y) and p(x|z, y).

    Returns:
        :class:`ELBOTerms` of per-image arrays.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    x, labels = _checked(vae, x, labels)
    rates, distortions = [], []
    terms = elbo_function(vae, n_samples)  # traced once per batch shape
    for start, xb, batch_labels in _label_batches(x, labels, batch_size):
        keys = _image_keys(seed, start, int(xb.shape[0]), stream=0)
        rate, distortion = terms(xb, keys, batch_labels)
        distortions.append(distortion.numpy())
        rates.append(rate.numpy())
    rate, distortion = np.concatenate(rates), np.concatenate(distortions)
    return ELBOTerms(-(rate + distortion), rate, distortion, int(np.prod(np.shape(x)[1:])))


def iwae_bound(
    vae: Any,
    x: np.ndarray,
    k: int,
    batch_size: int = 100,
    chunk_size: int = 100,
    seed: int = 0,
    labels: Any = None,
) -> np.ndarray:
    r"""The importance-weighted bound of Burda et al. (2015), per image, in nats.

    .. math::

        \mathcal{L}_k(x) = \log \frac1k \sum_{j=1}^k
            \frac{p(x|z_j)\,p(z_j)}{q(z_j|x)}, \qquad z_j \sim q(z|x).

    :math:`\mathcal{L}_1` is the ELBO in expectation, the expectation of
    :math:`\mathcal{L}_k` never decreases with k, and it tends to
    :math:`\log p(x)`. The k samples are drawn and scored ``chunk_size`` at a time
    with a running log-sum-exp, in one traced function per batch shape
    (:mod:`tfpvae.evaluation.streaming`), so memory does not grow with k; each
    image's draws are the same for any chunk or batch size.

    Args:
        vae: A :class:`~tfpvae.VAE`.
        x: Prepared images ``[n, *input_shape]``.
        k: Importance samples per image.
        batch_size: Images per batch.
        chunk_size: Importance samples per decoder call.
        seed: Seed for the draws.
        labels: A conditional VAE's class ids ``[n]`` (required there): the bound on
            :math:`\log p(x|y)`, with q(z|x, y) and p(x|z, y).

    Returns:
        ``[n]`` array of bounds.
    """
    return log_mean_powers(vae, x, k, (1,), batch_size, chunk_size, seed, labels)[1]


def cubo(
    vae: Any,
    x: np.ndarray,
    k: int,
    n: float = 2,
    batch_size: int = 100,
    chunk_size: int = 100,
    seed: int = 0,
    labels: Any = None,
) -> np.ndarray:
    r"""The χ upper bound CUBO\ :sub:`n` of Dieng et al. (2017), per image, in nats.

    .. math::

        \mathrm{CUBO}_n(x) = \frac1n \log \frac1k \sum_{j=1}^k w_j^n,
        \qquad w_j = \frac{p(x|z_j)\,p(z_j)}{q(z_j|x)},\ z_j \sim q(z|x).

    Its exact value :math:`\frac1n\log\mathbb{E}_q[w^n]` is an upper bound of
    :math:`\log p(x)` for n ≥ 1 (Jensen), so with :func:`iwae_bound` it brackets
    the log-likelihood: :math:`\mathcal{L}_k \le \log p(x) \lesssim \mathrm{CUBO}_n`.
    **Its Monte Carlo estimate is biased low** (the log of an average is, by
    Jensen again, below the log of the expectation, and heavy-tailed :math:`w^n`
    are rarely drawn), so for small k the estimate can fall below log p(x); the
    bias shrinks as k grows. At k = 1 it equals the one-draw IWAE. The draws are
    the IWAE bound's at the same ``seed`` (image ``i``'s key), so the two ends of
    the bracket are computed at the same z and CUBO ≥ IWAE image by image.

    Args:
        vae: A :class:`~tfpvae.VAE`.
        x: Prepared images ``[n, *input_shape]``.
        k: Draws per image.
        n: The order, ≥ 1 (Dieng et al. train with n = 2).
        batch_size: Images per batch.
        chunk_size: Draws per decoder call.
        seed: Seed for the draws.
        labels: A conditional VAE's class ids ``[n]`` (required there).

    Returns:
        ``[n_images]`` array.
    """
    if isinstance(n, bool) or not isinstance(n, (int, float)) or not n >= 1:
        raise ValueError(f"n must be a number >= 1 (the CUBO's order; 2 is usual), got {n!r}")
    return log_mean_powers(vae, x, k, (n,), batch_size, chunk_size, seed, labels)[n] / n


def log_mean_powers(
    vae: Any,
    x: np.ndarray,
    k: int,
    powers: tuple[float, ...],
    batch_size: int = 100,
    chunk_size: int = 100,
    seed: int = 0,
    labels: Any = None,
) -> dict[float, np.ndarray]:
    r""":math:`\log \frac1k \sum_j w_j^r` per image for each power r, at the same draws.

    One pass over the decoder serves every power: ``(1,)`` is the IWAE bound,
    ``(1, 2)`` the IWAE bound and twice the CUBO\ :sub:`2` together.

    Returns:
        ``{r: [n] array}``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    x, labels = _checked(vae, x, labels)
    powers = tuple(dict.fromkeys(powers))  # (1, 1.0) is one power: one column, not two
    results: dict[float, list[np.ndarray]] = {r: [] for r in powers}
    sums = powers_function(vae, k, chunk_size, tuple(powers))  # traced once per batch shape
    for start, xb, batch_labels in _label_batches(x, labels, batch_size):
        keys = _image_keys(seed, start, int(xb.shape[0]), stream=1)
        for r, values in zip(powers, sums(xb, keys, batch_labels), strict=True):
            results[r].append(values.numpy())
    return {r: np.concatenate(values) for r, values in results.items()}


def held_out_metrics(
    vae: Any,
    x: np.ndarray,
    k: int = 100,
    seed: int = 0,
    pixels: np.ndarray | None = None,
    labels: Any = None,
    cubo_n: float | None = None,
) -> dict[str, float | str | None]:
    """ELBO terms and the IWAE bound on ``x``, as a flat dict for ``metrics.json``.

    Args:
        vae: The model.
        x: Prepared images (the likelihood's data space).
        k: Importance samples.
        seed: Seed for the draws (and the dequantisation noise).
        pixels: The 8-bit images ``x`` was prepared from. When given, adds the
            comparable column (:func:`eight_bit_bound`):
            ``bits_per_dim_8bit``, its ``_se``, ``bound`` (which number it is)
            and ``data_space``.
        labels: A conditional VAE's class ids ``[n]`` (required there).
        cubo_n: When given, adds the upper end of the bracket IWAE ≤ log p(x) ≲ CUBO
            (:func:`cubo` of order ``cubo_n`` at the IWAE's own k draws, one pass):
            ``cubo``, ``cubo_se``, ``cubo_n`` and ``bracket`` (the mean of CUBO − IWAE).
    """
    if cubo_n is not None and (isinstance(cubo_n, bool) or not cubo_n >= 1):
        raise ValueError(f"cubo_n must be a number >= 1 (2 is usual), got {cubo_n!r}")
    terms = elbo(vae, x, seed=seed, labels=labels)
    powers = (1,) if cubo_n is None else (1, cubo_n)
    sums = log_mean_powers(vae, x, k, powers, seed=seed, labels=labels)
    bound = sums[1]
    n_dims = terms.n_dims
    metrics: dict[str, Any] = terms.summary()
    metrics.update(
        iwae=float(bound.mean()),
        iwae_se=standard_error(bound),
        iwae_k=int(k),
        iwae_bits_per_dim=float(bits_per_dim(-bound.mean(), n_dims)),
        n_images=len(x),
        n_dims=n_dims,
    )
    if cubo_n is not None:
        upper = sums[cubo_n] / cubo_n
        metrics.update(
            cubo=float(upper.mean()),
            cubo_se=standard_error(upper),
            cubo_n=cubo_n,
            bracket=float((upper - bound).mean()),
        )
    if pixels is not None:
        metrics.update(
            eight_bit_bound(vae, pixels, k=k, seed=seed, prepared=(x, bound), labels=labels)
        )
    return metrics


def eight_bit_bound(
    vae: Any,
    pixels: np.ndarray,
    k: int = 100,
    seed: int = 0,
    prepared: tuple[np.ndarray, np.ndarray] | None = None,
    labels: Any = None,
) -> dict[str, float | str | None]:
    """Bits/dim of the 8-bit images ``pixels`` under ``vae``, with which bound it is.

    Which bound each likelihood's data space gives, and why it is comparable, is
    explained in :mod:`tfpvae.evaluation.comparison`, which tabulates it.

    Args:
        vae: A :class:`~tfpvae.VAE`.
        pixels: uint8 images ``[n, *input_shape]``.
        k: Importance samples of the IWAE bound.
        seed: Seed of the draws and of the dequantisation noise.
        prepared: ``(x, per-image IWAE bound)`` already computed on some
            preparation of ``pixels``; reused when ``x`` is exactly the data this
            evaluation needs (the levels of a discrete likelihood).
        labels: A conditional VAE's class ids ``[n]`` (required there).

    Returns:
        ``bits_per_dim_8bit`` and ``bits_per_dim_8bit_se`` (``None`` for a
        likelihood whose data space is not comparable), ``bound`` and ``data_space``.
    """
    likelihood = vae.likelihood
    if likelihood is None:
        raise ValueError(
            "bits/dim of the 8-bit images needs a registered likelihood (tfpvae.LIKELIHOODS), "
            "which says how the images were prepared; this model's decoder is the user's own"
        )
    space = likelihood.data_space
    out: dict[str, float | str | None] = {
        "bits_per_dim_8bit": None,
        "bits_per_dim_8bit_se": None,
        "bound": space.bound if not space.comparable else f"{space.bound}, k={k}",
        "data_space": space.name,
    }
    if not space.comparable:
        return out
    options = {"dequantize": space.dequantize, "seed": seed} if space.dequantize else {}
    x = prepare(pixels, likelihood.name, **options)
    if prepared is not None and prepared[0].shape == x.shape and np.array_equal(prepared[0], x):
        bound = prepared[1]
    else:
        rows = max(1, PARAMS_PER_CALL // likelihood.params_size(pixels.shape[1:]))
        chunk = min(k, rows)
        batch = max(1, min(100, rows // chunk))
        bound = iwae_bound(
            vae, x, k=k, batch_size=batch, chunk_size=chunk, seed=seed, labels=labels
        )
    n_dims = math.prod(pixels.shape[1:])
    per_image = -(bound + n_dims * space.log_jacobian_per_dim) / (n_dims * math.log(2.0))
    out["bits_per_dim_8bit"] = float(per_image.mean())
    out["bits_per_dim_8bit_se"] = standard_error(per_image)
    return out
