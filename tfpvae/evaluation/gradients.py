r"""The encoder's gradient as a random variable: its draws, variance and signal-to-noise.

Rainforth et al. (2018) showed that the IWAE's encoder gradient has a
signal-to-noise ratio :math:`\mathrm{SNR} = |\mathbb{E}[g]| / \sigma[g]` that
*falls* like :math:`O(1/\sqrt K)` as the number of importance samples K grows,
while the decoder's rises; the doubly reparameterised estimator (``gradient="dreg"``,
Tucker et al., 2019) makes the encoder's rise again. :func:`encoder_gradients`
draws the gradient of an objective's batch-mean loss with respect to the
encoder's weights at independent noise, and :func:`gradient_snr` summarises it
against K (the figure of the notebook on divergences).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tfpvae._backend import tf
from tfpvae.objectives import OBJECTIVES, Objective


def _objective(vae: Any, objective: str, k: int, gradient: str | None, alpha: Any) -> Objective:
    """``objective`` over the model's parts with K = ``k`` (as ``n_samples`` and ``iwae_k``)."""
    options: dict[str, Any] = {"n_samples": int(k), "iwae_k": int(k)}
    if gradient is not None:
        options["gradient"] = gradient
    if alpha is not None:
        options["alpha"] = alpha
    return OBJECTIVES.get(objective)(vae.parts, **options)


def encoder_gradients(
    vae: Any,
    x: Any,
    k: int,
    gradient: str | None = None,
    n_draws: int = 100,
    objective: str = "iwae",
    alpha: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """``n_draws`` independent gradients of the batch-mean loss in the encoder's weights.

    Args:
        vae: A :class:`~tfpvae.VAE`.
        x: A batch of prepared images ``[batch, *image_shape]``.
        k: K, draws per image (``iwae_k`` of ``"iwae"``, ``n_samples`` of the others).
        gradient: The estimator (``None``/``"standard"``, ``"dreg"``, ``"stl"``).
        n_draws: How many gradients, each at fresh noise.
        objective: A name from ``tfpvae.OBJECTIVES``.
        alpha: α of ``"renyi"``.
        seed: Seed of the noise: the same seed gives the same noise to every
            estimator (paired draws).

    Returns:
        ``[n_draws, n_params]`` float64, the encoder's weights flattened in order.
    """
    if n_draws < 2:
        raise ValueError(f"n_draws must be at least 2 (a variance needs two), got {n_draws}")
    made = _objective(vae, objective, k, gradient, alpha)
    variables = vae.parts.encoder.model.trainable_variables
    x = tf.convert_to_tensor(x, tf.float32)
    generator = tf.random.Generator.from_seed(int(seed))

    @tf.function
    def one_draw() -> tf.Tensor:
        noise = made.draw_noise(generator, tf.shape(x)[0])
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(made.terms(x, noise, training=False).loss)
        grads = tape.gradient(loss, variables)
        return tf.concat([tf.reshape(g, [-1]) for g in grads], axis=0)

    return np.stack([one_draw().numpy() for _ in range(int(n_draws))]).astype(np.float64)


def gradient_snr(
    vae: Any,
    x: Any,
    ks: Sequence[int],
    gradient: str | None = None,
    n_draws: int = 100,
    objective: str = "iwae",
    alpha: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    r"""The encoder gradient's signal-to-noise ratio for each K in ``ks``.

    For every encoder weight, :math:`|\bar g| / s_g` over ``n_draws`` gradients
    (:func:`encoder_gradients`), averaged over the weights whose gradient varies.

    Args:
        vae: A :class:`~tfpvae.VAE`.
        x: A batch of prepared images.
        ks: The numbers of draws K.
        gradient: ``None``/``"standard"`` or ``"dreg"`` (``"stl"`` for ``"elbo"``).
        n_draws: Gradients per K.
        objective: ``"iwae"`` (default) or another name of ``tfpvae.OBJECTIVES``.
        alpha: α of ``"renyi"``.
        seed: Seed of the noise.

    Returns:
        ``[len(ks)]`` mean SNRs.

    Example:
        >>> from tfpvae.testing import linear_gaussian_vae
        >>> from tfpvae.evaluation.gradients import gradient_snr
        >>> model = linear_gaussian_vae()
        >>> snr = gradient_snr(model.vae, model.sample(8), [1, 10], gradient="dreg", n_draws=20)
        >>> snr.shape
        (2,)
    """
    out = []
    for k in ks:
        draws = encoder_gradients(vae, x, k, gradient, n_draws, objective, alpha, seed)
        spread = draws.std(axis=0, ddof=1)
        varies = spread > 0
        out.append(float(np.mean(np.abs(draws.mean(axis=0))[varies] / spread[varies])))
    return np.asarray(out)
