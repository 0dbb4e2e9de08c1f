"""Every objective agrees with itself on every path it has, at fixed noise.

The fused objectives (plain ops) and the general estimators (TFP distributions,
:mod:`tfpvae.objectives.estimators`) are run on the same draws
:math:`z = \\mu + L\\varepsilon`, eagerly and under ``tf.function(jit_compile=True)``.
"""

from __future__ import annotations

import numpy as np
import pytest

import tfpvae
from tfpvae._backend import tf, tfd, tfk, tfpl
from tfpvae.objectives import FusedELBO, FusedIWAE
from tfpvae.objectives.estimators import elbo_terms, iwae_terms, log_likelihood, log_ratio

S, BATCH, D = 3, 12, 2


def course_vae(exact: bool, posterior: type, objective: str) -> tfpvae.VAE:
    if posterior is tfpl.IndependentNormal:  # the prior of its family, for the exact KL
        prior = tfd.Independent(tfd.Normal(tf.zeros(D), 1.0), reinterpreted_batch_ndims=1)
    else:
        prior = tfd.MultivariateNormalDiag(loc=tf.zeros(D))
    encoder = tfk.Sequential([
        tfk.layers.Flatten(input_shape=(8, 8)),
        tfk.layers.Dense(16, activation="relu"),
        tfk.layers.Dense(posterior.params_size(D)),
        posterior(D),
        tfpl.KLDivergenceAddLoss(prior, use_exact_kl=exact),
    ])  # fmt: skip
    decoder = tfk.Sequential([
        tfk.layers.Dense(16, activation="relu", input_shape=(D,)),
        tfk.layers.Dense(64),
        tfpl.IndependentBernoulli((8, 8)),
    ])  # fmt: skip
    return tfpvae.VAE(encoder, decoder, objective=objective, n_samples=S, iwae_k=S, kl_weight=0.7)


def general_terms(vae: tfpvae.VAE, x: tf.Tensor, eps: tf.Tensor, objective: str):
    """The estimators through TFP's distributions at z = loc + L eps."""
    parts = vae.parts
    q = parts.posterior(x)
    z = q.bijector.forward(eps) if hasattr(q, "bijector") else q.mean() + q.stddev() * eps
    log_lik = log_likelihood(x, z, parts.decode, parts.likelihood)
    prior = parts.prior.distribution()
    if objective == "elbo":
        return elbo_terms(log_lik, q, prior, z, parts.kl, parts.kl_weight)
    return iwae_terms(log_lik, log_ratio(q, prior, z), parts.kl_weight)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
@pytest.mark.parametrize("objective", ["elbo", "iwae"])
@pytest.mark.parametrize("exact", [True, False], ids=["exact", "sampled"])
@pytest.mark.parametrize("posterior", [tfpl.MultivariateNormalTriL, tfpl.IndependentNormal],
                         ids=["tril", "diag"])  # fmt: skip
def test_fused_and_general_paths_agree(digits, compiled, objective, exact, posterior) -> None:
    vae = course_vae(exact, posterior, objective)
    fused = vae.objective
    assert isinstance(fused, FusedELBO if objective == "elbo" else FusedIWAE)
    x = tf.constant(tfpvae.prepare(digits[0][0][:BATCH], likelihood="bernoulli"))
    eps = tf.constant(np.random.default_rng(3).standard_normal((S, BATCH, D)), tf.float32)
    noise = (eps, None) if objective == "elbo" else eps

    def run_fused(x, eps):
        return fused.terms(x, (eps, None) if objective == "elbo" else eps)

    def run_general(x, eps):
        return general_terms(vae, x, eps, objective)

    if compiled:
        run_fused = tf.function(run_fused, jit_compile=True)
        run_general = tf.function(run_general, jit_compile=True)
    a, b = run_fused(x, eps), run_general(x, eps)
    eager = fused.terms(x, noise)
    for name in ("loss", "rate", "distortion"):
        got, want = getattr(a, name).numpy(), getattr(b, name).numpy()
        assert got.shape == (BATCH,)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-4, err_msg=name)
        np.testing.assert_allclose(got, getattr(eager, name).numpy(), rtol=1e-5, atol=2e-4)
    # The draws matter: other noise gives other values, so agreement is not by accident.
    other = run_general(x, eps + 1.0)
    assert np.abs(other.distortion.numpy() - b.distortion.numpy()).max() > 1e-3
