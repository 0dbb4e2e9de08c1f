"""Every figure renders to a PNG that is not blank."""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image
from scipy.stats import norm

import tfpvae
from tfpvae.evaluation import plots
from tfpvae.io.datasets import DIGIT_CLASSES


@pytest.fixture(scope="module")
def model_and_data(digits, digits_beta):
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,), latent_dim=3)
    x = digits_beta[1][:60]
    vae.fit(x, x, epochs=1, verbose=0)
    return vae, x, digits[1][1][:60]


def assert_not_blank(fig) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=50)
    plt.close(fig)
    pixels = np.asarray(Image.open(buffer).convert("L"), dtype=float)
    assert pixels.std() > 5.0  # more than a flat background
    assert (pixels < 128).mean() > 0.01  # some dark ink drawn


def test_every_figure_renders(model_and_data, tmp_path) -> None:
    vae, x, y = model_and_data
    history = {
        "loss": [3, 2, 1],
        "rate": [1, 2, 2],
        "distortion": [2, 0, -1],
        "val_loss": [3, 2, 2],
    }
    figures = [
        plots.plot_examples(x, y, DIGIT_CLASSES),
        plots.plot_latent(vae, x, y, DIGIT_CLASSES),
        plots.plot_latent_before_after(vae.encode(x), vae.encode(x) * 2, y, DIGIT_CLASSES),
        plots.plot_reconstructions(vae, x),
        plots.plot_manifold(vae, n=5, dims=(1, 2)),
        plots.plot_interpolation(vae, x[0], x[1], steps=5),
        plots.plot_prior_samples(vae, n=8),
        plots.plot_history(history),
    ]
    for fig in figures:
        assert_not_blank(fig)
    gif = plots.save_interpolation_gif(vae, x[0], x[1], tmp_path / "a.gif", steps=6)
    with Image.open(gif) as image:
        assert image.n_frames == 10  # 6 out, 4 back


def test_latent_grid_is_a_plane_of_prior_quantiles() -> None:
    grid = plots.latent_grid(3, 4, dims=(1, 3), edge=0.1)
    assert grid.shape == (9, 4)
    assert np.all(grid[:, [0, 2]] == 0)
    np.testing.assert_allclose(sorted(set(np.round(grid[:, 1], 4))), [-1.2816, 0.0, 1.2816])


def test_tile_places_each_image_in_its_cell_with_white_gaps() -> None:
    images = np.stack([np.full((3, 2), 0.1 * (i + 1), np.float32) for i in range(5)])
    mosaic = plots.tile(images, cols=2, pad=1)
    assert mosaic.shape == (3 * 4 - 1, 2 * 3 - 1)
    for i in range(5):
        r, c = divmod(i, 2)
        np.testing.assert_allclose(mosaic[r * 4 : r * 4 + 3, c * 3 : c * 3 + 2], 0.1 * (i + 1))
    assert np.all(mosaic[3, :] == 1.0) and np.all(mosaic[:, 2] == 1.0)  # gaps
    assert np.all(mosaic[8:, 3:] == 1.0)  # the empty sixth cell


def test_manifold_axes_name_the_latent_values() -> None:
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,), latent_dim=3)
    fig = plots.plot_manifold(vae, n=5, dims=(1, 2))
    ax = fig.axes[0]
    quantiles = norm.ppf(np.linspace(0.05, 0.95, 5))
    x_labels = [float(t.get_text()) for t in ax.get_xticklabels()]
    y_labels = [float(t.get_text()) for t in ax.get_yticklabels()]
    np.testing.assert_allclose(x_labels, quantiles, atol=0.005)
    np.testing.assert_allclose(y_labels, quantiles[::-1], atol=0.005)
    assert not any(t.get_text().startswith("-0.00") for t in ax.get_xticklabels())
    assert ax.get_xlabel() == "$z_2$" and ax.get_ylabel() == "$z_3$"
    plt.close(fig)


def test_beta_sweep_is_drawn_on_the_rate_distortion_plane() -> None:
    sweep = {
        2.0: {"rate": 13.0, "distortion": -1734.1, "elbo": 1721.1, "iwae": 1736.9},
        0.5: {"rate": 30.5, "distortion": -1754.5, "elbo": 1724.0, "iwae": 1735.9},
        1.0: {"rate": 18.5, "distortion": -1749.8, "elbo": 1731.3, "iwae": 1743.6},
    }
    fig = plots.plot_beta_sweep(sweep)
    ax, ax_bounds = fig.axes
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    # one point per β at (rate, distortion), whatever order the sweep came in
    np.testing.assert_allclose(
        sorted(map(tuple, points)), sorted((v["rate"], v["distortion"]) for v in sweep.values())
    )
    assert sorted(t.get_text() for t in ax.texts) == ["β=0.5", "β=1", "β=2"]
    assert "rate" in ax.get_xlabel() and "distortion" in ax.get_ylabel()
    path, *iso = ax.lines
    np.testing.assert_allclose(path.get_xdata(), [30.5, 18.5, 13.0])  # joined in order of β
    for line in iso:  # each dashed line holds rate + distortion fixed
        total = line.get_xdata() + line.get_ydata()
        assert np.ptp(total) < 1e-9
    assert len(iso) == 3
    elbo, iwae = ax_bounds.lines
    np.testing.assert_allclose(elbo.get_xdata(), [0.5, 1.0, 2.0])
    np.testing.assert_allclose(elbo.get_ydata(), [1724.0, 1731.3, 1721.1])
    np.testing.assert_allclose(iwae.get_ydata(), [1735.9, 1743.6, 1736.9])
    assert_not_blank(fig)
    with pytest.raises(ValueError, match="at least one"):
        plots.plot_beta_sweep({})
