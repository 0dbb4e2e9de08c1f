"""The 8-bit likelihoods (discretised logistic mixture, categorical) and the Gaussian."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

import tfpvae
from tfpvae._backend import tf
from tfpvae.components.discrete import (
    HALF_RANGE,
    MIN_LOGISTIC_SCALE,
    DiscretizedLogisticMixture,
    IndependentCategorical,
)
from tfpvae.components.likelihoods import MIN_GAUSSIAN_SCALE, IndependentGaussian, get_likelihood
from tfpvae.training.validation import check_images

RNG = np.random.default_rng(3)
EVENT = (2, 3)
LEVELS = np.arange(256.0)
DISCRETE = ("discretized_logistic", "categorical")


def random_params(name: str, batch: int = 4, spread: float = 2.0) -> np.ndarray:
    size = get_likelihood(name).params_size(EVENT)
    return RNG.normal(0.0, spread, (batch, size)).astype("float32")


def all_levels_log_prob(name: str, params: np.ndarray) -> np.ndarray:
    """log P(level) of every level for every pixel: [256, batch, *EVENT] (no Independent)."""
    dist = get_likelihood(name).layer.new(params, EVENT).distribution
    values = np.broadcast_to(LEVELS.reshape(256, 1, 1, 1), (256, len(params), *EVENT))
    return dist.log_prob(values.astype("float32")).numpy()


def numpy_logistic_mixture_log_prob(params: np.ndarray, x: np.ndarray, m: int) -> np.ndarray:
    """PixelCNN++'s discretised logistic mixture in float64 with SciPy's logistic cdf."""
    p = params.astype(np.float64).reshape(len(params), *EVENT, 3 * m)
    logits, raw_loc, raw_scale = p[..., :m], p[..., m : 2 * m], p[..., 2 * m :]
    loc = HALF_RANGE * (1.0 + raw_loc)
    scale = HALF_RANGE * (np.logaddexp(0.0, raw_scale) + MIN_LOGISTIC_SCALE)
    x = x.astype(np.float64)[..., None]
    upper = np.where(x >= 255, np.inf, x + 0.5)
    lower = np.where(x <= 0, -np.inf, x - 0.5)
    # P(lower < X <= upper), the survival function on the upper tail for accuracy.
    mass = np.where(
        x > loc,
        stats.logistic.sf(lower, loc, scale) - stats.logistic.sf(upper, loc, scale),
        stats.logistic.cdf(upper, loc, scale) - stats.logistic.cdf(lower, loc, scale),
    )
    log_mix = special.log_softmax(logits, axis=-1) + np.log(mass)
    return special.logsumexp(log_mix, axis=-1).sum(axis=(1, 2))


@pytest.mark.parametrize("name", DISCRETE)
def test_probabilities_of_the_256_levels_sum_to_one(name) -> None:
    for spread in (0.5, 3.0):
        log_p = all_levels_log_prob(name, random_params(name, spread=spread))
        assert np.all(np.isfinite(log_p))
        np.testing.assert_allclose(np.exp(log_p).sum(axis=0), 1.0, atol=2e-5)


def test_discretized_logistic_matches_numpy() -> None:
    m = DiscretizedLogisticMixture.components
    params = random_params("discretized_logistic")
    x = RNG.integers(0, 256, (4, *EVENT)).astype("float32")
    x[0, 0, :] = [0, 255, 128]  # both open edge bins
    dist = DiscretizedLogisticMixture.new(params, EVENT)
    expected = numpy_logistic_mixture_log_prob(params, x, m)
    np.testing.assert_allclose(dist.log_prob(x).numpy(), expected, rtol=1e-4, atol=1e-3)
    assert DiscretizedLogisticMixture.params_size(EVENT) == 3 * m * 6


def test_categorical_matches_numpy_and_its_fast_path() -> None:
    params = random_params("categorical")
    x = RNG.integers(0, 256, (4, *EVENT)).astype("float32")
    x[0, 0, :2] = [0, 255]
    logits = params.astype(np.float64).reshape(4, *EVENT, 256)
    log_softmax = special.log_softmax(logits, axis=-1)
    expected = np.take_along_axis(log_softmax, x.astype(int)[..., None], -1).sum(axis=(1, 2, 3))
    dist = IndependentCategorical.new(params, EVENT)
    np.testing.assert_allclose(dist.log_prob(x).numpy(), expected, rtol=1e-5, atol=1e-3)
    fast = get_likelihood("categorical").log_prob_from_params(tf.constant(params), x)
    np.testing.assert_allclose(fast.numpy(), expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(  # the mean of a free categorical: Σ k softmax_k
        dist.mean().numpy(), (np.exp(log_softmax) * LEVELS).sum(-1), rtol=1e-4
    )


@pytest.mark.parametrize("name", DISCRETE)
def test_edges_are_finite_even_for_extreme_parameters(name) -> None:
    params = random_params(name, batch=3, spread=30.0)  # very sharp and far-off components
    x = np.zeros((3, *EVENT), "float32")
    x[1], x[2, :, :2] = 255.0, 255.0
    lik = get_likelihood(name)
    with tf.GradientTape() as tape:
        p = tf.constant(params)
        tape.watch(p)
        log_p = lik.layer.new(p, EVENT).log_prob(x)
    assert np.all(np.isfinite(log_p.numpy()))
    assert np.all(np.isfinite(tape.gradient(log_p, p).numpy()))
    fast = lik.log_prob_from_params(tf.constant(params), x)  # fast_log_prob or layer.new
    np.testing.assert_allclose(fast.numpy(), log_p.numpy(), rtol=1e-5)


def test_discretized_logistic_mean_is_the_mean_of_its_levels() -> None:
    params = random_params("discretized_logistic", batch=2, spread=1.0)
    dist = DiscretizedLogisticMixture.new(params, EVENT)
    probs = np.exp(all_levels_log_prob("discretized_logistic", params))
    expected = np.tensordot(LEVELS, probs, axes=1)
    np.testing.assert_allclose(dist.mean().numpy(), expected, rtol=1e-4, atol=1e-3)


def test_gaussian_matches_scipy_and_its_scale_is_bounded() -> None:
    params = random_params("gaussian")
    x = RNG.normal(size=(4, *EVENT)).astype("float32")
    p = params.astype(np.float64).reshape(4, *EVENT, 2)
    scale = np.logaddexp(0.0, p[..., 1]) + MIN_GAUSSIAN_SCALE
    expected = stats.norm.logpdf(x, p[..., 0], scale).sum(axis=(1, 2))
    dist = IndependentGaussian.new(params, EVENT)
    np.testing.assert_allclose(dist.log_prob(x).numpy(), expected, rtol=1e-5, atol=1e-3)
    fast = get_likelihood("gaussian").log_prob_from_params(tf.constant(params), x)
    np.testing.assert_allclose(fast.numpy(), expected, rtol=1e-5, atol=1e-3)
    tiny = IndependentGaussian.new(np.full((1, 12), -1e4, "float32"), EVENT)
    assert float(tf.reduce_min(tiny.distribution.scale)) >= MIN_GAUSSIAN_SCALE * 0.999


@pytest.mark.parametrize("name", DISCRETE)  # the Gaussian: test_gaussian_on_feature_vectors
def test_a_model_with_each_trains_with_a_finite_decreasing_loss(name, digits) -> None:
    (x_train, _), _ = digits
    x = tfpvae.prepare(x_train[:192], name)
    vae = tfpvae.build_vae(likelihood=name, input_shape=(8, 8), hidden_units=(16,))
    history = vae.fit(x, epochs=3, batch_size=64, verbose=0).history["loss"]
    assert np.all(np.isfinite(history)) and history[-1] < history[0], history
    mean = vae.decode(np.zeros((2, 2), "float32")).numpy()
    assert mean.shape == (2, 8, 8) and np.all(np.isfinite(mean))


def test_level_likelihoods_refuse_non_integer_data() -> None:
    config = tfpvae.VAEConfig(likelihood="categorical", input_shape=(4, 4))
    with pytest.raises(ValueError, match=r"non-integer values.*prepare"):
        check_images(np.full((8, 4, 4), 0.5, "float32"), config.input_shape, config.likelihood)
    check_images(np.full((8, 4, 4), 7.0, "float32"), config.input_shape, config.likelihood)
    assert get_likelihood("categorical").support.contains(np.array([0.0, 255.0]))
    assert not get_likelihood("categorical").support.contains(np.array([0.5]))


def test_gaussian_on_feature_vectors(digits) -> None:
    """A non-image example: the digits as standardised vectors of 64 features."""
    (x_train, _), (x_test, _) = digits
    flat = x_train.reshape(len(x_train), 64).astype("float32")
    mean, std = flat.mean(0), flat.std(0)
    std = np.where(std > 0, std, 1.0)  # some corner pixels never vary
    standardise = lambda x: ((x.reshape(len(x), 64) - mean) / std).astype("float32")  # noqa: E731
    vae = tfpvae.build_vae(likelihood="gaussian", input_shape=(64,), hidden_units=(32,))
    history = vae.fit(standardise(x_train[:512]), epochs=3, batch_size=128, verbose=0).history
    assert np.all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0]
    terms = tfpvae.elbo(vae, standardise(x_test[:20]))
    assert terms.n_dims == 64 and np.all(np.isfinite(terms.elbo))
    with pytest.raises(ValueError, match="needs architecture='mlp'"):
        tfpvae.build_vae(likelihood="gaussian", input_shape=(64,), architecture="conv")
