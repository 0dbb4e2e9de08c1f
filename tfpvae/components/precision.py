"""Numeric precision of the network trunks: float32, or mixed float16/bfloat16.

Under a mixed policy the Dense and convolution layers of the trunks compute in
16 bits and keep float32 variables. The layers that produce distribution
parameters, the distributions themselves and the loss stay in float32, so
log-probabilities and KLs are never computed in half precision. ``mixed_float16``
also wraps the optimizer in Keras's dynamic loss scaling, which skips steps
whose scaled gradients overflow and lowers the scale.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from tfpvae._backend import tf, tfk
from tfpvae.registry import Registry


@dataclass(frozen=True)
class Precision:
    """A Keras dtype policy for the trunks and whether the loss needs scaling.

    Attributes:
        policy: A ``tf_keras.mixed_precision.Policy`` name.
        loss_scaling: Wrap the optimizer in ``LossScaleOptimizer``.
    """

    policy: str
    loss_scaling: bool = False

    @contextlib.contextmanager
    def trunk_policy(self) -> Iterator[None]:
        """Layers created inside compute under :attr:`policy`."""
        previous = tfk.mixed_precision.global_policy()
        tfk.mixed_precision.set_global_policy(self.policy)
        try:
            yield
        finally:
            tfk.mixed_precision.set_global_policy(previous)

    def optimizer(self, optimizer: tfk.optimizers.Optimizer) -> tfk.optimizers.Optimizer:
        """``optimizer``, wrapped for loss scaling where the policy needs it."""
        if self.loss_scaling:
            return tfk.mixed_precision.LossScaleOptimizer(optimizer)
        return optimizer

    def scale_loss(self, optimizer: tfk.optimizers.Optimizer, loss: tf.Tensor) -> tf.Tensor:
        return optimizer.get_scaled_loss(loss) if self.loss_scaling else loss

    def unscale(self, optimizer: tfk.optimizers.Optimizer, grads: list) -> list:
        return optimizer.get_unscaled_gradients(grads) if self.loss_scaling else grads


#: Precision registry.
PRECISIONS: Registry[Precision] = Registry("precision")
PRECISIONS.register("float32", Precision("float32"))
PRECISIONS.register("mixed_float16", Precision("mixed_float16", loss_scaling=True))
PRECISIONS.register("mixed_bfloat16", Precision("mixed_bfloat16"))


def to_float32(x: tf.Tensor) -> tf.Tensor:
    """Casts a 16-bit trunk output to float32 (applied only under a mixed policy)."""
    return tfk.layers.Activation("linear", dtype="float32", name=None)(x)
