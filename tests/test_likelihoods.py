"""Each likelihood's distribution, its log-prob against SciPy, and its guards."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import continuous_bernoulli_log_pdf, numpy_concentration
from scipy import stats

import tfpvae
from tfpvae._backend import tf, tfd, tfpl
from tfpvae.components.likelihoods import (
    LIKELIHOODS,
    MAX_CONCENTRATION,
    MIN_CONCENTRATION,
    IndependentBeta,
    IndependentContinuousBernoulli,
    Likelihood,
    PixelwiseDistributionLambda,
    Support,
    get_likelihood,
    positive_concentration,
)

EVENT = (2, 3)
RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("bernoulli", tfd.Bernoulli),
        ("beta", tfd.Beta),
        ("continuous_bernoulli", tfd.ContinuousBernoulli),
    ],
)
@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_decoder_distribution_types_and_shapes(name, base, architecture) -> None:
    vae = tfpvae.build_vae(
        likelihood=name, input_shape=(8, 8), hidden_units=(16,), architecture=architecture
    )
    x = np.full((5, 8, 8), 0.25, "float32")
    dist = vae(x)
    assert isinstance(dist.tensor_distribution, tfd.Independent)
    assert isinstance(dist.tensor_distribution.distribution, base)
    assert tuple(dist.batch_shape) == (5,)
    assert tuple(dist.event_shape) == (8, 8)
    assert dist.log_prob(x).shape == (5,)
    q = vae.encoder(x)
    assert isinstance(q.tensor_distribution, tfd.MultivariateNormalTriL)
    assert tuple(q.batch_shape) == (5,) and tuple(q.event_shape) == (2,)


def test_diag_posterior_is_independent_normal() -> None:
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,), posterior="diag", latent_dim=3)
    q = vae.encoder(np.full((4, 8, 8), 0.5, "float32"))
    assert isinstance(q.tensor_distribution, tfd.Independent)
    assert isinstance(q.tensor_distribution.distribution, tfd.Normal)
    assert tuple(q.batch_shape) == (4,) and tuple(q.event_shape) == (3,)


@pytest.mark.parametrize("concentration", ["exp", "softplus"])
def test_beta_log_prob_matches_scipy(concentration) -> None:
    params = RNG.normal(0.0, 2.0, (4, 2 * np.prod(EVENT))).astype("float32")
    x = RNG.uniform(0.01, 0.99, (4, *EVENT)).astype("float32")
    dist = IndependentBeta.new(params, EVENT, concentration=concentration)
    per_pixel = params.astype(np.float64).reshape(4, *EVENT, 2)
    a = numpy_concentration(per_pixel[..., 0], concentration)
    b = numpy_concentration(per_pixel[..., 1], concentration)
    expected = stats.beta.logpdf(x.astype(np.float64), a, b).sum(axis=(1, 2))
    np.testing.assert_allclose(dist.log_prob(x).numpy(), expected, rtol=1e-4, atol=1e-3)
    assert IndependentBeta.params_size(EVENT) == 12


def test_bernoulli_log_prob_matches_scipy() -> None:
    logits = RNG.normal(0.0, 2.0, (4, np.prod(EVENT))).astype("float32")
    x = (RNG.random((4, *EVENT)) < 0.5).astype("float32")
    dist = tfpl.IndependentBernoulli.new(logits, EVENT)
    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64).reshape(4, *EVENT)))
    expected = stats.bernoulli.logpmf(x, p).sum(axis=(1, 2))
    np.testing.assert_allclose(dist.log_prob(x).numpy(), expected, rtol=1e-5, atol=1e-4)


def test_continuous_bernoulli_log_prob_matches_closed_form() -> None:
    logits = RNG.normal(0.0, 2.0, (4, np.prod(EVENT)))
    logits = np.where(np.abs(logits) < 0.2, 1.0, logits).astype("float32")  # avoid λ≈½ limit
    x = RNG.uniform(0.0, 1.0, (4, *EVENT)).astype("float32")
    dist = IndependentContinuousBernoulli.new(logits, EVENT)
    lam = 1.0 / (1.0 + np.exp(-logits.astype(np.float64).reshape(4, *EVENT)))
    expected = continuous_bernoulli_log_pdf(x.astype(np.float64), lam).sum(axis=(1, 2))
    np.testing.assert_allclose(dist.log_prob(x).numpy(), expected, rtol=1e-4, atol=1e-3)
    # It is a density on [0, 1]: the pixel-wise integral is 1 (trapezoid rule).
    grid = np.linspace(0.0, 1.0, 20001)
    density = np.exp(continuous_bernoulli_log_pdf(grid, 0.8))
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("concentration", ["exp", "softplus"])
def test_concentrations_are_positive_bounded_and_finite(concentration) -> None:
    raw = tf.constant([-1e4, -50.0, 0.0, 88.0, 100.0, 1e4, 1e30])
    with tf.GradientTape() as tape:
        tape.watch(raw)
        c = positive_concentration(raw, concentration)
        total = tf.reduce_sum(c)
    grad = tape.gradient(total, raw)
    assert np.all(np.isfinite(c.numpy())) and np.all(np.isfinite(grad.numpy()))
    assert c.numpy().min() >= MIN_CONCENTRATION * 0.999
    assert c.numpy().max() <= MAX_CONCENTRATION
    np.testing.assert_allclose(c.numpy(), numpy_concentration(raw.numpy(), concentration), 1e-5)
    # The course's exponential overflows where this map does not.
    assert not np.isfinite(tf.exp(raw).numpy()[4])


def test_the_default_concentration_is_the_course_exponential_below_its_ceiling() -> None:
    from tfpvae.components.concentration import EXP_MAX_CONCENTRATION

    raw = np.linspace(-20.0, 0.0, 41)
    c = positive_concentration(tf.constant(raw, tf.float32)).numpy()
    np.testing.assert_allclose(c, np.exp(raw) + MIN_CONCENTRATION, rtol=5e-4)  # 1/c_max
    # Above, it saturates at its ceiling smoothly: still increasing, gradient > 0.
    big = tf.constant([5.0, 8.0, 10.0, 12.0])
    with tf.GradientTape() as tape:
        tape.watch(big)
        top = positive_concentration(big)
    assert np.all(np.diff(top.numpy()) > 0) and np.all(tape.gradient(top, big).numpy() > 0)
    assert top.numpy().max() <= EXP_MAX_CONCENTRATION < MAX_CONCENTRATION


def test_a_beta_layer_keeps_its_concentration_map_on_the_fast_path() -> None:
    from tfpvae.components.parts import likelihood_of

    params = RNG.normal(0.0, 3.0, (3, 2 * np.prod(EVENT))).astype("float32")
    x = RNG.uniform(0.01, 0.99, (3, *EVENT)).astype("float32")
    per_pixel = params.astype(np.float64).reshape(3, *EVENT, 2)
    for concentration in ("exp", "softplus"):
        layer = IndependentBeta(EVENT, concentration=concentration)
        a = numpy_concentration(per_pixel[..., 0], concentration)
        b = numpy_concentration(per_pixel[..., 1], concentration)
        expected = stats.beta.logpdf(x.astype(np.float64), a, b).sum(axis=(1, 2))
        fast = likelihood_of(layer).log_prob_from_params(tf.constant(params), x)
        np.testing.assert_allclose(fast.numpy(), expected, rtol=1e-4, atol=1e-3)
        layered = layer(params).log_prob(x).numpy()
        np.testing.assert_allclose(layered, expected, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="softplus"):
        IndependentBeta(EVENT, concentration="relu")


def test_beta_loss_is_finite_at_exactly_zero_and_one() -> None:
    beta = get_likelihood("beta")
    params = np.full((1, 2 * 4), 3.0, "float32")  # concentrations > 1: density 0 at the ends
    dist = IndependentBeta.new(params, (2, 2))
    x = np.array([[[0.0, 1.0], [0.5, 1.0]]], "float32")
    assert not np.isfinite(dist.log_prob(x).numpy()[0])  # the raw density is -inf there
    loss = beta.negative_log_prob(x, dist).numpy()
    assert np.all(np.isfinite(loss))
    # Inside the support the guard changes nothing.
    inside = np.array([[[0.2, 0.4], [0.5, 0.9]]], "float32")
    np.testing.assert_allclose(
        beta.negative_log_prob(inside, dist).numpy(), -dist.log_prob(inside).numpy(), rtol=1e-6
    )


def test_supports() -> None:
    assert Support(open=True).contains(np.array([0.1, 0.9]))
    assert not Support(open=True).contains(np.array([0.0, 0.5]))
    assert Support().contains(np.array([0.0, 1.0]))
    assert not Support().contains(np.array([0.5, np.nan, 0.5]))
    assert not Support().contains(np.array([0.5, 1.0 + 1e-6]))
    assert Support(low=-1.0).contains_range(-1.0, 0.5)
    assert not Support(low=-1.0, open=True).contains_range(-1.0, 0.5)
    assert get_likelihood("beta").support.describe() == "(0, 1)"


def test_adding_a_likelihood_is_one_registry_entry() -> None:
    class IndependentLogistic(PixelwiseDistributionLambda):
        @staticmethod
        def new(params, event_shape):
            loc, log_scale = tf.unstack(tf.reshape(params, [-1, *event_shape, 2]), axis=-1)
            return tfd.Independent(tfd.Logistic(loc, tf.exp(log_scale)), len(event_shape))

        @staticmethod
        def params_size(event_shape):
            return 2 * int(np.prod(event_shape))

    entry = Likelihood("logistic", IndependentLogistic, Support(), lambda x: x / 255.0, "test")
    LIKELIHOODS.register("logistic", entry)
    try:
        vae = tfpvae.build_vae(likelihood="logistic", input_shape=(4, 4), hidden_units=(8,))
        dist = vae(np.full((3, 4, 4), 0.5, "float32"))
        assert isinstance(dist.tensor_distribution.distribution, tfd.Logistic)
    finally:
        LIKELIHOODS._items.pop("logistic")
