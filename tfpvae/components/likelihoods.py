"""Decoder likelihoods p(x | z), chosen by name from :data:`LIKELIHOODS`.

Every likelihood follows TFP's two-part layer contract:

* ``params_size(event_shape)`` says how many numbers the decoder must emit, so the
  last Dense / Conv layer sizes itself;
* ``new(params, event_shape)`` turns those numbers into a ``tfd.Independent``
  distribution whose event shape is the image shape.

Parameters are laid out pixel-major: ``params`` reshapes to
``batch + event_shape + [params_per_pixel]``, which is what both a Dense layer and
a flattened ``Conv2DTranspose`` output give.

Registered: ``bernoulli`` (binarised images), ``beta``, ``continuous_bernoulli``
and ``gaussian`` (densities on pixels scaled into (0, 1), or any continuous data
for the Gaussian), and ``discretized_logistic`` and ``categorical`` (masses on the
8-bit levels 0..255, :mod:`tfpvae.components.discrete`). Each entry's :class:`DataSpace` says
which data it models and how its bound compares with the others'
(:mod:`tfpvae.evaluation.comparison`, ``docs/likelihoods.md``).

Adding a likelihood is one :class:`Likelihood` registered in :data:`LIKELIHOODS`
plus its tests.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfpvae._backend import tf, tfd, tfk, tfpl
from tfpvae.components.concentration import (
    CONCENTRATIONS,
    DEFAULT_CONCENTRATION,
    MAX_CONCENTRATION,
    MIN_CONCENTRATION,
    positive_concentration,
)
from tfpvae.components.dataspace import (
    BINARISED_SPACE,
    LEVELS_SPACE,
    UNIT_INTERVAL_SPACE,
    DataSpace,
)
from tfpvae.components.discrete import (
    DiscretizedLogisticMixture,
    IndependentCategorical,
    categorical_fast_log_prob,
)
from tfpvae.components.gaussian import (
    MAX_GAUSSIAN_SCALE,
    MIN_GAUSSIAN_SCALE,
    IndependentGaussian,
    gaussian_fast_log_prob,
    gaussian_scale,
)
from tfpvae.components.pixelwise import PixelwiseDistributionLambda, Shape
from tfpvae.components.pixelwise import split_params as _split_params
from tfpvae.components.special import lbeta_positive
from tfpvae.registry import Registry

#: Distance from {0, 1} to which Beta observations are clipped inside the loss.
BETA_EPSILON = 1e-6


class IndependentBeta(PixelwiseDistributionLambda):
    """An independent Beta per pixel: ``tfd.Independent(tfd.Beta(c1, c0))``.

    Args:
        event_shape: The image shape.
        concentration: How raw outputs become concentrations, a name from
            :data:`~tfpvae.components.concentration.CONCENTRATIONS`: ``"exp"`` (the
            course's exponential, guarded; the default) or ``"softplus"``.
        **kwargs: Passed to :class:`PixelwiseDistributionLambda`.
    """

    options = ("concentration",)

    def __init__(
        self, event_shape: Shape, concentration: str = DEFAULT_CONCENTRATION, **kwargs: Any
    ) -> None:
        CONCENTRATIONS.get(concentration)  # an unknown name fails here, by name
        super().__init__(event_shape, concentration=concentration, **kwargs)

    @staticmethod
    def new(
        params: tf.Tensor,
        event_shape: Shape,
        name: str | None = None,
        concentration: str = DEFAULT_CONCENTRATION,
    ) -> tfd.Distribution:
        """Builds the distribution from ``params_size(event_shape)`` numbers per example."""
        raw_c1, raw_c0 = _split_params(params, event_shape, per_pixel=2)
        beta = tfd.Beta(
            concentration1=positive_concentration(raw_c1, concentration),
            concentration0=positive_concentration(raw_c0, concentration),
        )
        return tfd.Independent(beta, reinterpreted_batch_ndims=len(event_shape), name=name)

    @staticmethod
    def params_size(event_shape: Shape) -> int:
        """Two concentrations per pixel."""
        return 2 * math.prod(event_shape)


class IndependentContinuousBernoulli(PixelwiseDistributionLambda):
    """An independent continuous Bernoulli per pixel (Loaiza-Ganem & Cunningham, 2019).

    The continuous Bernoulli is the Bernoulli kernel ``λ^x (1-λ)^(1-x)`` renormalised
    on ``[0, 1]``, so it is a proper density for grey pixels, which the plain
    Bernoulli is not.
    """

    @staticmethod
    def new(params: tf.Tensor, event_shape: Shape, name: str | None = None) -> tfd.Distribution:
        """Builds the distribution from one logit per pixel."""
        (logits,) = _split_params(params, event_shape, per_pixel=1)
        cb = tfd.ContinuousBernoulli(logits=logits)
        return tfd.Independent(cb, reinterpreted_batch_ndims=len(event_shape), name=name)

    @staticmethod
    def params_size(event_shape: Shape) -> int:
        """One logit per pixel."""
        return math.prod(event_shape)


@dataclass(frozen=True)
class Support:
    """The set a likelihood's observations live in, for validation and clipping.

    Attributes:
        low: Lower end.
        high: Upper end.
        open: Whether the ends are excluded (Beta needs ``(0, 1)``).
        binary: Whether only ``{0, 1}`` are meaningful observations.
        integer: Whether observations are the integers from ``low`` to ``high``.
    """

    low: float = 0.0
    high: float = 1.0
    open: bool = False
    binary: bool = False
    integer: bool = False

    def describe(self) -> str:
        """A short human-readable form, e.g. ``'(0, 1)'``."""
        if self.binary:
            return "{0, 1} (or probabilities in [0, 1])"
        if self.integer:
            return f"the integers {self.low:g}, {self.low + 1:g}, ..., {self.high:g}"
        left, right = ("(", ")") if self.open else ("[", "]")
        return f"{left}{self.low:g}, {self.high:g}{right}"

    def contains(self, x: np.ndarray) -> bool:
        """Whether every value of ``x`` lies in the support (``nan`` never does)."""
        x = np.asarray(x)
        if x.size == 0:
            return True
        in_range = self.contains_range(float(x.min()), float(x.max()))
        return in_range and (not self.integer or bool(np.all(x == np.round(x))))

    def contains_range(self, low: float, high: float) -> bool:
        """Whether values whose minimum is ``low`` and maximum ``high`` lie in the support."""
        if self.open:
            return self.low < low and high < self.high
        return self.low <= low and high <= self.high


def _beta_fast_log_prob(
    params: tf.Tensor, x: tf.Tensor, concentration: str = DEFAULT_CONCENTRATION
) -> tf.Tensor:
    r"""Independent Beta log-density with :math:`\log B(a,b)` from :mod:`tfpvae.components.special`.

    TFP's ``lbeta`` is built for accuracy at extreme arguments and costs dozens of
    ops per pixel; within our concentration range the positive-argument
    :math:`\log\Gamma` agrees with it to float32 round-off (``tests/test_fastpath.py``).

    Args:
        params: ``[batch, 2 * pixels]``, two raw concentrations per pixel, pixel-major.
        x: ``[batch, pixels]`` observations in (0, 1).
        concentration: The map of raw outputs to concentrations (see :class:`IndependentBeta`).
    """
    raw_c1, raw_c0 = _split_params(params, tuple(x.shape[1:]), per_pixel=2)  # [batch, pixels]
    a = positive_concentration(raw_c1, concentration)
    b = positive_concentration(raw_c0, concentration)
    log_norm = lbeta_positive(a, b)
    log_kernel = (a - 1.0) * tf.math.log(x) + (b - 1.0) * tf.math.log1p(-x)
    return tf.reduce_sum(log_kernel - log_norm, axis=-1)


def _bernoulli_fast_log_prob(params: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    r"""Independent Bernoulli log-mass :math:`x\,\ell - \operatorname{softplus}(\ell)`
    on flat ``[batch, pixels]`` logits and observations."""
    return tf.reduce_sum(x * params - tf.math.softplus(params), axis=-1)


def _open_interval(
    x: np.ndarray, dequantize: str | None = None, seed: int | None = 0
) -> np.ndarray:
    r"""uint8 images → (0, 1): the course's fixed shift, or uniform dequantisation.

    * ``dequantize=None`` (default): :math:`y = (x + \tfrac12) / 256`, the course's.
    * ``dequantize="uniform"``: :math:`y = (x + u) / 256` with a fresh
      :math:`u \sim U[0, 1)` per pixel (from ``seed``). Then
      :math:`\mathbb{E}_u[\log p(y)] - D \log 256 \le \log P(x)`
      (see :mod:`tfpvae.components.dequantize`).
    """
    from tfpvae.components.dequantize import DEQUANTIZERS

    return DEQUANTIZERS.get(dequantize or "midpoint").apply(x, seed)


def _levels(x: np.ndarray) -> np.ndarray:
    """The 8-bit levels themselves, as float32 integers 0..255."""
    return x.astype(np.float32)


def _standardise(
    x: np.ndarray, mean: np.ndarray | float | None = None, std: np.ndarray | float | None = None
) -> np.ndarray:
    r"""Real-valued data → :math:`(x - \mu) / \sigma` per dimension, as float32.

    :math:`\mu` and :math:`\sigma` are each dimension's mean and standard deviation
    over the examples (axis 0), unless given: pass the training set's
    ``mean=x_train.mean(0), std=x_train.std(0)`` to prepare the test set alike. A
    dimension that does not vary keeps :math:`\sigma = 1`.
    """
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("the gaussian likelihood's data must be finite (no nan or inf)")
    mu = x.mean(axis=0) if mean is None else np.asarray(mean, dtype=np.float64)
    sigma = x.std(axis=0) if std is None else np.asarray(std, dtype=np.float64)
    sigma = np.where(sigma > 0, sigma, 1.0)
    return ((x - mu) / sigma).astype(np.float32)


def _binarise(x: np.ndarray, binarize: str = "threshold", seed: int | None = 0) -> np.ndarray:
    """Binarises uint8 images, by a fixed threshold at 0.5 or by a Bernoulli draw."""
    probs = x.astype(np.float32) / 255.0
    if binarize == "threshold":
        return (probs > 0.5).astype(np.float32)
    if binarize == "sample":
        return (np.random.default_rng(seed).random(probs.shape) < probs).astype(np.float32)
    raise ValueError(f"binarize must be 'threshold' or 'sample', got {binarize!r}")


@dataclass(frozen=True)
class Likelihood:
    """A registered decoder likelihood.

    Attributes:
        name: Registry name.
        layer: The ``tfpl`` distribution layer class (``params_size``/``new`` contract).
        support: Where observations must lie.
        preprocess: uint8 images → observations in ``support``.
        description: One line for ``--help`` and the README.
        fast_log_prob: Optional ``(params, x) → [batch]`` log-prob in plain ops of
            flat ``x [batch, pixels]``, equal to ``layer.new(params, (pixels,)).log_prob(x)``.
        data_space: What the observations are and how the bound compares across
            likelihoods (see :class:`DataSpace`).
        prepare_real: Optional real-valued (float) data → observations, for a
            likelihood that models more than pixels (the Gaussian standardises).
        settings: Keywords for ``fast_log_prob`` and ``layer.new``: the settings
            (``layer.options``) of the layer this entry describes, bound by
            :meth:`for_layer`; empty means the layer's defaults.
    """

    name: str
    layer: Any  # a tfpl layer class (its params_size and new are classmethods)
    support: Support
    preprocess: Callable[..., np.ndarray]
    description: str
    fast_log_prob: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None
    data_space: DataSpace = UNIT_INTERVAL_SPACE
    prepare_real: Callable[..., np.ndarray] | None = None
    settings: tuple[tuple[str, Any], ...] = ()

    def for_layer(self, layer: Any) -> Likelihood:
        """This likelihood with the settings of ``layer``, one of its layers."""
        options = getattr(type(layer), "options", ())
        if not options:
            return self
        return dataclasses.replace(self, settings=tuple(layer.settings().items()))

    def layer_settings(self, config: Any) -> dict[str, Any]:
        """The layer's settings (``layer.options``) as the fields of ``config`` give them."""
        return {name: getattr(config, name) for name in getattr(self.layer, "options", ())}

    def params_size(self, event_shape: Shape) -> int:
        """Numbers the decoder must emit per example."""
        return int(self.layer.params_size(tuple(event_shape)))

    def params_per_pixel(self, event_shape: Shape) -> int:
        """Numbers the decoder must emit per pixel."""
        return self.params_size(event_shape) // math.prod(event_shape)

    def make_layer(self, event_shape: Shape, **kwargs) -> tfk.layers.Layer:
        """The distribution layer that ends the decoder."""
        return self.layer(tuple(event_shape), **kwargs)

    def clip(self, x: tf.Tensor) -> tf.Tensor:
        """Clips observations into an open support by :data:`BETA_EPSILON`.

        Valid inputs are unchanged; it stops a pixel at exactly 0 or 1 from giving
        the Beta an infinite loss.
        """
        if not self.support.open:
            return x
        eps = tf.constant(BETA_EPSILON, x.dtype)
        return tf.clip_by_value(x, self.support.low + eps, self.support.high - eps)

    def negative_log_prob(self, x: tf.Tensor, distribution: tfd.Distribution) -> tf.Tensor:
        r"""The Keras loss :math:`-\log p(x \mid z)`, one value per example."""
        return -distribution.log_prob(self.clip(tf.cast(x, distribution.dtype)))

    def pixels_of(self, params: tf.Tensor, x: tf.Tensor) -> int:
        """Pixels per image, static: from ``x``'s shape, else from the parameters' width.

        A batch from a generator, a ``Sequence`` or a dataset built without full
        shapes has unknown image dimensions; the decoder's output width
        ``params_size(event_shape)`` is static and every layout here is linear in
        the pixel count (``params_size((1,))`` numbers per pixel).

        Raises:
            ValueError: If neither shape tells the pixel count.
        """
        image_dims = tf.TensorShape(x.shape)[1:]  # x may be a NumPy array
        if image_dims.is_fully_defined():
            return math.prod(image_dims)
        width, per_pixel = params.shape[-1], self.params_size((1,))
        if width is None or width % per_pixel:
            raise ValueError(
                f"cannot tell the pixels per image of observations {x.shape} "
                f"from parameters {params.shape}"
            )
        return width // per_pixel

    def log_prob_from_params(self, params: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
        r""":math:`\log p(x \mid z)` from the decoder's raw parameters, ``[batch]``.

        The image is scored as one flat event of ``prod(x.shape[1:])`` pixels (the
        same density: the pixels are independent and the parameters pixel-major).
        XLA on CPU reduces and reshapes multi-axis events markedly slower than a
        flat one; at batch 256 the flat Beta log-prob and its gradient cost 11
        CPU-ms instead of 17. Uses the entry's ``fast_log_prob`` (plain ops,
        XLA-friendly) when it has one, else builds the distribution with the
        layer's ``new``.

        Args:
            params: ``[batch, params_size(event_shape)]``.
            x: ``[batch, *event_shape]`` observations.
        """
        params = tf.reshape(params, [-1, math.prod(params.shape[1:])])  # pixel-major, flat
        pixels = self.pixels_of(params, x)
        x = tf.reshape(self.clip(tf.cast(x, params.dtype)), [-1, pixels])  # [batch, pixels]
        settings = dict(self.settings)
        if self.fast_log_prob is not None:
            return self.fast_log_prob(params, x, **settings)
        return self.layer.new(params, (pixels,), **settings).log_prob(x)


#: The likelihood registry.
LIKELIHOODS: Registry[Likelihood] = Registry("likelihood")

LIKELIHOODS.register(
    "bernoulli",
    Likelihood(
        name="bernoulli",
        layer=tfpl.IndependentBernoulli,
        support=Support(binary=True),
        preprocess=_binarise,
        description="independent Bernoulli per pixel, for binarised images",
        fast_log_prob=_bernoulli_fast_log_prob,
        data_space=BINARISED_SPACE,
    ),
)
LIKELIHOODS.register(
    "beta",
    Likelihood(
        name="beta",
        layer=IndependentBeta,
        support=Support(open=True),
        preprocess=_open_interval,
        description="independent Beta per pixel on (0, 1), the course's decoder",
        fast_log_prob=_beta_fast_log_prob,
    ),
)
LIKELIHOODS.register(
    "continuous_bernoulli",
    Likelihood(
        name="continuous_bernoulli",
        layer=IndependentContinuousBernoulli,
        support=Support(open=True),
        preprocess=_open_interval,
        description="normalised continuous Bernoulli per pixel on [0, 1]",
    ),
)

LIKELIHOODS.register(
    "discretized_logistic",
    Likelihood(
        name="discretized_logistic",
        layer=DiscretizedLogisticMixture,
        support=Support(low=0.0, high=255.0, integer=True),
        preprocess=_levels,
        description="mixture of 5 discretised logistics per pixel on the levels 0..255",
        data_space=LEVELS_SPACE,
    ),
)
LIKELIHOODS.register(
    "categorical",
    Likelihood(
        name="categorical",
        layer=IndependentCategorical,
        support=Support(low=0.0, high=255.0, integer=True),
        preprocess=_levels,
        description="256-way categorical per pixel on the levels 0..255",
        fast_log_prob=categorical_fast_log_prob,
        data_space=LEVELS_SPACE,
    ),
)
LIKELIHOODS.register(
    "gaussian",
    Likelihood(
        name="gaussian",
        layer=IndependentGaussian,
        support=Support(low=-math.inf, high=math.inf),
        preprocess=_open_interval,
        description="independent Normal per dimension with a learned scale, for continuous data",
        fast_log_prob=gaussian_fast_log_prob,
        prepare_real=_standardise,
    ),
)


def log_prob(p: tfd.Distribution, x: tf.Tensor, likelihood: Likelihood | None = None) -> tf.Tensor:
    r""":math:`\log p(x \mid z)` per example, with the guard of the observations' support.

    A registered ``likelihood`` clips into its own support; for any other
    decoder, observations of a Beta (directly or inside ``tfd.Independent``) are
    clipped by :data:`BETA_EPSILON` from 0 and 1, where its log-density is
    infinite. Everything else is scored as it is.
    """
    if likelihood is not None:
        return -likelihood.negative_log_prob(x, p)
    x = tf.cast(x, p.dtype)
    inner = getattr(p, "distribution", p)
    inner = getattr(inner, "tensor_distribution", inner)
    if isinstance(inner, tfd.Beta):
        x = tf.clip_by_value(x, BETA_EPSILON, 1.0 - BETA_EPSILON)
    return p.log_prob(x)


def get_likelihood(name: str) -> Likelihood:
    """Looks up a likelihood by name; unknown names raise ``ValueError``."""
    return LIKELIHOODS.get(name)


__all__ = [
    "BINARISED_SPACE",
    "CONCENTRATIONS",
    "LEVELS_SPACE",
    "LIKELIHOODS",
    "MAX_CONCENTRATION",
    "MAX_GAUSSIAN_SCALE",
    "MIN_CONCENTRATION",
    "MIN_GAUSSIAN_SCALE",
    "UNIT_INTERVAL_SPACE",
    "DataSpace",
    "IndependentBeta",
    "IndependentContinuousBernoulli",
    "IndependentGaussian",
    "Likelihood",
    "PixelwiseDistributionLambda",
    "Support",
    "gaussian_scale",
    "get_likelihood",
    "log_prob",
    "positive_concentration",
]
