"""Run as a script by tests/test_distribute.py: a VAE on 2 logical CPUs vs 1 device.

It must run in a fresh process, because logical devices can only be configured
before TensorFlow initialises. It prints one JSON object with the largest
differences found, and the loss of one mirrored training epoch.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

import tfpvae  # noqa: E402
from tfpvae.io.datasets import load_dataset, prepare  # noqa: E402
from tfpvae.io.sources import tfrecord_dataset, write_tfrecords  # noqa: E402
from tfpvae.objectives import ELBO, OBJECTIVES, FusedELBO, Terms  # noqa: E402

BATCH, FIRST = 31, 16  # an uneven split: 16 images on replica 0, 15 on replica 1
MODES = {
    "fast path, sampled KL": {},
    "fast path, exact KL, 4 test points ignored": {"use_exact_kl": True, "kl_samples": 4},
    "add_loss, exact KL": {"objective": "posterior_mean_elbo", "use_exact_kl": True},
    "regularizer, exact KL": {
        "objective": "posterior_mean_elbo",
        "use_exact_kl": True,
        "kl": "regularizer",
    },
    "conditional, fast path": {"num_classes": 10},
}


class PosteriorMeanELBO(ELBO):
    """The ELBO with the decoder fed E[z|x], so the layer path has no sampling noise."""

    def terms(self, x, noise=None, training=False):
        parts = self.parts
        q = parts.posterior(x, training=training)
        likelihood = parts.decode(q.mean(), training=training)
        distortion = parts.likelihood.negative_log_prob(x, likelihood)
        rate = parts.kl.per_example(q, parts.prior.distribution(), None)  # exact KL here
        return Terms(distortion + parts.kl_weight * rate, rate, distortion)


OBJECTIVES.register("posterior_mean_elbo", lambda parts, **options: PosteriorMeanELBO(parts))


def build(strategy: tf.distribute.Strategy, fields: dict) -> tfpvae.VAE:
    config = tfpvae.VAEConfig(input_shape=(8, 8), hidden_units=(32,), kl_weight=0.7, **fields)
    with strategy.scope():
        return tfpvae.build_vae_from_config(config)


def tfk_adam():
    return tfpvae.tfk.optimizers.Adam(1e-3)


def per_replica(strategy, whole: np.ndarray):
    """Splits a global batch as [:FIRST] and [FIRST:] across the two replicas."""

    def part(context):
        return whole[:FIRST] if context.replica_id_in_sync_group == 0 else whole[FIRST:]

    return strategy.experimental_distribute_values_from_function(part)


def globally_averaged(strategy, value) -> float:
    """The mean over the 31 images of per-replica means of 16 and 15 of them."""
    parts = [float(v) for v in strategy.experimental_local_results(value)]
    return float(np.dot(parts, [FIRST, BATCH - FIRST]) / BATCH)


def compare(fields: dict, x: np.ndarray, eps: np.ndarray, y: np.ndarray) -> dict[str, float]:
    # Same initial weights in every mode and every run, so the gradient scale is fixed.
    tfpvae.tfk.utils.set_random_seed(0)
    single = build(tf.distribute.get_strategy(), fields)
    mirrored_strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    mirrored = build(mirrored_strategy, fields)
    mirrored.set_weights(single.get_weights())
    fused = isinstance(single.objective, FusedELBO)
    noise = (tf.constant(eps)[None], None) if fused else None
    labels = y if fields.get("num_classes") else None  # a conditional VAE's class ids

    def means(x, noise, model, labels=None):
        terms, loss, grads = model.compute_gradients(x, noise, labels=labels)
        rate, distortion = (tf.reduce_mean(t) for t in (terms.rate, terms.distortion))
        return loss, rate, distortion, grads

    loss, rate, distortion, grads = means(tf.constant(x), noise, single, labels)

    @tf.function
    def replica_step(xr, er, yr):
        return means(xr, (er[None], None) if fused else None, mirrored, yr)

    replica_labels = None if labels is None else per_replica(mirrored_strategy, labels)
    results = mirrored_strategy.run(
        replica_step,
        args=(
            per_replica(mirrored_strategy, x),
            per_replica(mirrored_strategy, eps),
            replica_labels,
        ),
    )
    local_loss, local_rate, local_distortion, local_grads = results

    def global_mean(value) -> float:
        return globally_averaged(mirrored_strategy, value)

    summed = [mirrored_strategy.reduce("SUM", g, axis=None) for g in local_grads]
    grad_scale = max(float(tf.reduce_max(tf.abs(g))) for g in grads)
    penalty = global_mean(local_loss) - global_mean(local_distortion)
    return {
        "loss": float(loss),
        "loss_diff": abs(global_mean(local_loss) - float(loss)),
        "rate_diff": abs(global_mean(local_rate) - float(rate)),
        "distortion_diff": abs(global_mean(local_distortion) - float(distortion)),
        # beta * KL counted once: twice (or half) would be off by 0.7 * rate.
        "kl_penalty_diff": abs(penalty - 0.7 * float(rate)),
        "rate": float(rate),
        "grad_max_abs": grad_scale,
        "grad_diff": max(
            float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(grads, summed, strict=True)
        ),
    }


#: Objectives sampled through TFP at a stateless seed: each replica's draws are those of
#: its images alone at that seed, so the reference runs the single model per replica.
SEEDED_MODES = {
    "iwae k=3, dreg": {"objective": "iwae", "iwae_k": 3, "gradient": "dreg"},
    "renyi alpha=0.5, dreg": {
        "objective": "renyi",
        "alpha": 0.5,
        "n_samples": 3,
        "gradient": "dreg",
    },
}
SEED = tf.constant([5, 7], tf.int32)


def fresh_strategy() -> tf.distribute.MirroredStrategy:
    """A MirroredStrategy with collective keys of its own.

    Every MirroredStrategy of a process starts its collective keys at the same base,
    so a collective of one shape (free bits' per-dimension sums) and a later one of
    another shape under a new strategy would share a key; one strategy per process,
    as in training, never meets this.
    """
    tf.distribute.MirroredStrategy._collective_key_base += 1000  # type: ignore[attr-defined]
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def compare_seeded(fields: dict, x: np.ndarray) -> dict[str, float]:
    """DReG's per-call gradient scales under two replicas: the summed replica gradients
    equal each replica's images run alone on one device, weighted by their share."""
    tfpvae.tfk.utils.set_random_seed(0)
    single = build(tf.distribute.get_strategy(), fields)
    mirrored_strategy = fresh_strategy()
    mirrored = build(mirrored_strategy, fields)
    mirrored.set_weights(single.get_weights())
    expected, loss = None, 0.0
    for part in (x[:FIRST], x[FIRST:]):
        _, part_loss, grads = single.compute_gradients(tf.constant(part), SEED)
        share = len(part) / BATCH
        loss += share * float(part_loss)
        scaled = [share * g for g in grads]
        expected = (
            scaled if expected is None else [a + b for a, b in zip(expected, scaled, strict=True)]
        )

    @tf.function
    def replica_step(xr):
        return mirrored.compute_gradients(xr, SEED)[1:]

    local_loss, local_grads = mirrored_strategy.run(
        replica_step, args=(per_replica(mirrored_strategy, x),)
    )
    summed = [mirrored_strategy.reduce("SUM", g, axis=None) for g in local_grads]
    return {
        "loss": loss,
        "loss_diff": abs(globally_averaged(mirrored_strategy, local_loss) - loss),
        "grad_max_abs": max(float(tf.reduce_max(tf.abs(g))) for g in expected),
        "grad_diff": max(
            float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(expected, summed, strict=True)
        ),
    }


def compare_free_bits(x: np.ndarray) -> dict[str, float | bool]:
    """Free bits under two replicas floors the *global* batch's per-dimension KL: the
    exact KL part of each image's loss equals the single-device full-batch value."""
    fields = {"posterior": "diag", "latent_dim": 3}
    tfpvae.tfk.utils.set_random_seed(0)
    probe = build(tf.distribute.get_strategy(), fields)
    q = probe.posterior(x)
    mean, var = q.mean().numpy(), q.variance().numpy()
    kl = 0.5 * (var + mean**2 - 1.0 - np.log(var))  # [batch, d]
    whole, first = kl.mean(0), kl[:FIRST].mean(0)
    dim = int(np.argmax(np.abs(whole - first)))
    free_bits = float((whole[dim] + first[dim]) / 2)  # the two sides of the floor
    fields = {**fields, "free_bits": free_bits}
    tfpvae.tfk.utils.set_random_seed(0)
    single = build(tf.distribute.get_strategy(), fields)
    single.set_weights(probe.get_weights())
    mirrored_strategy = fresh_strategy()
    mirrored = build(mirrored_strategy, fields)
    mirrored.set_weights(probe.get_weights())

    def kl_part(model, xr):
        terms = model.objective.terms(xr, SEED, training=False)
        return terms.loss - terms.distortion

    expected = kl_part(single, tf.constant(x)).numpy()
    local = mirrored_strategy.run(
        tf.function(lambda xr: kl_part(mirrored, xr)), args=(per_replica(mirrored_strategy, x),)
    )
    got = np.concatenate([v.numpy() for v in mirrored_strategy.experimental_local_results(local)])
    return {
        "kl_part_diff": float(np.abs(got - expected).max()),
        "kl_part": float(np.abs(expected).max()),
        # A replica-local floor would have put this dimension on the other side.
        "local_floor_differs": bool((whole[dim] > free_bits) != (first[dim] > free_bits)),
    }


def main() -> None:
    (x_train, y_train), _ = load_dataset("digits")
    x_all = prepare(x_train, "beta")
    x = x_all[:BATCH]
    eps = np.random.default_rng(0).standard_normal((BATCH, 2)).astype("float32")
    y = y_train[:BATCH].astype("int32")
    report = {name: compare(fields, x, eps, y) for name, fields in MODES.items()}
    report["seeded"] = {name: compare_seeded(fields, x) for name, fields in SEEDED_MODES.items()}
    report["free_bits"] = compare_free_bits(x)

    tfpvae.tfk.utils.set_random_seed(0)
    strategy = fresh_strategy()
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(32,), strategy=strategy)
    before = [w.copy() for w in vae.get_weights()]
    history = vae.fit(x_all[:512], epochs=1, batch_size=64, verbose=0)
    report["epoch"] = {
        "replicas": strategy.num_replicas_in_sync,
        "loss": history.history["loss"][0],
        "changed": any(
            not np.array_equal(a, b) for a, b in zip(before, vae.get_weights(), strict=True)
        ),
    }
    with tempfile.TemporaryDirectory() as folder:
        write_tfrecords(x_train[:256], Path(folder) / "train", shards=2)
        files = tfrecord_dataset(
            f"{folder}/train-*", (8, 8), batch_size=64, seed=0, drop_remainder=True
        )
        distributed = vae.fit(files, epochs=1, verbose=0).history["loss"][0]
    report["tfrecord_epoch"] = {"loss": distributed}

    tfpvae.tfk.utils.set_random_seed(0)
    mixture = tfpvae.build_vae(
        input_shape=(8, 8), hidden_units=(32,), prior="mixture", prior_components=3,
        strategy=strategy,
    )  # fmt: skip
    start = [v.numpy().copy() for v in mixture.prior_layer.trainable_variables]
    loss = mixture.fit(x_all[:256], epochs=1, batch_size=64, verbose=0).history["loss"][0]
    report["mixture_prior_epoch"] = {
        "loss": loss,
        "prior_changed": all(
            not np.array_equal(a, v.numpy())
            for a, v in zip(start, mixture.prior_layer.trainable_variables, strict=True)
        ),
        "mirrored": all(
            isinstance(v, tf.distribute.DistributedValues)
            for v in mixture.prior_layer.trainable_variables
        ),
    }
    tfpvae.tfk.utils.set_random_seed(0)
    conditional = tfpvae.build_vae(
        input_shape=(8, 8), hidden_units=(32,), num_classes=10, strategy=strategy
    )
    before = [w.copy() for w in conditional.get_weights()]
    history = conditional.fit((x_all[:256], y_train[:256]), epochs=1, batch_size=64, verbose=0)
    report["conditional_epoch"] = {
        "loss": history.history["loss"][0],
        "changed": any(
            not np.array_equal(a, b) for a, b in zip(before, conditional.get_weights(), strict=True)
        ),
    }
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
