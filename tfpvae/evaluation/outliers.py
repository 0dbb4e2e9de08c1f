r"""Outlier scores per image, and their AUROC against another dataset.

A model's likelihood is a poor outlier score on its own: a Fashion-MNIST model
gives MNIST digits a *higher* bound than the garments it was trained on
(Nalisnick et al., 2019), because simple images (a black background, a few
strokes) are likely under almost any model. Each score below is oriented so that
*larger means more outlying*:

* ``"neg_bound"``: :math:`-\mathcal L_k(x)`, the negative IWAE bound (nats);
  ``k = 1`` is the negative ELBO. Fooled by simple images.
* ``"complexity"`` (Serrà et al., 2020): :math:`S(x) = -\log_2 p(x) - L(x)`, the
  model's code length of the 8-bit image minus its length :math:`L(x)` under a
  lossless compressor (PNG, zlib at level 9), both in bits. The compressor is a
  generic model of images, so :math:`S` is a likelihood ratio against it: an image
  is an outlier when the model explains it *worse than PNG does*, whatever its
  complexity.
* ``"typicality"`` (after Nalisnick et al., 2019): :math:`|-\log_2 p(x) - \mu|`,
  with :math:`\mu` the mean code length of reference (training) images: an outlier
  is unusually likely *or* unusually unlikely. Needs ``reference`` images.

Units: :math:`-\log_2 p(x)` is the bound turned into bits of the 8-bit levels with
the likelihood's data space (:mod:`tfpvae.components.dataspace`): for
likelihoods on (0, 1), :math:`D \log_2 256` bits are added to the density's
:math:`-\log_2 p`. PNG's fixed header (about 60 bytes) is the same for every
image of a size, so it shifts :math:`S` and leaves its AUROC unchanged.

:func:`auroc` is the Mann–Whitney statistic from ranks: the probability that an
outlier scores higher than an inlier, ties counting one half.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfpvae.evaluation.bounds import iwae_bound
from tfpvae.registry import Registry


def png_bits(pixels: np.ndarray) -> np.ndarray:
    """Length in bits of each 8-bit image as a PNG (zlib level 9), ``[n]``.

    Args:
        pixels: Integer images in 0..255, ``[n, h, w]``, ``[n, h, w, 1]`` or ``[n, h, w, 3]``.
    """
    from PIL import Image

    pixels = np.asarray(pixels)
    if not np.issubdtype(pixels.dtype, np.integer) or pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(
            "png_bits expects 8-bit images (integers in 0..255), e.g. from load_dataset; "
            f"got dtype {pixels.dtype}"
        )
    images = pixels.astype(np.uint8)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    out = np.empty(len(images))
    for i, image in enumerate(images):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG", compress_level=9)
        out[i] = 8 * buffer.tell()
    return out


def _in_bits_of_pixels(vae: Any) -> bool:
    """Whether the model's bound converts to bits of the 8-bit image (not binarised data)."""
    return vae.likelihood is not None and vae.likelihood.data_space.comparable


def _bits(vae: Any, bound: np.ndarray, n_dims: int) -> np.ndarray | None:
    """A per-image bound (nats, the model's data space) as bits of the 8-bit image, or
    ``None`` where the model's data are not the 8-bit images (binarised, or unknown)."""
    if not _in_bits_of_pixels(vae):
        return None
    log_jacobian = vae.likelihood.data_space.log_jacobian_per_dim
    return -(bound + n_dims * log_jacobian) / math.log(2.0)


def code_length_bits(vae: Any, x: np.ndarray, k: int = 100, seed: int = 0) -> np.ndarray:
    r""":math:`-\log_2 p(x)` of the 8-bit images from the IWAE bound, bits per image.

    Raises:
        ValueError: For a likelihood whose data are not the 8-bit images
            (``"bernoulli"`` models binarised pixels), or a model of your own
            likelihood, whose data space tfpvae does not know.
    """
    bits = _bits(vae, iwae_bound(vae, x, k=k, seed=seed), math.prod(np.shape(x)[1:]))
    if bits is None:
        raise ValueError(
            "code lengths in bits of the 8-bit images need a likelihood of the 8-bit data "
            "('beta', 'continuous_bernoulli', 'gaussian', 'discretized_logistic', "
            "'categorical'); this model's bound is on other data (binarised pixels, or a "
            "likelihood of your own): use the 'neg_bound' score"
        )
    return bits


@dataclass(frozen=True)
class ScoreInputs:
    """What the scores are computed from, per image.

    Attributes:
        bound: The IWAE bound, nats.
        bits: :math:`-\\log_2 p(x)` of the 8-bit image, bits; ``None`` where the
            model's data are not the 8-bit images (then only ``"neg_bound"`` applies).
        png_bits: The image's PNG length, bits.
        reference_bits: :math:`-\\log_2 p` of the reference images, or ``None``.
    """

    bound: np.ndarray
    bits: np.ndarray | None
    png_bits: np.ndarray
    reference_bits: np.ndarray | None


def _typicality(s: ScoreInputs) -> np.ndarray | None:
    if s.bits is None or s.reference_bits is None:
        return None
    return np.abs(s.bits - s.reference_bits.mean())


def _complexity(s: ScoreInputs) -> np.ndarray | None:
    return None if s.bits is None else s.bits - s.png_bits


#: Score name → inputs → per-image score (larger: more outlying), or ``None`` when
#: the inputs lack what it needs.
OUTLIER_SCORES: Registry[Callable[[ScoreInputs], np.ndarray | None]] = Registry("outlier score")
OUTLIER_SCORES.register("neg_bound", lambda s: -s.bound)
OUTLIER_SCORES.register("complexity", _complexity)
OUTLIER_SCORES.register("typicality", _typicality)


def outlier_scores(
    vae: Any,
    x: np.ndarray,
    pixels: np.ndarray,
    reference: np.ndarray | None = None,
    k: int = 100,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Every registered outlier score of each image (module docs), larger = more outlying.

    Args:
        vae: A :class:`~tfpvae.VAE`.
        x: The images prepared for the model's likelihood, ``[n, *input_shape]``.
        pixels: The 8-bit images ``x`` was prepared from (for the compressor).
        reference: Prepared in-distribution images (e.g. training images) for
            ``"typicality"``; without them that score is left out.
        k: Importance samples of the bound.
        seed: Seed of the bound's draws.

    Returns:
        Score name → ``[n]`` scores.
    """
    reference_bits = None
    if reference is not None and _in_bits_of_pixels(vae):
        reference_bits = code_length_bits(vae, reference, k, seed + 1)
    return _scores(vae, x, pixels, reference_bits, k, seed)


def _scores(
    vae: Any,
    x: np.ndarray,
    pixels: np.ndarray,
    reference_bits: np.ndarray | None,
    k: int,
    seed: int,
) -> dict[str, np.ndarray]:
    if len(x) != len(pixels):
        raise ValueError(f"x has {len(x)} images but pixels {len(pixels)}; pass the same images")
    bound = iwae_bound(vae, x, k=k, seed=seed)
    inputs = ScoreInputs(
        bound=bound,
        bits=_bits(vae, bound, math.prod(np.shape(x)[1:])),
        png_bits=png_bits(pixels),
        reference_bits=reference_bits,
    )
    scores = {name: OUTLIER_SCORES.get(name)(inputs) for name in OUTLIER_SCORES.names()}
    return {name: score for name, score in scores.items() if score is not None}


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = 0.5 * (start + 1 + end)  # mean of ranks start+1..end
            start = end
    return ranks


def auroc(inlier_scores: np.ndarray, outlier_scores: np.ndarray) -> float:
    r"""Area under the ROC curve of telling outliers from inliers by a score.

    .. math:: \mathrm{AUROC} = \frac{R_o - n_o(n_o + 1)/2}{n_o\,n_i}
        = P(s_o > s_i) + \tfrac12 P(s_o = s_i),

    with :math:`R_o` the sum of the outliers' ranks among all scores. 1: every
    outlier scores above every inlier; 0.5: chance; 0: the score is reversed.

    Raises:
        ValueError: If either set is empty or holds a non-finite score.
    """
    inliers = np.asarray(inlier_scores, np.float64).ravel()
    outliers = np.asarray(outlier_scores, np.float64).ravel()
    if not len(inliers) or not len(outliers):
        raise ValueError("auroc needs at least one inlier and one outlier score")
    if not (np.isfinite(inliers).all() and np.isfinite(outliers).all()):
        raise ValueError("auroc got a non-finite score; check the images the scores came from")
    ranks = _ranks(np.concatenate([inliers, outliers]))
    n_o = len(outliers)
    return float((ranks[len(inliers) :].sum() - n_o * (n_o + 1) / 2) / (n_o * len(inliers)))


def outlier_aurocs(
    inliers: Mapping[str, np.ndarray], outliers: Mapping[str, np.ndarray]
) -> dict[str, float]:
    """The AUROC of each score present in both (from :func:`outlier_scores`)."""
    return {name: auroc(inliers[name], outliers[name]) for name in inliers if name in outliers}


def outlier_report(
    vae: Any,
    inliers: tuple[np.ndarray, np.ndarray],
    outliers: tuple[np.ndarray, np.ndarray],
    reference: np.ndarray | None = None,
    k: int = 100,
    seed: int = 0,
) -> dict[str, Any]:
    """Each score's AUROC for telling ``outliers`` from ``inliers``, for ``metrics.json``.

    Args:
        vae: The model.
        inliers: ``(prepared images, their 8-bit pixels)`` of the model's own data
            (its test split).
        outliers: The same for the other dataset (same image shape).
        reference: Prepared training images, for ``"typicality"``.
        k: Importance samples of the bound.
        seed: Seed of the draws.

    Returns:
        ``{"auroc": score → AUROC, "mean_score": {"inliers"/"outliers": score → mean},
        "n_inliers", "n_outliers", "k"}``.

    Raises:
        ValueError: If the two datasets' images differ in shape.
    """
    if np.shape(inliers[0])[1:] != np.shape(outliers[0])[1:]:
        raise ValueError(
            f"the outlier images are {np.shape(outliers[0])[1:]} but the model's are "
            f"{np.shape(inliers[0])[1:]}; choose a dataset with images of the same shape"
        )
    reference_bits = None
    if reference is not None and _in_bits_of_pixels(vae):
        reference_bits = code_length_bits(vae, reference, k, seed + 1)
    scores_in = _scores(vae, *inliers, reference_bits, k, seed)
    scores_out = _scores(vae, *outliers, reference_bits, k, seed)
    return {
        "auroc": outlier_aurocs(scores_in, scores_out),
        "mean_score": {
            "inliers": {name: float(v.mean()) for name, v in scores_in.items()},
            "outliers": {name: float(v.mean()) for name, v in scores_out.items()},
        },
        "n_inliers": len(inliers[0]),
        "n_outliers": len(outliers[0]),
        "k": int(k),
    }


__all__ = [
    "OUTLIER_SCORES",
    "ScoreInputs",
    "auroc",
    "code_length_bits",
    "outlier_aurocs",
    "outlier_report",
    "outlier_scores",
    "png_bits",
]
