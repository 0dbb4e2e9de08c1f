"""The sdist and wheel build, install into a clean venv, and work from outside the repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

import tfpvae


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None):
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{args}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow(seconds=40)
def test_wheel_installs_into_a_clean_venv_and_runs(tmp_path: Path) -> None:
    # Build from a copy of what the sdist needs, so the checkout gets no build/ or egg-info.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "tfpvae", src / "tfpvae", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path / "dist"
    # No isolation: the build backend comes from the test environment (no network needed).
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, src, cwd=tmp_path)
    version = tfpvae.__version__
    sdist = dist / f"tfpvae-{version}.tar.gz"
    wheel = dist / f"tfpvae-{version}-py3-none-any.whl"
    assert sdist.is_file() and wheel.is_file(), sorted(p.name for p in dist.iterdir())
    with tarfile.open(sdist) as archive:
        sdist_names = archive.getnames()
    assert f"tfpvae-{version}/tfpvae/py.typed" in sdist_names
    with zipfile.ZipFile(wheel) as archive:
        wheel_names = archive.namelist()
    shipped = {"tfpvae/py.typed", "tfpvae/interfaces/cli.py", "tfpvae/__main__.py"}
    shipped |= {"tfpvae/components/kl.py", "tfpvae/objectives/elbo.py", "tfpvae/models/vae.py"}
    assert shipped <= set(wheel_names)
    assert not [n for n in wheel_names if n.startswith(("tests/", "notebooks/"))]

    # A clean venv with the wheel alone; the dependencies come from this environment's
    # site-packages through a .pth file (its editable tfpvae, if any, stays invisible:
    # .pth files inside a path added that way are not run).
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
         "--no-index", "--quiet", wheel, cwd=tmp_path)  # fmt: skip
    purelib = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                        cwd=tmp_path).stdout.strip())  # fmt: skip
    (purelib / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    helped = _run(venv / "bin" / "tfpvae", "--help", cwd=outside, env=env)
    assert "usage: tfpvae" in helped.stdout and "train" in helped.stdout
    probe = (
        "import importlib.metadata as m, importlib.resources as r, tfpvae; "
        "from tfpvae import VAEConfig, build_vae; "
        "print(tfpvae.__file__, tfpvae.__version__, m.version('tfpvae'), "
        "(r.files('tfpvae') / 'py.typed').is_file(), VAEConfig().likelihood)"
    )
    where, ours, metadata, typed, likelihood = _run(
        python, "-c", probe, cwd=outside, env=env
    ).stdout.split()
    assert Path(where).is_relative_to(purelib), where  # the installed copy, not the checkout
    assert ours == metadata == version and typed == "True" and likelihood == "beta"
