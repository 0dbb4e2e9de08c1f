"""The default model's held-out quality against the course recipe, seed by seed.

Usage::

    python benchmarks/defaults.py [--seeds 5] [--epochs 10] [--quick]
        [--candidates recipe default ...] [--out benchmarks/defaults.json]

The protocol of issue 22: the Fashion-MNIST sample (1,600 training images, 400
test images, ``prepare(..., "beta")``), ``--epochs`` epochs at batch 32 for each
of ``--seeds`` seeds, then the IWAE bound with k = 200 on the 400 test images,
per image in nats (higher is better), for

* ``recipe``: ``benchmarks/recipe.py``'s ``build_recipe_vae("beta")`` trained the
  course's way (``fit(x, x)`` on its batch-summed loss), then bounded by wrapping
  its trained encoder and decoder in ``tfpvae.VAE(encoder, decoder)``: the same
  networks, the same bound code and draws as every other row;
* ``default``: ``build_vae(likelihood="beta")``, whatever the defaults are now;
* the named candidates of :data:`CANDIDATES`: ``build_vae(likelihood="beta",
  **options)``, one change from the old defaults at a time, then combinations.

Every model is built after ``tf_keras.utils.set_random_seed(seed)``; the bound
uses the same evaluation seed for all. A second number per model is the bits per
dimension of the 8-bit test images (uniformly dequantised, seed 0), which a
density cannot improve by spiking at the midpoints the data were prepared at.
Prints one row per model (its per-seed bounds, mean and standard deviation over
seeds) and writes them to ``--out``.
"""

from __future__ import annotations

import argparse
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
from tfpvae.components import concentration  # noqa: E402

EXP_CEILING = concentration.EXP_MAX_CONCENTRATION

SAMPLE = HERE.parent.parent / "shared" / "data" / "keras-cache"
BATCH_SIZE = 32

#: The defaults before issue 22 (item 5), spelled out so that they stay measurable.
OLD_DEFAULTS = dict(
    latent_dim=2,
    hidden_units=(256, 64),
    posterior="full",
    use_exact_kl=False,
    learning_rate=1e-3,
    concentration="softplus",
)

#: Candidate settings: each is ``build_vae(likelihood="beta", **OLD_DEFAULTS, **options)``.
#: ``"exp map"`` has today's ceiling (3,000); the runs in ``defaults_ablations.json``
#: made before the ceiling was chosen had 10⁶ (``"exp map, ceiling 1e6"``).
CANDIDATES: dict[str, dict] = {
    "old default": {},
    "exp map": {"concentration": "exp"},
    "exp map, ceiling 1e3": {"concentration": "exp", "_exp_ceiling": 1e3},
    "exp map, ceiling 2e3": {"concentration": "exp", "_exp_ceiling": 2e3},
    "exp map, ceiling 1e4": {"concentration": "exp", "_exp_ceiling": 1e4},
    "exp map, ceiling 1e6": {"concentration": "exp", "_exp_ceiling": 1e6},
    "lr 3e-3": {"learning_rate": 3e-3},
    "exact KL": {"use_exact_kl": True},
    "diag posterior": {"posterior": "diag"},
    "trunk 512-128": {"hidden_units": (512, 128)},
    "latent 8": {"latent_dim": 8},
    "beta 1/32 (recipe's KL scale)": {"kl_weight": 1 / BATCH_SIZE},
    "exp map + exact KL": {"concentration": "exp", "use_exact_kl": True},
    "exp map + lr 2e-3": {"concentration": "exp", "learning_rate": 2e-3},
    "exp map + lr 3e-3": {"concentration": "exp", "learning_rate": 3e-3},
    "exp map + diag posterior": {"concentration": "exp", "posterior": "diag"},
    "exp map + exact KL + lr 3e-3": {
        "concentration": "exp",
        "use_exact_kl": True,
        "learning_rate": 3e-3,
    },
}


def load_sample() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (0, 1) train and test images of the Fashion-MNIST sample, prepared the
    course's way (midpoints), and the test images uniformly dequantised (seed 0)."""
    (x_train, _), (x_test, _) = tfpvae.load_dataset("fashion_mnist", cache_dir=SAMPLE)
    return (
        tfpvae.prepare(x_train, "beta"),
        tfpvae.prepare(x_test, "beta"),
        tfpvae.prepare(x_test, "beta", dequantize="uniform", seed=0),
    )


def eight_bit_bits_per_dim(vae: tfpvae.VAE, x_uniform: np.ndarray, k: int) -> float:
    r"""Bits/dim of the 8-bit test images: :math:`-(\mathcal{L}_k(y) - D \log 256) / (D \ln 2)`
    on ``y = (x + u) / 256``, a bound that a density cannot raise by spiking at the
    midpoints (``tfpvae.eight_bit_bound``, computed here so that the recipe's own
    decoder, which no registered likelihood describes, gets it too)."""
    n_dims = int(np.prod(x_uniform.shape[1:]))
    bound = tfpvae.iwae_bound(vae, x_uniform, k=k, seed=0)
    return float(np.mean(-(bound - n_dims * np.log(256.0)) / (n_dims * np.log(2.0))))


def train_recipe(x: np.ndarray, epochs: int) -> tfpvae.VAE:
    """The course's model trained its own way, then wrapped for the bound."""
    course = build_recipe_vae("beta")
    course.fit(x, x, batch_size=BATCH_SIZE, epochs=epochs, verbose=0)
    # layers: the encoder's (ending in KLDivergenceAddLoss), then the decoder Sequential.
    encoder = tfk.Model(course.inputs, course.layers[-2].output)
    return tfpvae.VAE(encoder, course.layers[-1])


def train_tfpvae(x: np.ndarray, epochs: int, options: dict) -> tfpvae.VAE:
    """``build_vae(likelihood="beta", **options)`` trained with ``fit``."""
    options = dict(options)
    # An ablation of the exponential's ceiling, a module constant rather than an argument.
    concentration.EXP_MAX_CONCENTRATION = options.pop("_exp_ceiling", EXP_CEILING)
    vae = tfpvae.build_vae(likelihood="beta", **options)
    vae.fit(x, batch_size=BATCH_SIZE, epochs=epochs, verbose=0)
    return vae


def run(name: str, options: dict | None, seeds: list[int], data, epochs: int, k: int) -> dict:
    """Trains one model per seed and bounds each on the test images."""
    x_train, x_test, x_uniform = data
    bounds, bits, seconds = [], [], []
    for seed in seeds:
        tfk.backend.clear_session()
        tfk.utils.set_random_seed(seed)
        start = time.perf_counter()
        if options is None:
            vae = train_recipe(x_train, epochs)
        else:
            vae = train_tfpvae(x_train, epochs, options)
        bound = tfpvae.iwae_bound(vae, x_test, k=k, seed=0)
        bounds.append(float(np.mean(bound)) if np.all(np.isfinite(bound)) else float("nan"))
        bits.append(eight_bit_bits_per_dim(vae, x_uniform, k))
        seconds.append(time.perf_counter() - start)
    values = np.array(bounds)
    finite = values[np.isfinite(values)]
    row = {
        "model": name,
        "options": None
        if options is None
        else {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
        "seeds": seeds,
        "iwae": bounds,
        "mean": float(finite.mean()) if finite.size else float("nan"),
        "sd": float(finite.std(ddof=1)) if finite.size > 1 else float("nan"),
        "best": float(finite.max()) if finite.size else float("nan"),
        "non_finite": int(values.size - finite.size),
        "bits_per_dim_8bit": bits,
        "bits_per_dim_8bit_mean": float(np.mean(bits)),
        "seconds_per_seed": float(np.mean(seconds)),
    }
    per_seed = " ".join(f"{b:8.1f}" for b in bounds)
    print(
        f"{name:32s} {per_seed} | mean {row['mean']:8.1f} sd {row['sd']:6.1f} "
        f"best {row['best']:8.1f} | 8-bit {row['bits_per_dim_8bit_mean']:.3f} bits/dim "
        f"({row['seconds_per_seed']:.0f} s/seed)",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--k", type=int, default=200, help="IWAE importance samples")
    parser.add_argument("--quick", action="store_true", help="2 seeds, 2 epochs, k = 20")
    parser.add_argument(
        "--candidates",
        nargs="*",
        default=["recipe", "default"],
        help=f"'recipe', 'default' (the current defaults) or names of {list(CANDIDATES)}",
    )
    parser.add_argument("--out", type=Path, default=HERE / "defaults.json")
    args = parser.parse_args()
    seeds, epochs, k = (2, 2, 20) if args.quick else (args.seeds, args.epochs, args.k)
    data = load_sample()
    print(
        f"Fashion-MNIST sample: {len(data[0])} train / {len(data[1])} test images; "
        f"{epochs} epochs, batch {BATCH_SIZE}, IWAE k={k}, seeds 0..{seeds - 1}; nats per image"
    )
    rows = []
    for name in args.candidates:
        if name == "recipe":
            options = None
        elif name == "default":
            options = {}
        elif name in CANDIDATES:
            options = {**OLD_DEFAULTS, **CANDIDATES[name]}
        else:
            parser.error(f"unknown candidate {name!r}; choose from {list(CANDIDATES)}")
        rows.append(run(name, options, list(range(seeds)), data, epochs, k))
    result = {
        "machine": f"{platform.processor() or platform.machine()}, shared CPU",
        "tensorflow": tf.__version__,
        "data": "Fashion-MNIST sample: 1,600 train / 400 test images, prepare(x, 'beta')",
        "protocol": {"epochs": epochs, "batch_size": BATCH_SIZE, "iwae_k": k, "eval_seed": 0},
        "rows": rows,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
