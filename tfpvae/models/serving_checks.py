"""The checks every serving signature makes of its inputs, at serve time.

A SavedModel's signature takes tensors of any shape its client sends (a
``[2, 784]`` batch passes a ``(-1, 28, 28)`` signature), and values it was never
trained on (raw 0–255 pixels give an ELBO of −3.7e6 without a word). Each check
here is a ``tf.debugging.Assert`` inside the ``tf.function``, so it runs in the
served graph, without tfpvae, and a bad request fails with an
``InvalidArgumentError`` whose message says what the signature expects, e.g.::

    encode: images must be float32 [batch, 28, 28] in (0, 1), prepared with
    tfpvae.prepare(..., likelihood='beta'); got shape [2 784] ...

Each function returns its input with the check as a control dependency.

Example:
    >>> from tfpvae.components.likelihoods import get_likelihood
    >>> from tfpvae.models.serving_checks import expects_images
    >>> expects_images("elbo", (28, 28), get_likelihood("beta"))
    "elbo: images must be float32 [batch, 28, 28] in (0, 1), prepared with tfpvae.prepare(..., likelihood='beta')"
"""  # noqa: E501

from __future__ import annotations

import math

from tfpvae._backend import tf
from tfpvae.components.likelihoods import Likelihood


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(["batch", *(str(d) for d in shape)]) + "]"


def expects_images(
    signature: str, image_shape: tuple[int, ...], likelihood: Likelihood | None
) -> str:
    """What ``signature`` expects of its ``images``, in words (the error message)."""
    head = f"{signature}: images must be float32 {_shape_text(image_shape)}"
    if likelihood is None:  # a user's decoder: its support is not known
        return f"{head} of finite values, as the model was trained on"
    support = likelihood.support
    values = "finite real values" if math.isinf(support.low) else support.describe()
    return f"{head} in {values}, prepared with tfpvae.prepare(..., likelihood={likelihood.name!r})"


def _has_shape(x: tf.Tensor, shape: tuple[int, ...]) -> tf.Tensor:
    """Whether ``x`` is ``[batch, *shape]``, for any runtime shape of ``x``."""
    rank = len(shape) + 1
    actual = tf.shape(x)
    padded = tf.concat([actual, tf.zeros([rank], tf.int32)], axis=0)[1:rank]
    return tf.logical_and(
        tf.equal(tf.size(actual), rank), tf.reduce_all(tf.equal(padded, list(shape)))
    )


def _in_support(x: tf.Tensor, likelihood: Likelihood | None) -> tf.Tensor:
    finite = tf.reduce_all(tf.math.is_finite(x))
    if likelihood is None or math.isinf(likelihood.support.low):
        return finite
    support = likelihood.support
    if support.binary:
        return tf.reduce_all((x >= 0.0) & (x <= 1.0))
    above = x > support.low if support.open else x >= support.low
    below = x < support.high if support.open else x <= support.high
    inside = tf.reduce_all(above & below)
    if support.integer:
        inside = tf.logical_and(inside, tf.reduce_all(tf.equal(x, tf.round(x))))
    return tf.logical_and(finite, inside)


def checked_images(
    images: tf.Tensor,
    signature: str,
    image_shape: tuple[int, ...],
    likelihood: Likelihood | None,
) -> tf.Tensor:
    """``images``, after checking their shape and that they lie in the likelihood's support."""
    message = expects_images(signature, image_shape, likelihood)
    shaped = tf.debugging.Assert(
        _has_shape(images, image_shape), [message + "; got shape", tf.shape(images)]
    )
    with tf.control_dependencies([shaped]):
        low, high = tf.reduce_min(images), tf.reduce_max(images)
        valued = tf.debugging.Assert(
            _in_support(images, likelihood), [message + "; got values from", low, "to", high]
        )
    with tf.control_dependencies([valued]):
        return tf.ensure_shape(tf.identity(images), [None, *image_shape])


def checked_codes(z: tf.Tensor, latent_dim: int) -> tf.Tensor:
    """``z``, after checking that it is a finite ``[batch, latent_dim]`` batch."""
    message = f"decode: z must be float32 [batch, {latent_dim}] of finite latent codes"
    shaped = tf.debugging.Assert(
        _has_shape(z, (latent_dim,)), [message + "; got shape", tf.shape(z)]
    )
    with tf.control_dependencies([shaped]):
        finite = tf.debugging.Assert(
            tf.reduce_all(tf.math.is_finite(z)), [message + "; got non-finite values"]
        )
    with tf.control_dependencies([finite]):
        return tf.ensure_shape(tf.identity(z), [None, latent_dim])


def checked_seed(seed: tf.Tensor, signature: str) -> tf.Tensor:
    """``seed``, after checking that it is an int32 ``[2]`` stateless seed."""
    ok = tf.logical_and(tf.equal(tf.size(tf.shape(seed)), 1), tf.equal(tf.size(seed), 2))
    check = tf.debugging.Assert(
        ok, [f"{signature}: seed must be int32 [2], e.g. [0, 0]; got shape", tf.shape(seed)]
    )
    with tf.control_dependencies([check]):
        return tf.ensure_shape(tf.reshape(seed, [2]), [2])


def checked_labels(
    labels: tf.Tensor, signature: str, num_classes: int | None, like: tf.Tensor | None
) -> tf.Tensor:
    """``labels``, after checking that they are class ids ``[batch]`` in ``0..num_classes-1``.

    With ``like`` (the images or codes of the same request) the batch sizes must agree.
    """
    message = (
        f"{signature}: labels must be int32 [batch] class ids in 0..{(num_classes or 1) - 1}"
        + (", one per image" if like is not None else "")
    )
    shape = tf.shape(labels)
    ok = tf.equal(tf.size(shape), 1)
    if like is not None:
        ok = tf.logical_and(ok, tf.equal(tf.size(labels), tf.shape(like)[0]))
    shaped = tf.debugging.Assert(ok, [message + "; got shape", shape])
    with tf.control_dependencies([shaped]):
        inside = tf.reduce_all((labels >= 0) & (labels < (num_classes or 1)))
        valued = tf.debugging.Assert(
            inside, [message + "; got ids from", tf.reduce_min(labels), "to", tf.reduce_max(labels)]
        )
    with tf.control_dependencies([valued]):
        return tf.ensure_shape(tf.identity(labels), [None])


def checked_count(n: tf.Tensor) -> tf.Tensor:
    """``n``, after checking that it is a positive int32 scalar."""
    ok = tf.logical_and(tf.equal(tf.size(tf.shape(n)), 0), tf.reduce_all(n > 0))
    check = tf.debugging.Assert(
        ok, ["sample: n must be a positive int32 scalar (how many images); got", n]
    )
    with tf.control_dependencies([check]):
        return tf.reshape(n, [])


__all__ = [
    "checked_codes",
    "checked_count",
    "checked_images",
    "checked_labels",
    "checked_seed",
    "expects_images",
]
