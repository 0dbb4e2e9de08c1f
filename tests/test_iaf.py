"""The inverse autoregressive flow posterior: its density, identity case, training and plumbing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import tfpvae
from tfpvae._backend import tf, tfk
from tfpvae.io.saving import load, save

D = 3
SMALL = dict(input_shape=(8, 8), hidden_units=(16,), latent_dim=D, posterior="iaf")
FLOWS = dict(num_flows=2, flow_hidden_units=(8,))


def _iaf(**kwargs):
    return tfpvae.build_vae(**SMALL, **FLOWS, **kwargs)


def _base_numpy(vae, x) -> tuple[np.ndarray, np.ndarray]:
    """(μ, σ) of the Gaussian base, from the encoder's Dense output by NumPy."""
    params = tfk.Model(vae.encoder.inputs, vae.encoder.get_layer("posterior_params").output)
    p = params(x).numpy().astype(np.float64)
    return p[:, :D], np.logaddexp(0.0, p[:, D : 2 * D]) + 1e-5


def _made_output_layers(vae) -> list:
    """The Dense layers of every MADE that produce its 2d outputs (shift and log-scale)."""
    layer = vae.encoder.get_layer("approx_posterior")
    return [
        dense
        for made in layer.made
        for dense in made._network.layers
        if isinstance(dense, tfk.layers.Dense) and dense.units == 2 * D
    ]


def test_log_q_is_the_base_density_minus_the_log_determinant(digits_beta) -> None:
    """log q(z|x) = log N(z₀; μ, σ²) − log|det ∂z/∂z₀|, the Jacobian by autodiff; with the
    flows' last layers at zero, q is the base Gaussian."""
    vae = _iaf()
    x = digits_beta[1][:5]
    q = vae.encoder(x).tensor_distribution
    mu, sigma = _base_numpy(vae, x)
    z0 = tf.constant(mu + sigma * np.random.default_rng(0).standard_normal((5, D)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(z0)
        z = q.bijector.forward(z0)
    jacobian = tape.batch_jacobian(z, z0).numpy().astype(np.float64)  # [batch, d, d]
    _, log_det = np.linalg.slogdet(jacobian)
    base = stats.norm.logpdf(z0.numpy(), mu, sigma).sum(axis=1)
    expected = base - log_det
    assert np.abs(log_det).max() > 0.05  # the flow is not the identity here
    np.testing.assert_allclose(q.log_prob(z).numpy(), expected, rtol=1e-5, atol=1e-4)
    # At a fresh tensor TFP inverts the flow (d sequential passes) instead of using its cache.
    np.testing.assert_allclose(q.log_prob(tf.constant(z.numpy())), expected, rtol=1e-5, atol=2e-4)

    # With the MADEs' last layers at zero, every flow is the identity: q is the base.
    for dense in _made_output_layers(vae):
        dense.set_weights([np.zeros_like(w) for w in dense.get_weights()])
    q = vae.encoder(x)
    z = q.sample(4, seed=tf.constant([1, 2])).numpy()
    expected = stats.norm.logpdf(z, mu, sigma).sum(axis=-1)
    np.testing.assert_allclose(q.log_prob(z).numpy(), expected, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(vae.encode(x).numpy(), mu, rtol=1e-6, atol=1e-6)


@pytest.mark.slow(seconds=4)
def test_one_step_changes_every_weight_including_each_flows(digits_beta) -> None:
    vae = _iaf(objective="iwae", iwae_k=3)
    flow_weights = vae.encoder.get_layer("approx_posterior").trainable_weights
    assert len(flow_weights) == 2 * 6  # per MADE: 2 masked kernels, 2 biases, 2 context kernels
    ids = {id(w) for w in vae.trainable_weights}
    assert all(id(w) in ids for w in flow_weights)
    before = [w.numpy().copy() for w in vae.trainable_weights]
    vae.train_on_batch(digits_beta[0][:32])
    unchanged = [
        w.name for w, b in zip(vae.trainable_weights, before, strict=True) if np.all(w.numpy() == b)
    ]
    assert unchanged == []


def test_exact_kl_is_refused_with_what_to_do() -> None:
    with pytest.raises(ValueError, match=r"posterior='iaf' has no closed-form KL; use use_exact"):
        tfpvae.VAEConfig(posterior="iaf", use_exact_kl=True)
    with pytest.raises(ValueError, match="num_flows must be a positive integer"):
        tfpvae.VAEConfig(posterior="iaf", num_flows=0)
    config = tfpvae.VAEConfig(posterior="iaf", num_flows=3, flow_hidden_units=(8, 8))
    assert tfpvae.VAEConfig.from_json(config.to_json()) == config


@pytest.mark.slow(seconds=8)
def test_save_load_evaluate_and_plot_an_iaf_model(tmp_path, digits_beta) -> None:
    """Saved flows come back; the held-out bounds and the figures work on the flow posterior."""
    from tfpvae.interfaces.run import RunData, write_figures

    x_test = digits_beta[1][:40]
    vae = _iaf()  # a fresh build has other random weights: equality below means loaded
    save(vae, tmp_path / "model")
    again = load(tmp_path / "model")
    assert again.config == vae.config
    for a, b in zip(vae.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    z = vae.encoder(x_test).sample(seed=tf.constant([3, 4])).numpy()
    np.testing.assert_allclose(
        again.encoder(x_test).log_prob(z), vae.encoder(x_test).log_prob(z), rtol=1e-6
    )
    terms = tfpvae.elbo(again, x_test, n_samples=2)
    bound = tfpvae.iwae_bound(again, x_test, k=30, chunk_size=16)
    assert np.all(np.isfinite(terms.elbo)) and np.all(np.isfinite(bound))
    gain = bound - terms.elbo  # IWAE_30 ≥ ELBO in expectation, per image
    assert gain.mean() > -4 * gain.std(ddof=1) / np.sqrt(len(gain))
    data = RunData(x_test, np.arange(40) % 10, x_test, np.arange(40) % 10, tuple("0123456789"))
    names = {p.stem for p in write_figures(again, data, tmp_path / "model")}
    assert {"latent", "manifold", "reconstructions", "prior_samples"} <= names


def test_cli_flags_and_config_file_reach_the_new_fields(tmp_path, capsys) -> None:
    from tfpvae.interfaces.cli import build_parser, main, resolve_train_options

    config_file = tmp_path / "run.toml"
    config_file.write_text('posterior = "iaf"\nnum-flows = 1\nflow_hidden_units = "8,4"\n')
    args = build_parser().parse_args(
        ["train", "--config", str(config_file), "--objective", "iwae", "--train-k", "3",
         "--n-samples", "2", "--num-flows", "4", "--k", "9", "--out", "o"]
    )  # fmt: skip
    config, settings = resolve_train_options(args)
    assert (config.objective, config.iwae_k, config.n_samples) == ("iwae", 3, 2)
    assert (config.posterior, config.num_flows, config.flow_hidden_units) == ("iaf", 4, (8, 4))
    assert settings.eval_k == 9  # --k stays the held-out bound's
    assert main(["train", "--posterior", "iaf", "--exact-kl", "--out", str(tmp_path / "x")]) == 2
    assert "no closed-form KL" in capsys.readouterr().err
    assert main(["train", "--objective", "iwae", "--train-k", "0", "--out", str(tmp_path / "y")])
    assert "iwae_k must be a positive integer" in capsys.readouterr().err
