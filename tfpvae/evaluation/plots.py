"""The course's pictures. Every function returns a ``matplotlib.figure.Figure``.

Models are used through ``encode``/``decode`` (posterior and likelihood means) and
``decoder(z).sample()``, so the VAE and the autoencoder plot with the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from scipy.stats import norm

PALETTE = "colorblind"


def _np(t) -> np.ndarray:
    return t.numpy() if hasattr(t, "numpy") else np.asarray(t)


def _show(ax, image: np.ndarray, title: str | None = None) -> None:
    """Shows one image: uint8 as is; floats in [0, 1], or 8-bit levels when above 1."""
    image = _np(image)
    if image.dtype != np.uint8:
        if image.size and image.min() >= 0.0 and image.max() > 1.0:  # levels 0..255
            image = image / 255.0
        image = np.clip(image, 0.0, 1.0)
    ax.imshow(
        image,
        cmap=None if image.ndim == 3 else "gray",
        vmin=0,
        vmax=255 if image.dtype == np.uint8 else 1,
    )
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)


def _grid(rows: int, cols: int, size: float = 1.2) -> tuple[Figure, np.ndarray]:
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size), squeeze=False)
    return fig, axes


def plot_examples(
    x: np.ndarray, y: np.ndarray, class_names: Sequence[str], n: int = 16, cols: int = 8
) -> Figure:
    """A grid of images, each titled with its class name."""
    n = min(n, len(x))
    rows = -(-n // cols)
    fig, axes = _grid(rows, cols, 1.4)
    for i, ax in enumerate(axes.flat):
        if i < n:
            _show(ax, x[i], class_names[int(y[i])])
        else:
            ax.set_axis_off()
    fig.tight_layout()
    return fig


def _scatter(ax, z: np.ndarray, y: np.ndarray, class_names: Sequence[str], legend: bool) -> None:
    labels = np.asarray([class_names[int(c)] for c in y])
    sns.scatterplot(
        x=z[:, 0], y=z[:, 1], hue=labels, hue_order=list(class_names), palette=PALETTE,
        s=8, linewidth=0, ax=ax, legend=legend,
    )  # fmt: skip
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if legend:
        ax.legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5))


def plot_latent(model, x: np.ndarray, y: np.ndarray, class_names: Sequence[str]) -> Figure:
    """The posterior means of ``x`` in the first two latent dimensions, by class.

    A conditional VAE's codes are E[z | x, y] at the images' own labels ``y``.
    """
    fig, ax = plt.subplots(figsize=(6, 4.5))
    conditional = getattr(model, "num_classes", None) is not None
    codes = model.encode(x, labels=y) if conditional else model.encode(x)
    _scatter(ax, _np(codes), y, class_names, legend=True)
    ax.set_title("Latent means by class")
    fig.tight_layout()
    return fig


def plot_latent_before_after(
    z_before: np.ndarray, z_after: np.ndarray, y: np.ndarray, class_names: Sequence[str]
) -> Figure:
    """The course's comparison of the encodings before and after training."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, z, title in zip(
        axes, (z_before, z_after), ("Before training", "After training"), strict=True
    ):
        _scatter(ax, _np(z), y, class_names, legend=ax is axes[-1])
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_reconstructions(vae, x: np.ndarray, n: int = 8, labels=None) -> Figure:
    """Rows of originals, reconstruction means and reconstruction samples.

    Images (``x`` of shape ``[n, h, w]`` or ``[n, h, w, c]``) are drawn as pictures;
    flat vectors (``[n, d]``, e.g. standardised features for the Gaussian
    likelihood) as profiles, one panel per example with the original, the mean
    and a sample against the dimension index. ``labels``: the class ids of a
    conditional VAE's images (p(x|z, y), z ~ q(z|x, y)).
    """
    x = np.asarray(x[:n])
    dist = vae(x) if labels is None else vae((x, np.asarray(labels)[:n]))
    rows = (("original", x), ("mean", _np(dist.mean())), ("sample", _np(dist.sample())))
    if x.ndim == 2:
        return _plot_profiles(rows)
    fig, axes = _grid(3, len(x))
    for r, (name, images) in enumerate(rows):
        for c in range(len(x)):
            _show(axes[r, c], images[c])
        axes[r, 0].text(-0.1, 0.5, name, transform=axes[r, 0].transAxes, ha="right", va="center")
    fig.tight_layout()
    return fig


def _plot_profiles(rows: Sequence[tuple[str, np.ndarray]]) -> Figure:
    """One panel per example: each row's vector as a line over the dimension index."""
    n = len(rows[0][1])
    fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 2.0), sharey=True, squeeze=False)
    styles = {"original": ("k", 1.6), "mean": ("tab:blue", 1.2), "sample": ("0.6", 0.8)}
    for c, ax in enumerate(axes[0]):
        for name, vectors in rows:
            color, width = styles.get(name, ("tab:orange", 1.0))
            ax.plot(vectors[c], color=color, linewidth=width, label=name)
        ax.set_xlabel("dimension")
    axes[0, 0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def latent_grid(
    n: int,
    latent_dim: int,
    dims: tuple[int, int] = (0, 1),
    edge: float | None = None,
    codes: np.ndarray | None = None,
) -> np.ndarray:
    """``n × n`` latent points on a plane of two dimensions, ``[n * n, latent_dim]``.

    Without ``codes``: points equally spaced in prior probability through
    ``norm.ppf`` (from ``edge`` = 0.05 to ``1 - edge``), the other dimensions at
    the prior mean, 0. With ``codes`` (``[N, latent_dim]``, e.g. the encoded
    training images): equally spaced between each dimension's ``edge`` = 0.01 and
    ``1 - edge`` quantiles of the codes, the other dimensions at the codes'
    median, so the grid covers where the codes are, however far from N(0, I).
    """
    if codes is None:
        edge = 0.05 if edge is None else edge
        values = [norm.ppf(np.linspace(edge, 1.0 - edge, n))] * 2
        centre = np.zeros(latent_dim, np.float32)
    else:
        codes = np.asarray(codes, np.float32)
        if codes.ndim != 2 or codes.shape[1] != latent_dim or len(codes) < 2:
            raise ValueError(
                f"codes must be [N >= 2, {latent_dim}] latent codes, got shape {codes.shape}"
            )
        edge = 0.01 if edge is None else edge
        ends = [np.quantile(codes[:, d], [edge, 1.0 - edge]) for d in dims]
        values = [np.linspace(float(low), float(high), n) for low, high in ends]
        centre = np.median(codes, axis=0)
    grid = np.broadcast_to(centre, (n, n, latent_dim)).astype(np.float32)
    grid[..., dims[0]] = values[0][None, :]
    grid[..., dims[1]] = values[1][::-1, None]  # top row = largest value
    return grid.reshape(n * n, latent_dim)


def tile(images: np.ndarray, cols: int, pad: int = 1) -> np.ndarray:
    """Lays images out row by row in one mosaic, ``pad`` white pixels apart.

    ``[n, h, w, ...]`` becomes ``[rows*(h+pad)-pad, cols*(w+pad)-pad, ...]``. One
    ``imshow`` of a mosaic draws in a fraction of the time of one axes per image
    (0.3 s against 4 s for the 15 × 15 manifold).
    """
    images = np.clip(_np(images), 0.0, 1.0)
    n, height, width = images.shape[:3]
    rows = -(-n // cols)
    mosaic = np.ones(
        (rows * (height + pad) - pad, cols * (width + pad) - pad, *images.shape[3:]), np.float32
    )
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        mosaic[r * (height + pad) : r * (height + pad) + height,
               c * (width + pad) : c * (width + pad) + width] = image  # fmt: skip
    return mosaic


def _label(value: float) -> str:
    """Two decimals, without a "-0.00" for values that round to zero."""
    return f"{round(float(value), 2) + 0.0:.2f}"


def plot_manifold(
    model, n: int = 15, dims: tuple[int, int] = (0, 1), codes: np.ndarray | None = None
) -> Figure:
    """The decoded latent manifold on a grid; for latent_dim > 2, a plane through ``dims``.

    With ``codes`` (e.g. ``model.encode(x_train)``) the grid spans the range the
    codes occupy (:func:`latent_grid`); without, ``norm.ppf`` quantiles of the
    prior, which miss the clusters a trained encoder puts further out. The axes
    are labelled with the latent values at a few tiles.
    """
    latent_dim = model.latent_dim
    grid = latent_grid(n, latent_dim, dims, codes=None if codes is None else _np(codes))
    images = _np(model.decode(grid))
    pad = 1
    fig, ax = plt.subplots(figsize=(0.5 * n + 1.0, 0.5 * n + 1.0))
    ax.imshow(tile(images, n, pad), cmap=None if images.ndim == 4 else "gray", vmin=0, vmax=1)
    height, width = images.shape[1:3]
    ticks = np.unique(np.linspace(0, n - 1, min(n, 5)).round().astype(int))  # tile indices
    values = grid.reshape(n, n, latent_dim)
    ax.set_xticks(ticks * (width + pad) + (width - 1) / 2)  # tile centres, in pixels
    ax.set_xticklabels([_label(v) for v in values[0, ticks, dims[0]]])
    ax.set_yticks(ticks * (height + pad) + (height - 1) / 2)
    ax.set_yticklabels([_label(v) for v in values[ticks, 0, dims[1]]])
    ax.set_xlabel(f"$z_{dims[0] + 1}$")
    ax.set_ylabel(f"$z_{dims[1] + 1}$")
    where = "norm.ppf grid" if codes is None else "over the codes' 1–99 % range"
    ax.set_title(f"Decoded means on $z_{dims[0] + 1}$ × $z_{dims[1] + 1}$ ({where})")
    return fig


def category_codes(categorical_dims: int, categories: int) -> tuple[np.ndarray, int, int]:
    """Codes of N categorical variables of K classes for :func:`plot_categories`.

    N = 1: each one-hot class, in one row of K. N > 1: a K × K grid, the class of
    the first variable down the rows and of the second across the columns; the
    other variables are held at the prior mean, 1/K for every class.

    Returns:
        ``(codes [rows * cols, N * K], rows, cols)``.
    """
    n, k = categorical_dims, categories
    eye = np.eye(k, dtype=np.float32)
    if n == 1:
        return eye, 1, k
    codes = np.full((k, k, n, k), 1.0 / k, np.float32)
    codes[:, :, 0] = eye[:, None, :]  # row i: variable 1 in class i
    codes[:, :, 1] = eye[None, :, :]  # column j: variable 2 in class j
    return codes.reshape(k * k, n * k), k, k


def plot_categories(model) -> Figure:
    """The decoded grid of categories of a discrete latent (see :func:`category_codes`)."""
    k = int(model.parts.encoder.layer.categories)  # the relaxed categorical layer's K
    n = model.latent_dim // k
    codes, rows, cols = category_codes(n, k)
    images = _np(model.decode(codes))
    pad = 1
    fig, ax = plt.subplots(figsize=(0.6 * cols + 1.0, 0.6 * rows + 1.0))
    ax.imshow(tile(images, cols, pad), cmap=None if images.ndim == 4 else "gray", vmin=0, vmax=1)
    height, width = images.shape[1:3]
    ax.set_xticks(np.arange(cols) * (width + pad) + (width - 1) / 2, [str(c) for c in range(cols)])
    ax.set_yticks(
        np.arange(rows) * (height + pad) + (height - 1) / 2, [str(r) for r in range(rows)]
    )
    if n == 1:
        ax.set_yticks([])
        ax.set_xlabel("class")
        ax.set_title(f"Decoded means of the {k} classes")
    else:
        ax.set_xlabel("class of variable 2")
        ax.set_ylabel("class of variable 1")
        others = f"; the other {n - 2} variables at the prior mean" if n > 2 else ""
        ax.set_title(f"Decoded means by the first two variables' classes{others}")
    return fig


def interpolate(model, x_a: np.ndarray, x_b: np.ndarray, steps: int = 10) -> np.ndarray:
    """Decoded means along the straight line between the codes of two images."""
    z = _np(model.encode(np.stack([x_a, x_b])))
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return _np(model.decode((1.0 - t) * z[0] + t * z[1]))


def contrasting_pair(y: np.ndarray, codes: np.ndarray | None = None) -> tuple[int, int]:
    """Indices of two images of different classes, for an interpolation.

    Without ``codes``: the first image and the first of another class. With
    ``codes`` (``[n, latent_dim]``, e.g. ``model.encode(x)``): of the first image
    of each class, the two whose codes lie farthest apart, so that the path
    between them crosses the latent space.

    Raises:
        ValueError: If every label is the same.
    """
    y = np.asarray(y)
    firsts = np.sort(np.unique(y, return_index=True)[1])  # the first image of each class
    if len(firsts) < 2:
        raise ValueError("contrasting_pair needs labels of at least two classes")
    if codes is None:
        return int(firsts[0]), int(firsts[1])
    z = np.asarray(codes, np.float64)[firsts]
    distance = ((z[:, None] - z[None]) ** 2).sum(-1)
    i, j = np.unravel_index(np.argmax(distance), distance.shape)
    return int(firsts[min(i, j)]), int(firsts[max(i, j)])


def plot_interpolation(model, x_a: np.ndarray, x_b: np.ndarray, steps: int = 10) -> Figure:
    """A strip from ``x_a`` to ``x_b`` through the latent space, ends included."""
    frames = interpolate(model, x_a, x_b, steps)
    fig, axes = _grid(1, steps + 2)
    _show(axes[0, 0], x_a, "A")
    for i, frame in enumerate(frames):
        _show(axes[0, i + 1], frame)
    _show(axes[0, -1], x_b, "B")
    fig.tight_layout()
    return fig


def save_interpolation_gif(
    model, x_a: np.ndarray, x_b: np.ndarray, path: str | Path, steps: int = 20, scale: int = 4
) -> Path:
    """Writes the interpolation (there and back) as an animated GIF with Pillow."""
    from PIL import Image

    frames = interpolate(model, x_a, x_b, steps)
    frames = np.concatenate([frames, frames[-2:0:-1]])  # there and back, ends not repeated
    images = []
    for frame in frames:
        array = (np.clip(frame, 0.0, 1.0) * 255).astype(np.uint8)
        image = Image.fromarray(array)
        size = (image.width * scale, image.height * scale)
        images.append(image.resize(size, Image.Resampling.NEAREST))
    path = Path(path)
    images[0].save(path, save_all=True, append_images=images[1:], duration=80, loop=0)
    return path


def plot_prior_samples(vae, n: int = 16, cols: int = 8, seed: int = 0) -> Figure:
    """Images decoded from z ~ p(z): the means, and one sample each beneath."""
    z = vae.prior.sample(n, seed=seed)
    dist = vae.decoder(z)
    means, samples = _np(dist.mean()), _np(dist.sample(seed=seed))
    rows = 2 * (-(-n // cols))
    fig, axes = _grid(rows, cols)
    for i in range(n):
        r, c = divmod(i, cols)
        _show(axes[2 * r, c], means[i])
        _show(axes[2 * r + 1, c], samples[i])
    fig.suptitle("Prior samples: mean (upper) and sample (lower)")
    fig.tight_layout()
    return fig


def plot_class_samples(
    vae, n_per_class: int = 8, seed: int = 0, class_names: Sequence[str] | None = None
) -> Figure:
    """A conditional VAE's images, one row per class: E[x | z_j, y] for y = 0..C−1.

    The ``n_per_class`` draws z_j ~ p(z) (from ``seed``) are shared by the rows, so a
    column holds one z decoded as every class: what z keeps (style, thickness,
    slant) and what the label sets.

    Args:
        vae: A :class:`~tfpvae.VAE` built with ``num_classes``.
        n_per_class: Columns: draws of z.
        seed: Seed of the draws.
        class_names: Row titles; class ids by default.

    Raises:
        ValueError: For a VAE that is not conditional.
    """
    c = getattr(vae, "num_classes", None)
    if c is None:
        raise ValueError(
            "plot_class_samples draws one row per class of a conditional VAE "
            "(build_vae(..., num_classes=C)); for this model use plot_prior_samples"
        )
    z = np.reshape(_np(vae.prior.sample(n_per_class, seed=seed)), [n_per_class, -1])
    labels = np.repeat(np.arange(c), n_per_class)  # row-major: class y, then draw j
    images = _np(vae.decode(np.tile(z, [c, 1]).astype(np.float32), labels=labels))
    if images.size and images.max() > 1.0:  # 8-bit levels of a discrete likelihood
        images = images / 255.0
    pad = 1
    fig, ax = plt.subplots(figsize=(0.6 * n_per_class + 1.5, 0.6 * c + 0.6))
    ax.imshow(tile(images, n_per_class, pad), cmap=None if images.ndim == 4 else "gray",
              vmin=0, vmax=1)  # fmt: skip
    height = images.shape[1]
    names = class_names if class_names is not None else [str(i) for i in range(c)]
    ax.set_yticks(np.arange(c) * (height + pad) + (height - 1) / 2)
    ax.set_yticklabels([str(names[i]) for i in range(c)], fontsize=8)
    ax.set_xticks([])
    ax.set_title("One row per class; each column one z ~ p(z)", fontsize=9)
    return fig


def plot_history(history: Mapping[str, Sequence[float]]) -> Figure:
    """Training curves of loss, rate and distortion, train and validation."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, name in zip(axes, ("loss", "rate", "distortion"), strict=True):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + name)
            if values is not None and len(values):
                epochs = np.arange(1, len(values) + 1)
                ax.plot(
                    epochs,
                    values,
                    style,
                    marker="o",
                    ms=3,
                    label="validation" if prefix else "train",
                )
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_image_rows(rows: dict[str, np.ndarray], n: int = 8) -> Figure:
    """Named rows of images, e.g. decodings of the same points by two models."""
    fig, axes = _grid(len(rows), n)
    for r, (name, images) in enumerate(rows.items()):
        for c in range(n):
            if c < len(images):
                _show(axes[r, c], images[c])
            else:
                axes[r, c].set_axis_off()
        axes[r, 0].text(-0.1, 0.5, name, transform=axes[r, 0].transAxes, ha="right", va="center")
    fig.tight_layout()
    return fig


def plot_kl_estimates(estimates: dict[int, np.ndarray], exact: float) -> Figure:
    """Spread of the sampled batch-mean KL around the exact value, per test-point count."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = [str(s) for s in estimates]
    sns.violinplot(data=list(estimates.values()), ax=ax, palette=PALETTE, cut=0, inner="quartile")
    ax.set_xticks(range(len(labels)), labels)
    ax.axhline(exact, color="black", ls="--", lw=1, label=f"exact KL = {exact:.3f}")
    ax.set_xlabel("test points per example (kl_samples)")
    ax.set_ylabel("batch-mean KL estimate (nats)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_histories(
    histories: dict[str, dict[str, Sequence[float]]], key: str = "val_loss"
) -> Figure:
    """One curve of ``key`` per named training run."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    colours = sns.color_palette(PALETTE, len(histories))
    for colour, (name, history) in zip(colours, histories.items(), strict=True):
        values = history[key]
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", ms=3, color=colour, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_rate_distortion(points: dict[str, tuple[float, float]]) -> Figure:
    """Rate against distortion for named models (e.g. a β sweep)."""
    fig, ax = plt.subplots(figsize=(5, 4))
    colours = sns.color_palette(PALETTE, len(points))
    for colour, (name, (rate, distortion)) in zip(colours, points.items(), strict=True):
        ax.scatter(rate, distortion, color=colour, s=40, label=name)
    ax.plot(*zip(*points.values(), strict=True), color="grey", lw=0.8, zorder=0)
    ax.set_xlabel("rate: KL(q(z|x) ‖ p(z)) (nats)")
    ax.set_ylabel("distortion: −log p(x|z) (nats)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_bound_curve(curve: dict) -> Figure:
    """The IWAE bound against k, with the ELBO as a reference line (± 1 SE)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.errorbar(
        curve["k"], curve["iwae"], yerr=curve["iwae_se"], marker="o", capsize=3, label="IWAE bound"
    )
    ax.axhline(curve["elbo"], color="black", ls="--", lw=1, label="ELBO")
    ax.set_xscale("log")
    ax.set_xlabel("importance samples k")
    ax.set_ylabel("nats per image")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_beta_sweep(sweep: Mapping[float, Mapping[str, float]]) -> Figure:
    """A β sweep on the rate–distortion plane, and its held-out bounds against β.

    Left: each model's held-out rate (KL) against its distortion (−log p(x|z)),
    labelled with its β and joined in order of β. The dashed lines are levels of
    constant −ELBO (rate + distortion), so a model on a lower line has the better
    ELBO. Right: the held-out ELBO and IWAE bound (nats per image) against β.

    Args:
        sweep: β → held-out numbers with at least ``rate``, ``distortion`` and
            ``elbo``, and optionally ``iwae`` (as from
            :func:`tfpvae.diagnostics.held_out_summary`).

    Returns:
        The figure, with the rate–distortion axes first.

    Raises:
        ValueError: If ``sweep`` is empty.
    """
    if not sweep:
        raise ValueError("plot_beta_sweep needs at least one β")
    betas = sorted(sweep)
    rate = np.array([sweep[b]["rate"] for b in betas], dtype=float)
    distortion = np.array([sweep[b]["distortion"] for b in betas], dtype=float)
    fig, (ax, ax_bounds) = plt.subplots(1, 2, figsize=(11, 4))
    colours = sns.color_palette(PALETTE, len(betas))
    ax.plot(rate, distortion, color="grey", lw=0.8, zorder=1)
    for colour, beta, r, d in zip(colours, betas, rate, distortion, strict=True):
        ax.scatter(r, d, color=colour, s=45, zorder=2, label=f"β = {beta:g}")
        ax.annotate(f"β={beta:g}", (r, d), textcoords="offset points", xytext=(6, 4), fontsize=8)
    # Levels of −ELBO = rate + distortion through the points: lines of slope −1.
    span = np.array([rate.min(), rate.max()])
    pad = max(1.0, 0.1 * float(np.ptp(rate)))
    xs = np.array([span[0] - pad, span[1] + pad])
    for level in np.unique(np.round(rate + distortion, 6)):
        ax.plot(xs, level - xs, ls="--", lw=0.7, color="lightgrey", zorder=0)
    ax.set_xlim(*xs)
    ax.set_xlabel("rate: KL(q(z|x) ‖ p(z)) (nats)")
    ax.set_ylabel("distortion: −log p(x|z) (nats)")
    ax.set_title("rate–distortion (dashed: constant ELBO)", fontsize=10)
    ax.legend(fontsize=8)
    ax_bounds.plot(betas, [sweep[b]["elbo"] for b in betas], marker="o", label="ELBO")
    if all("iwae" in sweep[b] for b in betas):
        ax_bounds.plot(betas, [sweep[b]["iwae"] for b in betas], marker="s", label="IWAE bound")
    ax_bounds.set_xscale("log")
    ax_bounds.set_xticks(betas, [f"{b:g}" for b in betas])
    ax_bounds.minorticks_off()
    ax_bounds.set_xlabel("β used in training")
    ax_bounds.set_ylabel("held-out bound (nats per image)")
    ax_bounds.legend(fontsize=8)
    fig.tight_layout()
    return fig


def traversal_codes(
    codes: np.ndarray, dims: Sequence[int], steps: int = 9, index: int = 0, edge: float = 0.02
) -> np.ndarray:
    """Codes that sweep each of ``dims`` through the range the codes occupy.

    Row r starts from ``codes[index]`` (one image's posterior mean) and replaces
    dimension ``dims[r]`` by ``steps`` values equally spaced between that
    dimension's ``edge`` and ``1 - edge`` quantiles over all ``codes``.

    Returns:
        ``[len(dims), steps, latent_dim]`` float32.
    """
    codes = np.asarray(codes, np.float32)
    out = np.repeat(codes[index][None, None], len(dims), axis=0).repeat(steps, axis=1)
    for row, dim in enumerate(dims):
        low, high = np.quantile(codes[:, dim], [edge, 1.0 - edge])
        out[row, :, dim] = np.linspace(low, high, steps)
    return out


def traverse(
    model, x: np.ndarray, dims: Sequence[int] | None = None, steps: int = 9, index: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Decoded means along each latent dimension (see :func:`traversal_codes`).

    Returns:
        ``(codes [len(dims), steps, latent_dim], images [len(dims), steps, *image_shape])``.
    """
    latent_dim = model.latent_dim
    dims = list(range(latent_dim)) if dims is None else [int(d) for d in dims]
    bad = [d for d in dims if not 0 <= d < latent_dim]
    if bad or not dims:
        raise ValueError(f"dims must be latent dimensions in 0..{latent_dim - 1}, got {dims}")
    if len(x) < 2:
        raise ValueError("plot_traversal needs at least 2 images: the range comes from their codes")
    codes = traversal_codes(_np(model.encode(x)), dims, steps, index)
    flat = _np(model.decode(codes.reshape(-1, latent_dim)))
    return codes, flat.reshape(len(dims), steps, *flat.shape[1:])


def plot_traversal(
    vae, x: np.ndarray, dims: Sequence[int] | None = None, steps: int = 9, index: int = 0
) -> Figure:
    """One row per latent dimension, swept through its posterior range around one image.

    Each row holds ``x[index]``'s posterior mean with one dimension replaced by
    values from that dimension's 2 % to its 98 % quantile over the codes of ``x``,
    decoded to the likelihood's mean; the other dimensions stay where the image
    put them. A row that does not change is a dimension the decoder ignores.
    One-dimensional data is drawn as a strip of pixels.

    Args:
        vae: The model (``encode``/``decode``).
        x: Prepared images whose codes set the ranges, e.g. a test split.
        dims: The dimensions to sweep (default: all).
        steps: Images per row.
        index: The image the sweeps start from.
    """
    codes, images = traverse(vae, x, dims, steps, index)
    dims = list(range(vae.latent_dim)) if dims is None else [int(d) for d in dims]
    fig, axes = _grid(len(dims), steps, 1.0)
    for r, dim in enumerate(dims):
        for c in range(steps):
            image = images[r, c] if images.ndim > 3 else images[r, c][None]  # 1-D: a strip
            _show(axes[r, c], image, f"{codes[r, c, dim]:.2f}")
        axes[r, 0].text(
            -0.15,
            0.5,
            f"$z_{{{dim + 1}}}$",
            transform=axes[r, 0].transAxes,
            ha="right",
            va="center",
        )
    fig.suptitle("Latent traversal: one dimension at a time, 2–98 % of the codes")
    fig.tight_layout()
    return fig


def plot_kl_per_dimension(
    kl: np.ndarray, active: np.ndarray | None = None, threshold: float = 0.01
) -> Figure:
    """A bar per latent dimension: its mean KL (nats), active units dark, collapsed pale.

    Args:
        kl: ``[latent_dim]`` from :func:`tfpvae.evaluation.diagnostics.kl_per_dimension`.
        active: ``[latent_dim]`` bool from ``active_units(...).active``; ``None``: no marks.
        threshold: The activity threshold, for the legend.
    """
    kl = np.asarray(kl, float)
    dims = np.arange(1, len(kl) + 1)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(kl) + 2.0), 3.2))
    colours = sns.color_palette(PALETTE, 2)
    if active is None:
        ax.bar(dims, kl, color=colours[0])
    else:
        active = np.asarray(active, bool)
        for mask, colour, label in (
            (active, colours[0], f"active (Cov > {threshold:g})"),
            (~active, "lightgrey", "inactive"),
        ):
            if mask.any():
                ax.bar(dims[mask], kl[mask], color=colour, label=label)
        ax.legend(fontsize=8)
        ax.set_title(f"{int(active.sum())} of {len(kl)} units active", fontsize=10)
    ax.set_xticks(dims)
    ax.set_xlabel("latent dimension")
    ax.set_ylabel("mean KL(q(z_u|x) ‖ p(z_u)), nats")
    fig.tight_layout()
    return fig


def plot_gradient_snr(ks: Sequence[int], snr: Mapping[str, Sequence[float]]) -> Figure:
    r"""The encoder gradient's signal-to-noise ratio against K, one line per estimator.

    Both axes are logarithmic, so the :math:`O(1/\sqrt K)` fall of the standard IWAE
    estimator (Rainforth et al., 2018) and the :math:`O(\sqrt K)` rise of DReG
    (Tucker et al., 2019) are straight lines of slope ∓½; a dotted guide of each
    slope starts at the first K of the first and last estimator.

    Args:
        ks: The numbers of draws K.
        snr: Estimator name → its SNR at each K
            (:func:`~tfpvae.evaluation.gradients.gradient_snr`).

    Raises:
        ValueError: When ``snr`` is empty or a line's length is not that of ``ks``.
    """
    if not snr:
        raise ValueError("snr is empty; give at least one estimator name → SNRs at each K")
    k = np.asarray(ks, dtype=float)
    for name, values in snr.items():
        if len(values) != len(k):
            raise ValueError(f"snr[{name!r}] has {len(values)} values for {len(k)} K's")
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    colours = sns.color_palette(PALETTE, len(snr))
    for colour, (name, values) in zip(colours, snr.items(), strict=True):
        ax.plot(k, values, marker="o", color=colour, label=name)
    names = list(snr)
    for name, slope in ((names[0], -0.5), (names[-1], 0.5)):
        if len(names) > 1 or slope < 0:
            start = float(np.asarray(snr[name])[0])
            ax.plot(k, start * (k / k[0]) ** slope, ":", color="grey", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("draws per image K")
    ax.set_ylabel("encoder gradient SNR |E g| / sd g")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
