r"""The ELBO with S Monte Carlo draws per image: the ``"elbo"`` objective.

.. math::

    -\widehat{\mathrm{ELBO}}(x) = -\frac1S\sum_{s=1}^S \log p(x|z_s)
        + \beta\,\widehat{\mathrm{KL}}(q(z|x)\,\|\,p(z)),
    \qquad z_s \sim q(z|x).

The KL is the closed form when ``use_exact_kl`` is set, otherwise the Monte Carlo
estimate at the S draws (or at ``kl_samples`` test points of its own when
``kl_samples > 1``), computed by the model's
:class:`~tfpvae.components.kl.KLTerm`, the estimator its KL layer uses.

:class:`ELBO` works with any posterior, prior and likelihood, through the TFP
distributions the encoder and decoder return. For a Gaussian posterior against
the default N(0, I) prior, :func:`make_elbo` returns the fused implementation of
:mod:`tfpvae.objectives.fused` instead: the same objective in plain ops.
"""

from __future__ import annotations

from typing import Any

from tfpvae._backend import tf, tfp
from tfpvae.components.posteriors import POSTERIORS
from tfpvae.objectives.base import OBJECTIVES, Objective, SeededObjective, Terms
from tfpvae.objectives.fused import FusedELBO, fused_applies, tile_images


class ELBO(SeededObjective):
    """The S-sample ELBO through the TFP distributions of the encoder and decoder.

    Draws come from the posterior family (``Posterior.draws``): ``q.sample(S)`` for
    the Gaussians and flows, Gumbel-softmax draws at the model's temperature for
    ``"relaxed_categorical"``, all at a stateless seed (``noise``) drawn from the
    model's checkpointed generator, so a resumed run sees the draws an unbroken
    one would. The sampled KL's test points are these draws (``kl_samples = 1``) or
    ``kl_samples`` seeded draws of their own.

    Args:
        vae: The :class:`~tfpvae.VAE` it is bound to.
        n_samples: S, draws of z per image.
    """

    def __init__(self, vae: Any, n_samples: int = 1) -> None:
        self.vae = vae
        self.n_samples = int(n_samples)
        self.posterior = POSTERIORS.get(vae.config.posterior)

    def terms(self, x: tf.Tensor, noise: Any = None, training: bool = False) -> Terms:
        """Per-image terms; ``noise`` is a stateless seed ``[2]`` (``None`` draws one)."""
        vae, samples = self.vae, self.n_samples
        noise = self.seed_of(x, noise)
        q = vae.encoder(x, training=training)
        z = self.posterior.draws(q, samples, vae.temperature, seed=noise)  # [S, batch, d]
        likelihood = vae.decoder(tf.reshape(z, [-1, z.shape[-1]]), training=training)
        log_lik = -vae.likelihood.negative_log_prob(tile_images(x, samples), likelihood)
        distortion = -tf.reduce_mean(tf.reshape(log_lik, [samples, -1]), axis=0)  # [batch]
        kl_samples = vae.kl_term.kl_samples
        own_points = kl_samples > 1 and not vae.kl_term.use_exact_kl
        if own_points:  # test points of their own, from a seed derived from the draws'
            test_seed = tfp.random.split_seed(noise, n=1, salt="kl_test_points")[0]
            test_points = q.sample(kl_samples, seed=test_seed)  # [K, batch, d]
        else:
            test_points = z
        rate = vae.kl_term.per_example(q, test_points)
        loss = distortion + tf.cast(vae.kl_weight, rate.dtype) * rate
        return Terms(loss, rate, distortion)


def make_elbo(vae: Any) -> Objective:
    """The ``"elbo"`` objective of ``vae``: fused where it applies, else :class:`ELBO`.

    The fused path covers the Gaussian posteriors against N(0, I) only
    (:func:`~tfpvae.objectives.fused.fused_applies`).
    """
    return (FusedELBO if fused_applies(vae) else ELBO)(vae, vae.config.n_samples)


OBJECTIVES.register("elbo", make_elbo)
