r"""A distribution over stacked latent layers z = (z1, z2), drawn one layer after the other.

The posterior and the prior of two stochastic layers
(:mod:`tfpvae.components.hierarchy`) are each a :class:`StackedLatents` over the one
vector :math:`z = (z_1, z_2)`: a distribution of the layer drawn first and a map
from its value to the distribution of the other, so that

.. math:: \log p(z) = \log p(\text{first}) + \log p(\text{second} \mid \text{first}),

with reparameterised draws, draws keyed per image (:meth:`StackedLatents.per_image_sample`)
and the chain of means (:meth:`StackedLatents.point`) as a deterministic code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tfpvae._backend import tf, tfd, tfp
from tfpvae.components.draws import noise_transform, per_image_draws, standard_normals


class StackedLatents(tfd.Distribution):
    r"""A distribution over :math:`z = (z_1, z_2)`, drawn one layer after the other.

    ``first`` is the distribution of the layer drawn first, ``conditional`` maps
    its value to the distribution of the other; :math:`\log p(z)` is the sum of
    the two. The posterior draws the bottom first (``top_first=False``), the
    prior the top. Draws are reparameterised: the first layer's at ``seed``
    itself (so the bottom of a posterior is drawn as a one-layer posterior would
    be at that seed), the second's at a seed split off it.

    Args:
        first: The first layer's distribution (batch shape ``[batch]`` or ``[]``).
        conditional: value of the first layer → distribution of the other.
        sizes: :math:`(d_1, d_2)`.
        top_first: Whether ``first`` is over :math:`z_2` (the prior).
        name: The distribution's name.
    """

    def __init__(
        self,
        first: tfd.Distribution,
        conditional: Callable[[tf.Tensor], tfd.Distribution],
        sizes: tuple[int, int],
        top_first: bool,
        name: str = "stacked_latents",
    ) -> None:
        parameters = dict(locals())
        self.first, self.conditional = first, conditional
        self.sizes = (int(sizes[0]), int(sizes[1]))
        self.top_first = bool(top_first)
        super().__init__(
            dtype=first.dtype,
            reparameterization_type=tfd.FULLY_REPARAMETERIZED,
            validate_args=False,
            allow_nan_stats=True,
            parameters=parameters,
            name=name,
        )

    def _batch_shape(self) -> tf.TensorShape:
        return self.first.batch_shape

    def _batch_shape_tensor(self) -> tf.Tensor:
        return self.first.batch_shape_tensor()

    def _event_shape(self) -> tf.TensorShape:
        return tf.TensorShape([sum(self.sizes)])

    def _event_shape_tensor(self) -> tf.Tensor:
        return tf.constant([sum(self.sizes)], tf.int32)

    def split(self, z: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``z [..., d1 + d2]`` → (first layer's value, second's)."""
        z1, z2 = z[..., : self.sizes[0]], z[..., self.sizes[0] :]
        return (z2, z1) if self.top_first else (z1, z2)

    def join(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        """(first layer's value, second's) → ``z = (z1, z2)``."""
        return tf.concat([b, a] if self.top_first else [a, b], axis=-1)

    def _sample_n(self, n: int, seed: Any = None) -> tf.Tensor:
        second_seed = None if seed is None else tfp.random.split_seed(seed, 1, salt="second")[0]
        a = self.first.sample(n, seed=seed)  # [n, *batch, first size]
        b = self.conditional(a).sample(seed=second_seed)  # [n, *batch, second size]
        return self.join(a, b)

    def _log_prob(self, z: tf.Tensor) -> tf.Tensor:
        a, b = self.split(z)
        return self.first.log_prob(a) + self.conditional(a).log_prob(b)

    def per_image_sample(self, n: int, keys: tf.Tensor) -> tf.Tensor:
        """``[n, batch, d1 + d2]`` draws, image i's from its key ``keys[i]`` alone.

        The first layer is drawn as :func:`~tfpvae.components.draws.per_image_draws`
        draws it; the second from standard normals at ``keys[i]`` folded in with 1.
        """
        a = per_image_draws(self.first, n, keys)  # [n, batch, first size]
        second = self.conditional(a)
        transform = noise_transform(second)
        folded = tf.map_fn(
            lambda key: tf.random.experimental.stateless_fold_in(key, 1),
            tf.cast(keys, tf.int32),
        )
        size = self.sizes[1] if not self.top_first else self.sizes[0]
        eps = standard_normals(folded, tf.constant([n, size], tf.int32))  # [batch, n, size]
        if transform is None:  # pragma: no cover - the conditionals are Gaussian
            raise ValueError("per-image draws need a Gaussian conditional layer")
        return self.join(a, transform(tf.transpose(eps, [1, 0, 2])))

    def point(self) -> tf.Tensor:
        """The means taken down the chain: ``(z1, z2)`` at the first layer's mean."""
        a = self.first.mean()
        return self.join(a, self.conditional(a).mean())

    def complete(self, top: tf.Tensor) -> tf.Tensor:
        """``z2 [..., d2]`` → ``(E[z1 | z2], z2)`` (for the prior, which draws z2 first)."""
        if not self.top_first:
            raise ValueError("complete() runs top-down: call it on the prior")
        return self.join(top, self.conditional(top).mean())


def stacked(distribution: Any) -> StackedLatents | None:
    """The :class:`StackedLatents` inside ``distribution`` (a layer's output too), or ``None``."""
    inner = getattr(distribution, "tensor_distribution", distribution)
    return inner if isinstance(inner, StackedLatents) else None


def top_code(q: tfd.Distribution) -> tf.Tensor:
    """A two-layer posterior's code, ``[batch, d2]``: E[z2 | z1 = E[z1 | x]]."""
    chain = stacked(q)
    if chain is None:
        raise ValueError(f"expected a two-layer posterior, got {type(q).__name__}")
    return chain.point()[..., chain.sizes[0] :]
