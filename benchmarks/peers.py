"""tfpvae against a plain PyTorch loop and a JAX/Flax ``jit`` step, on the same VAE.

Usage::

    pip install -e ".[bench]"          # torch==2.13.0 (CPU build), jax[cpu], flax, optax
    python benchmarks/peers.py [--quick] [--rounds 3] [--out benchmarks/peers.json]

The workload is one VAE written three times: an MLP 784→256→64→2 (or the conv
trunk of ``architecture="conv"``), a diagonal Gaussian posterior, a Bernoulli
likelihood, the analytic KL, Adam at 1e-3, on 8,000 real images: the MNIST
sample (``../shared/data``, 7,000 + 1,000 images) binarised at 0.5. Real images
matter: on random pixels the posterior collapses and the gradients vanish, which
flatters frameworks whose cost depends on the values.

Every measurement is a fresh process (``--worker``), so import, graph building and
compilation are paid as a user pays them. Per process: the import time, the first
epoch (tracing and compiling), then one timed window of ``W`` epochs in a single
call (``fit(epochs=W)`` for tfpvae, a loop for the peers), which includes any
per-call overhead. Frameworks alternate within each round; the report gives the
median and the range of images/s over rounds, the CPU-time rate (images per
CPU-second of the process, all threads), and the achieved GFLOP/s as a fraction
of NumPy's float32 GEMM on a same-shape product, measured in the same run. Each
tfpvae worker's ratio to the best peer is given twice: of the medians over rounds,
and as the median over rounds of each round's ratio (:func:`paired_ratios`), which
cancels most of a shared VM's drift between rounds.

Besides the peers' workload (``tfpvae``: ``posterior="diag"``), tfpvae also runs it
with the full-covariance posterior (``tfpvae-full``) and the default
``build_vae(likelihood="beta")`` on the same images prepared for the Beta
(``tfpvae-beta``), so the defaults' cost is reported beside the peers. With
``--before PATH`` the peers' workload also runs on that checkout of tfpvae
(``tfpvae-before``) in the same rounds: a before/after table from one run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent.parent / "shared" / "data" / "keras-cache"
N_IMAGES = 8000
LATENT = 2
HIDDEN = (256, 64)
CONV = (32, 64)
FRAMEWORKS = ("tfpvae", "torch", "jax")
TFPVAE_EXTRAS = ("tfpvae-full", "tfpvae-beta")
#: The peers' workload on another checkout of tfpvae (``--before PATH``), in the same rounds.
BEFORE = "tfpvae-before"


# ----------------------------------------------------------------------------- data


def write_data(directory: Path) -> tuple[Path, Path, str]:
    """The binarised images (and the Beta-prepared ones) as .npy files."""
    sys.path.insert(0, str(HERE.parent))
    import tfpvae

    try:
        (x_train, _), (x_test, _) = tfpvae.load_dataset("mnist", cache_dir=SAMPLE)
        pixels = np.concatenate([x_train, x_test])
        source = f"MNIST sample ({len(pixels)} real images)"
    except tfpvae.DatasetUnavailableError:
        (x_train, _), (x_test, _) = tfpvae.load_dataset("digits")
        pixels = np.concatenate([x_train, x_test])
        pixels = np.kron(pixels, np.ones((1, 3, 3), np.uint8))[:, :28, :28]  # 8x8 -> 24x24
        pixels = np.pad(pixels, ((0, 0), (2, 2), (2, 2)))
        source = f"scikit-learn digits upscaled to 28x28 ({len(pixels)} images; no MNIST sample)"
    reps = -(-N_IMAGES // len(pixels))
    pixels = np.concatenate([pixels] * reps)[:N_IMAGES]
    binary = tfpvae.prepare(pixels, likelihood="bernoulli").astype(np.float32)
    beta = tfpvae.prepare(pixels, likelihood="beta").astype(np.float32)
    paths = directory / "binary.npy", directory / "beta.npy"
    np.save(paths[0], binary)
    np.save(paths[1], beta)
    return paths[0], paths[1], source


# ----------------------------------------------------------------------------- FLOPs


def flops_per_image(model: str) -> float:
    """Multiply-adds ×2 of one forward pass, ×3 for forward plus backward."""
    if model == "mlp":
        widths = (784, *HIDDEN)
        enc = sum(a * b for a, b in itertools.pairwise(widths)) + HIDDEN[-1] * 2 * LATENT
        dec_widths = (LATENT, *reversed(HIDDEN), 784)
        dec = sum(a * b for a, b in itertools.pairwise(dec_widths))
    else:
        c1, c2 = CONV
        enc = 14 * 14 * c1 * 9 * 1 + 7 * 7 * c2 * 9 * c1 + 7 * 7 * c2 * HIDDEN[-1]
        enc += HIDDEN[-1] * 2 * LATENT
        dec = LATENT * 7 * 7 * c2 + 7 * 7 * c2 * 9 * c2 + 14 * 14 * c2 * 9 * c1
        dec += 28 * 28 * c1 * 9 * 1
    return 3 * 2 * float(enc + dec)


def gemm_gflops(batch: int, repeats: int = 30) -> float:
    """NumPy float32 GEMM rate on the first layer's shape, ``[batch, 784] @ [784, 256]``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((batch, 784), dtype=np.float32)
    b = rng.standard_normal((784, 256), dtype=np.float32)
    for _ in range(5):
        a @ b
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(20):
            a @ b
        best = min(best, (time.perf_counter() - start) / 20)
    return 2 * batch * 784 * 256 / best / 1e9


# ----------------------------------------------------------------------------- workers


def _window(run_epoch_or_fit, epochs: int, n: int) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    loss = run_epoch_or_fit(epochs)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"img_s": epochs * n / wall, "cpu_img_s": epochs * n / cpu, "loss": float(loss)}


def worker_tfpvae(args: argparse.Namespace, x: np.ndarray) -> dict[str, float]:
    start = time.perf_counter()
    import tfpvae

    tfpvae.build_vae  # noqa: B018 - the first public name, as a user's first line loads it
    imported = time.perf_counter() - start
    options = {
        "tfpvae": dict(likelihood="bernoulli", posterior="diag", use_exact_kl=True),
        "tfpvae-before": dict(likelihood="bernoulli", posterior="diag", use_exact_kl=True),
        "tfpvae-full": dict(likelihood="bernoulli", posterior="full", use_exact_kl=True),
        "tfpvae-beta": dict(likelihood="beta"),
    }[args.worker]
    from tfpvae._backend import tfk

    tfk.utils.set_random_seed(0)
    built = time.perf_counter()
    vae = tfpvae.build_vae(
        latent_dim=LATENT, hidden_units=HIDDEN, architecture=args.model, **options
    )
    built = time.perf_counter() - built
    first = time.perf_counter()
    vae.fit(x, epochs=1, batch_size=args.batch, verbose=0)
    first = time.perf_counter() - first

    def fit(epochs: int) -> float:
        history = vae.fit(x, epochs=epochs, batch_size=args.batch, verbose=0)
        return history.history["loss"][-1]

    return {"import_s": imported, "build_s": built, "first_epoch_s": first} | _window(
        fit, args.epochs, len(x)
    )


def worker_torch(args: argparse.Namespace, x_np: np.ndarray) -> dict[str, float]:
    start = time.perf_counter()
    import torch
    from torch import nn

    imported = time.perf_counter() - start
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    x = torch.from_numpy(x_np.reshape(len(x_np), 1, 28, 28))

    if args.model == "mlp":
        encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU(),
            nn.Linear(64, 2 * LATENT),
        )  # fmt: skip
        decoder = nn.Sequential(
            nn.Linear(LATENT, 64), nn.ReLU(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 784),
        )  # fmt: skip
    else:
        c1, c2 = CONV
        encoder = nn.Sequential(
            nn.Conv2d(1, c1, 3, 2, 1), nn.ReLU(), nn.Conv2d(c1, c2, 3, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(7 * 7 * c2, 64), nn.ReLU(), nn.Linear(64, 2 * LATENT),
        )  # fmt: skip
        decoder = nn.Sequential(
            nn.Linear(LATENT, 7 * 7 * c2), nn.ReLU(), nn.Unflatten(1, (c2, 7, 7)),
            nn.ConvTranspose2d(c2, c2, 3, 2, 1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c2, c1, 3, 2, 1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c1, 1, 3, 1, 1), nn.Flatten(),
        )  # fmt: skip
    params = list(encoder.parameters()) + list(decoder.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-3)
    bce = nn.BCEWithLogitsLoss(reduction="none")

    def epoch() -> float:
        order = torch.randperm(len(x))
        for i in range(0, len(x), args.batch):
            xb = x[order[i : i + args.batch]]
            loc, raw = encoder(xb).chunk(2, dim=-1)
            scale = nn.functional.softplus(raw) + 1e-5
            z = loc + scale * torch.randn_like(loc)
            nll = bce(decoder(z), xb.flatten(1)).sum(-1)
            kl = 0.5 * (loc**2 + scale**2 - 1).sum(-1) - scale.log().sum(-1)
            loss = (nll + kl).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return loss.item()

    built = 0.0
    first = time.perf_counter()
    epoch()
    first = time.perf_counter() - first

    def run(epochs: int) -> float:
        for _ in range(epochs):
            loss = epoch()
        return loss

    return {"import_s": imported, "build_s": built, "first_epoch_s": first} | _window(
        run, args.epochs, len(x)
    )


def worker_jax(args: argparse.Namespace, x_np: np.ndarray) -> dict[str, float]:
    start = time.perf_counter()
    import flax.linen as fnn
    import jax
    import jax.numpy as jnp
    import optax

    imported = time.perf_counter() - start
    c1, c2 = CONV

    class VAE(fnn.Module):
        @fnn.compact
        def __call__(self, xb, eps):
            if args.model == "mlp":
                h = xb.reshape(len(xb), -1)
                for units in HIDDEN:
                    h = fnn.relu(fnn.Dense(units)(h))
            else:
                h = xb[..., None]
                h = fnn.relu(fnn.Conv(c1, (3, 3), strides=2, padding="SAME")(h))
                h = fnn.relu(fnn.Conv(c2, (3, 3), strides=2, padding="SAME")(h))
                h = fnn.relu(fnn.Dense(HIDDEN[-1])(h.reshape(len(xb), -1)))
            loc, raw = jnp.split(fnn.Dense(2 * LATENT)(h), 2, axis=-1)
            scale = jax.nn.softplus(raw) + 1e-5
            z = loc + scale * eps
            if args.model == "mlp":
                h = z
                for units in reversed(HIDDEN):
                    h = fnn.relu(fnn.Dense(units)(h))
                logits = fnn.Dense(784)(h)
            else:
                h = fnn.relu(fnn.Dense(7 * 7 * c2)(z)).reshape(len(xb), 7, 7, c2)
                h = fnn.relu(fnn.ConvTranspose(c2, (3, 3), strides=(2, 2), padding="SAME")(h))
                h = fnn.relu(fnn.ConvTranspose(c1, (3, 3), strides=(2, 2), padding="SAME")(h))
                logits = fnn.ConvTranspose(1, (3, 3), padding="SAME")(h).reshape(len(xb), -1)
            target = xb.reshape(len(xb), -1)
            nll = optax.sigmoid_binary_cross_entropy(logits, target).sum(-1)
            kl = 0.5 * (loc**2 + scale**2 - 1).sum(-1) - jnp.log(scale).sum(-1)
            return (nll + kl).mean()

    model = VAE()
    key = jax.random.PRNGKey(0)
    x = jnp.asarray(x_np)
    params = model.init(key, x[:2], jnp.zeros((2, LATENT)))
    optimizer = optax.adam(1e-3)
    state = optimizer.init(params)

    @jax.jit
    def step(params, state, xb, key):
        eps = jax.random.normal(key, (xb.shape[0], LATENT))
        loss, grads = jax.value_and_grad(model.apply)(params, xb, eps)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    rng = np.random.default_rng(0)
    carry = {"params": params, "state": state, "key": key}

    def epoch() -> float:
        order = rng.permutation(len(x_np))
        for i in range(0, len(x_np), args.batch):
            carry["key"], sub = jax.random.split(carry["key"])
            carry["params"], carry["state"], loss = step(
                carry["params"], carry["state"], x[order[i : i + args.batch]], sub
            )
        return float(loss)

    first = time.perf_counter()
    epoch()
    first = time.perf_counter() - first

    def run(epochs: int) -> float:
        for _ in range(epochs):
            loss = epoch()
        return loss

    return {"import_s": imported, "build_s": 0.0, "first_epoch_s": first} | _window(
        run, args.epochs, len(x_np)
    )


def run_worker(args: argparse.Namespace) -> None:
    x = np.load(args.data)[: args.images]
    if args.model == "conv" or args.worker in ("torch", "jax"):
        x = x.reshape(len(x), 28, 28)
    work = {"torch": worker_torch, "jax": worker_jax}.get(args.worker, worker_tfpvae)
    result = work(args, x)
    Path(args.result).write_text(json.dumps(result))


# ----------------------------------------------------------------------------- driver


def spawn(
    worker: str,
    model: str,
    batch: int,
    epochs: int,
    data: Path,
    tmp: Path,
    images: int,
    before: str | None = None,
) -> dict:
    result = tmp / f"{worker}-{model}-{batch}-{epochs}.json"
    command = [sys.executable, __file__, "--worker", worker, "--model", model]
    command += ["--batch", str(batch), "--epochs", str(epochs), "--data", str(data)]
    command += ["--images", str(images)]
    command += ["--result", str(result)]
    source = before if worker == BEFORE and before else str(HERE.parent)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=source)
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return json.loads(result.read_text())


def summarise(runs: list[dict], flops: float, gemm: float) -> dict:
    rates = [r["img_s"] for r in runs]
    median = statistics.median(rates)
    return {
        "img_s": median,
        "img_s_min": min(rates),
        "img_s_max": max(rates),
        "cpu_img_s": statistics.median(r["cpu_img_s"] for r in runs),
        "first_epoch_s": [round(r["first_epoch_s"], 2) for r in runs],
        "import_s": statistics.median(r["import_s"] for r in runs),
        "loss": statistics.median(r["loss"] for r in runs),
        "gemm_fraction": median * flops / 1e9 / gemm,
        "img_s_rounds": rates,
        "cpu_img_s_rounds": [r["cpu_img_s"] for r in runs],
    }


def paired_ratios(frameworks: dict) -> dict[str, dict[str, float]]:
    """Each tfpvae worker's rate over the best peer's *in the same round*, median over rounds.

    The VM's speed drifts by 15–25% within minutes, and the frameworks of one
    round run within a minute of each other, so a round's ratio cancels most of
    the drift that the ratio of medians over rounds keeps.
    """
    out = {}
    for name, row in frameworks.items():
        if not name.startswith("tfpvae"):
            continue
        ratios = {}
        for key in ("img_s_rounds", "cpu_img_s_rounds"):
            peers = (frameworks[f][key] for f in ("torch", "jax"))
            best = [max(pair) for pair in zip(*peers, strict=True)]
            ratios[key.removesuffix("_rounds")] = statistics.median(
                mine / peer for mine, peer in zip(row[key], best, strict=True)
            )
        out[name] = ratios
    return out


def table(results: dict) -> str:
    lines = [
        "| model | batch | window | framework | img/s (median) | min–max | CPU-time img/s | "
        "GEMM fraction | first epoch s | import s | loss |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in results["cases"]:
        for name, row in case["frameworks"].items():
            lines.append(
                f"| {case['model']} | {case['batch']} | {case['epochs']} | {name} | "
                f"{row['img_s']:,.0f} | {row['img_s_min']:,.0f}–{row['img_s_max']:,.0f} | "
                f"{row['cpu_img_s']:,.0f} | {row['gemm_fraction']:.0%} | "
                f"{min(row['first_epoch_s']):.1f}–{max(row['first_epoch_s']):.1f} | "
                f"{row['import_s']:.1f} | {row['loss']:.1f} |"
            )
        best_peer = max(case["frameworks"][f]["img_s"] for f in ("torch", "jax"))
        best_cpu = max(case["frameworks"][f]["cpu_img_s"] for f in ("torch", "jax"))
        paired = case.get("paired", {})
        for name in ("tfpvae", "tfpvae-full", BEFORE):
            if name in case["frameworks"]:
                ratio = case["frameworks"][name]["img_s"] / best_peer
                cpu = case["frameworks"][name]["cpu_img_s"] / best_cpu
                by_round = paired.get(name)
                rounds = (
                    f"; by round {by_round['img_s']:.2f}× ({by_round['cpu_img_s']:.2f}×)"
                    if by_round
                    else ""
                )
                lines.append(
                    f"| | | | **{name} / best peer** | **{ratio:.2f}×** | | {cpu:.2f}×{rounds} "
                    "| | | | |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=(*FRAMEWORKS, *TFPVAE_EXTRAS, BEFORE))
    parser.add_argument("--model", default="mlp", choices=("mlp", "conv"))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data")
    parser.add_argument("--images", type=int, default=N_IMAGES)
    parser.add_argument("--result")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="MLP only, one round")
    parser.add_argument("--models", default="mlp,conv")
    parser.add_argument(
        "--conv-images",
        type=int,
        default=2000,
        help="images per epoch of the conv cases (the peers' CPU convolutions run at a few "
        "hundred images/s, so 8,000 × 10 epochs would take the better part of an hour)",
    )
    parser.add_argument(
        "--before",
        help="another checkout of tfpvae (a path) whose peers' workload runs in the same "
        f"rounds as {BEFORE!r}, for a before/after table from one run",
    )
    parser.add_argument("--out", default=str(HERE / "peers.json"))
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return
    models = ["mlp"] if args.quick else args.models.split(",")
    rounds = 1 if args.quick else args.rounds
    cases = [(m, b, w) for m in models for b in (256, 32) for w in (2, 10)]
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        binary, beta, source = write_data(tmp)
        gemm = {b: gemm_gflops(b) for b in (256, 32)}
        runs: dict[tuple, dict[str, list]] = {case: {} for case in cases}
        for round_ in range(rounds):
            for model, batch, epochs in cases:
                names = list(FRAMEWORKS) + (list(TFPVAE_EXTRAS) if model == "mlp" else [])
                names += [BEFORE] if args.before else []
                names = names[round_ % len(names) :] + names[: round_ % len(names)]
                for worker in names:
                    data = beta if worker == "tfpvae-beta" else binary
                    images = args.conv_images if model == "conv" else N_IMAGES
                    result = spawn(worker, model, batch, epochs, data, tmp, images, args.before)
                    runs[(model, batch, epochs)].setdefault(worker, []).append(result)
                    print(
                        f"round {round_ + 1} {model} bs{batch} w{epochs} {worker}: "
                        f"{result['img_s']:,.0f} img/s",
                        flush=True,
                    )
    results = {
        "data": source,
        "machine": f"{platform.machine()} {platform.processor()} ({os.cpu_count()} cores)",
        "python": platform.python_version(),
        "rounds": rounds,
        "gemm_gflops": gemm,
        "cases": [
            {
                "model": model,
                "batch": batch,
                "epochs": epochs,
                "images_per_epoch": args.conv_images if model == "conv" else N_IMAGES,
                "flops_per_image": flops_per_image(model),
                "frameworks": {
                    name: summarise(found, flops_per_image(model), gemm[batch])
                    for name, found in runs[(model, batch, epochs)].items()
                },
            }
            for model, batch, epochs in cases
        ],
    }
    for case in results["cases"]:
        case["paired"] = paired_ratios(case["frameworks"])
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
