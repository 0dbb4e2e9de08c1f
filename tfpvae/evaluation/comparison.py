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

from dataclasses import dataclass
from typing import Any

import numpy as np

# eight_bit_bound lives with the bounds it reuses (held_out_metrics adds its column);
# it is imported here, as before, for the table and for the public name.
from tfpvae.evaluation.bounds import PARAMS_PER_CALL, eight_bit_bound

__all__ = ["PARAMS_PER_CALL", "ComparisonRow", "comparison_rows", "eight_bit_bound", "format_rows"]


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
