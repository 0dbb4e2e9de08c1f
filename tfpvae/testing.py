"""Checks for tests of VAEs: Monte Carlo agreement within standard errors.

A Monte Carlo estimate is compared with its expected value within ``n_se``
standard errors (4 by default: a false alarm about once in 16,000 runs), and the
check also refuses a standard error so large that the comparison could not fail.
"""

from __future__ import annotations

import numpy as np

from tfpvae.evaluation.stats import standard_error


def assert_within_se(
    samples: np.ndarray,
    expected: float,
    n_se: float = 4.0,
    max_se: float | None = None,
) -> float:
    """Asserts ``|mean(samples) - expected| <= n_se * SE``; returns the SE.

    Args:
        samples: Independent Monte Carlo values whose mean estimates ``expected``.
        expected: The exact value.
        n_se: How many standard errors are allowed.
        max_se: If given, the SE itself must be below it, so that a wrong value
            at that distance could not pass.

    Raises:
        AssertionError: With the mean, the expected value and the SE.

    Example:
        >>> import numpy as np
        >>> from tfpvae.testing import assert_within_se
        >>> draws = np.random.default_rng(0).normal(1.0, 0.5, 400)
        >>> round(assert_within_se(draws, 1.0, max_se=0.05), 3)
        0.025
    """
    samples = np.asarray(samples, dtype=np.float64)
    se = standard_error(samples)
    mean = float(samples.mean())
    if max_se is not None:
        assert se < max_se, f"SE {se:.4g} is not below {max_se:.4g}: the check could not fail"
    assert abs(mean - expected) <= n_se * se, (
        f"mean {mean:.6g} is {abs(mean - expected) / se if se else float('inf'):.1f} SE from "
        f"{expected:.6g} (SE {se:.4g}, allowed {n_se:g})"
    )
    return se
