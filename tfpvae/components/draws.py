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


def per_image_draws(q: tfd.Distribution, n: int, keys: tf.Tensor) -> tf.Tensor:
    """``n`` draws from each image's posterior, image ``i`` from stateless seed ``keys[i]``.

    Args:
        q: The posterior, batch shape ``[batch]``.
        n: Draws per image.
        keys: ``[batch, 2]`` int64 seeds, one per image.

    Returns:
        ``[n, batch, *event_shape]``; for the Gaussian families row ``i`` depends
        only on ``keys[i]`` and on image ``i``'s posterior, and so for any family
        whose batch TFP can slice. A flow conditioned on the encoder cannot be
        sliced: it is drawn for the whole batch from the first image's key
        (reproducible, but not independent of the batching).
    """
    own = getattr(getattr(q, "tensor_distribution", q), "per_image_sample", None)
    if own is not None:  # a distribution that draws itself per image (two stochastic layers)
        return own(n, keys)
    event = list(q.event_shape)
    transform = noise_transform(q)
    if transform is None:  # any other family: one seeded draw per image where q slices
        sliceable = getattr(q, "tensor_distribution", q)
        try:
            draws = [sliceable[i].sample(n, seed=keys[i]) for i in range(int(keys.shape[0]))]
        except (NotImplementedError, TypeError, ValueError):  # e.g. a flow's conditional bijector
            return q.sample(n, seed=keys[0])
        return tf.stack(draws, axis=1)
    eps = standard_normals(keys, tf.constant([n, *event], tf.int32))  # [batch, n, ...]
    return transform(tf.transpose(eps, [1, 0, *range(2, 2 + len(event))]))  # [n, batch, ...]


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
