"""Planar and radial flow posteriors: log q of their own draws, training, saving, export,
the bounds, the figures, the CLI and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import tfpvae
from tfpvae._backend import tf, tfk, tfpl
from tfpvae.components.bijectors import Planar, Radial
from tfpvae.components.planar_radial import PlanarPosterior, RadialPosterior

D, K = 3, 2
SMALL = dict(input_shape=(8, 8), hidden_units=(16,), latent_dim=D)
FAMILIES = ["planar", "radial"]


def _softplus(a: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, a)


def _planar_numpy(z: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One planar flow of raw ``p = (u, w, b)`` in float64: (f(z), log|det|)."""
    u, w, b = p[:, :D], p[:, D : 2 * D], p[:, 2 * D :]
    wu, ww = np.sum(w * u, 1, keepdims=True), np.sum(w * w, 1, keepdims=True)
    u_hat = u + (-1.0 + _softplus(wu) - wu) * w / ww
    t = np.tanh(np.sum(w * z, -1, keepdims=True) + b)
    log_det = np.log(np.abs(1.0 + (1.0 - t**2) * np.sum(w * u_hat, 1, keepdims=True)))
    return z + u_hat * t, log_det[..., 0]


def _radial_numpy(z: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One radial flow of raw ``p = (z0, α̃, β̃)`` in float64: (f(z), log|det|)."""
    z0, alpha = p[:, :D], _softplus(p[:, D : D + 1])
    beta = -alpha + _softplus(p[:, D + 1 :])
    r = np.linalg.norm(z - z0, axis=-1, keepdims=True)
    h, dh = 1.0 / (alpha + r), -1.0 / (alpha + r) ** 2
    log_det = (D - 1) * np.log(1.0 + beta * h) + np.log(1.0 + beta * h + beta * dh * r)
    return z + beta * h * (z - z0), log_det[..., 0]


NUMPY_FLOWS = {"planar": (_planar_numpy, 2 * D + 1), "radial": (_radial_numpy, D + 2)}


def _vae(posterior: str, **kwargs):
    return tfpvae.build_vae(**SMALL, posterior=posterior, num_flows=K, **kwargs)


@pytest.mark.parametrize("posterior", FAMILIES)
def test_log_q_of_draws_is_the_base_density_minus_the_numpy_log_dets(posterior, digits_beta):
    """log q(z|x) = log N(z₀; μ, σ²) − Σ_k log|det ∂f_k| from the encoder's numbers, in NumPy,
    at draws through the flows (TFP's cached forward pass) and at fresh copies (the inverse)."""
    vae = _vae(posterior)
    x = digits_beta[1][:5]
    params_model = tfk.Model(vae.encoder.inputs, vae.encoder.get_layer("posterior_params").output)
    p = params_model(x).numpy().astype(np.float64)
    flow, size = NUMPY_FLOWS[posterior]
    assert p.shape == (5, 2 * D + K * size)
    mu, sigma = p[:, :D], _softplus(p[:, D : 2 * D]) + 1e-5
    z0 = mu + sigma * np.random.default_rng(0).standard_normal((4, 5, D))  # [n, batch, d]
    z, log_q = z0, stats.norm.logpdf(z0, mu, sigma).sum(-1)
    for k in range(K):
        z, log_det = flow(z, p[:, 2 * D + k * size : 2 * D + (k + 1) * size])
        log_q = log_q - log_det
    q = vae.posterior(x)
    draws = q.bijector.forward(tf.constant(z0, tf.float32))
    np.testing.assert_allclose(draws.numpy(), z, rtol=1e-5, atol=1e-5)
    assert np.abs(log_q - stats.norm.logpdf(z0, mu, sigma).sum(-1)).max() > 0.05  # not identity
    np.testing.assert_allclose(q.log_prob(draws).numpy(), log_q, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(q.log_prob(tf.constant(z, tf.float32)), log_q, atol=2e-4)
    # vae.encode: the base mean pushed through the flows.
    point = mu
    for k in range(K):
        point, _ = flow(point, p[:, 2 * D + k * size : 2 * D + (k + 1) * size])
    np.testing.assert_allclose(vae.encode(x).numpy(), point, rtol=1e-5, atol=1e-5)


@pytest.mark.slow(seconds=6)
@pytest.mark.parametrize(
    ("posterior", "objective"), [("planar", "elbo"), ("radial", "iwae")], ids=FAMILIES
)
def test_a_few_epochs_lower_the_loss(posterior, objective, digits_beta, monkeypatch) -> None:
    """Training lowers the loss, and scores its draws from the cached forward pass: the
    flows' inverses are never called."""

    def no_inverse(self, y):
        raise AssertionError(f"{type(self).__name__}.inverse called while training")

    for bijector in (Planar, Radial):
        monkeypatch.setattr(bijector, "_inverse", no_inverse)
    tfk.utils.set_random_seed(0)
    vae = _vae(posterior, objective=objective, iwae_k=3, learning_rate=3e-3)
    history = vae.fit(digits_beta[0][:256], epochs=4, batch_size=64, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0] - 1.0


@pytest.mark.slow(seconds=8)
@pytest.mark.parametrize(
    ("posterior", "figures"), [("planar", True), ("radial", False)], ids=FAMILIES
)
def test_save_load_bounds_figures_and_export(posterior, figures, tmp_path, digits_beta) -> None:
    """Saved weights read back with the same q; the bounds and figures (codes by
    ``vae.encode``, the same for both flows) work; the SavedModel serves the codes and the
    per-image bound (a flow has no scale to serve)."""
    from tfpvae.interfaces.run import RunData, write_figures

    x = digits_beta[1][:40]
    vae = _vae(posterior)
    tfpvae.save(vae, tmp_path / "model")
    again = tfpvae.load(tmp_path / "model")
    assert again.config == vae.config and again.parts.family is vae.parts.family
    for a, b in zip(vae.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(again.encode(x), vae.encode(x), rtol=1e-6)
    terms = tfpvae.elbo(again, x, n_samples=2)
    bound = tfpvae.iwae_bound(again, x, k=30, chunk_size=16)
    assert np.all(np.isfinite(terms.elbo)) and np.all(np.isfinite(bound))
    gain = bound - terms.elbo  # IWAE_30 ≥ ELBO in expectation, per image
    assert gain.mean() > -4 * gain.std(ddof=1) / np.sqrt(len(gain))
    if figures:
        data = RunData(x, np.arange(40) % 10, x, np.arange(40) % 10, tuple("0123456789"))
        names = {path.stem for path in write_figures(again, data, tmp_path / "model")}
        assert {"latent", "manifold", "reconstructions", "prior_samples"} <= names

    again.save(tmp_path / "served")
    served = tf.saved_model.load(str(tmp_path / "served"))
    codes = served.signatures["encode"](images=tf.constant(x))
    np.testing.assert_allclose(codes["mean"], vae.encode(x), atol=1e-5)
    assert "stddev" not in codes
    served_terms = served.signatures["elbo"](images=tf.constant(x), seed=tf.constant([3, 0]))
    assert served_terms["elbo"].shape == (40,) and np.all(np.isfinite(served_terms["elbo"]))


def test_a_users_encoder_ending_in_the_layer_is_that_family(tmp_path) -> None:
    """VAE(encoder, decoder) with a PlanarPosterior/RadialPosterior: the family by type, the
    sampled KL, and a save that reads back."""
    for layer in (PlanarPosterior, RadialPosterior):
        encoder = tfk.Sequential(
            [
                tfk.layers.Flatten(input_shape=(8, 8)),
                tfk.layers.Dense(layer.params_size(2, num_flows=3)),
                layer(2, num_flows=3),
            ]
        )
        decoder = tfk.Sequential(
            [tfk.layers.Dense(64, input_shape=(2,)), tfpl.IndependentBernoulli((8, 8))]
        )
        vae = tfpvae.VAE(encoder, decoder)
        assert vae.parts.family is tfpvae.POSTERIORS.get(layer.flow)
        assert vae.parts.kl.use_exact_kl is False
        x = np.random.default_rng(0).integers(0, 2, (4, 8, 8)).astype("float32")
        path = tfpvae.save(vae, tmp_path / layer.flow)
        again = tfpvae.load(path)
        np.testing.assert_allclose(again.encode(x), vae.encode(x), rtol=1e-6)
        with pytest.raises(ValueError, match=r"no closed-form KL between _?TransformedDist"):
            tfpvae.VAE(encoder, decoder, use_exact_kl=True)


def test_refusals_say_what_to_do() -> None:
    for posterior in FAMILIES:
        with pytest.raises(ValueError, match=rf"posterior='{posterior}' has no closed-form KL"):
            tfpvae.VAEConfig(posterior=posterior, use_exact_kl=True)
        with pytest.raises(ValueError, match="num_flows must be a positive integer"):
            tfpvae.VAEConfig(posterior=posterior, num_flows=0)
    with pytest.raises(ValueError, match=r"number of planar flows.*use num_flows >= 1"):
        PlanarPosterior(D, num_flows=0)
    with pytest.raises(ValueError, match=r"RadialPosterior.params_size\(latent_dim, num_flows\)"):
        RadialPosterior.new(tf.zeros([2, 2 * D + 4]), D)  # one radial flow takes D + 2 = 5
    q = RadialPosterior.new(tf.zeros([2, 2 * D + 2 * (D + 2)]), D)  # K read off the width
    assert len(q.bijector.bijectors) == 2
    config = tfpvae.VAEConfig(posterior="radial", num_flows=4)
    assert tfpvae.VAEConfig.from_json(config.to_json()) == config


def test_cli_flags_and_config_file_reach_the_flows(tmp_path, capsys) -> None:
    from tfpvae.interfaces.cli import build_parser, main, resolve_train_options

    args = build_parser().parse_args(
        ["train", "--posterior", "planar", "--num-flows", "4", "--out", "o"]
    )
    config, _ = resolve_train_options(args)
    assert (config.posterior, config.num_flows) == ("planar", 4)
    config_file = tmp_path / "run.toml"
    config_file.write_text('posterior = "radial"\nnum-flows = 3\n')
    config, _ = resolve_train_options(
        build_parser().parse_args(["train", "--config", str(config_file), "--out", "o"])
    )
    assert (config.posterior, config.num_flows) == ("radial", 3)
    vae = tfpvae.build_vae_from_config(config.replace(input_shape=(8, 8), hidden_units=(8,)))
    assert vae.encoder.get_layer("posterior_params").units == 2 * 2 + 3 * (2 + 2)
    assert main(["train", "--posterior", "radial", "--exact-kl", "--out", str(tmp_path / "x")]) == 2
    assert "posterior='radial' has no closed-form KL" in capsys.readouterr().err
