"""The variant comparison: paired differences, their standard errors and the verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tfpvae.evaluation.variants import VariantComparison, compare_variants


def _comparison() -> VariantComparison:
    rng = np.random.default_rng(0)
    base = rng.normal(-100.0, 10.0, 400)  # a large spread shared by all variants
    bounds = {
        "elbo": base,
        "better": base + 1.0 + rng.normal(0.0, 2.0, 400),  # +1 ± 0.1: significant
        "same": base + rng.normal(0.0, 2.0, 400),  # +0 ± 0.1: not
    }
    return VariantComparison(bounds, {"elbo": 1.0, "better": 2.0, "same": 1.5}, "elbo", 100)


def test_rows_use_paired_differences_and_their_standard_errors() -> None:
    result = _comparison()
    rows = {r["variant"]: r for r in result.rows()}
    diff = result.bounds["better"] - result.bounds["elbo"]
    assert rows["better"]["diff"] == pytest.approx(diff.mean())
    assert rows["better"]["diff_se"] == pytest.approx(diff.std(ddof=1) / math.sqrt(400))
    # Pairing: the difference's SE is far below either bound's own SE (~0.5).
    assert rows["better"]["diff_se"] < 0.25 * rows["better"]["se"]
    assert rows["better"]["se"] == pytest.approx(result.bounds["better"].std(ddof=1) / 20.0)
    assert rows["better"]["significant"] and not rows["same"]["significant"]
    assert not rows["elbo"]["significant"] and rows["elbo"]["diff"] == 0.0
    table = result.table()
    assert "k = 100, 400 images" in table and table.count("yes") == 1
    assert result.figure().axes[1].get_xlabel().startswith("paired difference to elbo")


def test_bad_arguments_are_refused_before_training() -> None:
    x = np.zeros((4, 8, 8), "float32")
    with pytest.raises(ValueError, match="variants is empty"):
        compare_variants({}, x, x, epochs=1)
    with pytest.raises(ValueError, match="baseline 'nope' is not one of the variants"):
        compare_variants({"elbo": {}}, x, x, epochs=1, baseline="nope")
