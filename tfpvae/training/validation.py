"""Checks on images before any training or evaluation, with messages that say the fix.

Every failure is a ``ValueError`` naming the problem and what to do about it, raised
before a single step runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfpvae.components.likelihoods import Likelihood, get_likelihood


def check_images(
    x: object,
    image_shape: Sequence[int],
    likelihood: Likelihood | str | None = None,
    what: str = "x",
) -> np.ndarray:
    """Checks that ``x`` is a non-empty float batch of images in the likelihood's support.

    Args:
        x: The candidate images ``[n, *image_shape]``.
        image_shape: The shape of one image the model takes.
        likelihood: The model's registered likelihood (or its name); ``None`` for a
            user's own decoder, whose support is not known (only the shape, the
            dtype and finiteness are checked then).
        what: Name of the argument, for messages.

    Returns:
        ``x`` as a NumPy array.

    Raises:
        ValueError: For an empty batch, a wrong shape, raw integer pixels,
            non-finite values, or values outside the likelihood's support.
    """
    array = np.asarray(x)
    expected = tuple(image_shape)
    if array.ndim == 0 or array.shape[0] == 0:
        raise ValueError(f"{what} is empty: pass at least one image of shape {expected}")
    if tuple(array.shape[1:]) != expected:
        raise ValueError(
            f"{what} has shape {array.shape}, but the model takes images of shape {expected}: "
            f"pass an array of shape (n, {', '.join(map(str, expected))}) or build the model "
            f"with input_shape={tuple(array.shape[1:])}"
        )
    if isinstance(likelihood, str):
        likelihood = get_likelihood(likelihood)
    name = likelihood.name if likelihood is not None else None
    if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        fix = (
            f"tfpvae.prepare({what}, likelihood={name!r})"
            if name
            else "a float conversion into your decoder's support (e.g. x / 255)"
        )
        raise ValueError(f"{what} holds raw {array.dtype} pixels; convert them with {fix} first")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{what} must be a float array, got dtype {array.dtype}")
    # One pass each for the extremes: nan propagates into them, and so does ±inf.
    low, high = float(array.min()), float(array.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        count = int(array.size - np.isfinite(array).sum())
        raise ValueError(
            f"{what} has {count} non-finite values (nan or inf); remove or "
            "replace them before training"
        )
    if likelihood is None:
        return array
    if not likelihood.support.contains_range(low, high):
        raise ValueError(
            f"{what} has values from {low:g} to {high:g}; some lie outside the "
            f"{name} likelihood's support {likelihood.support.describe()}; "
            f"use tfpvae.prepare(raw_uint8_images, likelihood={name!r})"
        )
    if likelihood.support.integer and not np.array_equal(array, np.round(array)):
        raise ValueError(
            f"{what} holds non-integer values, but the {name} likelihood scores "
            f"{likelihood.support.describe()}; use "
            f"tfpvae.prepare(raw_uint8_images, likelihood={name!r})"
        )
    return array
