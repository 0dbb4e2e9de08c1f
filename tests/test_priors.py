"""Registered priors: the learned mixture and the VampPrior.

Their densities are checked against SciPy, their variables against Keras's
bookkeeping (trained, saved, checkpointed), and the KL against them is sampled.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import numpy_softplus
from scipy.special import logsumexp, softmax
from scipy.stats import multivariate_normal

import tfpvae
from tfpvae._backend import tf, tfd
from tfpvae.components.kl import KLTerm
from tfpvae.components.priors import MIN_SCALE, PRIORS, MixturePrior
from tfpvae.evaluation.plots import plot_prior_samples
from tfpvae.io.saving import CONFIG_FILE
from tfpvae.objectives import ELBO
from tfpvae.training.checkpoints import Checkpoints

SMALL = dict(input_shape=(8, 8), hidden_units=(16,))


def _images(n: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.05, 0.95, (n, 8, 8)).astype("float32")


def test_mixture_log_prob_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    prior = MixturePrior(latent_dim=3, components=4)
    loc, raw, logits = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=4)
    for variable, value in ((prior.loc, loc), (prior.raw_scale, raw), (prior.logits, logits)):
        variable.assign(value.astype("float32"))
    z = rng.normal(scale=2.0, size=(7, 3)).astype("float32")
    scale = numpy_softplus(raw.astype("float32")) + MIN_SCALE
    log_w = np.log(softmax(logits))
    expected = logsumexp(
        [
            log_w[k] + multivariate_normal(loc[k], np.diag(scale[k] ** 2)).logpdf(z)
            for k in range(4)
        ],
        axis=0,
    )
    np.testing.assert_allclose(prior.distribution().log_prob(z).numpy(), expected, rtol=1e-5)


def test_mixture_starts_spread_out_with_unit_scales() -> None:
    a, b = MixturePrior(2, 5), MixturePrior(2, 5)
    np.testing.assert_array_equal(a.loc.numpy(), b.loc.numpy())  # fixed seed
    distances = np.linalg.norm(a.loc.numpy()[:, None] - a.loc.numpy()[None], axis=-1)
    assert distances[np.triu_indices(5, 1)].min() > 0.1
    np.testing.assert_allclose(a.distribution().components_distribution.stddev(), 1.0, rtol=1e-5)


def test_vamp_log_prob_is_the_encoders_gaussians_at_the_pseudo_inputs() -> None:
    vae = tfpvae.build_vae(prior="vamp", prior_components=3, latent_dim=2, **SMALL)
    layer = vae.prior_layer
    u = 1.0 / (1.0 + np.exp(-layer.pseudo_logits.numpy()))
    assert u.shape == (3, 8, 8) and u.min() > 0.0 and u.max() < 1.0
    np.testing.assert_allclose(layer.pseudo_inputs().numpy(), u, rtol=1e-6)
    q = vae.encoder(u.astype("float32"))
    means, covariances = q.mean().numpy(), q.covariance().numpy()
    z = np.random.default_rng(1).normal(size=(6, 2)).astype("float32")
    expected = logsumexp(
        [multivariate_normal(means[k], covariances[k]).logpdf(z) for k in range(3)], axis=0
    ) - np.log(3)
    np.testing.assert_allclose(vae.prior.log_prob(z).numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("name", ["mixture", "vamp"])
def test_learned_prior_trains_saves_checkpoints_and_evaluates(tmp_path, name) -> None:
    vae = tfpvae.build_vae(
        prior=name, prior_components=3, posterior="diag", learning_rate=0.02, **SMALL
    )
    assert type(vae.objective) is ELBO  # never the fused N(0, I) path
    own = vae.prior_layer.trainable_variables
    tracked = {v.ref() for v in vae.trainable_variables}
    assert own and all(v.ref() in tracked for v in own)
    before = [v.numpy().copy() for v in own]
    x = _images()
    vae.run_eagerly = True  # the same step, without 5 s of tracing
    for _ in range(3):
        logs = vae.train_on_batch(x, return_dict=True)
    assert np.isfinite(logs["loss"]) and np.isfinite(logs["rate"])
    for variable, start in zip(own, before, strict=True):
        assert np.abs(variable.numpy() - start).max() > 1e-4, variable.name

    z = np.random.default_rng(2).normal(size=(5, 2)).astype("float32")
    bound = tfpvae.iwae_bound(vae, x[:6], k=4, seed=3)
    terms = tfpvae.elbo(vae, x[:6], n_samples=2, seed=3)
    assert np.isfinite(bound).all() and np.isfinite(terms.elbo).all()
    assert (terms.rate > -5).all()  # sampled: may dip below 0 for an image, never far
    plot_prior_samples(vae, n=4, cols=4).clf()  # decodes draws from the learned prior

    tfpvae.save(vae, tmp_path / "model")
    assert '"custom_prior": false' in (tmp_path / "model" / CONFIG_FILE).read_text()
    again = tfpvae.load(tmp_path / "model")  # rebuilt from the config: no prior= needed
    assert again.config.prior == name
    np.testing.assert_array_equal(again.prior.log_prob(z).numpy(), vae.prior.log_prob(z).numpy())
    np.testing.assert_allclose(tfpvae.iwae_bound(again, x[:6], k=4, seed=3), bound, rtol=1e-6)

    checkpoints = Checkpoints(vae, tmp_path / "ckpt")
    checkpoints.write(1)
    saved = [v.numpy().copy() for v in own]
    for variable in own:
        variable.assign(tf.zeros_like(variable))
    checkpoints.restore()
    for variable, value in zip(own, saved, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)


def test_exact_kl_with_a_learned_prior_is_refused() -> None:
    for name in ("mixture", "vamp"):
        with pytest.raises(ValueError, match="use the sampled KL"):
            tfpvae.VAEConfig(prior=name, use_exact_kl=True)
    with pytest.raises(ValueError, match="use the sampled KL"):
        KLTerm(MixturePrior(2, 3), use_exact_kl=True)


def test_bad_prior_choices_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="unknown prior 'flat'; choose one of: standard_normal"):
        tfpvae.VAEConfig(prior="flat")
    with pytest.raises(ValueError, match="prior_components must be a positive integer"):
        tfpvae.VAEConfig(prior="mixture", prior_components=0)
    user_prior = tfd.MultivariateNormalDiag(tf.zeros(2))
    with pytest.raises(ValueError, match="not both"):
        tfpvae.build_vae_from_config(tfpvae.VAEConfig(prior="mixture", **SMALL), prior=user_prior)


def test_config_round_trip_and_registry() -> None:
    config = tfpvae.VAEConfig(prior="vamp", prior_components=7)
    assert tfpvae.VAEConfig.from_json(config.to_json()) == config
    assert PRIORS.names() == ["standard_normal", "mixture", "vamp"]
    assert not PRIORS.get("standard_normal").learned and PRIORS.get("mixture").learned


def test_prior_flags_and_config_file_reach_the_config(tmp_path, capsys) -> None:
    from tfpvae.interfaces.cli import build_parser, main, resolve_train_options

    (tmp_path / "c.toml").write_text('prior = "vamp"\nprior-components = 4\n')
    argv = ["train", "--config", str(tmp_path / "c.toml"), "--prior-components", "6"]
    config, _ = resolve_train_options(build_parser().parse_args([*argv, "--out", "o"]))
    assert (config.prior, config.prior_components, config.latent_dim) == ("vamp", 6, 2)
    assert main(["train", "--prior", "mixture", "--exact-kl", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "use the sampled KL" in err and len(err.strip().splitlines()) == 1
