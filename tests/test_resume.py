"""Runs survive SIGKILL, resume without gaps, and reproduce bit for bit.

Every run here is a real ``tfpvae`` process with op determinism on. One run is
killed with SIGKILL in the middle of an epoch and resumed; it must end with the
same weights as an uninterrupted run with the same seed in another process, and
those must differ from a run with another seed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tfpvae
from tfpvae.interfaces.run import read_history

EPOCHS = 4
ARGS = [
    "--dataset", "digits", "--limit", "480", "--epochs", str(EPOCHS), "--batch-size", "4",
    "--hidden-units", "32", "--k", "2", "--deterministic", "--quiet", "--no-figures",
]  # fmt: skip


def _command(out: Path, *extra: str) -> list[str]:
    script = shutil.which("tfpvae", path=str(Path(sys.executable).parent))
    assert script, "the tfpvae console script is not installed"
    return [script, "train", *ARGS, "--out", str(out), *extra]


def _start(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        _command(out, *extra), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(process: subprocess.Popen, timeout: float = 240) -> None:
    _, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-2000:]


def _checkpoint_epoch(out: Path) -> int:
    try:
        return json.loads((out / "checkpoints" / "latest.json").read_text())["epoch"]
    except (FileNotFoundError, json.JSONDecodeError):
        return -1


def _kill_mid_epoch(process: subprocess.Popen, out: Path, after_epoch: int) -> None:
    """SIGKILLs ``process`` about half-way through epoch ``after_epoch + 1``."""
    seen: dict[int, float] = {}
    deadline = time.monotonic() + 240
    while _checkpoint_epoch(out) < after_epoch:
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the run never reached its checkpoint"
        seen.setdefault(_checkpoint_epoch(out), time.monotonic())
        time.sleep(0.005)
    epoch_seconds = time.monotonic() - seen.get(after_epoch - 1, time.monotonic() - 0.2)
    time.sleep(epoch_seconds / 2)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def _weights(out: Path) -> list[np.ndarray]:
    return [v.numpy() for v in tfpvae.load(out).trainable_variables]


@pytest.mark.slow(seconds=115)
@pytest.mark.xla  # bit-identical resumes under XLA, as users train
def test_sigkill_resume_and_reproducibility(tmp_path) -> None:
    a, other_seed, killed = (tmp_path / n for n in ("a", "seed1", "killed"))
    runs = [_start(a), _start(other_seed, "--seed", "1"), _start(killed)]
    _kill_mid_epoch(runs[2], killed, after_epoch=2)
    for process in runs[:2]:
        _finish(process)
    assert not (killed / "model.weights.h5").exists(), "the run finished before the kill"
    assert (killed / "checkpoints" / "latest.json").is_file()

    resumed = subprocess.run(_command(killed, "--resume"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    history = read_history(killed)
    assert history["epoch"] == list(range(EPOCHS))  # no gap, no repeat
    np.testing.assert_array_equal(history["loss"], read_history(a)["loss"])
    # Same seed and config in two processes (one of them killed and resumed):
    # bit-identical weights. Another seed: different weights.
    reference = _weights(a)
    for expected, got in zip(reference, _weights(killed), strict=True):
        np.testing.assert_array_equal(expected, got, err_msg="the killed and resumed run")
    assert any(
        not np.array_equal(x, y) for x, y in zip(reference, _weights(other_seed), strict=True)
    ), "another seed gave the same weights"
    assert not (a / "figures").exists()  # --no-figures
    assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == [
        f"epoch-{EPOCHS:04d}",
        "latest.json",
    ]
