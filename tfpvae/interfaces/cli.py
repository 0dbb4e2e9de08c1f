"""The ``tfpvae`` command: ``train``, ``evaluate``, ``plot`` and ``export``.

Options come from three places, later ones winning: built-in defaults, a
``--config`` file (JSON or TOML, keys as the long option names with ``_`` or
``-``), and the command line. Every error in the user's input ends in exit code 2
with a one-line message, never a traceback.

The parser is built from :mod:`tfpvae.interfaces.names` alone, so ``--help`` and argument
errors answer without importing TensorFlow; each command imports what it needs.
TensorFlow's native start-up log lines are hidden unless ``--verbose`` is given
or ``TF_CPP_MIN_LOG_LEVEL`` is already set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as the tomli package (a dependency there)
    import tomli as tomllib

from tfpvae.interfaces import names
from tfpvae.interfaces.quiet import quiet_tensorflow
from tfpvae.interfaces.reports import latent_and_outlier_lines

EXIT_USAGE = 2

# option name (as on the command line, with _) -> field of VAEConfig or TrainSettings
MODEL_OPTIONS = {
    "likelihood": "likelihood",
    "concentration": "concentration",
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
    "prior": "prior",
    "prior_components": "prior_components",
    "categorical_dims": "categorical_dims",
    "categories": "categories",
    "temperature": "temperature",
    "objective": "objective",
    "n_samples": "n_samples",
    "train_k": "iwae_k",
    "alpha": "alpha",
    "gradient": "gradient",
    "free_bits": "free_bits",
    "num_flows": "num_flows",
    "flow_hidden_units": "flow_hidden_units",
    "top_hidden_units": "top_hidden_units",
    "conditional": "num_classes",
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
    "tensorboard": "tensorboard",
    "tensorboard_images_every": "tensorboard_images_every",
    "dequantize": "dequantize",
    "temperature_end": "temperature_end",
    "temperature_epochs": "temperature_epochs",
}
EXIT_FAULT = 3
#: --cache-dir of evaluate and plot: flag > $TFPVAE_KERAS_CACHE > the run's (interfaces.locations).
CACHE_DIR_HELP = (
    "Keras cache holding datasets/, instead of the one the run recorded "
    "(default: $TFPVAE_KERAS_CACHE, else the run's own)"
)
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


def _latent_dim(text: str) -> int | list[int]:
    """``8`` → 8; ``8,4`` → [8, 4] (two stochastic layers, bottom first)."""
    sizes = _int_list(text)
    if len(sizes) == 1 and "," not in text:
        return sizes[0]
    return sizes


def _verbose_option() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="keep TensorFlow's own start-up and C++ log messages",
    )
    return parent


def _add_train_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "train",
        parents=parents,
        help="train a VAE and write a run directory",
        description="Train a VAE, then save its config, weights, history.csv, "
        "metrics.json (held-out ELBO and IWAE bound) and figures/ into --out.",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("--config", type=Path, help="JSON or TOML file with any of these options")
    p.add_argument("--dataset", choices=names.DATASETS, help="data (default: digits, offline)")
    p.add_argument(
        "--cache-dir", help="Keras cache holding datasets/ (default: $TFPVAE_KERAS_CACHE)"
    )
    p.add_argument("--likelihood", choices=names.LIKELIHOODS, help="decoder (default: beta)")
    p.add_argument(
        "--concentration",
        choices=names.CONCENTRATIONS,
        help="how the Beta's concentrations follow the decoder (default: exp, capped)",
    )
    p.add_argument(
        "--latent-dim",
        type=_latent_dim,
        help="size of z (default: 2), or Z1,Z2 for two stochastic layers, bottom first (e.g. 8,4)",
    )
    p.add_argument("--hidden-units", type=_int_list, help="Dense widths, e.g. 256,64")
    p.add_argument("--architecture", choices=names.ARCHITECTURES, help="default: mlp")
    p.add_argument("--posterior", choices=names.POSTERIORS, help="default: full (TriL)")
    p.add_argument("--kl", choices=names.KL_ATTACHMENTS, help="KL attachment (default: add_loss)")
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
        choices=names.STRATEGIES,
        help="tf.distribute strategy (default: default = one device; multiworker reads TF_CONFIG)",
    )
    p.add_argument(
        "--precision",
        choices=names.PRECISIONS,
        help="trunk precision; distributions stay float32 (default: float32)",
    )
    p.add_argument(
        "--tensorboard",
        nargs="?",
        const="",
        metavar="DIR",
        help="write TensorBoard logs: loss, rate and distortion (train and validation), "
        "and pictures of reconstructions and prior samples (default DIR: OUT/tensorboard)",
    )
    p.add_argument(
        "--tensorboard-images-every",
        type=int,
        metavar="N",
        help="epochs between TensorBoard pictures (default: 5, and after the last epoch)",
    )
    p.add_argument(
        "--dequantize",
        choices=["uniform"],
        help="uniform: fresh (x + u)/256 noise per image and epoch, for a bound on the 8-bit "
        "data (Beta, continuous Bernoulli, Gaussian; default: the course's fixed shift)",
    )
    p.add_argument(
        "--prior",
        choices=names.PRIORS,
        help="p(z): standard_normal (default), mixture (learned) or vamp (VampPrior); "
        "learned priors need the sampled KL",
    )
    p.add_argument(
        "--prior-components", type=int, help="mixture components or VampPrior pseudo-inputs"
    )
    p.add_argument(
        "--categorical-dims",
        type=int,
        help="N categorical variables of --posterior relaxed_categorical (default: 20)",
    )
    p.add_argument(
        "--categories", type=int, help="K classes per categorical variable (default: 10)"
    )
    p.add_argument(
        "--temperature", type=float, help="initial Gumbel-softmax temperature (default: 1)"
    )
    p.add_argument(
        "--temperature-end", type=float, help="temperature after the schedule (default: 0.5)"
    )
    p.add_argument(
        "--temperature-epochs",
        type=int,
        help="epochs of exponential temperature decay to --temperature-end (default: 0 = constant)",
    )
    p.add_argument("--objective", choices=names.OBJECTIVES, help="training loss (default: elbo)")
    p.add_argument(
        "--n-samples", type=int, help="draws of z per image for --objective elbo or renyi"
    )
    p.add_argument(
        "--train-k",
        type=int,
        help="importance samples per image for --objective iwae (default: 5; "
        "--k is the held-out bound's)",
    )
    p.add_argument(
        "--alpha",
        type=float,
        help="α of --objective renyi (≠ 1; 0 is the IWAE bound); its K is --n-samples",
    )
    p.add_argument(
        "--gradient",
        choices=names.GRADIENTS,
        help="gradient estimator: standard (default), dreg (iwae, renyi), stl (elbo)",
    )
    p.add_argument(
        "--free-bits",
        type=float,
        help="floor each latent dimension's batch-mean KL at this many nats (elbo; default 0)",
    )
    p.add_argument(
        "--num-flows", type=int, help="flows of --posterior iaf, planar or radial (default: 2)"
    )
    p.add_argument(
        "--flow-hidden-units", type=_int_list, help="MADE widths of --posterior iaf, e.g. 64"
    )
    p.add_argument(
        "--top-hidden-units",
        type=_int_list,
        help="tanh widths of q(z2|z1) and p(z1|z2) with --latent-dim Z1,Z2 (default: 32,32)",
    )
    p.add_argument(
        "--conditional",
        action=argparse.BooleanOptionalAction,
        help="a conditional VAE q(z|x, y), p(x|z, y) on the dataset's labels (one-hot into "
        "both networks; figures/class_samples.png draws one row per class)",
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
    verbose = [_verbose_option()]
    parser = argparse.ArgumentParser(
        prog="tfpvae",
        description="Variational autoencoders from TensorFlow Probability layers.",
        parents=verbose,
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train_parser(subparsers, verbose)
    ev = subparsers.add_parser(
        "evaluate",
        parents=verbose,
        help="held-out ELBO and IWAE bound of a run",
        description="Compute the ELBO, rate, distortion and IWAE bound on the run's "
        "test split; print them and save metrics.json.",
    )
    ev.add_argument("run_dir", type=Path, help="directory written by tfpvae train")
    ev.add_argument("--k", type=int, default=1000, help="importance samples (default: 1000)")
    ev.add_argument("--seed", type=int, default=0, help="seed for the draws (default: 0)")
    ev.add_argument(
        "--outliers",
        choices=names.DATASETS,
        metavar="OTHER_DATASET",
        help="also score the test images of OTHER_DATASET as outliers and report each outlier "
        "score's AUROC (from the run's data location, as the run's own dataset)",
    )
    ev.add_argument(
        "--cubo",
        type=float,
        nargs="?",
        const=2.0,
        default=None,
        metavar="N",
        help="also the χ upper bound CUBO_N (default N: 2) at the same k draws: the bracket "
        "IWAE <= log p(x) <~ CUBO (its estimate is biased low)",
    )
    ev.add_argument("--cache-dir", help=CACHE_DIR_HELP)
    pl = subparsers.add_parser(
        "plot",
        parents=verbose,
        help="redraw a run's figures",
        description="Redraw every figure of a run into RUN_DIR/figures.",
    )
    pl.add_argument("run_dir", type=Path, help="directory written by tfpvae train")
    pl.add_argument("--cache-dir", help=CACHE_DIR_HELP)
    ex = subparsers.add_parser(
        "export",
        help="write a run's model as a SavedModel for serving",
        description="Write the model of RUN_DIR to OUT as a SavedModel with the serving "
        "signatures encode (also serving_default), decode, sample and elbo, each checking "
        "its inputs (see docs/keras.md). "
        "tf.saved_model.load(OUT) serves it without tfpvae.",
    )
    ex.add_argument("run_dir", type=Path, help="directory written by tfpvae train")
    ex.add_argument("out", type=Path, help="SavedModel directory to create")
    ex.add_argument(
        "--force",
        action="store_true",
        help="replace the SavedModel in a non-empty OUT (other files there stay)",
    )
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
    from tfpvae.interfaces.run import TENSORBOARD_DIR, TrainSettings, model_config_for

    given = vars(args).copy()
    options = stored_options(args.out) if given.get("resume") else {}
    options.update(read_config_file(given.pop("config")) if "config" in given else {})
    options.update({k: v for k, v in given.items() if k in MODEL_OPTIONS or k in TRAIN_OPTIONS})
    for name in ("hidden_units", "flow_hidden_units", "top_hidden_units", "latent_dim"):
        if isinstance(options.get(name), str):
            try:
                parse = _latent_dim if name == "latent_dim" else _int_list
                options[name] = parse(options[name])
            except argparse.ArgumentTypeError as err:
                raise UsageError(f"{name}: {err}") from None
    if options.get("tensorboard") in ("", True):  # the flag without DIR, or `true` in a file
        options["tensorboard"] = str(args.out / TENSORBOARD_DIR)
    elif options.get("tensorboard") is False:
        options["tensorboard"] = None
    settings = TrainSettings(
        **{TRAIN_OPTIONS[k]: v for k, v in options.items() if k in TRAIN_OPTIONS}
    )
    model_fields = {MODEL_OPTIONS[k]: v for k, v in options.items() if k in MODEL_OPTIONS}
    return model_config_for(settings, **model_fields), settings


def _format_metrics(metrics: dict[str, Any]) -> str:
    lines = [
        f"held-out {metrics.get('dataset', '')} ({metrics['n_images']} images, "
        f"{metrics['n_dims']} dims), nats per image of the modelled data:",
        f"  ELBO        {metrics['elbo']:10.3f} ± {metrics['elbo_se']:.3f}"
        f"   ({metrics['elbo_bits_per_dim']:.4f} bits/dim)",
        f"  rate (KL)   {metrics['rate']:10.3f} ± {metrics['rate_se']:.3f}",
        f"  distortion  {metrics['distortion']:10.3f} ± {metrics['distortion_se']:.3f}",
        f"  IWAE k={metrics['iwae_k']:<5d}{metrics['iwae']:10.3f} ± {metrics['iwae_se']:.3f}"
        f"   ({metrics['iwae_bits_per_dim']:.4f} bits/dim)",
    ]
    if "cubo" in metrics:
        lines.append(
            f"  CUBO n={metrics['cubo_n']:<5g}{metrics['cubo']:10.3f} ± {metrics['cubo_se']:.3f}"
            f"   (bracket IWAE <= log p(x) <~ CUBO: {metrics['bracket']:.3f} wide; "
            "the CUBO estimate is biased low)"
        )
    if "bound" in metrics:
        lines.append("comparable across likelihoods, bits/dim of the 8-bit images:")
        if metrics.get("bits_per_dim_8bit") is None:
            lines.append(f"  —  ({metrics['bound']}: {metrics['data_space']})")
        else:
            lines.append(
                f"  {metrics['bits_per_dim_8bit']:.4f} ± {metrics['bits_per_dim_8bit_se']:.4f}"
                f"   ({metrics['bound']})"
            )
    return "\n".join(lines + latent_and_outlier_lines(metrics))


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

    from tfpvae.interfaces.reports import outlier_report_of_run
    from tfpvae.interfaces.run import load_run_data, settings_of, write_metrics
    from tfpvae.io.saving import load

    if args.k < 1:
        raise UsageError(f"--k must be a positive integer, got {args.k}")
    vae = load(args.run_dir)
    settings = dataclasses.replace(
        settings_of(args.run_dir, args.cache_dir), eval_k=args.k, seed=args.seed
    )
    data = load_run_data(settings, vae.config.likelihood)
    if args.cubo is not None and not args.cubo >= 1:
        raise UsageError(f"--cubo must be a number >= 1, got {args.cubo:g}")
    extra = (
        {"outliers": outlier_report_of_run(vae, data, settings, args.outliers)}
        if args.outliers
        else {}
    )
    metrics = write_metrics(vae, data, settings, args.run_dir, extra=extra, cubo_n=args.cubo)
    print(_format_metrics(metrics))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from tfpvae.interfaces.run import load_run_data, settings_of, write_figures
    from tfpvae.io.saving import load

    vae = load(args.run_dir)
    data = load_run_data(settings_of(args.run_dir, args.cache_dir), vae.config.likelihood)
    for path in write_figures(vae, data, args.run_dir):
        print(path)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tfpvae.io.saving import load
    from tfpvae.models.serving import export_to_directory

    vae = load(args.run_dir)
    print(f"wrote {export_to_directory(vae, args.out, force=args.force)}")
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "plot": cmd_plot, "export": cmd_export}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tfpvae`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "verbose", False):
        quiet_tensorflow()
    else:  # every native line, each once (tfpvae._native_log), unless the user chose a level
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
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
