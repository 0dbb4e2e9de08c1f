"""Every figure draws the data it is given (the model's codes, decodings, draws) and renders."""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image
from scipy.stats import norm

import tfpvae
from tfpvae._backend import tf
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


def _images(fig) -> list[np.ndarray]:
    """The arrays drawn by ``imshow`` in ``fig``, axes by axes (row by row)."""
    return [np.asarray(image.get_array()) for ax in fig.axes for image in ax.get_images()]


def _offsets(ax) -> np.ndarray:
    """The scatter points of ``ax``, in the order they were given."""
    return np.concatenate([c.get_offsets() for c in ax.collections if len(c.get_offsets())])


def test_examples_show_the_images_with_their_class_names(model_and_data) -> None:
    _, x, y = model_and_data
    fig = plots.plot_examples(x, y, DIGIT_CLASSES)
    images = _images(fig)
    assert len(images) == 16  # n = 16 of the 60, in 2 rows of 8
    np.testing.assert_allclose(images, x[:16], atol=1e-6)
    titles = [ax.get_title() for ax in fig.axes[:16]]
    assert titles == [DIGIT_CLASSES[int(c)] for c in y[:16]]
    assert_not_blank(fig)


def test_latent_figures_scatter_the_codes_they_are_given(model_and_data) -> None:
    vae, x, y = model_and_data
    codes = np.asarray(vae.encode(x))  # [60, 3]: the posterior means
    fig = plots.plot_latent(vae, x, y, DIGIT_CLASSES)
    np.testing.assert_allclose(_offsets(fig.axes[0]), codes[:, :2], rtol=1e-6)
    # One colour per class: the points of a class share it, two classes never do.
    colours = [tuple(c) for c in fig.axes[0].collections[0].get_facecolors()]
    by_class = {int(c): {colours[i] for i in np.flatnonzero(y == c)} for c in np.unique(y)}
    assert all(len(v) == 1 for v in by_class.values())
    assert len({v.pop() for v in by_class.values()}) == len(by_class)
    assert_not_blank(fig)
    after = 2.0 * codes[:, ::-1] - 1.0  # any other codes: each panel shows its own
    fig = plots.plot_latent_before_after(codes, after, y, DIGIT_CLASSES)
    np.testing.assert_allclose(_offsets(fig.axes[0]), codes[:, :2], rtol=1e-6)
    np.testing.assert_allclose(_offsets(fig.axes[1]), after[:, :2], rtol=1e-6)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["Before training", "After training"]
    assert_not_blank(fig)


def test_reconstructions_show_originals_means_and_samples(model_and_data) -> None:
    vae, x, _ = model_and_data
    tf.random.set_seed(5)
    fig = plots.plot_reconstructions(vae, x)
    tf.random.set_seed(5)  # the same z and sample, drawn here again
    dist = vae(x[:8])
    images = np.reshape(_images(fig), (3, 8, 8, 8))
    np.testing.assert_allclose(images[0], x[:8], atol=1e-6)
    np.testing.assert_allclose(images[1], dist.mean().numpy(), atol=1e-6)
    np.testing.assert_allclose(images[2], np.clip(dist.sample().numpy(), 0, 1), atol=1e-6)
    assert_not_blank(fig)


def test_manifold_tiles_are_the_decoded_grid_points(model_and_data) -> None:
    vae, _, _ = model_and_data
    fig = plots.plot_manifold(vae, n=5, dims=(1, 2))
    (mosaic,) = _images(fig)
    q = norm.ppf(np.linspace(0.05, 0.95, 5))
    for r in range(5):  # top row: the largest z_3; left column: the smallest z_2
        for c in range(5):
            z = np.array([[0.0, q[c], q[4 - r]]], np.float32)
            tile = mosaic[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8]  # 8 × 8 pixels, 1 apart
            np.testing.assert_allclose(tile, np.asarray(vae.decode(z))[0], atol=1e-5)
    assert_not_blank(fig)


def test_interpolation_shows_the_decoded_line_between_two_codes(model_and_data, tmp_path):
    vae, x, _ = model_and_data
    z_a, z_b = (np.asarray(vae.encode(image[None]))[0] for image in (x[0], x[1]))
    line = np.stack([(1 - t) * z_a + t * z_b for t in np.linspace(0, 1, 5)]).astype(np.float32)
    decoded = np.asarray(vae.decode(line))
    fig = plots.plot_interpolation(vae, x[0], x[1], steps=5)
    images = _images(fig)
    assert len(images) == 7  # A, five steps, B
    np.testing.assert_allclose(images[0], x[0], atol=1e-6)
    np.testing.assert_allclose(images[-1], x[1], atol=1e-6)
    np.testing.assert_allclose(images[1:-1], decoded, atol=1e-5)
    assert_not_blank(fig)
    gif = plots.save_interpolation_gif(vae, x[0], x[1], tmp_path / "a.gif", steps=5, scale=2)
    with Image.open(gif) as image:
        assert image.n_frames == 8  # 5 out, 3 back
        image.seek(4)  # the last step out: x[1]'s code, decoded
        frame = np.asarray(image.convert("L"))[::2, ::2]
    np.testing.assert_allclose(frame, decoded[-1] * 255, atol=1.01)


def test_prior_samples_show_decoded_draws_of_the_prior(model_and_data) -> None:
    vae, _, _ = model_and_data
    tf.random.set_seed(9)
    fig = plots.plot_prior_samples(vae, n=8)
    tf.random.set_seed(9)
    dist = vae.decoder(vae.prior.sample(8, seed=0))
    means, samples = dist.mean().numpy(), np.clip(dist.sample(seed=0).numpy(), 0, 1)
    images = _images(fig)
    assert len(images) == 16  # one row of means, one of samples
    np.testing.assert_allclose(images[:8], means, atol=1e-6)
    np.testing.assert_allclose(images[8:], samples, atol=1e-6)
    assert_not_blank(fig)


def test_history_draws_each_curve_of_the_history() -> None:
    history = {
        "loss": [3, 2, 1],
        "rate": [1, 2, 2],
        "distortion": [2, 0, -1],
        "val_loss": [3, 2, 2],
    }
    fig = plots.plot_history(history)
    drawn = {
        (ax.get_title(), line.get_label()): list(line.get_ydata())
        for ax in fig.axes
        for line in ax.lines
    }
    assert drawn == {
        ("loss", "train"): [3, 2, 1],
        ("loss", "validation"): [3, 2, 2],
        ("rate", "train"): [1, 2, 2],
        ("distortion", "train"): [2, 0, -1],
    }
    assert all(list(line.get_xdata()) == [1, 2, 3] for ax in fig.axes for line in ax.lines)
    assert_not_blank(fig)


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


def test_gradient_snr_draws_each_estimator_against_k_on_log_axes() -> None:
    ks = [1, 4, 16]
    snr = {"standard": [0.8, 0.4, 0.2], "dreg": [0.8, 1.6, 3.2]}
    fig = plots.plot_gradient_snr(ks, snr)
    (ax,) = fig.axes
    assert ax.get_xscale() == ax.get_yscale() == "log"
    drawn = {line.get_label(): list(line.get_ydata()) for line in ax.lines[:2]}
    assert drawn == snr
    # the guides have slopes -1/2 and +1/2 on the log-log axes, from each line's first point
    guides = ax.lines[2:]
    slopes = [np.polyfit(np.log(ks), np.log(g.get_ydata()), 1)[0] for g in guides]
    np.testing.assert_allclose(slopes, [-0.5, 0.5])
    np.testing.assert_allclose([g.get_ydata()[0] for g in guides], [0.8, 0.8])
    assert_not_blank(fig)
    with pytest.raises(ValueError, match="at least one"):
        plots.plot_gradient_snr(ks, {})
    with pytest.raises(ValueError, match="2 values for 3"):
        plots.plot_gradient_snr(ks, {"dreg": [1.0, 2.0]})
