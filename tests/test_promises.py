"""The docs' promises hold: Gaussian data, 1-D plots, dotted paths, labels refused, runs/."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

import tfpvae
from tfpvae._backend import tf

#: Resolves dotted paths attribute by attribute after a bare ``import tfpvae``.
RESOLVE = """
import json, sys
import tfpvae
missing = []
for path in json.loads(sys.argv[1]):
    value = tfpvae
    for name in path.split(".")[1:]:
        try:
            value = getattr(value, name)
        except AttributeError:
            missing.append(path)
            break
print(json.dumps(missing))
"""


def _documented_paths() -> list[str]:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    found = set()
    for page in pages:
        found.update(re.findall(r"\btfpvae(?:\.[A-Za-z_]\w*)+", page.read_text()))
    return sorted(found)


@pytest.mark.slow(seconds=6)
def test_every_dotted_path_in_the_docs_is_reachable_after_import_tfpvae() -> None:
    paths = _documented_paths()
    assert "tfpvae.evaluation.bounds.elbo" in paths  # the README's own example
    result = subprocess.run(
        [sys.executable, "-c", RESOLVE, json.dumps(paths)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == []


def test_prepare_standardises_real_valued_data_for_the_gaussian() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(loc=[3.0, -40.0, 0.5], scale=[2.0, 10.0, 0.01], size=(500, 3))
    y = tfpvae.prepare(x, "gaussian")
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=0), 1.0, atol=1e-5)
    assert np.corrcoef(x[:, 1], y[:, 1])[0, 1] > 1 - 1e-9  # an increasing affine map
    # The training set's statistics carry over to a test set.
    test = tfpvae.prepare(x[:10], "gaussian", mean=x.mean(0), std=x.std(0))
    np.testing.assert_allclose(test, y[:10], atol=1e-5)
    constant = tfpvae.prepare(np.full((4, 2), 7.0), "gaussian")
    np.testing.assert_array_equal(constant, 0.0)  # no division by a zero spread
    # 8-bit images keep the comparable (0, 1) mapping; other likelihoods refuse floats.
    pixels = np.array([[0, 255]], np.uint8)
    np.testing.assert_allclose(tfpvae.prepare(pixels, "gaussian"), [[0.5 / 256, 255.5 / 256]])
    with pytest.raises(ValueError, match="real-valued data goes to likelihood='gaussian'"):
        tfpvae.prepare(x, "beta")
    with pytest.raises(ValueError, match="finite"):
        tfpvae.prepare(np.array([[np.nan, 1.0]]), "gaussian")


def test_plot_reconstructions_draws_flat_vectors_as_profiles() -> None:
    from tfpvae.evaluation import plots

    x = tfpvae.prepare(np.random.default_rng(1).normal(size=(20, 6)), "gaussian")
    vae = tfpvae.build_vae("gaussian", input_shape=(6,), hidden_units=(8,))
    fig = plots.plot_reconstructions(vae, x, n=3)
    axes = fig.axes
    assert len(axes) == 3
    for c, ax in enumerate(axes):
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == ["original", "mean", "sample"]
        np.testing.assert_allclose(lines[0].get_ydata(), x[c])  # the original profile
        assert len(lines[1].get_xdata()) == 6
    plots.plt.close(fig)


@pytest.mark.parametrize(
    "make",
    [
        lambda x, y: ((x, y), {}),  # a pair (images, labels) as x
        lambda x, y: ((x,), {"y": y}),  # labels as targets
        lambda x, y: ((y,), {}),  # labels in place of images
        lambda x, y: ((tf.data.Dataset.from_tensor_slices((x, y)).batch(8),), {}),
        lambda x, y: ((tf.data.Dataset.from_tensor_slices(((x, y),)).batch(8),), {}),
        lambda x, y: ((tf.data.Dataset.from_tensor_slices(y).batch(8),), {}),
    ],
    ids=["pair", "y", "labels_as_x", "dataset_xy", "dataset_pair", "dataset_labels"],
)
def test_labels_handed_to_fit_are_refused_with_a_message(make) -> None:
    (x, y), _ = tfpvae.load_dataset("digits")
    x, y = tfpvae.prepare(x[:16]), y[:16]
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(4,))
    args, kwargs = make(x, y)
    with pytest.raises(ValueError, match=r"labels|images of shape|model takes") as info:
        vae.fit(*args, epochs=1, verbose=0, **kwargs)
    assert "in user code" not in str(info.value)
    assert int(vae.optimizer.iterations) == 0  # refused before any step


def test_examples_write_under_runs_which_git_ignores() -> None:
    assert "runs/" in (REPO / ".gitignore").read_text().split()
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for page in pages:
        text = page.read_text()
        for out in re.findall(r"--out (\S+)", text) + re.findall(r"tfpvae export \S+ (\S+)", text):
            assert out.startswith(("runs/", "RUN", "OUT", "DIR")), f"{page.name}: {out}"
        for saved in re.findall(r"\.save\(\"([^\"]+)\"\)", text):
            refused = saved.endswith((".h5", ".keras"))  # single-file formats vae.save refuses
            assert saved.startswith("runs/") or refused or saved == "dir", f"{page.name}: {saved}"
