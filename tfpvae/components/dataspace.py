"""What a likelihood's observations are, and how its bound relates to the 8-bit images."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class DataSpace:
    r"""What a likelihood's observations are, and how its bound relates to the 8-bit images.

    Attributes:
        name: The observations, in words.
        comparable: Whether the likelihood's bound, evaluated on data prepared
            with ``prepare(..., dequantize=dequantize)``, bounds
            :math:`\log P(x)` of the 8-bit images ``x``.
        bound: Which number the comparable bits/dim is, for tables.
        log_jacobian_per_dim: Added per dimension to a bound on the observations
            to turn it into one on the 8-bit levels: :math:`-\log 256` for
            :math:`y = (x + u)/256`, 0 for the levels themselves.
        dequantize: The ``prepare`` option of the comparable evaluation.
        unit_scale: Observations times this lie in [0, 1]: the encoder's input
            scaling, and how samples are shown.
    """

    name: str
    comparable: bool
    bound: str
    log_jacobian_per_dim: float = 0.0
    dequantize: str | None = None
    unit_scale: float = 1.0


#: The 8-bit levels 0..255 themselves: the bound is one on log P(x) directly.
LEVELS_SPACE = DataSpace(
    "8-bit levels 0..255", True, "discrete log-likelihood (IWAE lower bound)", unit_scale=1 / 255
)
#: Pixels scaled into (0, 1): comparable after uniform dequantisation.
UNIT_INTERVAL_SPACE = DataSpace(
    "pixels / 256 in (0, 1)",
    True,
    "uniform-dequantised lower bound (IWAE)",
    log_jacobian_per_dim=-math.log(256.0),
    dequantize="uniform",
)
#: Binarised images: another data space, not comparable with the others.
BINARISED_SPACE = DataSpace("binarised pixels {0, 1}", False, "binarised data, not comparable")
