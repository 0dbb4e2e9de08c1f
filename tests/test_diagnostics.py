from __future__ import annotations

import numpy as np
import pytest

import tfpvae
from tfpvae._backend import tf, tfd
from tfpvae.evaluation import diagnostics
from tfpvae.testing import assert_within_se

BATCH = 8


@pytest.fixture
def posterior():
    loc = np.linspace(-1.5, 1.5, BATCH * 2, dtype="float32").reshape(BATCH, 2)
    q = tfd.MultivariateNormalDiag(loc=loc, scale_diag=tf.fill([BATCH, 2], 0.6))
    return q, tfd.MultivariateNormalDiag(loc=tf.zeros(2))


def test_raw_tfp_penalties_show_the_batch_reductions(posterior) -> None:
    q, prior = posterior
    out = diagnostics.raw_tfp_kl_penalties(q, prior)
    kl = out["per_example_kl"]
    assert out["batch_size"] == BATCH
    assert out["add_loss exact"] == pytest.approx(BATCH * kl, rel=1e-5)  # the batch sum
    assert out["regularizer exact"] == pytest.approx(kl, rel=1e-5)  # sum / B
    # Sampled, one test point each: add_loss adds the mean, the regulariser sum / B.
    assert out["add_loss sampled"] == pytest.approx(out["regularizer sampled"], rel=1e-5)


def test_sampled_kl_spread_shrinks_like_one_over_root_s(posterior) -> None:
    q, prior = posterior
    exact = float(tf.reduce_mean(tfd.kl_divergence(q, prior)))
    spread = diagnostics.sampled_kl_spread(q, prior, (1, 100), repeats=400, seed=1)
    for estimates in spread.values():
        assert_within_se(estimates, exact)
    ratio = spread[1].std() / spread[100].std()
    assert 7.0 < ratio < 13.0  # √100 = 10, with the sampling error of two SDs at n = 400


def test_latent_gap_points_are_far_from_codes() -> None:
    rng = np.random.default_rng(0)
    codes = np.concatenate([rng.normal(-3, 0.3, (200, 2)), rng.normal(3, 0.3, (200, 2))])
    gaps = diagnostics.latent_gap_points(codes, n=4)
    assert gaps.shape == (4, 2)
    nearest = np.sqrt(((gaps[:, None] - codes[None]) ** 2).sum(-1)).min(axis=1)
    typical = np.sqrt(((codes[:50, None] - codes[None, 50:]) ** 2).sum(-1)).min(axis=1)
    assert nearest.min() > 5 * np.median(typical)


def test_decode_points_and_bound_curve(digits_beta) -> None:
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,), latent_dim=3)
    images = diagnostics.decode_points(vae, np.zeros((5, 2), "float32"))
    assert images.shape == (5, 8, 8)
    curve = diagnostics.bound_curve(vae, digits_beta[1][:40], ks=(1, 5))
    assert curve["k"] == [1, 5] and len(curve["iwae"]) == 2
    assert curve["iwae"][1] > curve["iwae"][0] - 4 * curve["iwae_se"][0]
    summary = diagnostics.held_out_summary(vae, digits_beta[1][:40], k=3)
    assert {"elbo", "rate", "distortion", "iwae"} <= set(summary)
