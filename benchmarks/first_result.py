"""Time to a first result: ``build_vae`` + ``fit(epochs=2)`` against the course recipe.

Usage::

    python benchmarks/first_result.py [--rounds 3] [--out benchmarks/first_result.json]
    PYTHONPATH=/path/to/other/checkout python benchmarks/first_result.py --label before

The workload is a notebook's first cell: the 1,600-image Fashion-MNIST sample
(``../shared/data/keras-cache``) prepared for the Beta, ``build_vae(likelihood="beta")``
(or the recipe of ``benchmarks/recipe.py``, ``build_recipe_vae("beta")``) and
``fit(x, epochs=2, batch_size=32)``. Every run is a fresh process (``--worker``),
tfpvae and the recipe alternate within each round, and the report gives medians
over rounds of the wall-clock and CPU seconds (all threads) after the imports,
split into the build, the first epoch (tracing, compiling) and the second.

Each worker also times ``import tfpvae`` plus its first public name on top of
``import tensorflow_probability, tf_keras`` (with ``DistributionLambda`` and
``Normal`` touched), and, with ``--profile``, one extra tfpvae process under
cProfile says where the first epoch's seconds went (AutoGraph's conversion,
tracing, and the C++ calls that compile and run the graphs). ``--xla-cache
cold`` (the default) gives every process an empty XLA cache, as on a machine's
first run; ``--xla-cache warm`` shares one, filled by an untimed run first.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent.parent / "shared" / "data" / "keras-cache"
WORKERS = ("tfpvae", "recipe")

#: Profile entries reported, by what they measure (cumulative seconds).
PROFILE_ENTRIES = {
    "autograph_conversion": ("transpiler.py", "transform_function"),
    "tracing": ("func_graph.py", "func_graph_from_py_func"),
    "graph_execution_and_xla_compile": (
        "~",
        "<built-in method tensorflow.python._pywrap_tfe.TFE_Py_Execute>",
    ),
}


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> dict[str, float]:
    wall, cpu = _clock()
    return {"wall_s": wall - start[0], "cpu_s": cpu - start[1]}


def worker(name: str, profile: bool) -> dict:
    """One fresh process: imports, then build + fit(epochs=2), timed by phase."""
    start = _clock()
    import tensorflow_probability as tfp
    import tf_keras

    tfp.layers.DistributionLambda  # noqa: B018 - what a course notebook touches first
    tfp.distributions.Normal  # noqa: B018
    base = _since(start)
    start = _clock()
    import tfpvae

    tfpvae.build_vae  # noqa: B018 - the first public name
    extra = _since(start)
    sys.path.insert(0, str(HERE))
    from recipe import build_recipe_vae

    (pixels, _), _ = tfpvae.load_dataset("fashion_mnist", cache_dir=SAMPLE)
    x = tfpvae.prepare(pixels, "beta")
    tf_keras.utils.set_random_seed(0)
    phases: dict[str, dict[str, float]] = {}
    marks: list[tuple[float, float]] = []

    class Epochs(tf_keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            marks.append(_clock())

    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    start = _clock()
    vae = tfpvae.build_vae(likelihood="beta") if name == "tfpvae" else build_recipe_vae("beta")
    phases["build"] = _since(start)
    built = _clock()
    vae.fit(x, x, epochs=2, batch_size=32, verbose=0, callbacks=[Epochs()])
    phases["total"] = _since(start)
    if profiler:
        profiler.disable()
    phases["first_epoch"] = {"wall_s": marks[0][0] - built[0], "cpu_s": marks[0][1] - built[1]}
    phases["second_epoch"] = {
        "wall_s": marks[1][0] - marks[0][0],
        "cpu_s": marks[1][1] - marks[0][1],
    }
    out = {"import_base": base, "import_tfpvae_extra": extra, **phases}
    if profiler:
        stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        found = {key: 0.0 for key in PROFILE_ENTRIES}
        for (filename, _, function), (_, _, _, cumulative, _) in stats.items():
            for key, (file_part, function_name) in PROFILE_ENTRIES.items():
                if function == function_name and (file_part == "~" or filename.endswith(file_part)):
                    found[key] = max(found[key], cumulative)
        out["profile_cumulative_s"] = found
    return out


def spawn(name: str, profile: bool = False, xla_cache: str | None = None) -> dict:
    """One worker process; ``xla_cache``: its ``TFPVAE_XLA_CACHE`` (``None``: a new, empty one)."""
    command = [sys.executable, __file__, "--worker", name] + (["--profile"] if profile else [])
    cache = xla_cache or tempfile.mkdtemp(prefix="first-result-xla-")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TFPVAE_XLA_CACHE=cache)
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median(runs: list[dict], phase: str, what: str) -> float:
    return round(statistics.median(run[phase][what] for run in runs), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--label", default="after", help="key of this run in --out")
    parser.add_argument("--profile", action="store_true", help="one more, profiled, tfpvae run")
    parser.add_argument("--out", type=Path, default=HERE / "first_result.json")
    parser.add_argument(
        "--xla-cache",
        choices=("cold", "warm"),
        default="cold",
        help="cold: every process starts with an empty XLA cache (a first run on a machine); "
        "warm: all share one, filled by an untimed run first (every later run)",
    )
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.profile)))
        return
    shared = tempfile.mkdtemp(prefix="first-result-xla-") if args.xla_cache == "warm" else None
    if shared:
        spawn("tfpvae", xla_cache=shared)
    runs: dict[str, list[dict]] = {name: [] for name in WORKERS}
    for round_ in range(args.rounds):
        for name in WORKERS if round_ % 2 == 0 else WORKERS[::-1]:
            runs[name].append(spawn(name, xla_cache=shared))
            total = runs[name][-1]["total"]
            print(f"round {round_ + 1} {name}: {total['wall_s']:.2f} s, cpu {total['cpu_s']:.2f} s")
    summary: dict = {}
    for name, found in runs.items():
        summary[name] = {
            phase: {what: _median(found, phase, what) for what in ("wall_s", "cpu_s")}
            for phase in ("import_base", "import_tfpvae_extra", "build", "first_epoch",
                          "second_epoch", "total")
        }  # fmt: skip
        summary[name]["runs"] = found
    if args.profile:
        summary["tfpvae_profile"] = spawn("tfpvae", profile=True, xla_cache=shared)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results[args.label] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "rounds": args.rounds,
        "xla_cache": args.xla_cache,
        "tfpvae_module": os.environ.get("PYTHONPATH", "this checkout"),
        **summary,
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for name in WORKERS:
        total = summary[name]["total"]
        print(f"{name}: median {total['wall_s']:.2f} s wall, {total['cpu_s']:.2f} s cpu")


if __name__ == "__main__":
    main()
