"""``tfpvae.testing.assert_within_se`` and the one standard error it uses."""

from __future__ import annotations

import numpy as np
import pytest

from tfpvae.evaluation.stats import standard_error
from tfpvae.testing import assert_within_se


def test_standard_error_is_the_sd_of_the_mean() -> None:
    values = np.random.default_rng(0).normal(0.0, 2.0, 10_000)
    assert standard_error(values) == pytest.approx(2.0 / 100.0, rel=0.03)
    assert standard_error([3.0]) == 0.0


def test_within_se_passes_the_right_mean_and_fails_a_shifted_one() -> None:
    draws = np.random.default_rng(1).normal(5.0, 1.0, 400)  # SE 0.05
    assert assert_within_se(draws, 5.0) == pytest.approx(0.05, rel=0.1)
    with pytest.raises(AssertionError, match="SE from"):
        assert_within_se(draws, 5.5)  # 10 SE away


def test_a_standard_error_too_large_to_tell_is_refused() -> None:
    draws = np.random.default_rng(2).normal(0.0, 10.0, 16)
    with pytest.raises(AssertionError, match="could not fail"):
        assert_within_se(draws, 0.0, max_se=0.1)
