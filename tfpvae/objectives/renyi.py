r"""The variational Rényi bound as a training loss: the ``"renyi"`` objective.

Li & Turner (2016) bound :math:`\log p(x)` with the Rényi divergence of order α;
its K-sample estimate, with :math:`z_k \sim q(z|x)`, is

.. math::

    \mathcal{L}_\alpha(x) = \frac{1}{1-\alpha}\log\frac1K\sum_{k=1}^K w_k^{1-\alpha},
    \qquad
    \log w_k = \log p(x|z_k) + \beta\,\big(\log p(z_k) - \log q(z_k|x)\big),

and the per-image loss is :math:`-\mathcal{L}_\alpha(x)` (a log-sum-exp of
:math:`(1-\alpha)\log w_k`). β tempers the prior ratio exactly as in the ELBO and
the IWAE (β = 1 is the bound). K is ``n_samples``.

* α = 0 is the IWAE bound, at the same draws bit for bit (the IWAE *is* this
  objective at α = 0: :class:`~tfpvae.objectives.iwae.IWAE` runs both).
* α → 1 tends to the K-draw ELBO :math:`\frac1K\sum_k \log w_k` (with the KL
  sampled at the draws). α = 1 itself divides by zero and is **refused**: use
  ``objective="elbo"`` with ``n_samples=K``.
* For α ∈ (0, 1) the bound lies between the IWAE's and the ELBO's; α < 0 gives
  values above the IWAE (in the limit of many draws an upper bound of log p(x)),
  α > 1 below the ELBO.

**DReG for the Rényi bound.** Write :math:`\tilde w_k = w_k^{1-\alpha}/\sum_j
w_j^{1-\alpha}`. The total gradient is
:math:`\nabla\mathcal{L}_\alpha = \sum_k \tilde w_k \nabla\log w_k`. For the
encoder, :math:`\nabla_\phi\log w_k = \partial_{z}\log w_k\,\partial_\phi z_k -
\partial_\phi\log q_\phi(z_k|x)`, and the score term is rewritten with the
reparameterisation identity :math:`\mathbb{E}_q[f(z)\,\partial_\phi\log q_\phi(z)]
= \mathbb{E}[\partial_z f\,\partial_\phi z]` applied to :math:`f = \tilde w_k`
as a function of :math:`z_k`, with
:math:`\partial_{z_k}\tilde w_k = (1-\alpha)\,\tilde w_k(1-\tilde w_k)\,
\partial_{z_k}\log w_k`:

.. math::

    \nabla_\phi\mathcal{L}_\alpha \;\hat=\; \sum_k
    \big(\alpha\,\tilde w_k + (1-\alpha)\,\tilde w_k^2\big)\,
    \partial_{z}\log w_k\,\partial_\phi z_k .

At α = 0 this is Tucker et al.'s :math:`\tilde w_k^2`; as α → 1 the weights tend
to 1/K, sticking the landing for the ELBO. The decoder (and a learned prior)
keep the ordinary :math:`\sum_k \tilde w_k\nabla\log w_k`.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from tfpvae.objectives.base import OBJECTIVES, Objective, Parts, refuse_options
from tfpvae.objectives.fused import FusedIWAE, fused_applies
from tfpvae.objectives.iwae import IWAE


def check_alpha(alpha: Any) -> float:
    """α as a float, refusing α = 1, non-numbers and infinities with the fix."""
    if alpha is None:
        raise ValueError(
            "objective='renyi' needs alpha=α (e.g. alpha=0.5; 0 is the IWAE bound, α → 1 the ELBO)"
        )
    number = alpha if isinstance(alpha, numbers.Real) and not isinstance(alpha, bool) else math.nan
    if not math.isfinite(number):
        raise ValueError(f"alpha must be a finite number (≠ 1), got {alpha!r}")
    if number == 1.0:
        raise ValueError(
            "alpha=1 is the ELBO's limit, where the Rényi bound divides by zero; use "
            "objective='elbo' (with n_samples=K), or an α near 1 such as 0.99"
        )
    return float(number)


class Renyi(IWAE):
    """The K-sample variational Rényi loss through the TFP distributions.

    Args:
        parts: The model's :class:`~tfpvae.objectives.base.Parts`.
        k: K, draws per image.
        alpha: α ≠ 1.
        gradient: ``"standard"`` (``None``) or ``"dreg"``.
    """

    name = "renyi"

    def __init__(self, parts: Parts, k: int, alpha: float, gradient: str | None = None) -> None:
        super().__init__(parts, k, gradient=gradient, alpha=check_alpha(alpha))


def make_renyi(
    parts: Parts,
    n_samples: int = 1,
    alpha: float | None = None,
    gradient: str | None = None,
    free_bits: Any = None,
    **_: Any,
) -> Objective:
    """The ``"renyi"`` objective with K = ``n_samples``: fused where the parts allow it."""
    refuse_options("renyi", free_bits=free_bits)
    if fused_applies(parts, gradient=gradient):
        return FusedIWAE(parts, n_samples, alpha=check_alpha(alpha))
    return Renyi(parts, n_samples, check_alpha(alpha), gradient=gradient)


OBJECTIVES.register("renyi", make_renyi)
