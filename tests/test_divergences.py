"""The KL term: exact is exact, sampled agrees within 4 SE, both attachments agree.

Also pins down the TFP/Keras reductions that tfpvae corrects, so that a TFP upgrade
that changes them is noticed.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shift_posterior

import tfpvae
from tfpvae._backend import tf, tfd, tfk, tfpl
from tfpvae.components.kl import monte_carlo_kl

BETA = 0.7
BATCH = 16


def make_vae(**kwargs) -> tfpvae.VAE:
    kwargs = dict(input_shape=(8, 8), hidden_units=(16,), latent_dim=3, kl_weight=BETA) | kwargs
    vae = tfpvae.build_vae(**kwargs)
    shift_posterior(vae)
    return vae


def kl_penalty(vae: tfpvae.VAE, x: np.ndarray) -> tuple[tfd.Distribution, float]:
    """Calls the encoder once; returns q and the KL loss it added to the model."""
    q = vae.encoder(x)
    return q, float(tf.add_n(vae.encoder.losses))


@pytest.mark.parametrize("posterior", ["full", "diag"])
@pytest.mark.parametrize("kl", ["add_loss", "regularizer"])
def test_exact_kl_is_exact_even_when_given_three_samples(digits_beta, kl, posterior) -> None:
    vae = make_vae(kl=kl, posterior=posterior, use_exact_kl=True, kl_samples=3)
    x = digits_beta[1][:BATCH]
    q, penalty = kl_penalty(vae, x)
    exact = tfd.kl_divergence(q, vae.prior).numpy()  # [batch]
    assert exact.mean() > 3.0  # large enough that 3-sample noise could not hide
    np.testing.assert_allclose(penalty, BETA * exact.mean(), rtol=0, atol=1e-5)
    # The objective's per-image rate is the same exact KL, whatever kl_samples says.
    rate = vae.parts.kl.per_example(q, vae.prior, tf.convert_to_tensor(q)[None]).numpy()
    np.testing.assert_allclose(rate, exact, rtol=0, atol=1e-5)


@pytest.mark.parametrize("posterior", ["full", "diag"])
@pytest.mark.parametrize("kl", ["add_loss", "regularizer"])
def test_sampled_kl_agrees_with_exact_within_4_se(digits_beta, kl, posterior) -> None:
    n_samples = 1000
    vae = make_vae(kl=kl, posterior=posterior, kl_samples=n_samples)
    x = digits_beta[1][:BATCH]
    q, penalty = kl_penalty(vae, x)
    exact_mean = tfd.kl_divergence(q, vae.prior).numpy().mean()
    _, se = monte_carlo_kl(q, vae.prior, n_samples, seed=7)  # per-example SE at S samples
    se_of_mean = float(np.sqrt(np.sum(se.numpy() ** 2))) / BATCH
    error = abs(penalty / BETA - exact_mean)
    assert error < 4 * se_of_mean, (error, se_of_mean)
    assert error > 1e-7  # it really sampled


@pytest.mark.parametrize("use_exact_kl", [True, False])
def test_add_loss_and_regularizer_add_the_same_per_example_value(digits_beta, use_exact_kl):
    x = digits_beta[1][:BATCH]
    kl_samples = 1 if use_exact_kl else 2000
    add = make_vae(kl="add_loss", use_exact_kl=use_exact_kl, kl_samples=kl_samples)
    reg = make_vae(kl="regularizer", use_exact_kl=use_exact_kl, kl_samples=kl_samples)
    reg.set_weights(add.get_weights())
    q, add_penalty = kl_penalty(add, x)
    _, reg_penalty = kl_penalty(reg, x)
    if use_exact_kl:
        np.testing.assert_allclose(add_penalty, reg_penalty, rtol=0, atol=1e-5)
    else:
        _, se = monte_carlo_kl(q, add.prior, kl_samples, seed=3)
        se_diff = np.sqrt(2.0) * float(np.sqrt(np.sum(se.numpy() ** 2))) / BATCH
        assert abs(add_penalty - reg_penalty) < 4 * BETA * se_diff


def test_monte_carlo_kl_matches_closed_form_within_4_se() -> None:
    q = tfd.MultivariateNormalTriL(loc=[[1.0, -2.0]], scale_tril=[[[0.5, 0.0], [0.3, 0.8]]])
    p = tfd.MultivariateNormalDiag(loc=[0.0, 0.0])
    estimate, se = monte_carlo_kl(q, p, 4000, seed=11)
    exact = tfd.kl_divergence(q, p)
    assert abs(float(estimate[0] - exact[0])) < 4 * float(se[0])


def test_custom_prior_is_used(digits_beta) -> None:
    prior = tfd.MultivariateNormalDiag(loc=tf.zeros(3), scale_diag=tf.fill([3], 2.0))
    vae = tfpvae.build_vae(
        input_shape=(8, 8), hidden_units=(16,), latent_dim=3, prior=prior, use_exact_kl=True
    )
    assert vae.prior is prior
    q, penalty = kl_penalty(vae, digits_beta[1][:BATCH])
    np.testing.assert_allclose(penalty, tfd.kl_divergence(q, prior).numpy().mean(), atol=1e-5)
    standard = tfd.kl_divergence(q, tfpvae.standard_normal_prior(3)).numpy().mean()
    assert abs(penalty - standard) > 0.1


def test_bad_priors_raise() -> None:
    with pytest.raises(ValueError, match=r"does not match latent_dim=2"):
        tfpvae.build_vae(prior=tfd.MultivariateNormalDiag(loc=tf.zeros(3)))
    with pytest.raises(ValueError, match=r"must be a tfd\.Distribution"):
        tfpvae.build_vae(prior=np.zeros(2))
    with pytest.raises(ValueError, match="no closed-form KL"):
        tfpvae.build_vae(
            use_exact_kl=True,
            prior=tfd.Independent(tfd.StudentT(3.0, tf.zeros(2), 1.0), 1),
        )


class TestTheReductionsTfpvaeCorrects:
    """What TFP's layers and Keras do on their own, measured on a batch of 16."""

    @staticmethod
    def _posterior(batch: int = BATCH) -> tfd.Distribution:
        loc = np.linspace(-2.0, 2.0, batch * 2, dtype="float32").reshape(batch, 2)
        return tfd.MultivariateNormalDiag(loc=loc, scale_diag=tf.fill([batch, 2], 0.5))

    def test_add_loss_exact_adds_the_batch_sum(self) -> None:
        prior = tfd.MultivariateNormalDiag(loc=tf.zeros(2))
        q = self._posterior()
        layer = tfpl.KLDivergenceAddLoss(prior, use_exact_kl=True)
        layer(q)
        kl = tfd.kl_divergence(q, prior).numpy()
        np.testing.assert_allclose(float(layer.losses[0]), kl.sum(), rtol=1e-6)

    def test_add_loss_sampled_adds_the_batch_mean(self) -> None:
        prior = tfd.MultivariateNormalDiag(loc=tf.zeros(2))
        q = self._posterior()
        z = q.sample(seed=5)
        layer = tfpl.KLDivergenceAddLoss(prior, test_points_fn=lambda _: z)
        layer(q)
        expected = (q.log_prob(z) - prior.log_prob(z)).numpy().mean()
        np.testing.assert_allclose(float(layer.losses[0]), expected, rtol=1e-6)

    def test_keras_divides_activity_regularisers_by_the_batch(self) -> None:
        inputs = tfk.Input(shape=(1,))
        outputs = tfk.layers.Dense(2, activity_regularizer=lambda t: tf.constant(32.0))(inputs)
        model = tfk.Model(inputs, outputs)
        model(np.zeros((BATCH, 1), "float32"))
        assert float(model.losses[0]) == pytest.approx(32.0 / BATCH)


def test_best_effort_kl_is_exact_where_tfp_has_it_and_sampled_elsewhere() -> None:
    """``KLEstimator(use_exact_kl=None)`` (the held-out bounds' rate) picks by what TFP has."""
    from tfpvae.components.kl import KLEstimator

    q = tfd.MultivariateNormalDiag(loc=[[0.5, -1.0]] * 4, scale_diag=[[0.3, 2.0]] * 4)
    gaussian = tfd.MultivariateNormalDiag(loc=tf.zeros(2))
    draws = q.sample(3, seed=(1, 2))  # three draws: an estimate would be visibly off
    exact = tfd.kl_divergence(q, gaussian).numpy()
    best = KLEstimator(use_exact_kl=None)
    np.testing.assert_allclose(best.per_example(q, gaussian, draws).numpy(), exact, atol=1e-5)
    mixture = tfd.MixtureSameFamily(
        tfd.Categorical(logits=[0.0, 0.0]),
        tfd.MultivariateNormalDiag(loc=[[1.0, 1.0], [-1.0, -1.0]]),
    )
    sampled = (q.log_prob(draws) - mixture.log_prob(draws)).numpy().mean(axis=0)
    np.testing.assert_allclose(best.per_example(q, mixture, draws).numpy(), sampled, rtol=1e-6)
