r"""A class label y one-hot into both networks: the conditional VAE's part.

A conditional VAE (Sohn et al., 2015) models :math:`p(x|y)` for a class label
:math:`y \in \{0, \dots, C-1\}` with

.. math:: q(z|x, y), \qquad p(z), \qquad p(x|z, y),
    \qquad \log p(x|y) \ge \mathbb{E}_{q(z|x,y)} \log p(x|z,y) - \mathrm{KL}(q(z|x,y)\,\|\,p(z)).

Its encoder and decoder are Keras graph models with two inputs, ``[images,
one_hot]`` and ``[z, one_hot]``. :class:`~tfpvae.VAE` finds them by that shape
(:func:`conditioning_of`) and keeps a :class:`Conditioning` in its parts. For a
batch, the labels are *bound* into the networks (:class:`BoundInputs`): the bound
network takes its first input alone, and fills the second with the batch's one-hot
rows, repeated for the ``n × batch`` rows of stacked draws
(:func:`~tfpvae.objectives.estimators.tile_images`' sample-major order). So an
objective calls ``posterior(x)`` and ``decode(z)`` as for any model and never sees
the labels.

Labels are class ids (any integer dtype, ``[batch]`` or ``[batch, 1]``) or one-hot
rows ``[batch, C]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tfpvae._backend import tf


def repeat_rows(one_hot: tf.Tensor, rows: tf.Tensor | int) -> tf.Tensor:
    """The ``[batch, C]`` rows stacked ``rows // batch`` times (sample-major), ``[rows, C]``."""
    copies = tf.math.floordiv(rows, tf.shape(one_hot)[0])
    return tf.tile(one_hot, tf.stack([copies, 1]))


class BoundInputs:
    """A two-input Keras network with its second input, the one-hot labels, filled in.

    Called like the one-input network of an unconditional model:
    ``bound(inputs, training=...)`` is ``network([inputs, one_hot], training=...)``
    with ``one_hot`` repeated to the rows of ``inputs``.

    Args:
        network: The Keras model taking ``[inputs, one_hot]``.
        one_hot: ``[batch, C]`` float32 rows.
    """

    def __init__(self, network: Any, one_hot: tf.Tensor) -> None:
        self.network, self.one_hot = network, one_hot

    def __call__(self, inputs: tf.Tensor, training: bool | None = None) -> Any:
        condition = repeat_rows(self.one_hot, tf.shape(inputs)[0])
        return self.network([inputs, condition], training=training)

    @property
    def losses(self) -> list[tf.Tensor]:
        """The network's own losses (regularisers, ``add_loss``) of its latest call."""
        return self.network.losses


@dataclass(frozen=True)
class Conditioning:
    """The label y of a conditional VAE: C classes, one-hot into both networks.

    Attributes:
        num_classes: C, the classes of y.
    """

    num_classes: int

    def one_hot(self, labels: Any) -> tf.Tensor:
        """``[batch, C]`` float32 one-hot rows from class ids ``[batch]``/``[batch, 1]``
        or from one-hot rows ``[batch, C]`` (in graphs; no check of the values)."""
        labels = tf.convert_to_tensor(labels)
        if labels.shape.rank == 2 and labels.shape[-1] == self.num_classes != 1:
            return tf.cast(labels, tf.float32)
        ids = tf.reshape(tf.cast(labels, tf.int32), [-1])
        return tf.one_hot(ids, self.num_classes, dtype=tf.float32)

    def check(self, labels: Any, n: int | None = None, what: str = "labels") -> np.ndarray:
        """In-memory labels as int32 class ids ``[n]``, refusing anything else with a message.

        Args:
            labels: Class ids ``[n]`` or ``[n, 1]`` (integers 0..C−1, in any numeric
                dtype) or one-hot rows ``[n, C]``.
            n: The number of images they label, or ``None``.
            what: Name of the input, for messages.

        Raises:
            ValueError: On missing labels, a wrong length, ids out of 0..C−1, or
                rows that are not one-hot.
        """
        c = self.num_classes
        if labels is None:
            raise ValueError(self.missing(what))
        values = np.asarray(labels)
        if values.ndim == 2 and values.shape[1] == c != 1:
            if not (np.isin(values, (0, 1)).all() and (values.sum(axis=1) == 1).all()):
                raise ValueError(
                    f"{what} of shape {values.shape} must be one-hot rows (a single 1 per row); "
                    f"or pass class ids 0..{c - 1}"
                )
            values = values.argmax(axis=1)
        elif values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.number):
            raise ValueError(
                f"{what} must be class ids of shape (n,) or one-hot rows of shape (n, {c}); "
                f"got shape {values.shape} and dtype {values.dtype}"
            )
        if n is not None and len(values) != n:
            raise ValueError(
                f"{what} must hold one label per image: {n} images, {len(values)} labels"
            )
        if values.size and (
            not np.all(np.isfinite(values))
            or np.any(values % 1)
            or values.min() < 0
            or values.max() >= c
        ):
            bad = values[(values < 0) | (values >= c) | (values % 1 != 0)]
            raise ValueError(
                f"{what} must be class ids 0..{c - 1} (num_classes={c}); got {bad[:3].tolist()}; "
                "check the labels, or build the model with the dataset's number of classes"
            )
        return values.astype(np.int32)

    def checked_in_graph(self, labels: tf.Tensor) -> tf.Tensor:
        """``labels`` with run-time checks (for ``tf.data`` pipelines): ids in 0..C−1 or one-hot."""
        c = self.num_classes
        labels = tf.convert_to_tensor(labels)
        message = (
            f"labels must be class ids 0..{c - 1} (num_classes={c}) or one-hot rows of {c}; "
            "check the dataset's labels"
        )
        if labels.shape.rank == 2 and labels.shape[-1] == c != 1:
            values = tf.cast(labels, tf.float32)
            ok = tf.reduce_all(
                (tf.equal(values, 0.0) | tf.equal(values, 1.0))
                & tf.equal(tf.reduce_sum(values, axis=-1, keepdims=True), 1.0)
            )
        else:
            values = tf.cast(labels, tf.float64)
            ok = tf.reduce_all((values >= 0) & (values < c) & tf.equal(values, tf.round(values)))
        with tf.control_dependencies([tf.debugging.Assert(ok, [message])]):
            return tf.identity(labels)

    def missing(self, what: str = "labels") -> str:
        """The message for a conditional model given no labels: what to pass instead."""
        c = self.num_classes
        return (
            f"this VAE is conditional (num_classes={c}) and needs {what}: class ids 0..{c - 1}, "
            "one per image; pass vae.fit((images, labels)) or a tf.data of (images, labels), "
            "and labels=... to sample, encode, decode and the bounds"
        )


def not_conditional(what: str = "labels") -> str:
    """The message for labels given to a model that has no label input."""
    return (
        f"this VAE is not conditional, so it takes no {what}; build one with num_classes=C "
        "(build_vae(..., num_classes=10), --conditional), or drop the labels"
    )


def conditioning_of(network: Any, what: str) -> Conditioning | None:
    """The :class:`Conditioning` of a two-input graph network ``[inputs, one_hot]``, else ``None``.

    Raises:
        ValueError: If the network has more than two inputs, or a second input that
            is not a vector of at least two classes.
    """
    inputs = getattr(network, "inputs", None)
    if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
        return None
    if len(inputs) > 2:
        raise ValueError(
            f"the {what} has {len(inputs)} inputs; a conditional {what} takes two: "
            f"[{'images' if what == 'encoder' else 'z'}, one_hot_labels]"
        )
    shape = inputs[1].shape
    if shape.rank != 2 or shape[-1] is None or int(shape[-1]) < 2:
        raise ValueError(
            f"the {what}'s second input must be the one-hot labels, shape (None, C) with C >= 2; "
            f"got {tuple(shape)}"
        )
    return Conditioning(int(shape[-1]))
