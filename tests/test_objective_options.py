"""``alpha``, ``gradient`` and ``free_bits`` everywhere a model is made: the constructor,
``VAEConfig``, config files and CLI flags, save/load, and the held-out bounds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_paths import course_vae

import tfpvae
from tfpvae._backend import tfpl
from tfpvae.interfaces.cli import build_parser, main, resolve_train_options
from tfpvae.objectives import ELBO, IWAE, Renyi

SMALL = dict(input_shape=(8, 8), hidden_units=(8,))


def test_config_round_trips_and_builds_the_objective() -> None:
    config = tfpvae.VAEConfig(objective="renyi", alpha=0.5, n_samples=3, gradient="dreg")
    assert tfpvae.VAEConfig.from_json(config.to_json()) == config
    assert tfpvae.VAEConfig(gradient=None).gradient == "standard"
    vae = tfpvae.build_vae(**SMALL, objective="renyi", alpha=0.5, n_samples=3, gradient="dreg")
    made = vae.objective
    assert type(made) is Renyi and (made.alpha, made.k, made.gradient) == (0.5, 3, "dreg")
    stl = tfpvae.build_vae(**SMALL, gradient="stl", n_samples=2).objective
    assert type(stl) is ELBO and stl.gradient == "stl" and stl.n_samples == 2


def test_save_and_load_keep_the_options(tmp_path) -> None:
    vae = tfpvae.build_vae(**SMALL, objective="iwae", iwae_k=3, gradient="dreg")
    tfpvae.save(vae, tmp_path / "recipe")
    again = tfpvae.load(tmp_path / "recipe")
    assert again.config == vae.config and type(again.objective) is IWAE
    assert again.objective.gradient == "dreg"
    # A user's networks: the options travel in the model's own config.
    course = course_vae(False, tfpl.IndependentNormal, "elbo")
    mine = tfpvae.VAE(course.encoder, course.decoder, objective="renyi", alpha=-0.5,
                      n_samples=2, gradient="dreg")  # fmt: skip
    rebuilt = tfpvae.VAE.from_config(mine.get_config())
    assert type(rebuilt.objective) is Renyi
    assert (rebuilt.objective.alpha, rebuilt.objective.gradient) == (-0.5, "dreg")
    floored = tfpvae.VAE(course.encoder, course.decoder, free_bits=0.3)
    assert tfpvae.VAE.from_config(floored.get_config()).objective.free_bits == 0.3
    assert "free_bits" not in tfpvae.VAE(course.encoder, course.decoder).get_config()
    floored.check_reads_back()


def test_held_out_bounds_do_not_depend_on_the_training_objective(digits) -> None:
    x = tfpvae.prepare(digits[1][0][:20], "beta")
    plain = tfpvae.build_vae(**SMALL)
    other = tfpvae.build_vae(**SMALL, objective="renyi", alpha=0.5, n_samples=2, gradient="dreg")
    other.set_weights(plain.get_weights())
    np.testing.assert_array_equal(
        tfpvae.iwae_bound(plain, x, k=5), tfpvae.iwae_bound(other, x, k=5)
    )


def test_cli_flags_and_config_file_reach_the_fields(tmp_path) -> None:
    args = build_parser().parse_args(
        ["train", "--objective", "renyi", "--alpha", "0.25", "--gradient", "dreg",
         "--n-samples", "4", "--out", "o"]
    )  # fmt: skip
    config, _ = resolve_train_options(args)
    assert (config.objective, config.alpha, config.gradient, config.n_samples) == (
        "renyi", 0.25, "dreg", 4
    )  # fmt: skip
    file = tmp_path / "run.toml"
    file.write_text("free-bits = 0.5\ngradient = 'standard'\n")
    config, _ = resolve_train_options(
        build_parser().parse_args(["train", "--config", str(file), "--out", "o"])
    )
    assert (config.free_bits, config.gradient) == (0.5, "standard")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gradient", "dreg"], "gradient='dreg' applies to objective 'iwae' or 'renyi'"),
        (["--objective", "iwae", "--gradient", "stl"], "gradient='stl' applies to objective"),
        (["--alpha", "0.5"], "alpha=0.5 does not apply to objective='elbo'"),
        (["--free-bits", "-1"], "free_bits must be a finite number >= 0"),
        (["--objective", "renyi", "--alpha", "1"], "alpha=1 is the ELBO's limit"),
    ],
)
def test_cli_refuses_bad_combinations(tmp_path, capsys, argv, message) -> None:
    assert main(["train", *argv, "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow(seconds=20)
def test_train_renyi_dreg_then_evaluate_the_cubo_bracket(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    code = main(["train", "--objective", "renyi", "--alpha", "0.5", "--n-samples", "2",
                 "--gradient", "dreg", "--epochs", "1", "--limit", "64", "--batch-size", "32",
                 "--hidden-units", "8", "--k", "3", "--no-figures", "--quiet",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    saved = json.loads((out / "config.json").read_text())["model"]
    assert (saved["objective"], saved["alpha"], saved["gradient"]) == ("renyi", 0.5, "dreg")
    capsys.readouterr()
    assert main(["evaluate", str(out), "--k", "6", "--cubo"]) == 0
    assert "CUBO n=2" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["cubo"] >= metrics["iwae"] and metrics["cubo_n"] == 2


def test_numpy_scalars_are_numbers_for_alpha_and_free_bits() -> None:
    """α and λ from NumPy (e.g. a sweep over np.linspace) are taken as the floats they are."""
    small = dict(likelihood="bernoulli", input_shape=(8, 8), hidden_units=(8,))
    renyi = tfpvae.build_vae(objective="renyi", alpha=np.float32(0.5), n_samples=2, **small)
    assert renyi.objective.alpha == 0.5
    floored = tfpvae.build_vae(posterior="diag", free_bits=np.float64(0.25), **small)
    assert floored.objective.free_bits == 0.25
