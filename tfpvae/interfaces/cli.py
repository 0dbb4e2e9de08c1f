"""The ``tfpvae`` command: ``train``, ``evaluate`` and ``plot``.

Options come from three places, later ones winning: built-in defaults, a
``--config`` file (JSON or TOML, keys as the long option names with ``_`` or
``-``), and the command line. Every error in the user's input ends in exit code 2
with a one-line message, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_USAGE = 2

# option name (as on the command line, with _) -> field of VAEConfig or TrainSettings
MODEL_OPTIONS = {
    "likelihood": "likelihood",
    "latent_dim": "latent_dim",
    "hidden_units": "hidden_units",
    "architecture": "architecture",
    "posterior": "posterior",
    "kl": "kl",
    "exact_kl": "use_exact_kl",
    "beta": "kl_weight",
    "kl_samples": "kl_samples",
    "learning_rate": "learning_rate",
    "precision": "precision",
    "objective": "objective",
    "n_samples": "n_samples",
    "train_k": "iwae_k",
    "num_flows": "num_flows",
    "flow_hidden_units": "flow_hidden_units",
}
TRAIN_OPTIONS = {
    "dataset": "dataset",
    "cache_dir": "cache_dir",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "seed": "seed",
    "warmup_epochs": "warmup_epochs",
    "k": "eval_k",
    "limit": "limit",
    "deterministic": "deterministic",
    "strategy": "strategy",
}
EXIT_FAULT = 3
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A problem with what the user asked for; reported in one line, exit 2."""


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _add_train_parser(subparsers) -> None:
    from tfpvae.components.kl import KL_ATTACHMENTS
    from tfpvae.components.likelihoods import LIKELIHOODS
    from tfpvae.components.posteriors import POSTERIORS
    from tfpvae.components.precision import PRECISIONS
    from tfpvae.components.trunks import ARCHITECTURES
    from tfpvae.io.datasets import DATASETS
    from tfpvae.objectives import OBJECTIVES
    from tfpvae.training.distribute import STRATEGIES

    p = subparsers.add_parser(
        "train",
        help="train a VAE and write a run directory",
        description="Train a VAE, then save its config, weights, history.csv, "
        "metrics.json (held-out ELBO and IWAE bound) and figures/ into --out.",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("--config", type=Path, help="JSON or TOML file with any of these options")
    p.add_argument("--dataset", choices=DATASETS.names(), help="data (default: digits, offline)")
    p.add_argument(
        "--cache-dir", help="Keras cache holding datasets/ (default: $TFPVAE_KERAS_CACHE)"
    )
    p.add_argument("--likelihood", choices=LIKELIHOODS.names(), help="decoder (default: beta)")
    p.add_argument("--latent-dim", type=int, help="size of z (default: 2)")
    p.add_argument("--hidden-units", type=_int_list, help="Dense widths, e.g. 256,64")
    p.add_argument("--architecture", choices=ARCHITECTURES.names(), help="default: mlp")
    p.add_argument("--posterior", choices=POSTERIORS.names(), help="default: full (TriL)")
    p.add_argument("--kl", choices=KL_ATTACHMENTS.names(), help="KL attachment (default: add_loss)")
    p.add_argument("--exact-kl", action=argparse.BooleanOptionalAction, help="closed-form KL")
    p.add_argument("--beta", type=float, help="KL weight β (default: 1)")
    p.add_argument("--kl-samples", type=int, help="test points per image for sampled KL")
    p.add_argument("--epochs", type=int, help="default: 10")
    p.add_argument("--batch-size", type=int, help="default: 32")
    p.add_argument("--learning-rate", type=float, help="Adam step size (default: 1e-3)")
    p.add_argument("--seed", type=int, help="default: 0")
    p.add_argument("--warmup-epochs", type=int, help="anneal β from 0 over N epochs (default: 0)")
    p.add_argument("--k", type=int, help="importance samples for the IWAE bound (default: 100)")
    p.add_argument("--limit", type=int, help="use only the first N train and test images")
    p.add_argument(
        "--deterministic",
        action=argparse.BooleanOptionalAction,
        help="TensorFlow op determinism: the same seed gives identical weights",
    )
    p.add_argument(
        "--strategy",
        choices=STRATEGIES.names(),
        help="tf.distribute strategy (default: default = one device; multiworker reads TF_CONFIG)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS.names(),
        help="trunk precision; distributions stay float32 (default: float32)",
    )
    p.add_argument("--objective", choices=OBJECTIVES.names(), help="training loss (default: elbo)")
    p.add_argument("--n-samples", type=int, help="draws of z per image for --objective elbo")
    p.add_argument(
        "--train-k",
        type=int,
        help="importance samples per image for --objective iwae (default: 5; "
        "--k is the held-out bound's)",
    )
    p.add_argument("--num-flows", type=int, help="flows of --posterior iaf (default: 2)")
    p.add_argument(
        "--flow-hidden-units", type=_int_list, help="MADE widths of --posterior iaf, e.g. 64"
    )
    p.add_argument("--out", type=Path, required=True, help="run directory to create")
    p.add_argument("--force", action="store_true", default=False, help="overwrite --out")
    p.add_argument(
        "--resume",
        action="store_true",
        default=False,
        help="continue the run in --out from its latest checkpoint (options default to the "
        "run's own; only --epochs, --learning-rate and --strategy may change)",
    )
    p.add_argument("--quiet", action="store_true", default=False, help="no progress bar")
    p.add_argument(
        "--figures",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="draw figures/ at the end (default); `tfpvae plot RUN_DIR` draws them later",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all subcommands."""
    parser = argparse.ArgumentParser(
        prog="tfpvae",
        description="Variational autoencoders from TensorFlow Probability layers.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train_parser(subparsers)
    ev = subparsers.add_parser(
        "evaluate",
        help="held-out ELBO and IWAE bound of a run",
        description="Compute the ELBO, rate, distortion and IWAE bound on the run's "
        "test split; print them and save metrics.json.",
    )
    ev.add_argument("run_dir", type=Path, help="directory written by tfpvae train")
    ev.add_argument("--k", type=int, default=1000, help="importance samples (default: 1000)")
    ev.add_argument("--seed", type=int, default=0, help="seed for the draws (default: 0)")
    pl = subparsers.add_parser(
        "plot",
        help="redraw a run's figures",
        description="Redraw every figure of a run into RUN_DIR/figures.",
    )
    pl.add_argument("run_dir", type=Path, help="directory written by tfpvae train")
    return parser


def read_config_file(path: Path) -> dict[str, Any]:
    """Options from a JSON or TOML file, keys normalised to ``snake_case``."""
    try:
        text = path.read_text()
    except OSError as err:
        raise UsageError(f"cannot read config file {path}: {err.strerror or err}") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as err:
        kind = path.suffix[1:] or "JSON"
        raise UsageError(f"config file {path} is not valid {kind}: {err}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a table of options")
    options = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(options) - set(MODEL_OPTIONS) - set(TRAIN_OPTIONS))
    if unknown:
        raise UsageError(f"unknown option(s) in {path}: {', '.join(unknown)}")
    return options


def stored_options(out: Path) -> dict[str, Any]:
    """The options a run in ``out`` was started with, by option name (for --resume)."""
    from tfpvae.interfaces.run import check_resumable_dir

    payload = check_resumable_dir(out)
    fields = {**payload["model"], **payload.get("train", {})}
    names = {field: name for name, field in {**MODEL_OPTIONS, **TRAIN_OPTIONS}.items()}
    return {names[field]: value for field, value in fields.items() if field in names}


def resolve_train_options(args: argparse.Namespace):
    """Merges defaults, the config file and flags into (VAEConfig, TrainSettings).

    With ``--resume`` the run's stored options take the place of the defaults.
    """
    from tfpvae.interfaces.run import TrainSettings, model_config_for

    given = vars(args).copy()
    options = stored_options(args.out) if given.get("resume") else {}
    options.update(read_config_file(given.pop("config")) if "config" in given else {})
    options.update({k: v for k, v in given.items() if k in MODEL_OPTIONS or k in TRAIN_OPTIONS})
    for name in ("hidden_units", "flow_hidden_units"):
        if isinstance(options.get(name), str):
            try:
                options[name] = _int_list(options[name])
            except argparse.ArgumentTypeError as err:
                raise UsageError(f"{name}: {err}") from None
    settings = TrainSettings(
        **{TRAIN_OPTIONS[k]: v for k, v in options.items() if k in TRAIN_OPTIONS}
    )
    model_fields = {MODEL_OPTIONS[k]: v for k, v in options.items() if k in MODEL_OPTIONS}
    return model_config_for(settings, **model_fields), settings


def _format_metrics(metrics: dict[str, Any]) -> str:
    lines = [
        f"held-out {metrics.get('dataset', '')} ({metrics['n_images']} images, "
        f"{metrics['n_dims']} dims), nats per image:",
        f"  ELBO        {metrics['elbo']:10.3f} ± {metrics['elbo_se']:.3f}"
        f"   ({metrics['elbo_bits_per_dim']:.4f} bits/dim)",
        f"  rate (KL)   {metrics['rate']:10.3f} ± {metrics['rate_se']:.3f}",
        f"  distortion  {metrics['distortion']:10.3f} ± {metrics['distortion_se']:.3f}",
        f"  IWAE k={metrics['iwae_k']:<5d}{metrics['iwae']:10.3f} ± {metrics['iwae_se']:.3f}"
        f"   ({metrics['iwae_bits_per_dim']:.4f} bits/dim)",
    ]
    return "\n".join(lines)


def cmd_train(args: argparse.Namespace) -> int:
    from tfpvae.interfaces.run import run_training

    model_config, settings = resolve_train_options(args)
    try:
        _, metrics = run_training(
            model_config,
            settings,
            args.out,
            force=args.force,
            progress=not args.quiet,
            resume=args.resume,
            figures=args.figures,
        )
    except KeyboardInterrupt:
        print(
            f"tfpvae train: interrupted; continue with `tfpvae train --resume --out {args.out}`",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if metrics is None:
        print("worker done; the chief writes the metrics and figures")
        return 0
    print(_format_metrics(metrics))
    print(f"wrote {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import dataclasses

    from tfpvae.interfaces.run import load_run_data, settings_of, write_metrics
    from tfpvae.io.saving import load

    if args.k < 1:
        raise UsageError(f"--k must be a positive integer, got {args.k}")
    vae = load(args.run_dir)
    settings = dataclasses.replace(settings_of(args.run_dir), eval_k=args.k, seed=args.seed)
    data = load_run_data(settings, vae.config.likelihood)
    print(_format_metrics(write_metrics(vae, data, settings, args.run_dir)))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from tfpvae.interfaces.run import load_run_data, settings_of, write_figures
    from tfpvae.io.saving import load

    vae = load(args.run_dir)
    data = load_run_data(settings_of(args.run_dir), vae.config.likelihood)
    for path in write_figures(vae, data, args.run_dir):
        print(path)
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "plot": cmd_plot}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tfpvae`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from tfpvae.io.datasets import DatasetUnavailableError
    from tfpvae.training.faults import TrainingFaultError

    try:
        return COMMANDS[args.command](args)
    except (UsageError, ValueError, FileExistsError, DatasetUnavailableError) as err:
        _report(args.command, err)
        return EXIT_USAGE
    except TrainingFaultError as err:
        _report(args.command, err)
        return EXIT_FAULT


def _report(command: str, err: Exception) -> None:
    message = str(err).splitlines()[0] if str(err) else type(err).__name__
    print(f"tfpvae {command}: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
