"""Training throughput of each model variant relative to the plain ELBO, side by side.

Usage::

    python benchmarks/variants.py [--quick] [--rounds 5] [--out benchmarks/variants.json]

The variants are those of ``notebooks/06_beyond_gaussian.ipynb`` and
``notebooks/07_divergences_and_structure.ipynb`` (same trunk, latent size,
likelihood and batch size). For every variant, it and a plain-ELBO model are
built in this one process, warmed up for an epoch each (tracing and, where it
applies, XLA compilation), then timed for ``--rounds`` alternating epochs on the
same data, as ``benchmarks/throughput.py`` does. A conditional variant
(``num_classes``) trains on fixed random class ids: its cost does not depend on
which labels they are. The ratio is the median over rounds of (variant images/s)
/ (ELBO images/s) from adjacent epochs, which cancels slow drifts of a shared
machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from throughput import load_images, timed_epoch  # noqa: E402

import tfpvae  # noqa: E402
from tfpvae._backend import tf, tfk  # noqa: E402

COMMON = dict(likelihood="bernoulli", hidden_units=(256, 64), latent_dim=8)
VARIANTS = {
    "elbo, S=5": {"n_samples": 5},
    "iwae, k=5": {"objective": "iwae", "iwae_k": 5},
    "iaf, 2 flows": {"posterior": "iaf", "num_flows": 2, "flow_hidden_units": (64,)},
    "mixture prior": {"prior": "mixture", "prior_components": 10},
    "vamp prior": {"prior": "vamp", "prior_components": 50},
    "discrete 8x10": {
        "posterior": "relaxed_categorical",
        "categorical_dims": 8,
        "categories": 10,
        "latent_dim": None,
        "temperature": 0.5,
    },
    # notebooks/07_divergences_and_structure.ipynb
    "iwae + dreg, k=5": {"objective": "iwae", "iwae_k": 5, "gradient": "dreg"},
    "renyi a=0.5, K=5": {"objective": "renyi", "alpha": 0.5, "n_samples": 5},
    "planar, 8 flows": {"posterior": "planar", "num_flows": 8},
    "radial, 8 flows": {"posterior": "radial", "num_flows": 8},
    "two layers, iwae": {"objective": "iwae", "iwae_k": 5, "latent_dim": (8, 4)},
    "conditional, 10": {"num_classes": 10},
}


def compare(name: str, options: dict, x: np.ndarray, rounds: int, batch_size: int) -> dict:
    """Alternates ELBO and variant epochs; returns medians and the ratio."""
    tfk.utils.set_random_seed(0)
    models = {"elbo": tfpvae.build_vae(**COMMON), name: tfpvae.build_vae(**{**COMMON, **options})}
    classes = options.get("num_classes")
    labels = None if classes is None else np.random.default_rng(0).integers(0, classes, len(x))
    given = {"elbo": None, name: labels}
    for key, model in models.items():
        warm = x[: batch_size * 20]
        target = warm if given[key] is None else given[key][: batch_size * 20]
        model.fit(warm, target, batch_size=batch_size, epochs=1, verbose=0)  # warm-up
    runs = {key: [] for key in models}
    for _ in range(rounds):
        for key, model in models.items():
            runs[key].append(timed_epoch(model, x, batch_size, given[key]))
    base, ours = np.array(runs["elbo"]), np.array(runs[name])
    ratios = ours[:, 0] / base[:, 0]
    return {
        "variant": name,
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
        "xla": bool(models[name]._jit_compile),
        "elbo_img_s": float(np.median(base[:, 0])),
        "variant_img_s": float(np.median(ours[:, 0])),
        "ratio": float(np.median(ratios)),
        "ratio_min": float(ratios.min()),
        "ratio_max": float(ratios.max()),
        "cpu_ratio": float(np.median(ours[:, 1] / base[:, 1])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 images, 3 rounds")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=8000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--out", type=Path, default=HERE / "variants.json")
    args = parser.parse_args()
    rounds, images = (3, 2000) if args.quick else (args.rounds, args.images)
    raw, source = load_images(images)
    x = tfpvae.prepare(raw, "bernoulli")
    print(f"data: {source}; {images} images per epoch; {rounds} alternating rounds")
    print(f"{'variant':18s}{'xla':>5s}{'ELBO/s':>9s}{'variant/s':>11s}{'ratio':>7s}"
          f"{'(min-max)':>12s}{'cpu ratio':>11s}")  # fmt: skip
    rows = []
    for name, options in VARIANTS.items():
        row = compare(name, options, x, rounds, args.batch_size)
        rows.append(row)
        spread = f"{row['ratio_min']:.2f}-{row['ratio_max']:.2f}"
        print(f"{name:18s}{row['xla']!s:>5s}{row['elbo_img_s']:9.0f}{row['variant_img_s']:11.0f}"
              f"{row['ratio']:7.2f}{spread:>12s}{row['cpu_ratio']:11.2f}", flush=True)  # fmt: skip
    args.out.write_text(
        json.dumps(
            {
                "machine": f"{platform.processor() or platform.machine()}, "
                f"{len(__import__('os').sched_getaffinity(0))} cores (shared)",
                "tensorflow": tf.__version__,
                "data": source,
                "images_per_epoch": images,
                "batch_size": args.batch_size,
                "rounds": rounds,
                "model": {k: list(v) if isinstance(v, tuple) else v for k, v in COMMON.items()},
                "variants": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
