"""Which latent units a model uses: active units, KL per dimension, traversals, sampling."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import tfpvae
from tfpvae._backend import tf, tfd, tfk, tfpl
from tfpvae.evaluation import plots
from tfpvae.evaluation.diagnostics import active_units, kl_per_dimension, latent_use

N, D_X, D_Z = 400, 4, 4
#: q(z|x) = N(x @ LOC_WEIGHTS + LOC_BIAS, diag(SCALES²)): units 0 and 1 move with x
#: (variances 1 and 0.09), unit 2 barely (0.0025 < 0.01), unit 3 not at all.
LOC_WEIGHTS = np.diag([1.0, 0.3, 0.05, 0.0])
LOC_BIAS = np.array([0.0, 0.0, 0.0, 0.7])
SCALES = np.array([0.5, 1.0, 1.0, 1.0])


def _softplus_inverse(y: np.ndarray) -> np.ndarray:
    return np.log(np.expm1(y))


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((N, D_X)).astype(np.float32)


def _decoder(kernel: np.ndarray) -> tfk.Model:
    """A linear Gaussian decoder, mean z @ kernel, unit scale."""
    dense = tfk.layers.Dense(tfpl.IndependentNormal.params_size(D_X))
    decoder = tfk.Sequential([tfk.layers.InputLayer((D_Z,)), dense, tfpl.IndependentNormal((D_X,))])
    raw_scale = np.full(D_X, _softplus_inverse(np.array(1.0)))
    dense.set_weights(
        [np.concatenate([kernel, np.zeros((D_Z, D_X))], 1), np.r_[np.zeros(D_X), raw_scale]]
    )
    return decoder


def designed_vae(prior=None) -> tfpvae.VAE:
    """Units whose activity and KL are known in closed form (module constants)."""
    dense = tfk.layers.Dense(tfpl.IndependentNormal.params_size(D_Z))
    encoder = tfk.Sequential([tfk.layers.InputLayer((D_X,)), dense, tfpl.IndependentNormal(D_Z)])
    kernel = np.concatenate([LOC_WEIGHTS, np.zeros((D_X, D_Z))], axis=1)
    dense.set_weights([kernel, np.r_[LOC_BIAS, _softplus_inverse(SCALES)]])
    decoder_kernel = np.eye(D_Z, D_X) * [[2.0], [1.0], [1.0], [0.0]]  # z_4 is ignored
    vae = tfpvae.VAE(encoder, _decoder(decoder_kernel), prior=prior)
    vae.compile(optimizer="adam")
    return vae


def test_active_units_count_the_units_whose_means_vary_with_x(x) -> None:
    units = active_units(designed_vae(), x)
    loc = x.astype(np.float64) @ LOC_WEIGHTS + LOC_BIAS
    np.testing.assert_allclose(units.activity, loc.var(axis=0, ddof=1), rtol=1e-5, atol=1e-9)
    assert units.count == 2 and units.active.tolist() == [True, True, False, False]
    assert active_units(designed_vae(), x, threshold=0.001).count == 3  # unit 3 (0.0025) too
    with pytest.raises(ValueError, match="at least 2 images"):
        active_units(designed_vae(), x[:1])


def test_kl_per_dimension_matches_the_closed_form_and_sums_to_the_kl(x) -> None:
    vae = designed_vae()
    kl = kl_per_dimension(vae, x)
    mu = x.astype(np.float64) @ LOC_WEIGHTS + LOC_BIAS  # prior N(0, 1) in each dimension
    expected = 0.5 * (SCALES**2 + mu**2 - 1.0 - np.log(SCALES**2)).mean(axis=0)
    np.testing.assert_allclose(kl, expected, rtol=1e-5, atol=1e-7)
    assert kl[3] == pytest.approx(0.5 * 0.7**2, rel=1e-5)  # constant but off the prior: inactive
    total = tfd.kl_divergence(vae.posterior(x), tfd.Independent(tfd.Normal(tf.zeros(D_Z), 1.0), 1))
    assert kl.sum() == pytest.approx(float(tf.reduce_mean(total)), rel=1e-5)
    use = latent_use(vae, x)
    assert use["active_units"] == 2 and use["kl_per_dimension"] == pytest.approx(expected, 1e-5)


def test_kl_per_dimension_of_a_full_covariance_posterior_is_the_marginals(digits_beta) -> None:
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,), latent_dim=3, posterior="full")
    vae.encoder.get_layer("posterior_params").kernel.assign_add(  # correlated dimensions
        tf.random.stateless_normal(vae.encoder.get_layer("posterior_params").kernel.shape, [1, 2])
    )
    x = digits_beta[1][:50]
    q = vae.posterior(x)
    mu = q.mean().numpy().astype(np.float64)
    tril = q.scale_tril.numpy().astype(np.float64)
    var = (tril**2).sum(axis=-1)  # diag(L Lᵀ)
    expected = 0.5 * (var + mu**2 - 1.0 - np.log(var)).mean(axis=0)
    kl = kl_per_dimension(vae, x)
    np.testing.assert_allclose(kl, expected, rtol=1e-4)
    total = float(tf.reduce_mean(tfd.kl_divergence(q, vae.prior)))
    assert kl.sum() < total  # the total correlation of q belongs to no single dimension


def test_kl_per_dimension_refuses_a_prior_without_gaussian_marginals(x) -> None:
    mixture = tfd.MixtureSameFamily(
        tfd.Categorical(logits=tf.zeros(2)),
        tfd.MultivariateNormalDiag(loc=tf.constant([[-1.0] * D_Z, [1.0] * D_Z])),
    )
    vae = designed_vae(prior=mixture)
    with pytest.raises(ValueError, match="Gaussian prior"):
        kl_per_dimension(vae, x)
    use = latent_use(vae, x)
    assert use["kl_per_dimension"] is None and "Gaussian prior" in use["kl_per_dimension_note"]


def test_traversal_sweeps_one_dimension_per_row_and_shows_what_the_decoder_uses(x) -> None:
    vae = designed_vae()
    codes, images = plots.traverse(vae, x, dims=[0, 3], steps=5, index=2)
    assert codes.shape == (2, 5, D_Z) and images.shape == (2, 5, D_X)
    base = np.asarray(vae.encode(x[2:3]))[0]
    all_codes = np.asarray(vae.encode(x))
    for row, dim in enumerate([0, 3]):
        others = [d for d in range(D_Z) if d != dim]
        np.testing.assert_allclose(codes[row][:, others], np.tile(base[others], (5, 1)), atol=1e-6)
        low, high = np.quantile(all_codes[:, dim], [0.02, 0.98])
        np.testing.assert_allclose(codes[row, :, dim], np.linspace(low, high, 5), atol=1e-5)
    # the decoder's mean is 2 z_1 in pixel 1 and ignores z_4: row 1 changes, row 2 does not
    np.testing.assert_allclose(np.diff(images[0][:, 0]), 2 * np.diff(codes[0, :, 0]), atol=1e-5)
    assert np.ptp(images[0][:, 0]) > 1.0
    np.testing.assert_allclose(images[1], np.tile(images[1][0], (5, 1)), atol=1e-6)
    fig = plots.plot_traversal(vae, x, dims=[0, 3], steps=5)
    assert len(fig.axes) == 10 and sum(len(ax.get_images()) for ax in fig.axes) == 10
    assert [fig.axes[0].texts[0].get_text(), fig.axes[5].texts[0].get_text()] == [
        "$z_{1}$",
        "$z_{4}$",
    ]
    plt.close(fig)
    with pytest.raises(ValueError, match=r"latent dimensions in 0\.\.3"):
        plots.traverse(vae, x, dims=[4])


def test_plot_traversal_defaults_to_every_dimension(digits_beta) -> None:
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,), latent_dim=3)
    fig = plots.plot_traversal(vae, digits_beta[1][:20], steps=4)
    assert len(fig.axes) == 12  # 3 rows of 4
    plt.close(fig)


def test_kl_figure_draws_one_bar_per_dimension_marking_the_active_ones() -> None:
    kl = np.array([3.0, 0.01, 1.5])
    fig = plots.plot_kl_per_dimension(kl, np.array([True, False, True]))
    (ax,) = fig.axes
    heights = {round(p.get_x() + p.get_width() / 2): p.get_height() for p in ax.patches}
    assert heights == {1: 3.0, 2: 0.01, 3: 1.5}
    colours = {round(p.get_x() + p.get_width() / 2): p.get_facecolor() for p in ax.patches}
    assert colours[1] == colours[3] != colours[2]
    assert ax.get_title() == "2 of 3 units active"
    plt.close(fig)


def test_manifold_over_the_codes_spans_their_range_not_the_priors() -> None:
    codes = np.random.default_rng(1).normal([6.0, -4.0, 0.5], [3.0, 2.0, 0.1], (500, 3))
    grid = plots.latent_grid(5, 3, dims=(0, 1), codes=codes)
    for d in (0, 1):
        low, high = np.quantile(codes[:, d], [0.01, 0.99])
        np.testing.assert_allclose(sorted(set(grid[:, d])), np.linspace(low, high, 5), rtol=1e-5)
    np.testing.assert_allclose(grid[:, 2], np.median(codes[:, 2]), rtol=1e-5)
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,), latent_dim=3)
    fig = plots.plot_manifold(vae, n=5, codes=codes)
    ax = fig.axes[0]
    labels = [float(t.get_text()) for t in ax.get_xticklabels()]
    np.testing.assert_allclose(
        labels, np.linspace(*np.quantile(codes[:, 0], [0.01, 0.99]), 5), atol=0.005
    )
    assert "codes' 1–99 % range" in ax.get_title()
    plt.close(fig)
    with pytest.raises(ValueError, match="codes must be"):
        plots.latent_grid(5, 3, codes=codes[:, :2])


def test_contrasting_pair_picks_two_classes() -> None:
    y = np.array([3, 3, 5, 3, 7, 5])
    assert plots.contrasting_pair(y) == (0, 2)
    codes = np.array([[0.0], [9.0], [1.0], [0.0], [-4.0], [-9.0]])  # firsts: 0, 2 and 4
    assert plots.contrasting_pair(y, codes) == (2, 4)  # 1 and -4: the farthest apart
    with pytest.raises(ValueError, match="two classes"):
        plots.contrasting_pair(np.array([1, 1, 1]))


def test_sample_decodes_draws_of_the_models_prior() -> None:
    """E[sample] = E_p(z)[decoder mean] = m @ K for a linear decoder and prior N(m, I)."""
    kernel = np.eye(D_Z, D_X) * [[2.0], [1.0], [-1.0], [0.0]]
    expected = {}
    for loc in ([0.0, 0.0, 0.0, 0.0], [3.0, -2.0, 1.0, 5.0]):
        prior = tfd.MultivariateNormalDiag(loc=tf.constant(loc))
        vae = tfpvae.VAE(designed_vae().encoder, _decoder(kernel), prior=prior)
        expected[tuple(loc)] = np.asarray(loc) @ kernel
        for mean in (True, False):
            images = vae.sample(4000, seed=3, mean=mean).numpy()
            assert images.shape == (4000, D_X)
            se = images.std(axis=0, ddof=1) / np.sqrt(len(images))
            assert np.all(np.abs(images.mean(axis=0) - expected[tuple(loc)]) < 4 * se + 1e-6)
        means, draws = (vae.sample(500, seed=3, mean=m).numpy() for m in (True, False))
        # a draw adds the decoder's unit noise to the mean: variances add up
        np.testing.assert_allclose(draws.var(axis=0), means.var(axis=0) + 1.0, rtol=0.25)
        np.testing.assert_array_equal(means[:, 3], 0.0)  # the kernel ignores z_4 in pixel 4
        np.testing.assert_array_equal(draws, vae.sample(500, seed=3, mean=False).numpy())


@pytest.mark.slow(seconds=12)
def test_run_figures_interpolate_two_classes_over_the_codes_range(tmp_path, monkeypatch) -> None:
    from tfpvae.interfaces import run

    data = run.load_run_data(run.TrainSettings(limit=80), "beta")
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,), latent_dim=2)
    seen: dict = {}
    draw_interpolation, draw_manifold = plots.plot_interpolation, plots.plot_manifold

    def interpolation(model, x_a, x_b, *args, **kwargs):
        seen["ends"] = (x_a, x_b)
        return draw_interpolation(model, x_a, x_b, *args, **kwargs)

    def manifold(model, *args, codes=None, **kwargs):
        seen["codes"] = codes
        return draw_manifold(model, *args, codes=codes, **kwargs)

    monkeypatch.setattr(plots, "plot_interpolation", interpolation)
    monkeypatch.setattr(plots, "plot_manifold", manifold)
    names = {p.stem for p in run.write_figures(vae, data, tmp_path)}  # digits: y[0] = y[1] = 6
    assert {"interpolation", "manifold", "traversal", "kl_per_dimension"} <= names
    (a,) = np.flatnonzero((data.x_test == seen["ends"][0]).all(axis=(1, 2)))[:1]
    (b,) = np.flatnonzero((data.x_test == seen["ends"][1]).all(axis=(1, 2)))[:1]
    assert data.y_test[a] != data.y_test[b]
    np.testing.assert_allclose(seen["codes"], np.asarray(vae.encode(data.x_train)), atol=1e-6)
