"""The one standard error of the package: of a mean over images (or runs)."""

from __future__ import annotations

import math

import numpy as np


def standard_error(values: np.ndarray) -> float:
    r"""Standard error of the mean of ``values``, :math:`s / \sqrt{n}` with the ``ddof=1`` s.

    0 for fewer than two values (there is no spread to estimate).

    Example:
        >>> from tfpvae.evaluation.stats import standard_error
        >>> round(standard_error([1.0, 2.0, 3.0, 4.0]), 4)
        0.6455
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    n = len(values)
    return float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
