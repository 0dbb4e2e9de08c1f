"""Free bits: each dimension's batch-mean KL floored at λ, with no KL gradient below λ.

Values are checked against the closed-form KL of Gaussian marginals in NumPy;
gradients by whether they vanish exactly for the dimensions under the floor.
"""

from __future__ import annotations

import numpy as np
import pytest

import tfpvae
from tfpvae._backend import tf, tfb, tfd
from tfpvae.objectives import ELBO
from tfpvae.objectives.free_bits import check_free_bits, floored_rate

LAMBDA = 0.5


def _normal_kl(mu: np.ndarray, var: np.ndarray) -> np.ndarray:
    """KL(N(μ, var) ‖ N(0, 1)) elementwise."""
    return 0.5 * (var + mu**2 - 1.0 - np.log(var))


def test_diagonal_posterior_dims_below_the_floor_get_no_kl_gradient() -> None:
    rng = np.random.default_rng(0)
    # dims 0, 1 far from the prior (KL ≫ λ), dims 2, 3 close to it (KL ≪ λ)
    far, near = rng.normal(2.0, 0.3, (6, 2)), rng.normal(0.0, 0.1, (6, 2))
    loc = tf.Variable(np.concatenate([far, near], 1).astype("float32"))
    raw = tf.Variable(rng.normal(0.5, 0.1, (6, 4)).astype("float32"))
    prior = tfd.MultivariateNormalDiag(loc=tf.zeros(4))
    with tf.GradientTape() as tape:
        q = tfd.Independent(tfd.Normal(loc, tf.math.softplus(raw)), reinterpreted_batch_ndims=1)
        rate = floored_rate(q, prior, q.sample(2, seed=[1, 2]), LAMBDA)
        objective = tf.reduce_mean(rate)
    d_loc, d_raw = tape.gradient(objective, [loc, raw])
    kl = _normal_kl(loc.numpy(), tf.math.softplus(raw).numpy() ** 2).mean(0)  # [4]
    assert (kl[:2] > LAMBDA).all() and (kl[2:] < LAMBDA).all()
    np.testing.assert_allclose(objective.numpy(), np.maximum(LAMBDA, kl).sum(), rtol=1e-5)
    assert np.all(d_loc.numpy()[:, 2:] == 0) and np.all(d_raw.numpy()[:, 2:] == 0)
    assert np.all(np.abs(d_loc.numpy()[:, :2]) > 1e-3) and np.all(np.abs(d_raw.numpy()[:, :2]) > 0)


def test_correlated_posterior_floors_its_marginals_and_keeps_the_total_correlation() -> None:
    rng = np.random.default_rng(1)
    far, near = rng.normal(2.0, 0.3, (5, 1)), rng.normal(0.0, 0.1, (5, 1))
    loc = tf.Variable(np.concatenate([far, near], 1).astype("float32"))
    tril = np.array([[0.8, 0.0], [0.5, 0.7]], "float32")
    prior = tfd.MultivariateNormalDiag(loc=tf.zeros(2))
    with tf.GradientTape() as tape:
        q = tfd.MultivariateNormalTriL(loc, np.broadcast_to(tril, (5, 2, 2)))
        objective = tf.reduce_mean(floored_rate(q, prior, q.sample(1, seed=[0, 1]), LAMBDA))
    cov = tril @ tril.T
    marginal = _normal_kl(loc.numpy(), np.diag(cov)[None]).mean(0)
    total_correlation = 0.5 * (np.log(np.diag(cov)).sum() - np.log(np.linalg.det(cov)))
    assert marginal[0] > LAMBDA > marginal[1]
    np.testing.assert_allclose(
        objective.numpy(), np.maximum(LAMBDA, marginal).sum() + total_correlation, rtol=1e-5
    )
    d_loc = tape.gradient(objective, loc).numpy()
    assert np.all(d_loc[:, 1] == 0) and np.all(np.abs(d_loc[:, 0]) > 1e-3)


def test_vae_loss_is_the_distortion_plus_floored_kl_and_the_rate_is_unfloored(digits) -> None:
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,), latent_dim=4,
                           posterior="diag", likelihood="bernoulli")  # fmt: skip
    x = tf.constant(tfpvae.prepare(digits[0][0][:20], "bernoulli"))
    q = vae.posterior(x)
    kl = _normal_kl(q.mean().numpy(), q.variance().numpy()).mean(0)  # batch mean per dim
    free_bits = float(np.sort(kl)[1:3].mean())  # two dimensions below, two above
    made = ELBO(vae.parts, 1, free_bits=free_bits)
    with tf.GradientTape() as tape:
        terms = made.terms(x, tf.constant([4, 2]), training=True)
        kl_part = tf.reduce_mean(terms.loss - terms.distortion)
    np.testing.assert_allclose(kl_part.numpy(), np.maximum(free_bits, kl).sum(), rtol=1e-4)
    np.testing.assert_allclose(terms.rate.numpy().mean(), kl.sum(), rtol=0.5)  # sampled rate
    # The encoder's last Dense emits [loc (4), raw scale (4)]; a dimension under the floor
    # gets no KL gradient in either column.
    kernel = vae.parts.encoder.params.layers[-1].kernel
    grad = tape.gradient(kl_part, kernel).numpy()
    below = np.flatnonzero(kl < free_bits)
    columns = np.concatenate([below, below + 4])
    assert np.all(grad[:, columns] == 0)
    assert np.abs(np.delete(grad, columns, axis=1)).max() > 1e-4


def test_free_bits_reaches_the_model_and_bad_values_are_refused() -> None:
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,), free_bits=0.25)
    assert type(vae.objective) is ELBO and vae.objective.free_bits == 0.25
    assert type(tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,)).objective) is not ELBO
    with pytest.raises(ValueError, match="free_bits must be a finite number >= 0"):
        tfpvae.VAEConfig(free_bits=-0.1)
    with pytest.raises(ValueError, match="free_bits must be a finite number >= 0"):
        tfpvae.VAE(vae.encoder, vae.decoder, free_bits=-1.0)
    with pytest.raises(ValueError, match=r"free_bits=0\.5 does not apply to objective='iwae'"):
        tfpvae.VAEConfig(objective="iwae", free_bits=0.5)
    with pytest.raises(ValueError, match="posterior='iaf' does not have"):
        tfpvae.VAEConfig(posterior="iaf", free_bits=0.5)
    with pytest.raises(ValueError, match="prior='mixture'"):
        tfpvae.VAEConfig(prior="mixture", free_bits=0.5)
    with pytest.raises(ValueError, match="do not combine"):
        tfpvae.VAEConfig(gradient="stl", free_bits=0.5)
    flow = tfd.TransformedDistribution(tfd.MultivariateNormalDiag(tf.zeros(2)), tfb.Exp())
    with pytest.raises(ValueError, match="TransformedDistribution posterior"):
        check_free_bits(flow, tfd.MultivariateNormalDiag(tf.zeros(2)))
    mixture = tfd.MixtureSameFamily(
        tfd.Categorical(logits=[0.0, 0.0]), tfd.MultivariateNormalDiag(tf.zeros([2, 2]))
    )
    with pytest.raises(ValueError, match="prior that factorises"):
        check_free_bits(tfd.MultivariateNormalDiag(tf.zeros(2)), mixture)
