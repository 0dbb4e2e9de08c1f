"""Portable runs: a run directory is evaluated, plotted and exported from anywhere."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tfpvae.interfaces.cli import main
from tfpvae.interfaces.locations import run_cache_dir
from tfpvae.io.datasets import CACHE_ENV


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.tobytes())


def _fake_fashion_cache(root: Path) -> Path:
    """A tiny Fashion-MNIST in Keras's cache layout: 24 training and 8 test images."""
    folder = root / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("t10k", 8)):
        _write_idx(folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, np.uint8))
        _write_idx(
            folder / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), np.uint8)
        )
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-epoch run on a fake cache, trained from ``work/`` with relative paths."""
    root = tmp_path_factory.mktemp("portable")
    (root / "work").mkdir()
    _fake_fashion_cache(root / "work" / "cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root / "work")
        patch.delenv(CACHE_ENV, raising=False)
        code = main(
            ["train", "--dataset", "fashion_mnist", "--cache-dir", "cache", "--epochs", "1",
             "--batch-size", "8", "--hidden-units", "8", "--k", "2", "--quiet", "--no-figures",
             "--out", "runs/x"]
        )  # fmt: skip
    assert code == 0
    return root


def test_the_run_records_absolute_data_locations(trained) -> None:
    payload = json.loads((trained / "work" / "runs" / "x" / "config.json").read_text())
    assert payload["train"]["cache_dir"] == str((trained / "work" / "cache").resolve())
    assert payload["cwd"] == str((trained / "work").resolve())


def test_evaluate_plot_and_export_from_another_directory(trained, monkeypatch, capsys) -> None:
    elsewhere = trained / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv(CACHE_ENV, raising=False)
    run = str(trained / "work" / "runs" / "x")
    assert main(["evaluate", run, "--k", "2"]) == 0
    assert "held-out fashion_mnist (8 images, 784 dims)" in capsys.readouterr().out
    assert main(["plot", run]) == 0
    assert (Path(run) / "figures" / "reconstructions.png").is_file()
    assert main(["export", run, "served"]) == 0
    assert (elsewhere / "served" / "saved_model.pb").is_file()


def test_a_moved_cache_is_found_by_flag_or_environment(trained, monkeypatch, capsys) -> None:
    monkeypatch.chdir(trained)
    monkeypatch.delenv(CACHE_ENV, raising=False)
    run = str(trained / "work" / "runs" / "x")
    moved = trained / "moved-cache"
    shutil.copytree(trained / "work" / "cache", moved)
    shutil.rmtree(trained / "work" / "cache")
    capsys.readouterr()
    assert main(["evaluate", run, "--k", "2"]) == 2  # the recorded cache is gone
    err = capsys.readouterr().err
    assert "--cache-dir" in err and CACHE_ENV in err and "\n" not in err.strip()
    assert main(["evaluate", run, "--k", "2", "--cache-dir", "moved-cache"]) == 0
    monkeypatch.setenv(CACHE_ENV, str(moved))
    assert main(["evaluate", run, "--k", "2"]) == 0
    monkeypatch.setenv(CACHE_ENV, str(trained / "nowhere"))
    assert main(["evaluate", run, "--k", "2", "--cache-dir", str(moved)]) == 0  # flag > env
    assert "held-out fashion_mnist" in capsys.readouterr().out


def test_precedence_flag_then_environment_then_recorded(tmp_path) -> None:
    for name in ("flag", "env", "recorded"):
        (tmp_path / name).mkdir()
    env = {CACHE_ENV: str(tmp_path / "env")}
    recorded = str(tmp_path / "recorded")
    assert run_cache_dir(tmp_path, recorded, None, tmp_path / "flag", env) == str(tmp_path / "flag")
    assert run_cache_dir(tmp_path, recorded, None, None, env) == str(tmp_path / "env")
    assert run_cache_dir(tmp_path, recorded, None, None, {}) == recorded
    assert run_cache_dir(tmp_path, None, None, None, {}) is None  # Keras's own ~/.keras


def test_a_relative_recorded_cache_resolves_against_the_recorded_directory(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "then" / "cache").mkdir(parents=True)
    (tmp_path / "project" / "runs" / "old").mkdir(parents=True)
    (tmp_path / "project" / "data").mkdir()
    run = tmp_path / "project" / "runs" / "old"
    then = str(tmp_path / "then")
    assert run_cache_dir(run, "cache", then, None, {}) == str(tmp_path / "then" / "cache")
    # No recorded directory (an older run): the run directory and the folders above it.
    assert run_cache_dir(run, "../data", None, None, {}) == str(tmp_path / "project" / "data")
