"""Compiled XLA steps kept between processes: where, when, and that loading them is quiet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from tfpvae import _native_log, _xla_cache

#: A fresh process that builds and trains the course's MLP with XLA, as a user's first cell.
SESSION = """
import tfpvae
(x, _), _ = tfpvae.load_dataset("digits")
vae = tfpvae.build_vae(input_shape=(8, 8), latent_dim=2, hidden_units=(16,), likelihood="bernoulli")
x = tfpvae.prepare(x[:64], likelihood="bernoulli")
vae.fit(x, epochs=2, batch_size=32, verbose=0)
# A generator's batches carry no weights: a new trace, so another step to load.
vae.fit((x[i : i + 16] for i in range(0, 64, 16)), steps_per_epoch=4, epochs=1, verbose=0)
print("done")
"""


def test_the_cache_directory_follows_the_variable_and_is_per_install_and_cpu(
    monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(_xla_cache.XLA_CACHE_ENV, str(tmp_path))
    directory = _xla_cache.xla_cache_directory()
    assert directory is not None and directory.parent == tmp_path
    assert directory.name == _xla_cache.machine_key()
    assert directory.name.startswith("tf2.") and len(directory.name.rsplit("-", 1)[1]) == 16
    for off in ("0", "off", "False"):
        monkeypatch.setenv(_xla_cache.XLA_CACHE_ENV, off)
        assert _xla_cache.xla_cache_directory() is None
    monkeypatch.delenv(_xla_cache.XLA_CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _xla_cache.xla_cache_directory().parent == tmp_path / "xdg" / "tfpvae" / "xla"


def test_the_flag_is_added_once_and_never_over_the_users_own(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(_xla_cache.XLA_CACHE_ENV, str(tmp_path))
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0")
    directory = _xla_cache.use_compilation_cache()
    assert directory is not None and directory.is_dir()
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_auto_jit=0 {_xla_cache.CACHE_FLAG}={directory}"
    assert _xla_cache.use_compilation_cache() is None  # already there: unchanged
    assert os.environ["TF_XLA_FLAGS"].count(_xla_cache.CACHE_FLAG) == 1
    own = f"{_xla_cache.CACHE_FLAG}=/somewhere/else"
    monkeypatch.setenv("TF_XLA_FLAGS", own)
    assert _xla_cache.use_compilation_cache() is None and os.environ["TF_XLA_FLAGS"] == own
    monkeypatch.delenv("TF_XLA_FLAGS")
    monkeypatch.setenv(_xla_cache.XLA_CACHE_ENV, str(tmp_path / "with space"))
    assert _xla_cache.use_compilation_cache() is None and "TF_XLA_FLAGS" not in os.environ
    monkeypatch.setenv(_xla_cache.XLA_CACHE_ENV, "off")
    assert _xla_cache.use_compilation_cache() is None and "TF_XLA_FLAGS" not in os.environ


def test_the_filter_drops_the_cache_loads_noise_but_not_a_real_cpu_mismatch(capfd) -> None:
    lines = [
        "E0000 00:00:1.1  7 text_format.cc:378] Error parsing text-format "
        "tensorflow.XlaSerializedCacheEntry: 2:1: Expected identifier, got: 5",
        "E0000 00:00:1.2  7 cpu_aot_loader.cc:220] Loading XLA:CPU AOT result. Target machine "
        "feature +prefer-no-scatter is not  supported on the host machine.",
        "E0000 00:00:1.3  7 cpu_aot_loader.cc:220] Loading XLA:CPU AOT result. Target machine "
        "feature +prefer-no-gather is not  supported on the host machine.",
        "E0000 00:00:1.4  7 cpu_aot_loader.cc:220] Loading XLA:CPU AOT result. Target machine "
        "feature +avx512f is not  supported on the host machine.",
    ]
    with _native_log.native_log_filter(2):
        os.write(2, "".join(line + "\n" for line in lines).encode())
    assert capfd.readouterr().err.splitlines() == lines[3:]


def _fresh_process(cache: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_XLA_FLAGS")}
    env.update(TFPVAE_XLA="1", TFPVAE_XLA_CACHE=str(cache))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", SESSION], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.xla
@pytest.mark.slow(seconds=20)
def test_a_second_process_loads_the_compiled_step_quietly(tmp_path: Path) -> None:
    first = _fresh_process(tmp_path)
    assert first.returncode == 0 and first.stdout == "done\n", first.stderr[-3000:]
    (directory,) = tmp_path.iterdir()
    compiled = sorted(p.name for p in directory.iterdir())
    assert compiled and all(name.endswith("XLA_CPU_JIT.pb") for name in compiled)
    second = _fresh_process(tmp_path)
    assert second.returncode == 0 and second.stdout == "done\n", second.stderr[-3000:]
    # Everything was loaded (nothing new compiled), and loading printed nothing.
    assert sorted(p.name for p in directory.iterdir()) == compiled
    assert second.stderr == "", second.stderr


def test_finding_tensorflow_for_the_cache_key_keeps_its_import_quiet() -> None:
    """The key is read before TensorFlow loads, without consuming the quiet-import hook."""
    # Without TF_XLA_FLAGS (this process's import of tfpvae set it), as a user's shell has.
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_XLA_FLAGS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    code = "import tfpvae\nimport tf_keras\nimport tensorflow\nprint('done')"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0 and done.stdout == "done\n", done.stderr[-3000:]
    assert done.stderr == "", done.stderr
