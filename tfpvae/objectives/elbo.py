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

from tfpvae._backend import tf
from tfpvae.components.posteriors import POSTERIORS
from tfpvae.components.priors import PRIORS
from tfpvae.objectives.base import OBJECTIVES, Objective, Terms
from tfpvae.objectives.fused import FUSED_GAUSSIANS, FusedELBO, tile_images


class ELBO(Objective):
    """The S-sample ELBO through the TFP distributions of the encoder and decoder.

    Draws come from the posterior family (``Posterior.draws``): TFP's own
    sampling, ``q.sample(S)``, for the Gaussians and flows (``terms`` also takes a
    stateless seed ``[2]`` as ``noise``, which fixes the draws), and Gumbel-softmax
    draws at the model's temperature for ``"relaxed_categorical"``. The sampled
    KL's test points are these draws (with ``kl_samples = 1``), as in TFP's KL layer.

    Args:
        vae: The :class:`~tfpvae.VAE` it is bound to.
        n_samples: S, draws of z per image.
    """

    def __init__(self, vae: Any, n_samples: int = 1) -> None:
        self.vae = vae
        self.n_samples = int(n_samples)
        self.posterior = POSTERIORS.get(vae.config.posterior)

    def draw_noise(self, generator: tf.random.Generator, batch: tf.Tensor) -> None:
        return None

    def terms(self, x: tf.Tensor, noise: Any = None, training: bool = False) -> Terms:
        vae, samples = self.vae, self.n_samples
        q = vae.encoder(x, training=training)
        z = self.posterior.draws(q, samples, vae.temperature, seed=noise)  # [S, batch, d]
        likelihood = vae.decoder(tf.reshape(z, [-1, z.shape[-1]]), training=training)
        log_lik = -vae.likelihood.negative_log_prob(tile_images(x, samples), likelihood)
        distortion = -tf.reduce_mean(tf.reshape(log_lik, [samples, -1]), axis=0)  # [batch]
        kl_samples = vae.kl_term.kl_samples
        test_points = z if kl_samples == 1 else q.sample(kl_samples)  # [S or K, batch, d]
        rate = vae.kl_term.per_example(q, test_points)
        loss = distortion + tf.cast(vae.kl_weight, rate.dtype) * rate
        return Terms(loss, rate, distortion)


def make_elbo(vae: Any) -> Objective:
    """The ``"elbo"`` objective of ``vae``: fused where it applies, else :class:`ELBO`.

    The fused path covers the Gaussian posteriors against N(0, I) only: not a
    user's prior, nor a learned one.
    """
    config = vae.config
    standard_prior = not vae.custom_prior and not PRIORS.get(config.prior).learned
    fused = config.fast_path and standard_prior and config.posterior in FUSED_GAUSSIANS
    return (FusedELBO if fused else ELBO)(vae, config.n_samples)


OBJECTIVES.register("elbo", make_elbo)
