"""Discrete latents: the relaxed_categorical posterior (Gumbel-softmax)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import log_softmax, softmax

import tfpvae
from tfpvae._backend import tf, tfd
from tfpvae.components.categorical import (
    RelaxedOneHotCategoricalLayer,
    categorical_logits,
    relaxed_draws,
    uniform_categorical_prior,
)
from tfpvae.components.kl import KLTerm
from tfpvae.evaluation.plots import category_codes, plot_categories
from tfpvae.objectives import ELBO
from tfpvae.training.callbacks import TemperatureAnnealing

N, K = 3, 4
SMALL = dict(input_shape=(8, 8), hidden_units=(16,))


def _images(n: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.05, 0.95, (n, 8, 8)).astype("float32")


def _closed_form_kl(logits: np.ndarray) -> np.ndarray:
    """Σ_n Σ_k π_nk log(K π_nk) over the last two axes."""
    k = logits.shape[-1]
    return (softmax(logits, -1) * (log_softmax(logits, -1) + np.log(k))).sum(axis=(-2, -1))


def test_rate_is_the_categorical_kl_in_closed_form() -> None:
    logits = np.random.default_rng(0).normal(scale=2.0, size=(5, N, K)).astype("float32")
    q = RelaxedOneHotCategoricalLayer.new(tf.reshape(logits, [5, N * K]), K)
    kl_term = KLTerm(uniform_categorical_prior(N, K), use_exact_kl=True)
    rate = kl_term.per_example(q, None).numpy()
    np.testing.assert_allclose(rate, _closed_form_kl(logits), rtol=1e-5, atol=1e-6)
    assert (rate > 0.1).all()
    np.testing.assert_allclose(q.mean().numpy(), softmax(logits, -1).reshape(5, -1), rtol=1e-6)


def test_relaxed_draws_approach_one_hot_as_the_temperature_falls() -> None:
    logits = np.random.default_rng(1).normal(size=(1, 1, 10)).astype("float32")
    q = RelaxedOneHotCategoricalLayer.new(tf.reshape(logits, [1, 10]), 10)
    tf.random.set_seed(5)
    max_prob = {
        tau: relaxed_draws(q, 2000, tf.constant(tau)).numpy().max(axis=-1).mean()
        for tau in (5.0, 1.0, 0.1, 0.01)
    }
    # 1 - E[max] ≈ τ ln 2 × (density of the gap between the two largest perturbed logits
    # at 0, about 1 here): 0.97 at τ = 0.05, so the > 0.99 check needs τ = 0.01.
    assert max_prob[5.0] < 0.9 and max_prob[0.01] > 0.99
    assert max_prob[5.0] < max_prob[1.0] < max_prob[0.1] < max_prob[0.01]
    # Gumbel-max: the argmax of a relaxed draw is Categorical(π) at any τ (within 4 SE).
    draws = relaxed_draws(q, 4000, tf.constant(1.0)).numpy()[:, 0]
    frequency = np.bincount(draws.argmax(-1), minlength=10) / len(draws)
    pi = softmax(logits[0, 0])
    assert np.all(np.abs(frequency - pi) < 4 * np.sqrt(pi * (1 - pi) / len(draws)) + 1e-3)


def test_discrete_vae_trains_saves_and_evaluates(tmp_path) -> None:
    vae = tfpvae.build_vae(
        posterior="relaxed_categorical", categorical_dims=N, categories=K, temperature=2.0, **SMALL
    )
    assert vae.config.latent_dim == N * K and float(vae.temperature.numpy()) == 2.0
    assert vae.temperature.ref() not in {v.ref() for v in vae.trainable_variables}
    x = _images()
    # The objective's rate and the KL layer's loss are the closed form at the encoder's logits.
    terms = vae.objective.terms(tf.constant(x))
    q = vae.encoder(x)
    expected = _closed_form_kl(categorical_logits(q).numpy())
    np.testing.assert_allclose(terms.rate.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(tf.add_n(vae.encoder.losses)), expected.mean(), rtol=1e-5)

    # S > 1 relaxed draws are reparameterised: the distortion alone reaches the encoder.
    with tf.GradientTape() as tape:
        distortion = tf.reduce_mean(ELBO(vae.parts, n_samples=3).terms(tf.constant(x)).distortion)
    kernel = vae.encoder.get_layer("posterior_params").kernel
    assert float(tf.reduce_max(tf.abs(tape.gradient(distortion, kernel)))) > 0

    vae.run_eagerly = True  # the same step, without the tracing (the CLI test fits with a trace)
    weights = [w.numpy().copy() for w in vae.encoder.trainable_weights]
    vae.temperature.assign(0.5)
    for _ in range(2):
        assert np.isfinite(vae.train_on_batch(x, return_dict=True)["loss"])
    trained = zip(weights, vae.encoder.trainable_weights, strict=True)
    assert all(not np.allclose(start, w.numpy()) for start, w in trained)
    assert float(vae.temperature.numpy()) == 0.5  # not trained

    bound = tfpvae.iwae_bound(vae, x[:6], k=5, seed=1)
    terms = tfpvae.elbo(vae, x[:6], seed=1)
    q = vae.encoder(x[:6])
    np.testing.assert_allclose(
        terms.rate, _closed_form_kl(categorical_logits(q).numpy()), rtol=1e-5, atol=1e-6
    )
    assert np.isfinite(bound).all() and (bound >= terms.elbo - 5 * np.abs(terms.elbo).std()).all()

    tfpvae.save(vae, tmp_path)
    again = tfpvae.load(tmp_path)
    assert float(again.temperature.numpy()) == 0.5 and again.config == vae.config
    np.testing.assert_allclose(tfpvae.iwae_bound(again, x[:6], k=5, seed=1), bound, rtol=1e-6)

    fig = plot_categories(vae)
    assert fig.axes[0].get_xlabel() == "class of variable 2"
    fig.clf()


def test_category_codes_are_one_hot_where_they_vary() -> None:
    codes, rows, cols = category_codes(1, 5)
    np.testing.assert_array_equal(codes, np.eye(5))
    assert (rows, cols) == (1, 5)
    codes, rows, cols = category_codes(3, 4)
    grid = codes.reshape(4, 4, 3, 4)
    assert (rows, cols) == (4, 4)
    np.testing.assert_array_equal(grid[2, 1, 0], np.eye(4)[2])  # row: first variable
    np.testing.assert_array_equal(grid[2, 1, 1], np.eye(4)[1])  # column: second variable
    np.testing.assert_allclose(grid[:, :, 2], 0.25)  # the rest at the prior mean


def test_temperature_schedule_is_exponential() -> None:
    schedule = TemperatureAnnealing(2.0, 0.5, 2)
    taus = [schedule.temperature_at(e) for e in range(4)]
    np.testing.assert_allclose(taus, [2.0, 1.0, 0.5, 0.5])
    assert TemperatureAnnealing(3.0, 0.5, 0).temperature_at(7) == 3.0
    with pytest.raises(ValueError, match="must be a finite number > 0"):
        TemperatureAnnealing(1.0, 0.0, 3)
    schedule.set_model(SimpleNamespace(temperature=None))  # a Gaussian VAE has none
    with pytest.raises(ValueError, match="relaxed_categorical"):
        schedule.on_train_begin()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(latent_dim=5), "set latent_dim=12 or leave it out"),
        (dict(prior="mixture"), "use prior='standard_normal'"),
        (dict(categories=1), "categories must be at least 2"),
        (dict(temperature=0.0), "temperature must be a finite number > 0"),
    ],
)
def test_bad_discrete_configs_say_what_to_do(fields, message) -> None:
    with pytest.raises(ValueError, match=message):
        tfpvae.VAEConfig(
            **{"posterior": "relaxed_categorical", "categorical_dims": N, "categories": K, **fields}
        )


def test_config_round_trip_and_uniform_prior() -> None:
    config = tfpvae.VAEConfig(
        posterior="relaxed_categorical", categorical_dims=2, categories=5, temperature=0.7
    )
    assert config.latent_dim == 10 and tfpvae.VAEConfig.from_json(config.to_json()) == config
    prior = uniform_categorical_prior(2, 5)
    sample = prior.sample(3, seed=1).numpy()
    assert set(np.unique(sample)) == {0.0, 1.0} and (sample.sum(-1) == 2).all()
    np.testing.assert_allclose(prior.log_prob(sample).numpy(), 2 * np.log(1 / 5), rtol=1e-6)
    assert isinstance(prior, tfd.Distribution)


def test_discrete_flags_reach_their_fields() -> None:
    from tfpvae.interfaces.cli import build_parser, resolve_train_options

    args = build_parser().parse_args(
        ["train", "--posterior", "relaxed_categorical", "--categorical-dims", "2",
         "--categories", "3", "--temperature", "1.5", "--temperature-end", "0.3",
         "--temperature-epochs", "4", "--out", "o"]
    )  # fmt: skip
    config, settings = resolve_train_options(args)
    assert (config.posterior, config.categorical_dims, config.categories) == (
        "relaxed_categorical", 2, 3
    )  # fmt: skip
    assert (config.temperature, config.latent_dim) == (1.5, 6)
    assert (settings.temperature_end, settings.temperature_epochs) == (0.3, 4)


@pytest.mark.slow(seconds=25)
def test_cli_trains_a_discrete_vae_with_a_temperature_schedule(tmp_path, capsys) -> None:
    from tfpvae.interfaces.cli import main
    from tfpvae.interfaces.run import read_history

    out = tmp_path / "run"
    argv = ["train", "--posterior", "relaxed_categorical", "--categorical-dims", "1",
            "--categories", "4", "--temperature", "2", "--temperature-end", "0.5",
            "--temperature-epochs", "1", "--epochs", "2", "--limit", "64", "--hidden-units", "8",
            "--k", "2", "--quiet"]  # fmt: skip
    assert main([*argv, "--out", str(out)]) == 0
    figures = {p.stem for p in (out / "figures").glob("*.png")}
    assert {"categories", "prior_samples", "reconstructions"} <= figures
    assert not figures & {"manifold", "latent", "latent_before_after"}
    assert read_history(out)["temperature"] == [2.0, 0.5]
    gaussian = ["train", "--temperature-epochs", "2", "--limit", "64", "--hidden-units", "8"]
    assert main([*gaussian, "--out", str(tmp_path / "g")]) == 2
    assert "needs posterior='relaxed_categorical'" in capsys.readouterr().err


def test_held_out_draws_of_each_image_do_not_depend_on_the_batching() -> None:
    """The traced bound slices q per image (static batch shapes), so a categorical
    latent's draws, and each image's bound, are the same for any batch size."""
    vae = tfpvae.build_vae(
        posterior="relaxed_categorical", categorical_dims=N, categories=K, temperature=2.0, **SMALL
    )
    x = _images()[:7]
    whole = tfpvae.evaluation.bounds.iwae_bound(vae, x, k=4, batch_size=7)
    split = tfpvae.evaluation.bounds.iwae_bound(vae, x, k=4, batch_size=3)
    np.testing.assert_allclose(split, whole, rtol=1e-5)
