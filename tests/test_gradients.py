"""Gradient estimators: DReG and STL keep the loss, change the encoder's gradient.

Checked three ways: the loss value and the decoder's gradient are the standard
estimator's at the same draws; the encoder's gradient equals a closed form of
the estimator on the linear-Gaussian model (NumPy, at the objective's own draws);
and over many draws its mean is the standard estimator's within 4 SE while its
variance is lower.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

import tfpvae
from tfpvae._backend import tf
from tfpvae.evaluation.gradients import encoder_gradients, gradient_snr
from tfpvae.objectives import ELBO, GRADIENTS, IWAE, Renyi, fused_applies
from tfpvae.testing import assert_within_se, linear_gaussian_vae

SEED = tf.constant([3, 5], tf.int32)
K = 6


def _objectives(parts, gradient: str) -> dict:
    """name → (objective with ``gradient``, the same objective with the standard one)."""
    if gradient == "stl":
        return {"elbo": (ELBO(parts, K, gradient="stl"), ELBO(parts, K))}
    return {
        "iwae": (IWAE(parts, K, gradient=gradient), IWAE(parts, K)),
        "renyi": (Renyi(parts, K, 0.5, gradient=gradient), Renyi(parts, K, 0.5)),
    }


@pytest.mark.parametrize(
    ("gradient", "posterior"), [("dreg", "full"), ("stl", "full"), ("dreg", "radial")]
)
def test_same_loss_and_decoder_gradient_other_encoder_gradient(digits, gradient, posterior):
    vae = tfpvae.build_vae(likelihood="bernoulli", input_shape=(8, 8), hidden_units=(16,),
                           latent_dim=3, kl_weight=0.8, posterior=posterior)  # fmt: skip
    x = tf.constant(tfpvae.prepare(digits[0][0][:10], "bernoulli"))
    encoder = {v.ref() for v in vae.encoder.trainable_variables}
    for name, (other, standard) in _objectives(vae.parts, gradient).items():
        grads = []
        for objective in (other, standard):
            with tf.GradientTape() as tape:
                terms = objective.terms(x, SEED, training=True)
                loss = tf.reduce_mean(terms.loss)
            grads.append(tape.gradient(loss, vae.trainable_variables))
            if objective is other:
                first = terms
        np.testing.assert_allclose(first.loss, terms.loss, rtol=1e-5, atol=1e-5, err_msg=name)
        differs = []
        for var, a, b in zip(vae.trainable_variables, *grads, strict=True):
            if var.ref() in encoder:
                differs.append(np.abs(a.numpy() - b.numpy()).max() > 1e-4)
            else:
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=var.name)
        assert all(differs), name


def _numpy_path_gradient(model, x, z, eps, weights_of, beta: float = 1.0) -> np.ndarray:
    """-(1/B) Σ_i Σ_k v_ik ∂log w_ik/∂z · ∂z/∂(loc bias, scale bias), in closed form.

    For p(x|z) = N(Wz + b, σ²I), p(z) = N(0, I), q = N(μ, diag s²) and
    log w = log p(x|z) + β (log p(z) − log q(z|x)):
    ∂log w/∂z = Wᵀ(x − Wz − b)/σ² + β (−z + (z − μ)/s²), and z = μ + s ε with
    s = softplus(raw): ∂z/∂μ = 1, ∂z/∂raw = ε · sigmoid(raw).
    """
    w, b, sigma = (model.weight.astype(np.float64), model.bias.astype(np.float64), model.sigma)
    q = model.vae.posterior(x)
    mu, s = q.mean().numpy().astype(np.float64), q.stddev().numpy().astype(np.float64)
    residual = x[None].astype(np.float64) - z @ w.T - b  # [K, B, x_dim]
    dlogw = residual @ w / sigma**2 + beta * (-z + (z - mu) / s**2)  # [K, B, d]
    log_w = -0.5 * (residual**2).sum(-1) / sigma**2 + beta * (
        -0.5 * (z**2).sum(-1) + 0.5 * (eps**2).sum(-1) + np.log(s).sum(-1)
    )  # constants cancel in the normalised weights
    v = weights_of(log_w)[..., None]  # [K, B, 1]
    sigmoid = 1.0 - np.exp(-s)  # softplus'(raw) = sigmoid(raw) = 1 − e^{−s}
    loc_bias = -(v * dlogw).sum(0).mean(0)
    scale_bias = -(v * dlogw * eps * sigmoid).sum(0).mean(0)
    return np.concatenate([loc_bias, scale_bias])


def _renyi_dreg_weights(alpha: float):
    def weights(log_w):
        normalised = special.softmax((1 - alpha) * log_w, axis=0)
        return alpha * normalised + (1 - alpha) * normalised**2

    return weights


@pytest.mark.parametrize(
    ("objective", "weights_of"),
    [
        (lambda p: IWAE(p, K, gradient="dreg"), lambda lw: special.softmax(lw, axis=0) ** 2),
        (lambda p: Renyi(p, K, 0.5, gradient="dreg"), _renyi_dreg_weights(0.5)),
        (lambda p: Renyi(p, K, -1.0, gradient="dreg"), _renyi_dreg_weights(-1.0)),
        (lambda p: ELBO(p, K, gradient="stl"), lambda lw: np.full_like(lw, 1.0 / K)),
    ],
    ids=["iwae-dreg", "renyi0.5-dreg", "renyi-1-dreg", "elbo-stl"],
)
def test_encoder_gradient_equals_the_estimators_closed_form(objective, weights_of) -> None:
    """At the objective's own draws, the encoder's bias gradients are the estimator's
    formula: DReG's α w̃ + (1 − α) w̃² (w̃² for the IWAE), STL's 1/K."""
    model = linear_gaussian_vae(encoder_noise=0.3)
    x = model.sample(5, seed=2)
    made = objective(model.vae.parts)
    params = model.vae.encoder.layers[0]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(made.terms(tf.constant(x), SEED, training=True).loss)
    got = tape.gradient(loss, params.bias).numpy()
    q = model.vae.posterior(x)
    z = q.sample(K, seed=SEED).numpy().astype(np.float64)  # the objective's draws
    eps = (z - q.mean().numpy()) / q.stddev().numpy()
    want = _numpy_path_gradient(model, x, z, eps, weights_of)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # The standard estimator's gradient is another vector: the check can fail.
    standard = type(made)(
        model.vae.parts, K, **({"alpha": made.alpha} if isinstance(made, Renyi) else {})
    )
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(standard.terms(tf.constant(x), SEED, training=True).loss)
    assert np.abs(tape.gradient(loss, params.bias).numpy() - want).max() > 1e-2


def _tempered_dreg_weights(alpha: float, beta: float):
    """DReG with a KL weight β: the score term −β Σ w̃ ∂φ log q, rewritten, leaves the
    weights w̃ (1 − β (1 − α)(1 − w̃)); at β = 0 the plain path gradient Σ w̃ ∂z log w."""

    def weights(log_w):
        normalised = special.softmax((1 - alpha) * log_w, axis=0)
        return normalised * (1 - beta * (1 - alpha) * (1 - normalised))

    return weights


@pytest.mark.parametrize("beta", [0.3, 0.0])
@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_dreg_with_a_kl_weight_keeps_its_closed_form(alpha: float, beta: float) -> None:
    """With β ≠ 1 (a KLWarmUp) DReG's encoder gradient is its own closed form at β, not
    the β = 1 weights α w̃ + (1 − α) w̃² (which the check tells apart)."""
    model = linear_gaussian_vae(encoder_noise=0.3, kl_weight=beta)
    x = model.sample(5, seed=2)
    made = Renyi(model.vae.parts, K, alpha, gradient="dreg")
    params = model.vae.encoder.layers[0]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(made.terms(tf.constant(x), SEED, training=True).loss)
    got = tape.gradient(loss, params.bias).numpy()
    q = model.vae.posterior(x)
    z = q.sample(K, seed=SEED).numpy().astype(np.float64)
    eps = (z - q.mean().numpy()) / q.stddev().numpy()
    want = _numpy_path_gradient(model, x, z, eps, _tempered_dreg_weights(alpha, beta), beta)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    untempered = _numpy_path_gradient(model, x, z, eps, _renyi_dreg_weights(alpha), beta)
    assert np.abs(untempered - want).max() > 1e-3


def test_dreg_under_tf_function() -> None:
    """A traced step (as Keras's fit runs it) gives the eager gradients: the scale of
    each call's draws is bound in the graph of that call."""
    model = linear_gaussian_vae()
    x = tf.constant(model.sample(5, seed=2))
    dreg, standard = (Renyi(model.vae.parts, K, 0.5, gradient=g) for g in ("dreg", None))
    variables = model.vae.trainable_variables  # encoder's first, then the decoder's

    def both(x):
        out = []
        for made in (dreg, standard):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(made.terms(x, SEED, training=True).loss)
            out.append((loss, tape.gradient(loss, variables)))
        return out

    eager = both(x)
    for (loss, grads), (want_loss, want) in zip(tf.function(both)(x), eager, strict=True):
        np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
        for got, expected in zip(grads, want, strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("objective", "gradient", "k", "alpha"),
    [("iwae", "dreg", 10, None), ("renyi", "dreg", 10, 0.5), ("elbo", "stl", 1, None)],
)
def test_unbiased_with_lower_variance_on_the_linear_gaussian(objective, gradient, k, alpha) -> None:
    """Paired draws (the same noise for both estimators): the mean difference of every
    encoder gradient is within 4 SE of 0, and the summed variance is less than half."""
    model = linear_gaussian_vae(encoder_noise=0.1)
    x = model.sample(8, seed=1)
    options = dict(n_draws=200, objective=objective, alpha=alpha, seed=3)
    standard = encoder_gradients(model.vae, x, k, None, **options)
    other = encoder_gradients(model.vae, x, k, gradient, **options)
    scale = np.linalg.norm(standard.mean(0))
    for column in range(standard.shape[1]):
        assert_within_se(other[:, column] - standard[:, column], 0.0, max_se=0.1 * scale)
    ratio = other.var(0).sum() / standard.var(0).sum()
    assert ratio < 0.5, ratio
    # A different gradient would be seen: the ELBO's is many SE from the IWAE's (k = 10).
    if objective == "iwae":
        elbo = encoder_gradients(model.vae, x, 1, None, n_draws=200, objective="elbo", seed=3)
        difference = elbo - standard
        se = difference.std(0, ddof=1) / np.sqrt(len(difference))
        assert np.max(np.abs(difference.mean(0)) / se) > 8


def test_gradient_snr_of_dreg_beats_the_standard_iwae() -> None:
    model = linear_gaussian_vae(encoder_noise=0.1)
    x = model.sample(8, seed=1)
    standard = gradient_snr(model.vae, x, [1, 10], n_draws=60)
    dreg = gradient_snr(model.vae, x, [1, 10], gradient="dreg", n_draws=60)
    assert standard.shape == dreg.shape == (2,)
    assert dreg[1] > 1.3 * standard[1], (standard, dreg)


def test_gradient_names_and_refusals(digits) -> None:
    assert GRADIENTS.names() == ["standard", "dreg", "stl"]

    def build(**options):
        return tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,), **options)

    with pytest.raises(ValueError, match="gradient='dreg' applies to objective 'iwae' or "
                                         "'renyi', not 'elbo'; use gradient='stl'"):  # fmt: skip
        build(gradient="dreg")
    with pytest.raises(ValueError, match=r"gradient='stl' applies to objective 'elbo'.*'dreg'"):
        build(objective="iwae", gradient="stl")
    with pytest.raises(ValueError, match="unknown gradient 'nope'"):
        build(objective="iwae", gradient="nope")
    with pytest.raises(ValueError, match="gradient='stl' needs log q"):
        build(posterior="relaxed_categorical", gradient="stl", likelihood="bernoulli")
    with pytest.raises(ValueError, match="a planar flow's inverse is a bisection"):
        tfpvae.VAE(build(posterior="planar").encoder, build().decoder, objective="iwae",
                   gradient="dreg")  # fmt: skip
    with pytest.raises(ValueError, match="posterior='planar'"):
        tfpvae.VAEConfig(posterior="planar", gradient="stl")
    vae = build(objective="iwae")
    assert fused_applies(vae.parts) and fused_applies(vae.parts, gradient="standard")
    assert not fused_applies(vae.parts, gradient="dreg")
    dreg = build(objective="iwae", gradient="dreg")
    assert type(dreg.objective) is IWAE and dreg.objective.gradient == "dreg"
    none = tfpvae.VAE(vae.encoder, vae.decoder, objective="iwae", gradient=None)
    assert none.objective.__class__.__name__ == "FusedIWAE"
