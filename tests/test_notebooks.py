"""Every tutorial notebook runs end to end on the smoke budget."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import HAS_FASHION_SAMPLE, REPO, SHARED_CACHE
from nbclient import NotebookClient

NOTEBOOK_DIR = REPO / "notebooks"
#: Notebooks executed by this suite; the coverage test keeps it complete.
EXECUTED = [
    "01_vae_fashion_mnist_beta.ipynb",
    "02_kl_exact_vs_sampled.ipynb",
    "03_likelihoods.ipynb",
    "04_conv_vae_and_autoencoder.ipynb",
    "05_evaluation.ipynb",
    "06_beyond_gaussian.ipynb",
    "07_divergences_and_structure.ipynb",
]
MAX_BYTES = 1_500_000


def test_every_notebook_is_executed() -> None:
    present = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))
    assert present == sorted(EXECUTED), "add new notebooks to EXECUTED"


@pytest.mark.parametrize("name", EXECUTED)
def test_committed_notebook_is_executed_small_and_shows_two_figures(name: str) -> None:
    path = NOTEBOOK_DIR / name
    assert path.stat().st_size < MAX_BYTES
    book = nbformat.read(path, as_version=4)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "commit the notebook executed"
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 2, (
        f"{name} shows {len(figures)} figure(s); a tutorial shows at least two"
    )


@pytest.mark.slow(seconds=70)
@pytest.mark.parametrize("name", EXECUTED)
def test_notebook_runs_on_the_smoke_budget(name: str, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TFPVAE_SMOKE", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    if HAS_FASHION_SAMPLE:
        monkeypatch.setenv("TFPVAE_KERAS_CACHE", str(SHARED_CACHE))
    else:  # no sample, no network: the notebooks must fall back to the digits
        monkeypatch.setenv("TFPVAE_KERAS_CACHE", str(tmp_path / "empty-cache"))
    book = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    client = NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    text = "".join(
        o.get("text", "") for c in book.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "smoke budget" in text
