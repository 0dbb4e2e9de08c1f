"""The ``tfpvae`` command line, run in-process and as a real console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED_CACHE, needs_fashion_sample

from tfpvae.interfaces.cli import main

FIGURES = {
    "examples", "reconstructions", "prior_samples", "interpolation", "history",
    "latent", "manifold", "latent_before_after", "traversal", "kl_per_dimension",
}  # fmt: skip


def _script() -> str:
    found = shutil.which("tfpvae", path=str(Path(sys.executable).parent))
    assert found, "the tfpvae console script is not installed"
    return found


@pytest.mark.slow(seconds=45)
def test_train_evaluate_plot_round_trip(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    config = tmp_path / "run.toml"
    config.write_text("latent-dim = 2\nhidden_units = [32]\nbeta = 0.5\nepochs = 2\n")
    code = main(["train", "--config", str(config), "--epochs", "3", "--limit", "300",
                 "--k", "5", "--warmup-epochs", "2", "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["kl_weight"] == 0.5 and saved["model"]["hidden_units"] == [32]
    assert saved["train"]["epochs"] == 3  # the flag beats the file
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].split(",")[:2] == ["epoch", "beta"] and len(history) == 4
    assert {p.stem for p in (out / "figures").glob("*.png")} == FIGURES
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["iwae_k"] == 5 and metrics["n_images"] == 300

    assert main(["evaluate", str(out), "--k", "7"]) == 0
    printed = capsys.readouterr().out
    assert "IWAE k=7" in printed and "bits/dim of the 8-bit images" in printed
    assert "uniform-dequantised lower bound (IWAE), k=7" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["iwae_k"] == 7 and 0 < metrics["bits_per_dim_8bit"] < 8
    (out / "figures" / "manifold.png").unlink()
    assert main(["plot", str(out)]) == 0
    assert (out / "figures" / "manifold.png").is_file()


def test_existing_output_is_not_overwritten_without_force(tmp_path, capsys) -> None:
    (tmp_path / "keep.txt").write_text("precious")
    assert main(["train", "--epochs", "1", "--limit", "50", "--out", str(tmp_path)]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "precious"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--latent-dim", "0", "--out", "X"], "latent_dim must be a positive integer"),
        (["train", "--beta", "-1", "--out", "X"], "kl_weight must be a finite number >= 0"),
        (["train", "--epochs", "0", "--out", "X"], "epochs must be a positive integer"),
        (["evaluate", "nowhere"], "directory does not exist"),
        (["train", "--config", "missing.toml", "--out", "X"], "cannot read config file"),
        (["train", "--kl-samples", "0", "--out", "X"], "kl_samples must be a positive integer"),
        (["train", "--learning-rate", "0", "--out", "X"], "learning_rate must be a finite"),
        (["train", "--learning-rate", "nan", "--out", "X"], "learning_rate must be a finite"),
        (["train", "--beta", "inf", "--out", "X"], "kl_weight must be a finite number"),
        (["train", "--limit", "0", "--out", "X"], "limit must be a positive integer"),
        (
            ["train", "--batch-size", "64", "--limit", "50", "--out", "X"],
            "batch_size 64 is larger than the 50 training images; lower --batch-size",
        ),
        (["train", "--resume", "--out", "X"], "nothing to resume in"),
        (["train", "--hidden-units", "32,-4", "--out", "X"], "hidden_units must be a positive"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message) -> None:
    argv = [str(tmp_path / a) if a in ("X", "nowhere", "missing.toml") else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_bad_config_file(tmp_path, capsys) -> None:
    bad = tmp_path / "c.json"
    bad.write_text('{"latent_dim": 2, "colour": "red"}')
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "unknown option(s)" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "evaluate", "plot", "export"])
def test_help_is_useful(command, capsys) -> None:
    # In-process: the console script itself runs in the tests below and in test_resume.
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    stdout = capsys.readouterr().out
    assert "usage: tfpvae " + command in stdout
    if command == "train":
        for option in ("--likelihood", "--exact-kl", "--beta", "--kl-samples", "--config"):
            assert option in stdout


@pytest.mark.slow(seconds=70)
@needs_fashion_sample
def test_console_script_on_the_fashion_mnist_sample(tmp_path) -> None:
    out = tmp_path / "x"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    train = subprocess.run(
        [_script(), "train", "--dataset", "fashion_mnist", "--cache-dir", str(SHARED_CACHE),
         "--likelihood", "beta", "--epochs", "1", "--k", "10", "--limit", "400", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-2000:]
    assert "training" in train.stderr  # the progress bar
    evaluate = subprocess.run(
        [_script(), "evaluate", str(out), "--k", "20"], capture_output=True, text=True, env=env
    )
    assert evaluate.returncode == 0, evaluate.stderr[-2000:]
    assert "held-out fashion_mnist (400 images, 784 dims)" in evaluate.stdout


def test_every_train_flag_reaches_its_field(tmp_path) -> None:
    from tfpvae.interfaces.cli import build_parser, resolve_train_options

    args = build_parser().parse_args(
        ["train", "--dataset", "digits", "--cache-dir", str(tmp_path), "--likelihood",
         "continuous_bernoulli", "--latent-dim", "3", "--hidden-units", "16,8", "--architecture",
         "conv", "--posterior", "diag", "--kl", "regularizer", "--exact-kl", "--beta", "0.3",
         "--kl-samples", "5", "--epochs", "4", "--batch-size", "7", "--learning-rate", "0.02",
         "--seed", "9", "--warmup-epochs", "2", "--k", "11", "--limit", "50", "--deterministic",
         "--strategy", "mirrored", "--precision", "mixed_bfloat16", "--tensorboard", "tb",
         "--tensorboard-images-every", "3", "--dequantize", "uniform", "--concentration",
         "softplus", "--out", "o"]
    )  # fmt: skip
    config, settings = resolve_train_options(args)
    assert (config.likelihood, config.latent_dim, config.hidden_units) == (
        "continuous_bernoulli", 3, (16, 8)
    )  # fmt: skip
    assert (config.architecture, config.posterior, config.kl) == ("conv", "diag", "regularizer")
    assert (config.use_exact_kl, config.kl_weight, config.kl_samples) == (True, 0.3, 5)
    assert config.learning_rate == 0.02 and config.input_shape == (8, 8)
    assert config.concentration == "softplus"
    assert (settings.dataset, settings.cache_dir, settings.epochs) == ("digits", str(tmp_path), 4)
    assert (settings.batch_size, settings.seed, settings.warmup_epochs) == (7, 9, 2)
    assert (settings.eval_k, settings.limit, settings.dequantize) == (11, 50, "uniform")
    assert (settings.deterministic, settings.strategy, config.precision) == (
        True, "mirrored", "mixed_bfloat16"
    )  # fmt: skip
    assert (settings.tensorboard, settings.tensorboard_images_every) == ("tb", 3)


def test_deterministic_flag_turns_on_op_determinism(tmp_path) -> None:
    from unittest import mock

    from tfpvae._backend import tf
    from tfpvae.interfaces import run as training

    for flag, expected in (("--deterministic", 1), ("--no-deterministic", 0)):
        with (
            mock.patch.object(tf.config.experimental, "enable_op_determinism") as enable,
            mock.patch.object(training, "fit"),
            mock.patch.object(training, "write_metrics", return_value=None),
            mock.patch.object(training, "write_figures"),
        ):
            argv = ["train", flag, "--limit", "60", "--hidden-units", "8", "--quiet"]
            assert main([*argv, "--out", str(tmp_path / flag)]) == 0
        assert enable.call_count == expected, flag


def test_force_replaces_only_the_earlier_runs_files(tmp_path) -> None:
    from tfpvae.interfaces.run import RUN_FILES, prepare_output_dir

    for name in RUN_FILES:
        (tmp_path / name).write_text("old run")
    (tmp_path / "checkpoints").unlink()
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--force"):
        prepare_output_dir(tmp_path, force=False)
    assert (tmp_path / "model.weights.h5").is_file()  # refused: nothing touched
    prepare_output_dir(tmp_path, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
