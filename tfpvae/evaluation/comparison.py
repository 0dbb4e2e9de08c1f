r"""One column that compares likelihoods: bits per dimension of the 8-bit images.

Each likelihood models other data: the Beta, continuous Bernoulli and Gaussian a
density of pixels scaled into (0, 1), the discrete likelihoods the levels
0..255, the Bernoulli binarised images. A number is comparable only when it
bounds the same thing, :math:`\log P(x)` of the 8-bit image :math:`x`, which
each likelihood's :class:`~tfpvae.components.likelihoods.DataSpace` says how to get:

* levels (``discretized_logistic``, ``categorical``): the IWAE bound
  :math:`\mathcal{L}_k(x) \le \log P(x)` itself;
* (0, 1) (``beta``, ``continuous_bernoulli``, ``gaussian``): the IWAE bound on
  uniformly dequantised data :math:`y = (x + u)/256`, one fresh :math:`u` per
  image, minus :math:`D \log 256`; its expectation over :math:`u` is
  :math:`\le \log P(x)` (:mod:`tfpvae.components.dequantize`);
* binarised (``bernoulli``): not comparable, so not in the column.

Bits per dimension are :math:`-\text{bound} / (D \ln 2)`, lower is better; the
standard error is over images (and so includes the dequantisation noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfpvae.evaluation.bounds import iwae_bound
from tfpvae.io.datasets import prepare

#: Decoder parameters (floats) per decoder call of the evaluation: about 64 MB, so
#: that a 256-way categorical over 28×28 pixels (200,704 per image) stays small.
PARAMS_PER_CALL = 2**24


@dataclass(frozen=True)
class ComparisonRow:
    """One model's entry in the comparison table.

    Attributes:
        likelihood: The likelihood's registry name.
        quantity: What the number is of, e.g. ``"bits/dim of the 8-bit images"``.
        bits_per_dim: The comparable bits/dim (``None`` when not comparable).
        se: Its standard error over images (``None`` when not comparable).
        bound: Which bound it is, or why there is none.
    """

    likelihood: str
    quantity: str
    bits_per_dim: float | None
    se: float | None
    bound: str


def eight_bit_bound(
    vae: Any,
    pixels: np.ndarray,
    k: int = 100,
    seed: int = 0,
    prepared: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, float | str | None]:
    """Bits/dim of the 8-bit images ``pixels`` under ``vae``, with which bound it is.

    Args:
        vae: A :class:`~tfpvae.VAE`.
        pixels: uint8 images ``[n, *input_shape]``.
        k: Importance samples of the IWAE bound.
        seed: Seed of the draws and of the dequantisation noise.
        prepared: ``(x, per-image IWAE bound)`` already computed on some
            preparation of ``pixels``; reused when ``x`` is exactly the data this
            evaluation needs (the levels of a discrete likelihood).

    Returns:
        ``bits_per_dim_8bit`` and ``bits_per_dim_8bit_se`` (``None`` for a
        likelihood whose data space is not comparable), ``bound`` and ``data_space``.
    """
    likelihood = vae.likelihood
    space = likelihood.data_space
    out: dict[str, float | str | None] = {
        "bits_per_dim_8bit": None,
        "bits_per_dim_8bit_se": None,
        "bound": space.bound if not space.comparable else f"{space.bound}, k={k}",
        "data_space": space.name,
    }
    if not space.comparable:
        return out
    options = {"dequantize": space.dequantize, "seed": seed} if space.dequantize else {}
    x = prepare(pixels, likelihood.name, **options)
    if prepared is not None and prepared[0].shape == x.shape and np.array_equal(prepared[0], x):
        bound = prepared[1]
    else:
        rows = max(1, PARAMS_PER_CALL // likelihood.params_size(pixels.shape[1:]))
        chunk = min(k, rows)
        batch = max(1, min(100, rows // chunk))
        bound = iwae_bound(vae, x, k=k, batch_size=batch, chunk_size=chunk, seed=seed)
    n_dims = math.prod(pixels.shape[1:])
    per_image = -(bound + n_dims * space.log_jacobian_per_dim) / (n_dims * math.log(2.0))
    out["bits_per_dim_8bit"] = float(per_image.mean())
    se = per_image.std(ddof=1) / math.sqrt(len(per_image)) if len(per_image) > 1 else 0.0
    out["bits_per_dim_8bit_se"] = float(se)
    return out


def comparison_rows(
    models: dict[str, Any], pixels: np.ndarray, k: int = 100, seed: int = 0
) -> list[ComparisonRow]:
    """The comparison table for several models on the same 8-bit test images.

    Args:
        models: Label → VAE (the label is usually the likelihood name).
        pixels: uint8 test images.
        k: Importance samples.
        seed: Seed of the draws and the dequantisation noise.

    Returns:
        One :class:`ComparisonRow` per model, in the order given.
    """
    rows = []
    for label, vae in models.items():
        result = eight_bit_bound(vae, pixels, k=k, seed=seed)
        space = vae.likelihood.data_space
        quantity = "bits/dim of the 8-bit images" if space.comparable else space.name
        rows.append(
            ComparisonRow(
                label,
                quantity,
                _number(result["bits_per_dim_8bit"]),
                _number(result["bits_per_dim_8bit_se"]),
                str(result["bound"]),
            )
        )
    return rows


def format_rows(rows: list[ComparisonRow]) -> str:
    """A plain-text table; lower bits/dim is better, '—' marks a non-comparable model."""
    lines = [f"{'likelihood':22s}{'bits/dim':>10s}{'± SE':>9s}  which number"]
    for row in rows:
        if row.bits_per_dim is None:
            lines.append(f"{row.likelihood:22s}{'—':>10s}{'':>9s}  {row.bound}")
        else:
            lines.append(f"{row.likelihood:22s}{row.bits_per_dim:10.4f}{row.se:9.4f}  {row.bound}")
    return "\n".join(lines)


def _number(value: float | str | None) -> float | None:
    """A metric that is a number (or absent), as ``float``."""
    return None if value is None else float(value)
