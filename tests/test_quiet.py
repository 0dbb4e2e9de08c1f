"""Quiet by default: importing, building, training, saving and loading print nothing new."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from tfpvae import _native_log

#: A user's short session, run in a fresh interpreter: every step tfpvae makes.
SESSION = """
import os, sys, tempfile, warnings
warnings.filterwarnings("default", category=DeprecationWarning, module=r"tfpvae(\\..*)?$")
import tfpvae
import tf_keras
(x, _), _ = tfpvae.load_dataset("digits")
x = tfpvae.prepare(x[:64])
vae = tfpvae.build_vae(input_shape=(8, 8), latent_dim=2, hidden_units=(16,))
vae.fit(x, epochs=1, batch_size=32, verbose=0)
d = tempfile.mkdtemp()
tfpvae.save(vae, os.path.join(d, "run"))
tfpvae.load(os.path.join(d, "run"))
vae.save(os.path.join(d, "served"))
again = tf_keras.models.load_model(os.path.join(d, "served"))
assert again.optimizer is not None and int(again.optimizer.iterations) == 2
print("done")
"""

#: What stderr may hold: TensorFlow's own native errors (a GPU machine's CUDA
#: set-up, say), each at most once. Anything else is new noise.
ALLOWED = (_native_log.NATIVE_LOG_LINE,)


def _unexpected(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    repeated = sorted({line for line in lines if lines.count(line) > 1})
    native = [line for line in lines if any(p.match(line) for p in ALLOWED)]
    low = [line for line in native if line[0] in "IW"]  # below the default level 2
    others = [line for line in lines if line not in native]
    return repeated + low + others


@pytest.mark.slow(seconds=12)
def test_a_train_save_load_session_prints_nothing_of_tfpvaes_making(tmp_path: Path) -> None:
    unset = ("TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS", "TF_XLA_FLAGS")  # as a user's shell
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", SESSION], capture_output=True, text=True, env=env, cwd=tmp_path,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "done\n"
    assert _unexpected(result.stderr) == [], result.stderr


def test_the_allowlist_catches_what_main_printed() -> None:
    """The stderr of the session above on main before this fix (abridged) is caught."""
    before = "\n".join(
        [
            "WARNING: All log messages before absl::InitializeLog() is called are written",
            "I0000 00:00:1796135780.119255    2510 port.cc:153] oneDNN custom operations are on.",
            "I0000 00:00:1796135781.972671    2510 port.cc:153] oneDNN custom operations are on.",
            "E0000 00:00:1796135783.921775    2510 cuda_platform.cc:52] failed call to cuInit",
            "WARNING:tensorflow:From autotrackable.py:95: LinearOperator.graph_parents (from",
            "WARNING:tensorflow:No training configuration found in save file, so the model was "
            "*not* compiled. Compile it manually.",
        ]
    )
    flagged = _unexpected(before)
    assert len(flagged) == 5 and not any("cuInit" in line for line in flagged)


@pytest.mark.parametrize(
    ("level", "kept"),
    [("2", []), ("0", ["I port.cc:153] oneDNN", "E cuda_platform.cc:52] failed call to cuInit"])],
)
def test_start_up_lines_print_once_and_the_expected_cuinit_failure_not_at_all(
    capfd, level: str, kept: list[str]
) -> None:
    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1.1  7 port.cc:153] oneDNN",
        "I0000 00:00:1.2  7 cudart_stub.cc:31] Could not find cuda drivers on your machine",
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:2.1  7 port.cc:153] oneDNN",  # the second library's copy
        "E0000 00:00:3.1  7 cuda_platform.cc:52] failed call to cuInit",
        "Traceback: a real problem",
    ]
    with _native_log.native_log_filter(int(level)):
        os.write(2, "".join(line + "\n" for line in lines).encode())
    err = capfd.readouterr().err.splitlines()
    assert err[-1] == "Traceback: a real problem"
    shown = [re.sub(r"^([IWEF])\d{4} [\d:.]+\s+\d+ ", r"\1 ", line) for line in err[:-1]]
    if level == "0":  # everything the user asked for, each line once
        assert shown[0].startswith("WARNING: All log messages")
        assert shown[1:] == [
            kept[0],
            "I cudart_stub.cc:31] Could not find cuda drivers on your machine",
            kept[1],
        ]
    else:
        assert shown == kept


def test_make_demo_prints_the_metrics_once() -> None:
    """The demo's recipe runs one command that prints the metrics table."""
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None
    commands = recipe.group(1).replace("\\\n", " ")
    assert len(re.findall(r"tfpvae (?:train|evaluate)\b", commands)) == 1
