"""``tfpvae.VAE(encoder, decoder, prior)`` trains the course's networks on the per-example ELBO."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tfpvae
from tfpvae._backend import tf, tfd, tfk, tfpl

LATENT = 2
SHAPE = (8, 8)
PRIOR = tfd.MultivariateNormalDiag(loc=tf.zeros(LATENT))


def course_encoder(
    kl: str = "add_loss",
    use_exact_kl: bool = False,
    weight: float | None = None,
    regularizer: tfk.regularizers.Regularizer | None = None,
) -> tfk.Model:
    """The course's Sequential encoder, with its KL attached as the course does."""
    size = tfpl.MultivariateNormalTriL.params_size(LATENT)
    layers = [
        tfk.layers.Flatten(input_shape=SHAPE),
        tfk.layers.Dense(32, activation="relu", kernel_regularizer=regularizer),
        tfk.layers.Dense(size),
    ]
    if kl == "regularizer":
        reg = tfpl.KLDivergenceRegularizer(PRIOR, use_exact_kl=use_exact_kl, weight=weight)
        layers.append(tfpl.MultivariateNormalTriL(LATENT, activity_regularizer=reg))
    else:
        layers.append(tfpl.MultivariateNormalTriL(LATENT))
        if kl == "add_loss":
            layers.append(tfpl.KLDivergenceAddLoss(PRIOR, use_exact_kl=use_exact_kl, weight=weight))
    return tfk.Sequential(layers)


def bernoulli_decoder() -> tfk.Model:
    return tfk.Sequential([
        tfk.layers.Dense(32, activation="relu", input_shape=(LATENT,)),
        tfk.layers.Dense(tfpl.IndependentBernoulli.params_size(SHAPE)),
        tfpl.IndependentBernoulli(SHAPE),
    ])  # fmt: skip


def beta_decoder() -> tfk.Model:
    """The course's Beta decoder: a DistributionLambda over independent Betas (a lambda)."""
    return tfk.Sequential([
        tfk.layers.Dense(2 * 64, input_shape=(LATENT,)),
        tfk.layers.Reshape((*SHAPE, 2)),
        tfpl.DistributionLambda(lambda t: tfd.Independent(
            tfd.Beta(tf.math.softplus(t[..., 0]) + 0.1, tf.math.softplus(t[..., 1]) + 0.1), 2)),
    ])  # fmt: skip


@pytest.fixture(scope="module")
def binary(digits):
    return tfpvae.prepare(digits[0][0][:96], likelihood="bernoulli")


def independent_elbo(vae, x, z, exact: bool, beta: float) -> np.ndarray:
    """−ELBO per image at the draws z ``[batch, d]``, straight from the user's networks."""
    q = vae.encoder(x)
    log_lik = vae.decoder(z).log_prob(np.clip(x, 1e-6, 1 - 1e-6)).numpy()
    if exact:
        kl = tfd.kl_divergence(q, PRIOR).numpy()
    else:
        kl = (q.log_prob(z) - PRIOR.log_prob(z)).numpy()
    return -log_lik + beta * kl


@pytest.mark.parametrize(
    ("kl", "exact", "weight"),
    [("add_loss", False, None), ("add_loss", True, 0.5), ("regularizer", True, 2.0),
     ("regularizer", False, None), ("none", True, None)],
)  # fmt: skip
def test_loss_is_the_per_example_negative_elbo(binary, kl, exact, weight) -> None:
    vae = tfpvae.VAE(course_encoder(kl, exact, weight), bernoulli_decoder())
    vae.compile(optimizer="adam")
    x = tf.constant(binary[:16])
    assert isinstance(vae.objective, tfpvae.objectives.FusedELBO)  # chosen by the layers' types
    assert vae.parts.kl.use_exact_kl is exact
    assert float(vae.kl_weight.numpy()) == (weight or 1.0)
    eps = np.random.default_rng(0).standard_normal((1, 16, LATENT)).astype("float32")
    terms, loss, _ = vae.compute_gradients(x, (eps, None))
    q = vae.encoder(x)
    z = q.loc + tf.linalg.matvec(q.scale.to_dense(), eps[0])  # the same draws
    expected = independent_elbo(vae, x.numpy(), z, exact, weight or 1.0)
    np.testing.assert_allclose(terms.loss.numpy(), expected, rtol=1e-5, atol=1e-4)
    # What training minimises is the batch mean, and the KL layer's own loss is not in it.
    assert float(loss) == pytest.approx(expected.mean(), rel=1e-5, abs=1e-4)
    if kl != "none":
        assert float(tf.add_n(vae.encoder.losses)) > 0.1  # the layer did add its own


def test_the_general_path_matches_the_same_computation(binary) -> None:
    """A Beta decoder with a lambda runs through TFP; the same seed gives the same z."""
    vae = tfpvae.VAE(course_encoder("add_loss", use_exact_kl=False), beta_decoder())
    vae.compile(optimizer="adam")
    assert isinstance(vae.objective, tfpvae.objectives.ELBO)
    x = tf.constant(np.clip(binary[:16], 0.05, 0.95))
    seed = tf.constant([3, 4], tf.int32)
    terms = vae.objective.terms(x, seed)
    z = vae.encoder(x).sample(1, seed=seed)[0]
    expected = independent_elbo(vae, x.numpy(), z, exact=False, beta=1.0)
    np.testing.assert_allclose(terms.loss.numpy(), expected, rtol=1e-5, atol=1e-3)


def test_exact_kl_stays_exact_with_three_test_points(binary) -> None:
    enc = course_encoder("none")
    regularizer = tfpl.KLDivergenceRegularizer(PRIOR, use_exact_kl=True,
                                               test_points_fn=lambda q: q.sample(3))  # fmt: skip
    enc.layers[-1].activity_regularizer = regularizer
    vae = tfpvae.VAE(course_encoder("none"), bernoulli_decoder(), prior=PRIOR, use_exact_kl=True)
    x = tf.constant(binary[:16])
    q = vae.posterior(x)
    rate = vae.parts.kl.per_example(q, PRIOR, q.sample(3, seed=(1, 2)))
    np.testing.assert_allclose(rate.numpy(), tfd.kl_divergence(q, PRIOR).numpy(), atol=1e-5)


def test_layer_losses_are_added_once(binary) -> None:
    l2 = 0.05
    vae = tfpvae.VAE(course_encoder("add_loss", True, regularizer=tfk.regularizers.L2(l2)),
                     bernoulli_decoder())  # fmt: skip
    vae.compile(optimizer="adam")
    x = tf.constant(binary[:16])
    eps = np.zeros((1, 16, LATENT), "float32")
    terms, loss, _ = vae.compute_gradients(x, (eps, None))
    objective = vae.objective.terms(x, (eps, None)).loss.numpy().mean()
    kernel = vae.encoder.layers[1].kernel.numpy()
    penalty = l2 * float(np.sum(kernel.astype(np.float64) ** 2))
    # compute_gradients reports the per-image mean; the step minimises it plus the penalty.
    with tf.GradientTape() as tape:
        _, _, grads = vae.compute_gradients(x, (eps, None))
    index = [v.ref() for v in vae.trainable_variables].index(vae.encoder.layers[1].kernel.ref())
    without = tfpvae.VAE(course_encoder("add_loss", True), bernoulli_decoder())
    without.set_weights(vae.get_weights())
    _, _, plain = without.compute_gradients(x, (eps, None))
    np.testing.assert_allclose(grads[index] - plain[index], 2 * l2 * kernel, rtol=1e-4, atol=1e-6)
    assert float(loss) == pytest.approx(objective, rel=1e-6) and penalty > 0
    del tape, terms


def test_a_prior_layer_trains_and_is_tracked(binary) -> None:
    from tfpvae.components.priors import MixturePrior

    prior = MixturePrior(LATENT, 3)
    vae = tfpvae.VAE(course_encoder("none"), bernoulli_decoder(), prior=prior)
    vae.compile(optimizer=tfk.optimizers.Adam(0.05))
    ids = {id(v) for v in vae.trainable_variables}
    assert all(id(v) in ids for v in prior.trainable_variables)
    start = [v.numpy().copy() for v in prior.trainable_variables]
    vae.fit(binary, epochs=2, batch_size=32, verbose=0)
    moved = [
        np.abs(v.numpy() - s).max() for v, s in zip(prior.trainable_variables, start, strict=True)
    ]
    assert min(moved) > 1e-3


def test_bad_parts_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="input_shape"):
        tfpvae.VAE(tfk.Sequential([tfk.layers.Dense(5), tfpl.MultivariateNormalTriL(2)]),
                   bernoulli_decoder())  # fmt: skip
    wrong = tfk.Sequential([tfk.layers.Dense(16, input_shape=(LATENT,)),
                            tfpl.IndependentBernoulli((4, 4))])  # fmt: skip
    with pytest.raises(ValueError, match="event shape"):
        tfpvae.VAE(course_encoder(), wrong)
    with pytest.raises(ValueError, match="prior"):
        tfpvae.VAE(course_encoder("none"), bernoulli_decoder(), prior=tfd.Normal(0.0, 1.0))
    with pytest.raises(ValueError, match="objective"):
        tfpvae.VAE(course_encoder(), bernoulli_decoder(), objective="nope")


def test_evaluation_and_figures_take_a_user_model(binary) -> None:
    from tfpvae.evaluation import plots

    vae = tfpvae.VAE(course_encoder(), bernoulli_decoder())
    vae.compile(optimizer="adam")
    x = binary[:20]
    terms = tfpvae.elbo(vae, x)
    bound = tfpvae.iwae_bound(vae, x, k=20)
    assert terms.elbo.shape == bound.shape == (20,)
    se = np.std(bound - terms.elbo, ddof=1) / np.sqrt(20)
    assert np.mean(bound - terms.elbo) > -4 * se  # IWAE never below the ELBO in expectation
    assert tfpvae.held_out_metrics(vae, x, k=5)["n_images"] == 20
    images = vae.sample(6, seed=1).numpy()
    assert images.shape == (6, *SHAPE)
    np.testing.assert_array_equal(images, vae.sample(6, seed=1).numpy())
    assert not np.array_equal(images, vae.sample(6, seed=2).numpy())
    figures = [
        plots.plot_latent(vae, x, np.arange(20) % 3, ["a", "b", "c"]),
        plots.plot_manifold(vae, n=4),
        plots.plot_reconstructions(vae, x[:4]),
        plots.plot_prior_samples(vae, n=4, cols=4),
        plots.plot_interpolation(vae, x[0], x[1], steps=3),
    ]
    assert all(fig.axes for fig in figures)


def test_clone_and_tfpvae_save_round_trip_user_networks(binary, tmp_path) -> None:
    vae = tfpvae.VAE(course_encoder("add_loss", True, 0.5), beta_decoder())
    vae.compile(optimizer="adam")
    clone = tfk.models.clone_model(vae)
    assert isinstance(clone, tfpvae.VAE) and float(clone.kl_weight.numpy()) == 0.5
    assert clone.parts.kl.use_exact_kl
    tfpvae.save(vae, tmp_path / "m")
    again = tfpvae.load(tmp_path / "m")
    x = np.clip(binary[:8], 0.05, 0.95)
    np.testing.assert_allclose(again.encode(x).numpy(), vae.encode(x).numpy(), atol=1e-6)


class _Unsaveable(tfk.layers.Layer):
    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.dense = tfk.layers.Dense(int(np.prod(shape)))
        self.out = tfpl.IndependentBernoulli(shape)

    def call(self, z):
        return self.out(self.dense(z))


def test_a_model_that_cannot_read_back_is_refused_at_save_time(tmp_path) -> None:
    decoder = tfk.Sequential([tfk.layers.InputLayer((LATENT,)), _Unsaveable(SHAPE)])
    vae = tfpvae.VAE(course_encoder(), decoder)
    vae.compile(optimizer="adam")
    with pytest.raises(ValueError, match="cannot be saved"):
        vae.save(tmp_path / "served")
    with pytest.raises(ValueError, match="cannot be saved"):
        tfpvae.save(vae, tmp_path / "model")
    assert not (tmp_path / "served").exists() and not (tmp_path / "model").exists()


@pytest.mark.slow(seconds=30)
def test_load_model_in_a_fresh_process_after_import_tfpvae(binary, tmp_path) -> None:
    models = {
        "course_bernoulli": tfpvae.VAE(course_encoder(), bernoulli_decoder()),
        "course_beta": tfpvae.VAE(course_encoder("regularizer", True), beta_decoder()),
        "build_vae": tfpvae.build_vae(
            likelihood="bernoulli", input_shape=SHAPE, hidden_units=(16,)
        ),
    }
    x = np.clip(binary[:8], 0.05, 0.95)
    np.save(tmp_path / "x.npy", x)
    for name, vae in models.items():
        if vae.optimizer is None:
            vae.compile(optimizer="adam")
        vae.fit(x, epochs=1, verbose=0)
        vae.save(tmp_path / name)
        np.save(tmp_path / f"{name}.npy", vae.encode(x).numpy())
    script = textwrap.dedent(f"""
        import numpy as np, tfpvae, tf_keras
        x = np.load({str(tmp_path / "x.npy")!r})
        for name in {list(models)!r}:
            vae = tf_keras.models.load_model({str(tmp_path)!r} + "/" + name)
            assert type(vae).__name__ == "VAE", type(vae)
            np.testing.assert_allclose(vae.encode(x).numpy(),
                                       np.load({str(tmp_path)!r} + f"/{{name}}.npy"), atol=1e-5)
            steps = int(vae.optimizer.iterations.numpy())
            history = vae.fit(x, epochs=1, batch_size=4, verbose=0).history
            assert np.isfinite(history["loss"][-1])
            assert int(vae.optimizer.iterations.numpy()) == steps + 2, name
        print("ok")
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]
