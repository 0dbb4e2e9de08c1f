"""Checks for tests of VAEs: Monte Carlo agreement within standard errors, and a
linear-Gaussian VAE whose log-likelihood is exact (:func:`linear_gaussian_vae`).

A Monte Carlo estimate is compared with its expected value within ``n_se``
standard errors (4 by default: a false alarm about once in 16,000 runs), and the
check also refuses a standard error so large that the comparison could not fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tfpvae.evaluation.stats import standard_error


def assert_within_se(
    samples: np.ndarray,
    expected: float,
    n_se: float = 4.0,
    max_se: float | None = None,
) -> float:
    """Asserts ``|mean(samples) - expected| <= n_se * SE``; returns the SE.

    Args:
        samples: Independent Monte Carlo values whose mean estimates ``expected``.
        expected: The exact value.
        n_se: How many standard errors are allowed.
        max_se: If given, the SE itself must be below it, so that a wrong value
            at that distance could not pass.

    Raises:
        AssertionError: With the mean, the expected value and the SE.

    Example:
        >>> import numpy as np
        >>> from tfpvae.testing import assert_within_se
        >>> draws = np.random.default_rng(0).normal(1.0, 0.5, 400)
        >>> round(assert_within_se(draws, 1.0, max_se=0.05), 3)
        0.025
    """
    samples = np.asarray(samples, dtype=np.float64)
    se = standard_error(samples)
    mean = float(samples.mean())
    if max_se is not None:
        assert se < max_se, f"SE {se:.4g} is not below {max_se:.4g}: the check could not fail"
    assert abs(mean - expected) <= n_se * se, (
        f"mean {mean:.6g} is {abs(mean - expected) / se if se else float('inf'):.1f} SE from "
        f"{expected:.6g} (SE {se:.4g}, allowed {n_se:g})"
    )
    return se


@dataclass(frozen=True)
class LinearGaussian:
    r"""A linear-Gaussian VAE whose log-likelihood is known exactly.

    p(z) = N(0, I), p(x|z) = N(W z + b, σ² I), so
    :math:`p(x) = \mathcal{N}(x;\, b,\, W W^\top + \sigma^2 I)` and the posterior is
    Gaussian with precision :math:`\Lambda = I + W^\top W/\sigma^2` and mean
    :math:`\Lambda^{-1} W^\top (x - b)/\sigma^2`.

    Attributes:
        vae: The :class:`~tfpvae.VAE` (its parts are plain ``tf_keras``/TFP layers).
        weight: W, ``[x_dim, latent_dim]``.
        bias: b, ``[x_dim]``.
        sigma: σ.
    """

    vae: Any
    weight: np.ndarray
    bias: np.ndarray
    sigma: float

    def log_marginal(self, x: np.ndarray) -> np.ndarray:
        """Exact :math:`\\log p(x)` of each row of ``x`` ``[n, x_dim]``, in float64."""
        x = np.asarray(x, np.float64)
        w = self.weight.astype(np.float64)
        cov = w @ w.T + self.sigma**2 * np.eye(len(w))
        chol = np.linalg.cholesky(cov)
        white = np.linalg.solve(chol, (x - self.bias).T)  # [x_dim, n]
        log_det = 2.0 * np.log(np.diag(chol)).sum()
        return -0.5 * ((white**2).sum(0) + log_det + len(w) * np.log(2.0 * np.pi))

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` draws x ~ p(x), ``[n, x_dim]`` float32."""
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.weight.shape[1]))
        noise = self.sigma * rng.standard_normal((n, self.weight.shape[0]))
        return (z @ self.weight.T + self.bias + noise).astype(np.float32)


def _softplus_inverse(y: np.ndarray) -> np.ndarray:
    return np.log(np.expm1(y))


def linear_gaussian_vae(
    x_dim: int = 4,
    latent_dim: int = 2,
    sigma: float = 0.5,
    posterior: str = "diag",
    encoder_noise: float = 0.1,
    posterior_scale: float = 1.0,
    seed: int = 0,
    **vae_options: Any,
) -> LinearGaussian:
    r"""A :class:`LinearGaussian` model built from ``tf_keras`` and TFP layers.

    The decoder is ``Dense(x_dim)`` (kernel Wᵀ, bias b) into an independent Normal of
    scale σ; the encoder ``Dense`` into ``tfpl.IndependentNormal`` (``posterior="diag"``)
    or ``tfpl.MultivariateNormalTriL`` (``"full"``), set to the best posterior of its
    family (``"full"``: the exact posterior; ``"diag"``: the ELBO's optimum, the exact
    mean with precisions :math:`\\Lambda_{dd}`), then perturbed by Gaussian noise of
    standard deviation ``encoder_noise`` on every encoder weight. ``posterior_scale``
    c multiplies the posterior's scale first: with ``"full"``, no noise and c > 1/√2,
    :math:`\mathrm{CUBO}_2 - \log p(x) = \tfrac d2\log\big(c^2/\sqrt{2c^2-1}\big)`
    exactly (:func:`~tfpvae.evaluation.bounds.cubo`).

    Args:
        x_dim: Size of x.
        latent_dim: Size of z.
        sigma: The decoder's noise scale σ.
        posterior: ``"diag"`` or ``"full"``.
        encoder_noise: Standard deviation of the perturbation of the encoder.
        posterior_scale: c, the factor on the posterior's scale (1: the best one).
        seed: Seed of W, b and the perturbation.
        **vae_options: Passed to :class:`~tfpvae.VAE` (``objective``, ``iwae_k``, ...).

    Example:
        >>> from tfpvae.testing import linear_gaussian_vae
        >>> model = linear_gaussian_vae(encoder_noise=0.0)
        >>> model.log_marginal(model.sample(3)).shape
        (3,)
    """
    from tfpvae._backend import tfd, tfk, tfp, tfpl
    from tfpvae.models.vae import VAE

    layers = {"diag": tfpl.IndependentNormal, "full": tfpl.MultivariateNormalTriL}
    if posterior not in layers:
        raise ValueError(f"posterior must be 'diag' or 'full', got {posterior!r}")
    rng = np.random.default_rng(seed)
    weight = rng.normal(0.0, 1.0, (x_dim, latent_dim))
    bias = rng.normal(0.0, 0.5, x_dim)
    precision = np.eye(latent_dim) + weight.T @ weight / sigma**2
    gain = np.linalg.solve(precision, weight.T) / sigma**2  # mean = gain (x - b), [d, x_dim]
    layer = layers[posterior]
    if posterior == "diag":
        scale = _softplus_inverse(posterior_scale / np.sqrt(np.diag(precision)))
        kernel = np.concatenate([gain.T, np.zeros((x_dim, latent_dim))], axis=1)
        offset = np.concatenate([-gain @ bias, scale])
    else:
        tril = posterior_scale * np.linalg.cholesky(np.linalg.inv(precision))
        raw = tril.copy()
        raw[np.diag_indices(latent_dim)] = _softplus_inverse(np.diag(tril) - 1e-5)
        flat = tfp.math.fill_triangular_inverse(raw).numpy()
        kernel = np.concatenate([gain.T, np.zeros((x_dim, len(flat)))], axis=1)
        offset = np.concatenate([-gain @ bias, flat])
    kernel = kernel + encoder_noise * rng.standard_normal(kernel.shape)
    offset = offset + encoder_noise * rng.standard_normal(offset.shape)
    params = tfk.layers.Dense(layer.params_size(latent_dim), input_shape=(x_dim,))
    encoder = tfk.Sequential([params, layer(latent_dim)])
    params.set_weights([kernel.astype(np.float32), offset.astype(np.float32)])
    mean = tfk.layers.Dense(x_dim, input_shape=(latent_dim,))
    decoder = tfk.Sequential(
        [
            mean,
            tfpl.DistributionLambda(
                lambda loc: tfd.Independent(tfd.Normal(loc, sigma), reinterpreted_batch_ndims=1)
            ),
        ]
    )
    mean.set_weights([weight.T.astype(np.float32), bias.astype(np.float32)])
    vae = VAE(encoder, decoder, **vae_options)
    return LinearGaussian(vae, weight.astype(np.float32), bias.astype(np.float32), float(sigma))
