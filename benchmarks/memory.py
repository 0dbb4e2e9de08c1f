"""Peak resident memory of training and of the IWAE bound, each in a fresh process.

Usage::

    python benchmarks/memory.py [--ks 100 1000] [--out benchmarks/memory.json]

The model is ``build_vae(likelihood="beta")`` on the Fashion-MNIST sample
(``../shared/data/keras-cache``). Per process the peak resident set size
(``VmHWM`` of ``/proc/self/status``) is read after the imports and the build,
reset (``/proc/self/clear_refs``), and read again after the measured call:

* ``train``: ``fit`` for 2 epochs at batch 32 on the 1,600 training images;
* ``iwae k=K``: ``iwae_bound`` on 1,000 images (the training images' first
  1,000) at batch 100, chunks of 100 importance samples.

The reported number is the peak during the call, and its growth over the
resident size before it. Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent.parent / "shared" / "data" / "keras-cache"


def _status(field: str) -> float:
    """A ``/proc/self/status`` field in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    raise KeyError(field)


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def worker(task: str) -> dict:
    import tfpvae
    from tfpvae._backend import tfk
    from tfpvae.evaluation.bounds import iwae_bound

    (pixels, _), _ = tfpvae.load_dataset("fashion_mnist", cache_dir=SAMPLE)
    x = tfpvae.prepare(pixels, "beta")
    tfk.utils.set_random_seed(0)
    vae = tfpvae.build_vae(likelihood="beta")
    before = _status("VmRSS")
    _reset_peak()
    start = time.process_time()
    if task == "train":
        vae.fit(x, epochs=2, batch_size=32, verbose=0)
    else:
        iwae_bound(vae, x[:1000], k=int(task.split("=")[1]), batch_size=100, chunk_size=100)
    peak = _status("VmHWM")
    return {
        "task": task,
        "rss_before_mb": round(before, 1),
        "peak_mb": round(peak, 1),
        "growth_mb": round(peak - before, 1),
        "cpu_s": round(time.process_time() - start, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--label", default="after", help="key of this run in --out")
    parser.add_argument("--out", type=Path, default=HERE / "memory.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    found = []
    for task in ["train", *(f"k={k}" for k in args.ks)]:
        command = [sys.executable, __file__, "--worker", task]
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        found.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(found[-1])
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results[args.label] = {"tfpvae_module": os.environ.get("PYTHONPATH", "this checkout"),
                           "runs": found}  # fmt: skip
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
