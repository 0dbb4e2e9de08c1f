"""The command line answers quickly and quietly: no TensorFlow for --help, no C++ log noise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from tfpvae.interfaces import names, quiet

#: Runs the CLI in a fresh interpreter and reports whether TensorFlow got imported.
PROBE = """
import sys
from tfpvae.interfaces.cli import main
try:
    code = main({argv!r})
except SystemExit as exit:
    code = exit.code
print("exit", code)
print("tensorflow imported:", "tensorflow" in sys.modules)
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return {**env, **extra}


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--help"], 0),
        (["train", "--help"], 0),
        (["evaluate", "--help"], 0),
        (["train", "--likelihood", "poisson", "--out", "x"], 2),
        (["train", "--epochs", "many", "--out", "x"], 2),
        (["train"], 2),  # --out is required
        (["fly"], 2),
    ],
)
def test_help_and_argument_errors_do_not_import_tensorflow(argv: list[str], code: int) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)],
        capture_output=True, text=True, env=_env(), timeout=120,
    )  # fmt: skip
    assert f"exit {code}" in result.stdout, result.stderr[-2000:]
    assert "tensorflow imported: False" in result.stdout
    if code == 2:
        assert "usage: tfpvae" in result.stderr and "error:" in result.stderr


def test_python_dash_m_runs_the_cli_without_tensorflow(tmp_path: Path) -> None:
    probe = (
        "import runpy, sys; sys.argv = ['tfpvae', '--help']\n"
        "try:\n    runpy.run_module('tfpvae', run_name='__main__')\n"
        "except SystemExit as exit:\n    print('exit', exit.code)\n"
        "print('tensorflow imported:', 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=_env(), cwd=tmp_path,
        timeout=120,
    )  # fmt: skip
    assert "usage: tfpvae" in result.stdout and "exit 0" in result.stdout, result.stderr
    assert "tensorflow imported: False" in result.stdout


def test_choice_names_match_the_registries() -> None:
    from tfpvae.components.concentration import CONCENTRATIONS
    from tfpvae.components.kl import KL_ATTACHMENTS
    from tfpvae.components.likelihoods import LIKELIHOODS
    from tfpvae.components.posteriors import POSTERIORS
    from tfpvae.components.precision import PRECISIONS
    from tfpvae.components.priors import PRIORS
    from tfpvae.components.trunks import ARCHITECTURES
    from tfpvae.io.datasets import DATASETS
    from tfpvae.objectives import GRADIENTS, OBJECTIVES
    from tfpvae.training.distribute import STRATEGIES

    registries = {
        "LIKELIHOODS": LIKELIHOODS, "ARCHITECTURES": ARCHITECTURES, "POSTERIORS": POSTERIORS,
        "KL_ATTACHMENTS": KL_ATTACHMENTS, "DATASETS": DATASETS, "STRATEGIES": STRATEGIES,
        "PRECISIONS": PRECISIONS, "PRIORS": PRIORS, "OBJECTIVES": OBJECTIVES,
        "GRADIENTS": GRADIENTS,
        "CONCENTRATIONS": CONCENTRATIONS,
    }  # fmt: skip
    declared = {n for n in vars(names) if n.isupper()}
    assert declared == set(registries)
    for name, registry in registries.items():
        assert getattr(names, name) == tuple(registry.names()), name


def test_lazy_package_exports_every_public_name() -> None:
    import tfpvae

    assert set(tfpvae._EXPORTS) | {"__version__"} == set(tfpvae.__all__)
    assert tfpvae.evaluation.__name__ == "tfpvae.evaluation"  # subpackages load on first use
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = tfpvae.nothing_here


NATIVE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1795264973.170001   29592 port.cc:153] oneDNN custom operations are on.\n",
    "W0000 00:00:1795264973.170001   29592 cpu_feature_guard.cc:1] AVX512\n",
    "E0000 00:00:1795264976.893004   29592 cuda_platform.cc:52] failed call to cuInit: UNKNOWN\n",
]


@pytest.mark.parametrize(("level", "kept"), [(3, 0), (2, 1), (1, 2), (0, 4)])
def test_native_log_filter_drops_only_lines_below_the_level(capfd, level, kept) -> None:
    with quiet.native_log_filter(level):
        os.write(2, "".join([*NATIVE, "Traceback: a real problem\n"]).encode())
    err = capfd.readouterr().err
    assert err.endswith("Traceback: a real problem\n")
    assert err.splitlines(keepends=True)[:-1] == NATIVE[len(NATIVE) - kept :]


@pytest.mark.parametrize(("given", "level"), [(None, 3), ("0", 0), ("1", 1), ("junk", 0)])
def test_a_log_level_the_user_set_is_kept(monkeypatch, given, level) -> None:
    if given is None:
        monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", given)
    assert quiet.native_log_level() == level
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == (given or "3")


def _native_lines(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines(keepends=True)
        if quiet.NATIVE_LOG_LINE.match(line) or line.startswith(quiet.ABSL_PREAMBLE)
    ]


@pytest.mark.slow(seconds=40)
def test_cli_stderr_is_quiet_by_default_and_loud_with_verbose(tmp_path: Path) -> None:
    tfpvae = [sys.executable, "-m", "tfpvae"]  # what the console script runs
    out = tmp_path / "run"
    train = subprocess.run(
        [*tfpvae, "train", "--limit", "64", "--epochs", "1", "--hidden-units", "8",
         "--k", "2", "--quiet", "--no-figures", "--out", str(out)],
        capture_output=True, text=True, env=_env(), timeout=300,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-2000:]
    assert "held-out digits" in train.stdout
    assert _native_lines(train.stderr) == []
    for noise in ("cuInit", "E0000", "I0000", "absl::InitializeLog", "WARNING:tensorflow"):
        assert noise not in train.stderr
    evaluate = subprocess.run(
        [*tfpvae, "--verbose", "evaluate", str(out), "--k", "2"],
        capture_output=True, text=True, env=_env(), timeout=300,
    )  # fmt: skip
    assert evaluate.returncode == 0, evaluate.stderr[-2000:]
    assert "IWAE k=2" in evaluate.stdout
    assert _native_lines(evaluate.stderr), "--verbose should leave TensorFlow's own log lines"
