"""Training throughput of tfpvae against the course recipe, side by side.

Usage::

    python benchmarks/throughput.py [--quick] [--rounds 5] [--out benchmarks/results.json]

For every case (likelihood × architecture × batch size), the recipe
(``benchmarks/recipe.py``, exactly as published) and ``build_vae(...)`` are built
in this one process, warmed up for an epoch each, then timed for ``--rounds``
alternating epochs on the same data. The ratio is the median over rounds of
(tfpvae images/s) / (recipe images/s) from adjacent epochs, which cancels slow
drifts of the machine. Peak memory is the process's peak resident set size
during each model's epochs (reset between them through ``/proc/self/clear_refs``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from recipe import build_recipe_vae  # noqa: E402

import tfpvae  # noqa: E402
from tfpvae._backend import tf, tfk  # noqa: E402

SAMPLE = HERE.parent.parent / "shared" / "data" / "keras-cache"


def load_images(n: int) -> tuple[np.ndarray, str]:
    """The real Fashion-MNIST sample tiled to n images, or a fixed synthetic set."""
    try:
        (x, _), _ = tfpvae.load_dataset("fashion_mnist", cache_dir=SAMPLE)
        source = f"Fashion-MNIST sample ({len(x)} real images, tiled)"
    except tfpvae.DatasetUnavailableError:
        x = np.random.default_rng(0).integers(0, 256, (2000, 28, 28), dtype=np.uint8)
        source = "synthetic uint8 images (fixed seed)"
    reps = -(-n // len(x))
    return np.concatenate([x] * reps)[:n], source


def _reset_peak_rss() -> None:
    with contextlib.suppress(OSError):  # Linux only; elsewhere peaks accumulate
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed_epoch(
    model, x: np.ndarray, batch_size: int, labels: np.ndarray | None = None
) -> tuple[float, float, float]:
    """(images per wall second, images per CPU second, peak RSS in MB) of one epoch.

    ``labels``: class ids, for a conditional VAE (``fit(images, labels)``).
    """
    _reset_peak_rss()
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(x, x if labels is None else labels, batch_size=batch_size, epochs=1, verbose=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(x) / wall, len(x) / cpu, _peak_rss_mb()


def compare(case: dict, x: np.ndarray, rounds: int) -> dict:
    """Alternates recipe and tfpvae epochs; returns medians and the ratio."""
    tfk.utils.set_random_seed(0)
    recipe = build_recipe_vae(case["likelihood"], architecture=case["architecture"])
    ours = tfpvae.build_vae(
        likelihood=case["likelihood"], architecture=case["architecture"], kl="add_loss"
    )
    bs = case["batch_size"]
    for model in (recipe, ours):
        model.fit(x[: bs * 20], x[: bs * 20], batch_size=bs, epochs=1, verbose=0)  # warm-up
    runs = {"recipe": [], "tfpvae": []}  # (wall img/s, cpu img/s, peak MB) per round
    for _ in range(rounds):
        for name, model in (("recipe", recipe), ("tfpvae", ours)):
            runs[name].append(timed_epoch(model, x, bs))
    recipe_runs, our_runs = np.array(runs["recipe"]), np.array(runs["tfpvae"])
    ratios = our_runs[:, 0] / recipe_runs[:, 0]
    return {
        **case,
        "recipe_img_s": float(np.median(recipe_runs[:, 0])),
        "tfpvae_img_s": float(np.median(our_runs[:, 0])),
        "ratio": float(np.median(ratios)),
        "ratio_min": float(ratios.min()),
        "ratio_max": float(ratios.max()),
        "cpu_ratio": float(np.median(our_runs[:, 1] / recipe_runs[:, 1])),
        "recipe_peak_rss_mb": float(recipe_runs[:, 2].max()),
        "tfpvae_peak_rss_mb": float(our_runs[:, 2].max()),
    }


HEADER = (
    f"{'likelihood':22s}{'arch':6s}{'batch':>6s}{'recipe/s':>10s}{'tfpvae/s':>10s}"
    f"{'ratio':>7s}{'(min-max)':>12s}{'cpu ratio':>10s}{'peak RSS MB':>18s}"
)


def format_row(row: dict) -> str:
    """One line of the results table."""
    spread = f"{row['ratio_min']:.2f}-{row['ratio_max']:.2f}"
    memory = f"{row['recipe_peak_rss_mb']:.0f} / {row['tfpvae_peak_rss_mb']:.0f}"
    return (
        f"{row['likelihood']:22s}{row['architecture']:6s}{row['batch_size']:6d}"
        f"{row['recipe_img_s']:10.0f}{row['tfpvae_img_s']:10.0f}{row['ratio']:7.2f}"
        f"{spread:>12s}{row['cpu_ratio']:10.2f}{memory:>18s}"
    )


def scaling(x: np.ndarray, rounds: int, latent_dims, batch_sizes) -> list[dict]:
    """tfpvae images/s as the latent size and the batch grow (Beta MLP)."""
    rows = []
    settings = [(d, 256) for d in latent_dims] + [(2, b) for b in batch_sizes if b != 256]
    for latent_dim, bs in settings:
        tfk.utils.set_random_seed(0)
        vae = tfpvae.build_vae(likelihood="beta", latent_dim=latent_dim)
        vae.fit(x[: bs * 20], x[: bs * 20], batch_size=bs, epochs=1, verbose=0)
        runs = np.array([timed_epoch(vae, x, bs)[:2] for _ in range(rounds)])
        wall, cpu = np.median(runs, axis=0)
        rows.append({"latent_dim": latent_dim, "batch_size": bs, "img_s": wall, "cpu_img_s": cpu})
        print(f"  scaling latent_dim={latent_dim:3d} batch={bs:5d}: {wall:8.0f} img/s wall, "
              f"{cpu:8.0f} img/s of CPU time")  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Beta MLP only, 3 rounds")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument("--cases", help="comma-separated likelihood:arch filter, e.g. beta:conv")
    parser.add_argument(
        "--scaling-only", action="store_true", help="redo only the sweep, keep the comparisons"
    )
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds
    raw, source = load_images(args.images)
    cases = [
        ("beta", "mlp"),
        ("bernoulli", "mlp"),
        ("continuous_bernoulli", "mlp"),
        ("beta", "conv"),
    ]
    if args.quick:
        cases = cases[:1]
    if args.cases:
        wanted = set(args.cases.split(","))
        cases = [c for c in cases if f"{c[0]}:{c[1]}" in wanted]
    results = []
    if args.scaling_only:
        cases = []
        results = json.loads(args.out.read_text())["comparisons"]
    print(f"data: {source}; {args.images} images per epoch; {rounds} alternating rounds")
    print(HEADER)
    for likelihood, architecture in cases:
        x = tfpvae.prepare(raw, likelihood)
        for bs in (32, 256):
            case = {"likelihood": likelihood, "architecture": architecture, "batch_size": bs}
            row = compare(case, x, rounds)
            results.append(row)
            print(format_row(row), flush=True)
    x = tfpvae.prepare(raw, "beta")
    sweep = [] if args.quick else scaling(x, rounds, (2, 16, 64), (32, 64, 128, 256, 512, 1024))
    args.out.write_text(
        json.dumps(
            {
                "machine": f"{platform.processor() or platform.machine()}, "
                f"{len(__import__('os').sched_getaffinity(0))} cores",
                "tensorflow": tf.__version__,
                "data": source,
                "images_per_epoch": args.images,
                "rounds": json.loads(args.out.read_text())["rounds"]
                if args.scaling_only
                else rounds,
                "scaling_rounds": rounds,
                "comparisons": results,
                "scaling": sweep,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
