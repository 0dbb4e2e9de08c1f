r"""Gradient estimators of an objective: the same loss value, another gradient.

A VAE's objective fixes the *value* of its per-image loss; the estimator fixes the
gradient that training follows. Every estimator here is unbiased for the gradient
of the same bound, chosen by name from :data:`GRADIENTS`:

* ``"standard"`` (``None``): the reparameterised gradient of the loss as written;
* ``"stl"``, *sticking the landing* (Roeder et al., 2017), for ``"elbo"``: the
  score term :math:`\nabla_\phi \log q_\phi(z)|_{z}` (zero in expectation) is
  dropped, so only the path through :math:`z = g_\phi(\varepsilon)` remains; its
  variance vanishes when q is the exact posterior;
* ``"dreg"``, the doubly reparameterised estimator (Tucker et al., 2019), for
  ``"iwae"`` and ``"renyi"``: the encoder's score term is rewritten through the
  reparameterisation once more, which weighs each draw's path gradient by the
  *squared* normalised weight; the decoder (and a learned prior) keep the
  ordinary gradient. Its derivation for the Rényi bound is in
  :mod:`tfpvae.objectives.renyi`.

Two tools make these out of one forward pass, for any posterior:

* :func:`path_log_prob`: :math:`\log q(z|x)` with the value of ``q.log_prob(z)``
  whose gradient flows only through z (``log q(z) - log q(sg z)`` has exactly the
  score term's gradient, removed; a flow evaluates the second at its inverse);
* :class:`ScaledPath`: z unchanged forward, whose incoming gradient is multiplied
  by a per-draw scale that is set *after* the forward pass (DReG's weights depend
  on the decoder's output), one per ``terms`` call so replicas never share it.

:func:`with_value` then gives a surrogate the value of the true loss.
"""

from __future__ import annotations

from dataclasses import dataclass

from tfpvae._backend import tf, tfd
from tfpvae.components.planar_radial import PlanarPosterior
from tfpvae.registry import Registry


@dataclass(frozen=True)
class GradientEstimator:
    """A gradient estimator and the objectives it applies to.

    Attributes:
        name: Its registry name.
        objectives: Names of the built-in objectives it applies to, or ``None`` for all.
        description: One line for messages and docs.
    """

    name: str
    objectives: tuple[str, ...] | None
    description: str


#: Gradient estimators by name; ``None`` is ``"standard"``.
GRADIENTS: Registry[GradientEstimator] = Registry("gradient")
GRADIENTS.register(
    "standard", GradientEstimator("standard", None, "the reparameterised gradient of the loss")
)
GRADIENTS.register(
    "dreg",
    GradientEstimator("dreg", ("iwae", "renyi"), "doubly reparameterised (Tucker et al., 2019)"),
)
GRADIENTS.register(
    "stl", GradientEstimator("stl", ("elbo",), "sticking the landing (Roeder et al., 2017)")
)


def gradient_name(gradient: str | None) -> str:
    """The registered name of ``gradient`` (``None`` is ``"standard"``)."""
    name = "standard" if gradient is None else gradient
    if not isinstance(name, str):
        raise ValueError(
            f"gradient must be one of {', '.join(GRADIENTS.names())} or None, got {gradient!r}"
        )
    return GRADIENTS.get(name).name


def check_gradient(objective: str, gradient: str | None) -> str:
    """``gradient``'s name, after checking that it applies to the built-in ``objective``.

    Raises:
        ValueError: Naming the objectives the estimator applies to.
    """
    name = gradient_name(gradient)
    applies = GRADIENTS.get(name).objectives
    if applies is not None and objective not in applies:
        fits = [n for n in GRADIENTS.names() if objective in (GRADIENTS.get(n).objectives or ())]
        suggestion = f"gradient={fits[0]!r} or the default" if fits else "the default gradient"
        raise ValueError(
            f"gradient={name!r} applies to objective {' or '.join(map(repr, applies))}, not "
            f"{objective!r}; use {suggestion} (None, 'standard') with objective={objective!r}"
        )
    return name


def check_path_gradient(gradient: str, posterior_layer: object) -> None:
    """Raises ``ValueError`` when ``gradient`` needs :func:`path_log_prob` and the posterior
    layer cannot give it exactly.

    A planar flow's inverse is a bisection (:class:`~tfpvae.components.bijectors.Planar`):
    its value is right, its gradient is not the implicit one, so log q at a point that
    is not q's own draw would carry a wrong gradient.
    """
    if gradient != "standard" and isinstance(posterior_layer, PlanarPosterior):
        raise ValueError(
            f"gradient={gradient!r} differentiates log q(z|x) through z, which needs the "
            "posterior's inverse with its exact gradient; a planar flow's inverse is a "
            "bisection: use the default gradient, or posterior='radial' or 'iaf'"
        )


def path_log_prob(q: tfd.Distribution, z: tf.Tensor) -> tf.Tensor:
    r""":math:`\log q(z|x)` whose gradient flows only through z, not q's parameters.

    .. math:: \log q(z) \;\to\; \mathrm{sg}(\log q(z)) + \big(d - \mathrm{sg}(d)\big),
        \qquad d = \log q(z) - \log q(\mathrm{sg}(z)),

    whose value is exactly ``q.log_prob(z)`` and whose gradient is
    :math:`\partial_z \log q(z)\,\partial z/\partial\phi`: the parameters'
    direct (score) gradient cancels between the two terms of d. It works for any
    posterior, the user's too; a flow evaluates :math:`\log q(\mathrm{sg}\,z)` by
    its inverse (its own draws' log-density comes from the cached forward pass).

    Args:
        q: The posterior, batch shape ``[batch]``.
        z: Reparameterised draws ``[S, batch, d]`` from q.

    Returns:
        ``[S, batch]``.
    """
    log_q = q.log_prob(z)
    difference = log_q - q.log_prob(tf.stop_gradient(z))
    return tf.stop_gradient(log_q) + (difference - tf.stop_gradient(difference))


def with_value(value: tf.Tensor, surrogate: tf.Tensor) -> tf.Tensor:
    """``value`` exactly, with the gradient of ``surrogate`` (both ``[batch]``)."""
    return tf.stop_gradient(value) + (surrogate - tf.stop_gradient(surrogate))


class ScaledPath:
    """z unchanged forward; the gradient reaching it multiplied by a per-draw scale.

    The scale is given with :meth:`set` after the forward pass, before the
    gradient is taken (the custom gradient reads it then). Make one per ``terms``
    call, so that replicas tracing the same objective never share a scale.

    Example:
        >>> from tfpvae._backend import tf
        >>> from tfpvae.objectives.gradients import ScaledPath
        >>> z = tf.Variable([[[1.0, 2.0]]])  # [k=1, batch=1, d=2]
        >>> path = ScaledPath()
        >>> with tf.GradientTape() as tape:
        ...     y = tf.reduce_sum(path(z) ** 2)
        ...     path.set(tf.constant([[0.5]]))
        >>> tape.gradient(y, z).numpy().tolist()
        [[[1.0, 2.0]]]
    """

    def __init__(self) -> None:
        self._scale: tf.Tensor | None = None

    def set(self, scale: tf.Tensor) -> None:
        """The scale ``[S, batch]`` of the draws' incoming gradient (held constant)."""
        self._scale = tf.stop_gradient(scale)

    def __call__(self, z: tf.Tensor) -> tf.Tensor:
        @tf.custom_gradient
        def scaled(z: tf.Tensor):
            def grad(upstream: tf.Tensor) -> tf.Tensor:
                if self._scale is None:
                    raise RuntimeError("ScaledPath.set was not called before the gradient")
                return upstream * tf.cast(self._scale, upstream.dtype)[..., None]

            return tf.identity(z), grad

        return scaled(z)
