"""tf.distribute: mirrored replicas match one device; two workers end identical.

Both checks run in fresh processes: logical devices and multi-worker runtimes
can only be set up before TensorFlow initialises.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tfpvae
from tfpvae.interfaces.cli import main
from tfpvae.interfaces.run import read_history
from tfpvae.training.distribute import STRATEGIES, worker_directory

HERE = Path(__file__).parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.mark.slow(seconds=75)
def test_mirrored_over_two_cpus_equals_one_device() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(HERE / "mirrored_check.py")],
        capture_output=True, text=True, timeout=400, env=ENV,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    print(f"mirrored check: {time.monotonic() - started:.1f} s", json.dumps(report, indent=1))
    epochs = (
        "epoch", "tfrecord_epoch", "mixture_prior_epoch", "conditional_epoch", "seeded",
        "free_bits",
    )  # fmt: skip
    for mode in [k for k in report if k not in epochs]:
        r = report[mode]
        # Per-example means of the 31-image batch split 16 + 15 across the replicas.
        assert r["loss_diff"] < 1e-4 * max(1.0, abs(r["loss"])), mode
        assert r["rate_diff"] < 1e-5 and r["distortion_diff"] < 1e-4 * abs(r["loss"]), mode
        # The KL enters once: counting it twice would be off by 0.7 * rate.
        assert r["rate"] > 0.1 and r["kl_penalty_diff"] < 1e-4, mode
        # Summed replica gradients equal the single-device gradient; unscaled ones would be 2x.
        assert r["grad_max_abs"] > 0.1 and r["grad_diff"] < 1e-5 * r["grad_max_abs"] * 10, mode
    # DReG's gradient scales are each replica's own: the replicas' summed gradients are
    # those of each replica's images alone on one device, weighted by their share.
    for mode, r in report["seeded"].items():
        assert r["loss_diff"] < 1e-4 * max(1.0, abs(r["loss"])), mode
        assert r["grad_max_abs"] > 0.1 and r["grad_diff"] < 1e-4 * r["grad_max_abs"], mode
    # Free bits floor the global batch's per-dimension KL, not each replica's.
    free_bits = report["free_bits"]
    assert free_bits["local_floor_differs"] and free_bits["kl_part"] > 0.1
    assert free_bits["kl_part_diff"] < 1e-5 * max(1.0, free_bits["kl_part"]) * 10
    assert report["epoch"]["replicas"] == 2 and report["epoch"]["changed"]
    assert np.isfinite(report["epoch"]["loss"]) and np.isfinite(report["tfrecord_epoch"]["loss"])
    # A learned prior's variables are mirrored like the rest, and train across replicas.
    mixture = report["mixture_prior_epoch"]
    assert np.isfinite(mixture["loss"]) and mixture["prior_changed"] and mixture["mirrored"]
    # A conditional VAE's (images, labels) arrays stream to both replicas, labels beside images.
    conditional = report["conditional_epoch"]
    assert np.isfinite(conditional["loss"]) and conditional["changed"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow(seconds=75)
def test_two_workers_train_one_epoch_to_identical_weights(tmp_path) -> None:
    script = shutil.which("tfpvae", path=str(Path(sys.executable).parent))
    assert script, "the tfpvae console script is not installed"
    cluster = {"worker": [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]}
    # As if worker 1 had started first: the chief must not take its folder for old files.
    (tmp_path / "run" / "worker-1").mkdir(parents=True)
    started = time.monotonic()
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        argv = [script, "train", "--strategy", "multiworker", "--dataset", "digits",
                "--epochs", "1", "--limit", "256", "--batch-size", "32", "--k", "2",
                "--hidden-units", "32", "--quiet", "--no-figures",
                "--out", str(tmp_path / "run")]  # fmt: skip
        workers.append(
            subprocess.Popen(
                argv,
                env={**ENV, "TF_CONFIG": tf_config},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        outputs = [w.communicate(timeout=400) for w in workers]
    finally:
        for w in workers:
            w.kill()
    for w, (_, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err[-3000:]
    print(f"two workers: {time.monotonic() - started:.1f} s")
    chief, other = tmp_path / "run", tmp_path / "run" / "worker-1"
    assert (chief / "metrics.json").is_file() and not (other / "metrics.json").exists()
    assert read_history(chief) == read_history(other) and read_history(chief)["epoch"] == [0]
    for a, b in zip(
        tfpvae.load(chief).trainable_variables, tfpvae.load(other).trainable_variables, strict=True
    ):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_strategy_names_and_single_process_role(tmp_path) -> None:
    assert STRATEGIES.names() == ["default", "mirrored", "multiworker"]
    assert worker_directory(tmp_path, STRATEGIES.get("default")()) == tmp_path
    with pytest.raises(SystemExit, match="2"):  # argparse: invalid choice
        main(["train", "--strategy", "ring", "--out", str(tmp_path)])


@pytest.mark.slow(seconds=15)
@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_distributions_float32(precision) -> None:
    x = np.random.default_rng(0).uniform(0.05, 0.95, (64, 8, 8)).astype("float32")
    exact = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(32,))
    mixed = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(32,), precision=precision)
    mixed.set_weights(exact.get_weights())
    assert mixed.encoder(x).dtype == mixed(x).dtype == "float32"
    assert mixed.decoder.layers[2].compute_dtype == precision.split("_")[1]
    eps = np.random.default_rng(1).standard_normal((1, 64, 2)).astype("float32")
    loss32 = float(exact.compute_gradients(x, (eps, None))[1])
    loss16 = float(mixed.compute_gradients(x, (eps, None))[1])
    assert abs(loss16 - loss32) < 0.02 * abs(loss32)  # 16-bit trunks, float32 likelihood
    assert np.isfinite(mixed.fit(x, epochs=2, batch_size=16, verbose=0).history["loss"]).all()
