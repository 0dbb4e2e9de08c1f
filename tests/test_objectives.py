"""The objective interface: registry, per-image terms, S draws, and the KL it shares."""

from __future__ import annotations

import numpy as np
import pytest

import tfpvae
from tfpvae._backend import tf
from tfpvae.objectives import ELBO, OBJECTIVES, FusedELBO, Objective, Terms

SMALL = dict(input_shape=(8, 8), hidden_units=(16,), latent_dim=3)


def test_unknown_objective_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown objective 'nope'; choose one of: elbo"):
        tfpvae.VAEConfig(objective="nope")
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        tfpvae.VAEConfig(n_samples=0)


def test_a_registered_objective_drives_both_steps(digits_beta) -> None:
    """The steps use whatever the registry gives: here a rate-only objective."""

    class RateOnly(Objective):
        def __init__(self, parts, **options):
            super().__init__(parts)
            self.inner = ELBO(parts)

        def draw_noise(self, generator, batch):
            return None

        def terms(self, x, noise=None, training=False):
            terms = self.inner.terms(x, noise, training)
            return Terms(terms.rate, terms.rate, terms.distortion)

    with OBJECTIVES.temporarily("rate_only", RateOnly):
        vae = tfpvae.build_vae(**SMALL, objective="rate_only", use_exact_kl=True)
    assert "rate_only" not in OBJECTIVES  # the registry is left as the other tests expect
    x = digits_beta[0][:64]
    logs = vae.test_on_batch(x, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["rate"], rel=1e-6)
    history = vae.fit(x, epochs=30, batch_size=64, verbose=0).history
    assert history["rate"][-1] < 0.5 * history["rate"][0]  # only the KL is minimised


@pytest.mark.parametrize("use_exact_kl", [False, True], ids=["sampled", "exact"])
def test_fused_terms_with_s_draws_average_the_single_draws(digits_beta, use_exact_kl) -> None:
    vae = tfpvae.build_vae(**SMALL, n_samples=4, use_exact_kl=use_exact_kl)
    assert isinstance(vae.objective, FusedELBO)
    x = tf.constant(digits_beta[1][:10])
    eps = np.random.default_rng(0).standard_normal((4, 10, 3)).astype("float32")
    together = vae.objective.terms(x, (eps, None))
    single = FusedELBO(vae.parts, n_samples=1)
    apart = [single.terms(x, (eps[s : s + 1], None)) for s in range(4)]
    for name in ("loss", "rate", "distortion"):
        mean = np.mean([getattr(t, name).numpy() for t in apart], axis=0)
        np.testing.assert_allclose(getattr(together, name).numpy(), mean, rtol=1e-5, atol=1e-4)
        assert getattr(together, name).shape == (10,)
    # The draws really differ per sample: S = 4 is not one draw used four times.
    assert np.ptp([t.distortion.numpy()[0] for t in apart]) > 1e-3


@pytest.mark.slow(seconds=7)
def test_general_and_fused_s_sample_elbo_agree_within_4_se(digits_beta) -> None:
    x = tf.constant(digits_beta[1][:32])
    fused = tfpvae.build_vae(**SMALL, n_samples=8)
    general = tfpvae.build_vae(**SMALL, n_samples=8, fast_path=False)
    general.set_weights(fused.get_weights())
    assert isinstance(general.objective, ELBO)
    tf.random.set_seed(0)
    runs = 40
    a = np.array([fused.objective.terms(x).loss.numpy().mean() for _ in range(runs)])
    b = np.array([general.objective.terms(x).loss.numpy().mean() for _ in range(runs)])
    se = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / runs)
    assert abs(a.mean() - b.mean()) < 4 * se


@pytest.mark.parametrize("kl", ["add_loss", "regularizer"])
@pytest.mark.parametrize("use_exact_kl", [False, True], ids=["sampled", "exact"])
def test_the_objective_uses_the_kl_the_layer_attaches(digits_beta, kl, use_exact_kl) -> None:
    """β × the mean of the objective's per-image rate is what the course's layer adds."""
    vae = tfpvae.build_vae(
        **SMALL, kl=kl, use_exact_kl=use_exact_kl, kl_samples=3 if use_exact_kl else 1,
        kl_weight=0.7, fast_path=False,
    )  # fmt: skip
    x = digits_beta[1][:16]
    q = vae.encoder(x)
    attached = float(tf.add_n(vae.encoder.losses))
    rate = vae.parts.kl.per_example(
        q, vae.prior, tf.convert_to_tensor(q)[None]
    ).numpy()  # the layer's z
    assert rate.shape == (16,)
    np.testing.assert_allclose(attached, 0.7 * rate.mean(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(objective="iwae", posterior="relaxed_categorical"), "use objective='elbo'"),
        (dict(posterior="iaf", prior="vamp"), "or prior='mixture'"),
        (dict(objective="iwae", iwae_k=0), "iwae_k must be a positive integer"),
    ],
)
def test_combinations_without_a_meaning_are_refused(fields, message) -> None:
    with pytest.raises(ValueError, match=message):
        tfpvae.VAEConfig(**fields)


def test_learned_priors_never_take_the_fused_path() -> None:
    """The fused objectives assume N(0, I): a learned prior must reach the general ones."""
    from tfpvae.objectives.iwae import IWAE

    for objective, general in (("elbo", ELBO), ("iwae", IWAE)):
        vae = tfpvae.build_vae(**SMALL, objective=objective, prior="mixture", prior_components=2)
        assert type(vae.objective) is general, (objective, type(vae.objective))
