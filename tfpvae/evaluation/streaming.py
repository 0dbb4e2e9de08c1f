r"""The held-out bounds of one batch of images, as forward-only ``tf.function``\ s.

:mod:`tfpvae.evaluation.bounds` loops over batches of images; for each batch it
calls a function made here, once per model and setting (``n_samples`` for the
ELBO; ``k`` and ``chunk_size`` for the IWAE bound) and traced once per batch
shape, without AutoGraph (:class:`~tfpvae.training.tuning.TracedStep`). Run
eagerly, a batch's bound paid Python's cost of every TFP and Keras op per
chunk; traced, it runs as one graph.

The IWAE bound (and the CUBO, at the same draws) streams over its k importance
samples: a ``tf.while_loop`` (one iteration at a time) draws ``chunk_size``
samples per image, scores them and folds them into a running log-sum-exp per
power r (1 for the IWAE bound),

.. math:: r_c = \log\Big(e^{r_{c-1}} + \sum_{j \in \text{chunk } c} w_j^r\Big),

so neither the noise nor the decoder's output grows with k. The draws of
image ``i`` are those of :func:`~tfpvae.components.draws.per_image_draws` with
the key of image ``i``: chunk ``c`` holds draws ``c·chunk_size ..``, the same
numbers one draw of all k would give. A family without an affine noise map (a
flow, a relaxed categorical, stacked latents) is drawn and scored under q for
all k at once (a flow scores its draws from its cached forward pass), and
decoded chunk by chunk.
"""

from __future__ import annotations

import math
from typing import Any

from tfpvae._backend import tf
from tfpvae.components.draws import noise_transform, per_image_draws
from tfpvae.components.kl import rate_estimate
from tfpvae.objectives.estimators import log_likelihood, log_ratio
from tfpvae.training.tuning import TracedStep

#: Where a model keeps its traced bound functions, by setting.
_CACHE = "_tfpvae_bound_functions"


def decoded_log_likelihood(parts: Any, x: tf.Tensor, z: tf.Tensor) -> tf.Tensor:
    """log p(x | z) for z of shape ``[k, batch, latent]``; returns ``[k, batch]``."""
    return log_likelihood(x, z, lambda flat: parts.decode(flat, training=False), parts.likelihood)


class _BoundFunction:
    """A bound's batch function: traced where q's noise is an affine map of normals.

    Other families (flows, relaxed categorical latents) draw each image's samples by
    slicing q, which TFP supports eagerly but not inside a graph; they run eagerly,
    so each image's draws stay its own whatever the batching.
    """

    def __init__(self, vae: Any, make: Any) -> None:
        self._vae, self._make = vae, make
        self._run: Any = None

    def __call__(self, x: tf.Tensor, keys: tf.Tensor, labels: Any) -> Any:
        if self._run is None:
            first = None if labels is None else labels[:1]
            q = self._vae.parts.given(first).posterior(x[:1], training=False)
            affine = noise_transform(q) is not None
            self._run = TracedStep(self._make, reduce_retracing=False) if affine else self._make
        return self._run(x, keys, labels)


def _cached(vae: Any, key: tuple, make: Any) -> _BoundFunction:
    """The batch function ``key`` of ``vae``, made on first use.

    Kept in the instance's ``__dict__`` (not a tracked attribute, so never saved);
    the model and its functions form a cycle that the garbage collector frees.
    """
    functions = vae.__dict__.setdefault(_CACHE, {})
    if key not in functions:
        functions[key] = _BoundFunction(vae, make)
    return functions[key]


def elbo_function(vae: Any, n_samples: int) -> _BoundFunction:
    """``(x [batch, ...], keys [batch, 2], labels) → (rate, distortion)``, each ``[batch]``.

    ``labels`` are a conditional VAE's class ids ``[batch]``, ``None`` for another.
    """

    def terms(x: tf.Tensor, keys: tf.Tensor, labels: Any) -> tuple[tf.Tensor, tf.Tensor]:
        parts = vae.parts.given(labels)
        q = parts.posterior(x, training=False)
        z = per_image_draws(q, n_samples, keys)  # [S, batch, latent]
        distortion = -tf.reduce_mean(decoded_log_likelihood(parts, x, z), axis=0)
        return rate_estimate(q, vae.prior, z), distortion

    return _cached(vae, ("elbo", int(n_samples)), terms)


def powers_function(vae: Any, k: int, chunk_size: int, powers: tuple[float, ...]) -> _BoundFunction:
    r"""``(x [batch, ...], keys [batch, 2], labels) → (log (1/k) Σ_j w_j^r for each r)``.

    Each entry is ``[batch]``; one pass over the k draws serves every power r
    (``(1,)`` is the IWAE bound). ``labels`` as in :func:`elbo_function`.
    """
    chunk = min(int(chunk_size), int(k))
    whole, rest = divmod(int(k), chunk)

    def sums(x: tf.Tensor, keys: tf.Tensor, labels: Any) -> tuple[tf.Tensor, ...]:
        parts = vae.parts.given(labels)
        q, prior = parts.posterior(x, training=False), vae.prior

        def fold(running: tuple, z: tf.Tensor, ratio: tf.Tensor | None = None) -> tuple:
            ratio = log_ratio(q, prior, z) if ratio is None else ratio  # [size, batch]
            log_w = decoded_log_likelihood(parts, x, z) - ratio
            return tuple(
                tf.reduce_logsumexp(
                    tf.concat([sum_r[None], log_w if r == 1 else float(r) * log_w], axis=0),
                    axis=0,
                )  # log Σ w^r so far, [batch]
                for r, sum_r in zip(powers, running, strict=True)
            )

        empty = tf.fill([tf.shape(x)[0]], tf.constant(-math.inf, tf.float32))
        running = tuple(empty for _ in powers)
        if noise_transform(q) is None:  # drawn at once, then decoded chunk by chunk
            draws = per_image_draws(q, int(k), keys)  # [k, batch, latent]
            ratios = log_ratio(q, prior, draws)  # [k, batch]; a flow reuses its forward pass
            for start in range(0, int(k), chunk):
                end = start + chunk
                running = fold(running, draws[start:end], ratios[start:end])
            return tuple(sum_r - math.log(k) for sum_r in running)

        def body(c: tf.Tensor, *running: tf.Tensor) -> tuple:
            return (c + 1, *fold(running, per_image_draws(q, chunk, keys, start=c * chunk)))

        _, *folded = tf.while_loop(
            lambda c, *_: c < whole,
            body,
            (tf.constant(0, tf.int64), *running),
            parallel_iterations=1,  # one chunk in memory at a time
        )
        running = tuple(folded)
        if rest:
            running = fold(running, per_image_draws(q, rest, keys, start=whole * chunk))
        return tuple(sum_r - math.log(k) for sum_r in running)

    return _cached(vae, ("powers", int(k), chunk, tuple(powers)), sums)


def forget_bound_functions(vae: Any) -> None:
    """Drops a model's traced bound functions (they hold its graph until then)."""
    vae.__dict__.pop(_CACHE, None)
