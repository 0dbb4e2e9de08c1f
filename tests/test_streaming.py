"""The traced held-out bounds: the same numbers as an eager computation, memory O(chunk)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import logsumexp

import tfpvae
from tfpvae._backend import tf, tfd
from tfpvae.components.draws import image_keys, per_image_draws
from tfpvae.evaluation import streaming
from tfpvae.evaluation.bounds import elbo, iwae_bound


@pytest.mark.parametrize("d", [2, 3])
def test_a_window_of_draws_is_the_slice_of_all_of_them(d) -> None:
    keys = image_keys(3, 5, 4, stream=1)
    q = tfd.MultivariateNormalDiag(tf.zeros([4, d]), tf.ones([4, d]))  # z = eps
    # Independent reference: one stateless draw of all 37 per image, as TF defines it.
    reference = np.stack([tf.random.stateless_normal([37, d], seed=key).numpy() for key in keys], 1)
    for start, n in ((0, 37), (5, 10), (7, 30), (1, 1), (36, 1)):
        window = per_image_draws(q, n, keys, start=start).numpy()
        np.testing.assert_array_equal(window, reference[start : start + n])


def _eager_bound(vae, x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The bound from TFP's distributions at each image's own stateless draws, then NumPy."""
    out = []
    for i, image in enumerate(x):
        xi = tf.constant(image[None])
        q = vae.posterior(xi)
        key = image_keys(seed, i, 1, stream=1)[0]
        eps = tf.random.stateless_normal([k, vae.latent_dim], seed=key).numpy()
        z = (q.mean().numpy() + q.stddev().numpy() * eps)[:, None, :]  # [k, 1, d]
        log_p = vae.parts.decode(tf.reshape(z, [k, -1])).log_prob(np.repeat(image[None], k, 0))
        log_w = log_p.numpy() + vae.prior.log_prob(z).numpy()[:, 0] - q.log_prob(z).numpy()[:, 0]
        out.append(logsumexp(log_w) - math.log(k))
    return np.array(out)


def test_iwae_bound_equals_the_eager_computation_at_any_batching(digits_beta) -> None:
    x = digits_beta[1][:9]
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,), posterior="diag")
    expected = _eager_bound(vae, x, k=23, seed=5)
    for batch_size, chunk_size in ((4, 5), (9, 23), (9, 100), (2, 1)):
        got = iwae_bound(vae, x, k=23, batch_size=batch_size, chunk_size=chunk_size, seed=5)
        np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_the_bound_draws_and_decodes_one_chunk_at_a_time(digits_beta, monkeypatch) -> None:
    """At k = 1000 in chunks of 10 no draw or decoder call is larger than a chunk."""
    drawn, decoded = [], []
    draws, decode = streaming.per_image_draws, streaming.decoded_log_likelihood

    def recording_draws(q, n, keys, start=0):
        drawn.append(n)
        return draws(q, n, keys, start=start)

    def recording_decode(parts, x, z):
        decoded.append(z.shape[0])
        return decode(parts, x, z)

    monkeypatch.setattr(streaming, "per_image_draws", recording_draws)
    monkeypatch.setattr(streaming, "decoded_log_likelihood", recording_decode)
    x = digits_beta[1][:6]
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,))
    bound = iwae_bound(vae, x, k=1000, batch_size=6, chunk_size=10, seed=0)
    assert np.all(np.isfinite(bound))
    assert drawn and max(drawn) == 10 and decoded and max(decoded) == 10  # traced once: O(chunk)


def test_elbo_terms_equal_the_eager_computation(digits_beta) -> None:
    x = digits_beta[1][:5]
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,), use_exact_kl=True)
    terms = elbo(vae, x, n_samples=3, batch_size=2, seed=4)
    q = vae.posterior(tf.constant(x))
    np.testing.assert_allclose(terms.rate, q.kl_divergence(vae.prior).numpy(), rtol=1e-5)
    keys = image_keys(4, 0, 5, stream=0)
    z = per_image_draws(q, 3, keys)  # [3, 5, d], checked against TF's draws above
    log_p = [vae.parts.decode(z[s]).log_prob(x).numpy() for s in range(3)]
    np.testing.assert_allclose(terms.distortion, -np.mean(log_p, axis=0), rtol=1e-5)
