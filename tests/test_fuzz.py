"""Fuzzing the CLI and config parsing: bad input ends in exit 2 and one message, never a traceback.

Training itself is replaced by a sentinel, so an input that parses as valid is
recognised (and allowed) without training anything.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import string
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfpvae import TrainSettings, VAEConfig
from tfpvae.interfaces.cli import main

FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,  # the same examples on every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class ReachedTrainingError(Exception):
    """Raised instead of training: the options were accepted."""


def _run(argv: list[str]) -> tuple[object, str]:
    """(exit code or "trained", stderr) of ``tfpvae argv`` with training stubbed out."""
    err = io.StringIO()
    with (
        mock.patch("tfpvae.interfaces.run.run_training", side_effect=ReachedTrainingError),
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        try:
            code: object = main(argv)
        except SystemExit as exit_:  # argparse's own usage errors
            code = exit_.code
        except ReachedTrainingError:
            code = "trained"
    return code, err.getvalue()


def _assert_clean_refusal(code: object, err: str) -> None:
    assert code == 2, f"exit {code!r}: {err}"
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "error:" in last and len(last) < 600


def _not_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


def _ints(values: list[int]) -> str:
    return ",".join(map(str, values))


words = st.text(alphabet=string.ascii_letters + string.punctuation + " ", min_size=1, max_size=12)
not_a_number = words.filter(lambda s: _not_float(s) and not s.startswith("-"))
bad_positive_int = st.one_of(st.integers(max_value=0).map(str), not_a_number)
bad_float = st.one_of(not_a_number, st.sampled_from(["nan", "inf", "-inf", "1e999"]))
BAD_VALUES = {
    "--latent-dim": bad_positive_int,
    "--kl-samples": bad_positive_int,
    "--epochs": bad_positive_int,
    "--batch-size": bad_positive_int,
    "--k": bad_positive_int,
    "--limit": bad_positive_int,
    "--warmup-epochs": st.one_of(st.integers(max_value=-1).map(str), not_a_number),
    "--seed": st.one_of(st.integers(max_value=-1).map(str), not_a_number),
    "--beta": st.one_of(bad_float, st.floats(max_value=-1e-9).map(repr)),
    "--learning-rate": st.one_of(bad_float, st.floats(max_value=0).map(repr)),
    "--hidden-units": st.one_of(
        not_a_number, st.lists(st.integers(max_value=0), min_size=1).map(_ints)
    ),
    "--likelihood": words,
    "--architecture": words,
    "--posterior": words,
    "--kl": words,
    "--dataset": words,
}


@FUZZ
@given(option=st.sampled_from(sorted(BAD_VALUES)), data=st.data())
def test_one_bad_train_option_exits_2(tmp_path, option, data) -> None:
    value = data.draw(BAD_VALUES[option], label="value")
    code, err = _run(["train", f"{option}={value}", "--out", str(tmp_path / "run")])
    _assert_clean_refusal(code, err)


@FUZZ
@given(tokens=st.lists(st.text(max_size=10), max_size=6))
def test_random_arguments_never_give_a_traceback(tmp_path, tokens) -> None:
    for command in (["train"], ["evaluate"], ["plot"], []):
        code, err = _run([*command, *tokens])
        assert code in (0, 2, "trained"), err
        assert "Traceback" not in err


json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8)
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
option_names = st.sampled_from(
    ["latent_dim", "hidden-units", "beta", "kl_samples", "learning_rate", "epochs",
     "batch_size", "likelihood", "exact_kl", "seed", "limit", "warmup_epochs", "k",
     "deterministic", "colour"]
)  # fmt: skip


@FUZZ
@given(options=st.dictionaries(option_names, json_values, min_size=1, max_size=4))
def test_config_files_with_any_values_exit_cleanly(tmp_path, options) -> None:
    path = tmp_path / "options.json"
    path.write_text(json.dumps(options))
    code, err = _run(["train", "--config", str(path), "--out", str(tmp_path / "run")])
    if code != "trained":
        _assert_clean_refusal(code, err)


@FUZZ
@given(text=st.text(max_size=80))
def test_any_toml_text_exits_cleanly(tmp_path, text) -> None:
    path = tmp_path / "options.toml"
    path.write_text(text)
    code, err = _run(["train", "--config", str(path), "--out", str(tmp_path / "run")])
    if code != "trained":
        _assert_clean_refusal(code, err)


@FUZZ
@given(
    fields=st.dictionaries(
        st.sampled_from([f.name for f in VAEConfig.__dataclass_fields__.values()] + ["x"]),
        json_values,
        max_size=4,
    )
)
def test_vae_config_from_dict_raises_only_value_errors(fields) -> None:
    try:
        config = VAEConfig.from_dict(fields)
    except ValueError:
        return
    assert VAEConfig.from_json(config.to_json()) == config
    assert math.isfinite(config.kl_weight) and config.latent_dim >= 1


@FUZZ
@given(
    fields=st.dictionaries(
        st.sampled_from(list(TrainSettings.__dataclass_fields__)), json_values, max_size=4
    )
)
def test_train_settings_raise_only_value_errors(fields) -> None:
    with contextlib.suppress(ValueError):
        TrainSettings(**fields)


def test_evaluate_and_plot_refuse_foreign_directories(tmp_path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"model": {"latent_dim": "two"}}')
    for argv in (["evaluate", str(foreign)], ["plot", str(foreign)], ["evaluate", str(Path("/"))]):
        _assert_clean_refusal(*_run(argv))
