r"""The CUBO bracket on the linear-Gaussian model, where log p(x) and the CUBO are exact.

With the posterior of the model's own family at scale c (``posterior_scale``),
:math:`w/p(x) = \pi(z)/q(z)` and
:math:`\mathrm{CUBO}_2 - \log p(x) = \tfrac d2\log(c^2/\sqrt{2c^2 - 1})`.
"""

from __future__ import annotations

import numpy as np
import pytest

from tfpvae.evaluation.bounds import cubo, held_out_metrics, iwae_bound, log_mean_powers
from tfpvae.evaluation.stats import standard_error
from tfpvae.testing import assert_within_se, linear_gaussian_vae

N_IMAGES = 200


def test_exact_posterior_makes_both_ends_log_p() -> None:
    model = linear_gaussian_vae(posterior="full", encoder_noise=0.0)
    x = model.sample(20, seed=1)
    log_p = model.log_marginal(x)
    np.testing.assert_allclose(iwae_bound(model.vae, x, k=10), log_p, atol=2e-4)
    np.testing.assert_allclose(cubo(model.vae, x, k=10), log_p, atol=2e-4)


def test_cubo_estimate_tends_to_the_exact_cubo_from_below() -> None:
    c, d = 1.5, 2
    model = linear_gaussian_vae(posterior="full", encoder_noise=0.0, posterior_scale=c)
    x = model.sample(N_IMAGES, seed=1)
    log_p = model.log_marginal(x)
    exact = d / 2 * np.log(c**2 / np.sqrt(2 * c**2 - 1))  # 0.1845
    sums = {k: log_mean_powers(model.vae, x, k, (1, 2)) for k in (1, 10, 1000)}
    upper = {k: s[2] / 2 for k, s in sums.items()}
    assert_within_se(upper[1000] - log_p, exact, max_se=0.01)
    assert_within_se(sums[1000][1] - log_p, 0.0, max_se=0.01)  # the IWAE is tight here
    np.testing.assert_allclose(upper[1], sums[1][1], rtol=1e-6)  # k = 1: CUBO = IWAE
    # Biased low: with few draws the estimate falls short of the exact CUBO.
    short = upper[1] - log_p
    assert exact - short.mean() > 4 * standard_error(short)
    assert upper[10].mean() < upper[1000].mean()
    np.testing.assert_allclose(cubo(model.vae, x[:10], k=10), upper[10][:10], rtol=1e-6)


def test_bracket_on_a_mismatched_posterior_as_k_grows() -> None:
    """A diagonal q for a correlated posterior: the IWAE rises to log p(x) from below,
    the CUBO estimate rises above it, so the bracket holds log p(x) once k is large."""
    model = linear_gaussian_vae(encoder_noise=0.1)
    x = model.sample(N_IMAGES, seed=1)
    log_p = model.log_marginal(x)
    sums = {k: log_mean_powers(model.vae, x, k, (1, 2)) for k in (10, 1000)}
    lower = {k: s[1] for k, s in sums.items()}
    upper = {k: s[2] / 2 for k, s in sums.items()}
    for k in sums:
        assert np.all(upper[k] >= lower[k] - 1e-5)  # the same draws: CUBO ≥ IWAE per image
    gap = log_p - lower[10]
    assert gap.mean() > 4 * standard_error(gap)  # IWAE_10 < log p(x)
    rise = lower[1000] - lower[10]
    assert rise.mean() > 4 * standard_error(rise)  # the lower end closes in
    above = upper[1000] - log_p
    assert above.mean() > 4 * standard_error(above)  # log p(x) inside the bracket at k = 1000


def test_held_out_metrics_report_the_bracket_when_asked() -> None:
    model = linear_gaussian_vae(encoder_noise=0.1)
    x = model.sample(30, seed=1)
    plain = held_out_metrics(model.vae, x, k=50)
    assert "cubo" not in plain
    metrics = held_out_metrics(model.vae, x, k=50, cubo_n=2)
    assert metrics["iwae"] == pytest.approx(plain["iwae"], rel=1e-6)
    expected = cubo(model.vae, x, k=50)
    assert metrics["cubo"] == pytest.approx(float(expected.mean()), rel=1e-6)
    assert metrics["bracket"] == pytest.approx(metrics["cubo"] - metrics["iwae"], rel=1e-5)
    assert metrics["cubo_n"] == 2 and metrics["cubo_se"] > 0
    with pytest.raises(ValueError, match="n must be a number >= 1"):
        cubo(model.vae, x, k=5, n=0.5)


def test_cubo_1_is_the_iwae_column_not_a_second_copy() -> None:
    """n = 1 is the IWAE's own power: the metrics hold one value per image, not two."""
    model = linear_gaussian_vae(encoder_noise=0.1)
    x = model.sample(7, seed=1)
    metrics = held_out_metrics(model.vae, x, k=20, cubo_n=1)
    bound = iwae_bound(model.vae, x, k=20)
    assert metrics["cubo"] == pytest.approx(metrics["iwae"], rel=1e-6)
    assert metrics["iwae_se"] == pytest.approx(float(bound.std(ddof=1) / np.sqrt(7)), rel=1e-5)
