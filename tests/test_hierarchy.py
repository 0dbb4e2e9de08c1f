"""Two stochastic layers, ``latent_dim=(z1, z2)``: the bound by hand, the one-layer limit,
training, saving, serving, figures, the CLI and the refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as tfk
from conftest import numpy_softplus
from scipy import stats
from scipy.special import logsumexp

import tfpvae
from tfpvae._backend import tfd, tfpl
from tfpvae.components.draws import image_keys, per_image_draws
from tfpvae.components.hierarchy import (
    BottomLatent,
    GaussianConditional,
    TwoLayerPosterior,
    TwoLayerPrior,
)

D1, D2 = 3, 2
SMALL = dict(likelihood="bernoulli", input_shape=(8, 8), hidden_units=(16,), top_hidden_units=(8,))


@pytest.fixture(scope="module")
def x(digits) -> np.ndarray:
    (x_train, _), _ = digits
    return tfpvae.prepare(x_train[:128], likelihood="bernoulli")


def _two_layer(objective: str = "iwae", **fields) -> tfpvae.VAE:
    return tfpvae.build_vae(latent_dim=(D1, D2), posterior="diag", objective=objective,
                            **{**SMALL, **fields})  # fmt: skip


def _numpy_gaussian(net: GaussianConditional, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """loc and scale of a conditional network, from its weights in NumPy (float64)."""
    h = u.astype(np.float64)
    for dense in net.hidden:
        kernel, bias = dense.get_weights()
        h = np.tanh(h @ kernel + bias)
    kernel, bias = net.out.get_weights()
    out = h @ kernel + bias
    return out[..., : net.size], numpy_softplus(out[..., net.size :]) + 1e-5


def _log_weights_by_hand(vae: tfpvae.VAE, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """log p(x|z1) + log p(z1|z2) + log p(z2) - log q(z1|x) - log q(z2|z1), ``[K, batch]``."""
    z = z.astype(np.float64)
    z1, z2 = z[..., :D1], z[..., D1:]
    params = vae.parts.encoder.params(x).numpy().astype(np.float64)  # [batch, 2 d1]
    loc1, scale1 = params[:, :D1], numpy_softplus(params[:, D1:])
    log_q1 = stats.norm.logpdf(z1, loc1, scale1).sum(-1)
    loc2, scale2 = _numpy_gaussian(vae.encoder.get_layer("approx_posterior").top, z1)
    log_q2 = stats.norm.logpdf(z2, loc2, scale2).sum(-1)
    log_p2 = stats.norm.logpdf(z2).sum(-1)
    loc_p1, scale_p1 = _numpy_gaussian(vae.prior_layer.bottom, z2)
    log_p1 = stats.norm.logpdf(z1, loc_p1, scale_p1).sum(-1)
    k, batch = z.shape[:2]
    logits = vae.parts.decoder.params(z.reshape(k * batch, -1).astype(np.float32)).numpy()
    logits = logits.astype(np.float64).reshape(k, batch, -1)
    flat_x = np.broadcast_to(x.reshape(1, batch, -1), logits.shape)
    log_lik = (flat_x * logits - numpy_softplus(logits)).sum(-1)
    return log_lik + log_p1 + log_p2 - log_q1 - log_q2


def test_the_bound_equals_the_model_written_out_by_hand(x) -> None:
    vae = _two_layer(iwae_k=7)
    xb, k = x[:16], 7
    keys = image_keys(3, 0, len(xb), stream=1)
    z = per_image_draws(vae.posterior(xb), k, keys).numpy()  # the held-out draws
    by_hand = logsumexp(_log_weights_by_hand(vae, xb, z), axis=0) - np.log(k)
    np.testing.assert_allclose(tfpvae.iwae_bound(vae, xb, k=k, seed=3), by_hand, rtol=1e-5)
    # The training objectives at a fixed seed draw z = q.sample(K, seed): the same sums.
    seed = tf.constant([5, 6], tf.int32)
    z = vae.posterior(xb).sample(k, seed=seed).numpy()
    log_w = _log_weights_by_hand(vae, xb, z)
    loss = vae.objective.terms(tf.constant(xb), seed).loss.numpy()
    np.testing.assert_allclose(loss, np.log(k) - logsumexp(log_w, axis=0), rtol=1e-5)
    elbo = _two_layer("elbo")
    z = elbo.posterior(xb).sample(1, seed=seed).numpy()
    np.testing.assert_allclose(
        elbo.objective.terms(tf.constant(xb), seed).loss.numpy(),
        -_log_weights_by_hand(elbo, xb, z)[0],
        rtol=1e-5,
    )


def test_draws_follow_q_z1_given_x_then_q_z2_given_z1(x) -> None:
    vae = _two_layer()
    xb, n = x[:4], 2000
    z = per_image_draws(vae.posterior(xb), n, image_keys(0, 0, 4, stream=1)).numpy()
    params = vae.parts.encoder.params(xb).numpy()
    eps1 = (z[..., :D1] - params[:, :D1]) / numpy_softplus(params[:, D1:])
    loc2, scale2 = _numpy_gaussian(vae.encoder.get_layer("approx_posterior").top, z[..., :D1])
    eps2 = (z[..., D1:] - loc2) / scale2
    for eps in (eps1, eps2):  # standard normal residuals: mean 0 and variance 1 within 4 SE
        flat = eps.reshape(n, -1)
        assert np.all(np.abs(flat.mean(0)) < 4 / np.sqrt(n))
        assert np.all(np.abs(flat.var(0) - 1) < 4 * np.sqrt(2 / n))


def _one_layer_limit(vae: tfpvae.VAE, one: tfpvae.VAE) -> None:
    """Gives ``vae`` the weights of ``one`` and q(z2|z1) = p(z2), p(z1|z2) = N(0, I)."""
    mine = [layer for layer in vae.encoder.layers if layer.weights]
    theirs = [layer for layer in one.encoder.layers if layer.weights]
    for a, b in zip(mine[:-1], theirs, strict=True):
        a.set_weights(b.get_weights())
    for a, b in zip(
        [la for la in vae.decoder.layers if la.weights],
        [la for la in one.decoder.layers if la.weights],
        strict=True,
    ):
        a.set_weights(b.get_weights())
    unit = np.log(np.expm1(1.0 - 1e-5))  # softplus(raw) + 1e-5 = 1
    for net in (mine[-1].top, vae.prior_layer.bottom):
        kernel = net.out.get_weights()[0]
        net.out.set_weights([np.zeros_like(kernel), np.r_[np.zeros(net.size), [unit] * net.size]])


def test_with_the_top_layer_removed_it_is_the_one_layer_model(x) -> None:
    xb = x[:16]
    for objective in ("iwae", "elbo"):
        one = tfpvae.build_vae(latent_dim=D1, posterior="diag", objective=objective,
                               fast_path=False, **{
            k: v for k, v in SMALL.items() if k != "top_hidden_units"})  # fmt: skip
        two = _two_layer(objective)
        _one_layer_limit(two, one)
        seed = tf.constant([1, 2], tf.int32)
        np.testing.assert_allclose(
            two.objective.terms(tf.constant(xb), seed).loss.numpy(),
            one.objective.terms(tf.constant(xb), seed).loss.numpy(),
            rtol=1e-5,
        )
    np.testing.assert_allclose(
        tfpvae.iwae_bound(two, xb, k=20, seed=4), tfpvae.iwae_bound(one, xb, k=20, seed=4),
        rtol=1e-5,
    )  # fmt: skip


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_a_short_training_run_lowers_the_loss(x, objective) -> None:
    vae = _two_layer(objective, learning_rate=3e-3)
    before = tfpvae.iwae_bound(vae, x, k=5).mean()
    history = vae.fit(x, epochs=3, batch_size=32, verbose=0).history
    assert history["loss"][-1] < history["loss"][0] - 1.0
    assert tfpvae.iwae_bound(vae, x, k=5).mean() > before + 1.0
    assert np.all(np.isfinite(history["rate"])) and history["rate"][-1] > 0


def test_codes_figures_and_samples_are_the_top_layers(x) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from tfpvae.evaluation import plots

    vae = _two_layer()
    assert (vae.latent_dim, vae.latent_dims, vae.parts.latent_dim) == (D2, (D1, D2), D1 + D2)
    codes = vae.encode(x[:5]).numpy()
    assert codes.shape == (5, D2)
    z1_mean = vae.parts.encoder.params(x[:5]).numpy()[:, :D1]  # the diagonal q's loc
    loc2, _ = _numpy_gaussian(vae.encoder.get_layer("approx_posterior").top, z1_mean)
    np.testing.assert_allclose(codes, loc2, rtol=1e-5, atol=1e-6)
    # A code is decoded at z1 = E[z1 | z2]; a whole z at its own z1.
    loc_p1, _ = _numpy_gaussian(vae.prior_layer.bottom, codes)
    whole = np.concatenate([loc_p1, codes], axis=1).astype(np.float32)
    np.testing.assert_allclose(vae.decode(codes), vae.decode(whole), atol=1e-6)
    assert vae.sample(6, seed=1).shape == (6, 8, 8)
    np.testing.assert_array_equal(vae.sample(3, seed=1), vae.sample(3, seed=1))
    labels = np.arange(40) % 10
    for figure in (
        plots.plot_latent(vae, x[:40], labels, [str(i) for i in range(10)]),
        plots.plot_manifold(vae, n=4),
    ):
        assert figure.axes
        matplotlib.pyplot.close(figure)
    with pytest.raises(ValueError, match="codes of 2"):
        vae.decode(np.zeros((1, 4), np.float32))


def test_save_load_and_serving_round_trip(x, tmp_path) -> None:
    vae = _two_layer()
    vae.fit(x[:64], epochs=1, batch_size=32, verbose=0)
    bound = tfpvae.iwae_bound(vae, x[:16], k=5)
    tfpvae.save(vae, tmp_path / "files")
    saved = json.loads((tmp_path / "files" / "config.json").read_text())
    assert saved["model"]["latent_dim"] == [D1, D2]
    again = tfpvae.load(tmp_path / "files")
    assert again.config == vae.config
    np.testing.assert_array_equal(tfpvae.iwae_bound(again, x[:16], k=5), bound)
    vae.save(tmp_path / "saved")
    keras = tfk.models.load_model(tmp_path / "saved")
    np.testing.assert_array_equal(tfpvae.iwae_bound(keras, x[:16], k=5), bound)
    served = tf.saved_model.load(str(tmp_path / "saved"))
    codes = served.signatures["encode"](images=tf.constant(x[:4]))["mean"]
    np.testing.assert_allclose(codes, vae.encode(x[:4]), atol=1e-6)
    np.testing.assert_allclose(
        served.signatures["decode"](z=codes)["mean"], vae.decode(codes), atol=1e-6
    )
    drawn = served.signatures["sample"](n=tf.constant(3), seed=tf.constant([1, 2]))
    assert drawn["z"].shape == (3, D2) and drawn["images"].shape == (3, 8, 8)
    elbo = served.signatures["elbo"](images=tf.constant(x[:4]), seed=tf.constant([0, 0]))
    np.testing.assert_allclose(elbo["elbo"], tfpvae.elbo(vae, x[:4]).elbo, rtol=1e-5)


def test_a_users_own_two_layer_networks_train_save_and_load(x, tmp_path) -> None:
    encoder = tfk.Sequential([
        tfk.layers.Flatten(input_shape=(8, 8)),
        tfk.layers.Dense(TwoLayerPosterior.params_size((D1, D2), "full")),
        TwoLayerPosterior((D1, D2), "full", (8,)),
    ])  # fmt: skip
    decoder = tfk.Sequential([
        BottomLatent(D1, input_shape=(D1 + D2,)),
        tfk.layers.Dense(64),
        tfpl.IndependentBernoulli((8, 8)),
    ])  # fmt: skip
    vae = tfpvae.VAE(encoder, decoder, TwoLayerPrior((D1, D2), (8,)), objective="iwae")
    vae.compile(optimizer="adam")
    vae.fit(x[:64], epochs=1, batch_size=32, verbose=0)
    tfpvae.save(vae, tmp_path)
    np.testing.assert_array_equal(
        tfpvae.iwae_bound(tfpvae.load(tmp_path), x[:8], k=3), tfpvae.iwae_bound(vae, x[:8], k=3)
    )
    with pytest.raises(ValueError, match="two-layer posterior and prior"):
        tfpvae.VAE(encoder, decoder)  # a flat N(0, I) prior under a two-layer posterior
    with pytest.raises(ValueError, match="no closed-form KL"):
        tfpvae.VAE(encoder, decoder, TwoLayerPrior((D1, D2), (8,)), use_exact_kl=True)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(latent_dim=(4, 2, 1)), "pair"),
        (dict(latent_dim=(4,)), "pair"),
        (dict(latent_dim=(0, 2)), "two positive sizes"),
        (dict(latent_dim=(4, -1)), "two positive sizes"),
        (dict(latent_dim=(4, 2.5)), "pair"),
        (dict(latent_dim=(4, 2), posterior="iaf"), "posterior='full' or 'diag'"),
        (dict(latent_dim=(4, 2), posterior="relaxed_categorical"), "posterior='full' or 'diag'"),
        (dict(latent_dim=(4, 2), prior="vamp"), "prior='standard_normal'"),
        (dict(latent_dim=(4, 2), prior="mixture"), "prior='standard_normal'"),
        (dict(latent_dim=(4, 2), use_exact_kl=True), "no closed-form KL"),
        (dict(latent_dim=(4, 2), top_hidden_units=(0,)), "top_hidden_units"),
    ],
)
def test_bad_two_layer_configs_are_refused(fields, message) -> None:
    with pytest.raises(ValueError, match=message):
        tfpvae.VAEConfig(**fields)


def test_a_prior_of_ones_own_is_refused_with_two_layers() -> None:
    with pytest.raises(ValueError, match="leave prior out"):
        tfpvae.build_vae(latent_dim=(4, 2), prior=tfd.MultivariateNormalDiag(tf.zeros(6)), **SMALL)


def test_config_json_round_trip_keeps_the_pair() -> None:
    config = tfpvae.VAEConfig(latent_dim=[5, 3], top_hidden_units=[4])
    assert config.latent_dim == (5, 3) and config.latent_dims == (5, 3)
    assert tfpvae.VAEConfig.from_json(config.to_json()) == config
    assert tfpvae.VAEConfig(latent_dim=4).latent_dims == (4,)


@pytest.mark.slow(seconds=40)
def test_cli_train_evaluate_plot_with_two_layers(tmp_path, capsys) -> None:
    from tfpvae.interfaces.cli import main

    out = tmp_path / "run"
    config = tmp_path / "run.toml"
    config.write_text('latent-dim = "4,2"\nhidden_units = [16]\ntop_hidden_units = [8]\n')
    code = main(["train", "--config", str(config), "--objective", "iwae", "--epochs", "1",
                 "--limit", "100", "--k", "3", "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["latent_dim"] == [4, 2] and saved["model"]["top_hidden_units"] == [8]
    assert (out / "figures" / "latent.png").is_file()
    assert main(["evaluate", str(out), "--k", "4"]) == 0
    assert json.loads((out / "metrics.json").read_text())["iwae_k"] == 4
    (out / "figures" / "manifold.png").unlink()
    assert main(["plot", str(out)]) == 0 and (out / "figures" / "manifold.png").is_file()
    argv = ["train", "--latent-dim", "4,2,1", "--epochs", "1", "--out", str(tmp_path / "bad")]
    assert main(argv) == 2
    assert "pair (z1, z2)" in capsys.readouterr().err


def test_cli_parses_one_or_two_sizes() -> None:
    from tfpvae.interfaces.cli import build_parser, resolve_train_options

    for flag, expected in (("3", 3), ("8,4", (8, 4))):
        args = build_parser().parse_args(["train", "--latent-dim", flag, "--out", "o"])
        assert resolve_train_options(args)[0].latent_dim == expected
