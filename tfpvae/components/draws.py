"""Posterior draws keyed per image, so that a number never depends on the batching.

Image ``i`` of a data set gets the stateless seed ``(seed, 2 i + stream)``. For
the Gaussian posteriors its draws are standard normal noise from that seed pushed
through its posterior's own affine map; a family TFP can slice per image (the
categorical) is sampled image by image; a flow conditioned on the encoder cannot
be sliced and is drawn for the whole batch from the first key. A distribution
with a ``per_image_sample(n, keys)`` method (two stochastic layers) draws itself.
The held-out
bounds (:mod:`tfpvae.evaluation.bounds`) and the SavedModel's ``elbo`` signature
(:mod:`tfpvae.models.serving`) both draw this way.
"""

from __future__ import annotations

import math

from tensorflow.python.ops import gen_stateless_random_ops_v2 as random_ops_v2

from tfpvae._backend import tf, tfd


def noise_transform(q: tfd.Distribution):
    """``eps → z`` for ``eps ~ N(0, I)`` when q is an affine map of it, else ``None``.

    Covers the MultivariateNormal family (``loc + scale @ eps``, TFP's own
    bijector) and an ``Independent`` Normal (``loc + scale * eps``).
    """
    q = getattr(q, "tensor_distribution", q)
    if isinstance(q, tfd.MultivariateNormalLinearOperator):
        return q.bijector.forward
    inner = getattr(q, "distribution", None)
    if isinstance(q, tfd.Independent) and isinstance(inner, tfd.Normal):
        return lambda eps: inner.loc + inner.scale * eps
    return None


def per_image_draws(q: tfd.Distribution, n: int, keys: tf.Tensor, start: int = 0) -> tf.Tensor:
    """Draws ``start .. start + n`` of each image's posterior, image ``i`` from seed ``keys[i]``.

    Draw ``j`` of an image is the same whatever ``start`` and ``n`` it is asked
    with, so a bound can stream over its importance samples chunk by chunk.

    Args:
        q: The posterior, batch shape ``[batch]``.
        n: Draws per image.
        keys: ``[batch, 2]`` int64 seeds, one per image.
        start: Index of the first draw (a Python int, or a scalar tensor for
            the Gaussian families).

    Returns:
        ``[n, batch, *event_shape]``; for the Gaussian families row ``i`` depends
        only on ``keys[i]`` and on image ``i``'s posterior, and so for any family
        whose batch TFP can slice. A flow conditioned on the encoder cannot be
        sliced: it is drawn for the whole batch from the first image's key
        (reproducible, but not independent of the batching). Only the Gaussian
        families draw just the ``n`` asked for; the others draw ``start + n`` and
        keep the last ``n``.
    """
    own = getattr(getattr(q, "tensor_distribution", q), "per_image_sample", None)
    if own is not None:  # a distribution that draws itself per image (two stochastic layers)
        return own(start + n, keys)[start:]
    event = list(q.event_shape)
    transform = noise_transform(q)
    if transform is None:  # any other family: one seeded draw per image where q slices
        sliceable = getattr(q, "tensor_distribution", q)
        total = start + n
        try:
            draws = [sliceable[i].sample(total, seed=keys[i]) for i in range(int(keys.shape[0]))]
        except (NotImplementedError, TypeError, ValueError):  # e.g. a flow's conditional bijector
            return q.sample(total, seed=keys[0])[start:]
        return tf.stack(draws, axis=1)[start:]
    size = math.prod(event)
    eps = normals_window(keys, start * size, n * size)  # [batch, n * size]
    eps = tf.reshape(eps, [-1, n, *event])  # [batch, n, ...], draw-major as stateless_normal
    return transform(tf.transpose(eps, [1, 0, *range(2, 2 + len(event))]))  # [n, batch, ...]


#: Normals per step of the counter of TensorFlow's Philox generator (four 32-bit words).
PHILOX_OUTPUTS = 4


def _window(key: tf.Tensor, offset: tf.Tensor, count: int) -> tf.Tensor:
    """Entries ``offset .. offset + count`` of ``tf.random.stateless_normal([N], seed=key)``.

    The stateless normals are Philox's outputs in order, four per step of its
    128-bit counter, so entry ``e`` is output ``e % 4`` at counter ``c₀ + e // 4``
    (``c₀`` being the seed's own counter, whose low word is 0): the draw starts at
    the step that holds ``offset`` and drops the outputs before it.
    """
    alg = random_ops_v2.stateless_random_get_alg()
    philox_key, counter = random_ops_v2.stateless_random_get_key_counter(key)
    skip = offset % PHILOX_OUTPUTS
    words = tf.bitcast(counter, tf.int64)  # [low, high]
    moved = tf.bitcast(tf.stack([words[0] + offset // PHILOX_OUTPUTS, words[1]]), tf.uint64)
    normals = random_ops_v2.stateless_random_normal_v2(
        [count + PHILOX_OUTPUTS - 1], key=philox_key, counter=moved, alg=alg
    )
    return normals[skip : skip + count]


@tf.function(reduce_retracing=True, autograph=False)
def normals_window(keys: tf.Tensor, offset: tf.Tensor | int, count: int) -> tf.Tensor:
    """``[batch, count]`` standard normals: entries ``offset ..`` of each key's stream.

    Row ``i`` is entries ``offset .. offset + count`` of
    ``tf.random.stateless_normal([N], seed=keys[i])`` for any ``N`` past them (and so of
    :func:`standard_normals` of any shape, flattened), drawn without the entries before.
    """
    offset = tf.cast(offset, tf.int64)
    return tf.map_fn(lambda key: _window(key, offset, count), keys, fn_output_signature=tf.float32)


@tf.function(reduce_retracing=True)
def standard_normals(keys: tf.Tensor, shape: tf.Tensor) -> tf.Tensor:
    """``[batch, *shape]`` standard normals, row ``i`` from the stateless seed ``keys[i]``."""
    return tf.map_fn(
        lambda key: tf.random.stateless_normal(shape, seed=key),
        keys,
        fn_output_signature=tf.float32,
    )


def image_keys(
    seed: int | tf.Tensor, start: int, batch: int | tf.Tensor, stream: int | tf.Tensor
) -> tf.Tensor:
    """``[batch, 2]`` seeds ``(seed, 2 * index + stream)`` for images ``start .. start + batch``."""
    index = tf.range(start, start + batch, dtype=tf.int32)
    return tf.stack([tf.fill([batch], tf.cast(seed, tf.int32)), 2 * index + stream], axis=1)
