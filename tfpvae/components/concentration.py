r"""The maps from a decoder's raw outputs to the Beta likelihood's concentrations.

Chosen by name from :data:`CONCENTRATIONS` (the ``concentration`` field of
:class:`~tfpvae.config.VAEConfig`):

* ``"exp"`` (the default): the course's exponential, guarded and capped,

  .. math:: c = \min\!\big(c_{\min} + \exp\!\big(L - \operatorname{softplus}(L - a)\big),
      \ c_{\text{exp}}\big), \qquad L = \log c_{\text{exp}},

  with :math:`c_{\text{exp}}` = :data:`EXP_MAX_CONCENTRATION`. That is
  :math:`c_{\min} + e^{a} / (1 + e^{a} / c_{\text{exp}})`: for :math:`a \le 0` the
  course's :math:`c_{\min} + e^{a}` to 0.05 %, so :math:`\log c` moves one for one
  with :math:`a` at every small scale, and above it a smooth saturation.
  :math:`\exp` never sees an argument above :math:`L`, so it cannot overflow, and
  its gradient :math:`e^{a}\,\sigma(L - a)` stays finite for any :math:`a`. Without
  the ceiling (the course's ``exp``, or :math:`c_{\text{exp}} = 10^6`) a decoder
  learns Betas far narrower than a quantisation step, spiked at the midpoints
  :math:`(x + \tfrac12)/256` the data were prepared at: that raises the bound on
  those midpoints and ruins the bound on the 8-bit images (``docs/defaults.md``).
* ``"softplus"`` (the default before issue 22 of the project):
  :math:`c = \min(\operatorname{softplus}(a) + c_{\min},\ c_{\max})`, linear for
  large :math:`a`. A background pixel of Fashion-MNIST, :math:`x = 0.5/256`, is
  scored best by a Beta with :math:`c_0` near :math:`1/x \approx 500`: the
  decoder's output must climb to about 500 under this map, to about 6 under the
  exponential. After 10 epochs on the 1,600-image sample the softplus default sat
  about 300 nats per image below the exponential (``benchmarks/defaults.py``,
  ``docs/defaults.md``).

Both are never below :data:`MIN_CONCENTRATION` (``lbeta`` stays finite) nor above
:data:`MAX_CONCENTRATION` (no ``inf``, hence no ``nan``, from a diverging run).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from tfpvae._backend import tf
from tfpvae.registry import Registry

#: Smallest Beta concentration. Keeps ``lbeta`` finite and the density integrable.
MIN_CONCENTRATION = 1e-4
#: Largest Beta concentration of ``"softplus"``; it only stops a diverging run from
#: producing ``inf`` (and then ``nan``) parameters.
MAX_CONCENTRATION = 1e6
#: Ceiling of ``"exp"``. Two concentrations of at most 3,000 keep a Beta at least
#: about as wide as a quantisation step (1/256) for mid-grey pixels, so the decoder
#: cannot buy density with spikes at the midpoints ``(x + ½)/256`` that no 8-bit
#: image would back (``docs/defaults.md``: the bound on the 8-bit images).
EXP_MAX_CONCENTRATION = 3e3
#: The map :class:`~tfpvae.components.likelihoods.IndependentBeta` uses unless told.
DEFAULT_CONCENTRATION = "exp"


def exp_concentration(raw: tf.Tensor) -> tf.Tensor:
    r"""The guarded exponential :math:`\min(c_{\min} + e^{L - \operatorname{softplus}(L - a)},
    c_{\text{exp}})`, :math:`L = \log c_{\text{exp}}` (:data:`EXP_MAX_CONCENTRATION`)."""
    log_max = tf.constant(math.log(EXP_MAX_CONCENTRATION), raw.dtype)
    c = MIN_CONCENTRATION + tf.exp(log_max - tf.math.softplus(log_max - raw))
    return tf.minimum(c, EXP_MAX_CONCENTRATION)


def softplus_concentration(raw: tf.Tensor) -> tf.Tensor:
    r""":math:`\min(\operatorname{softplus}(a) + c_{\min},\ c_{\max})`, linear for large ``a``."""
    return tf.minimum(tf.math.softplus(raw) + MIN_CONCENTRATION, MAX_CONCENTRATION)


#: Concentration maps by name: ``raw → c`` elementwise, into [c_min, c_max].
CONCENTRATIONS: Registry[Callable[[tf.Tensor], tf.Tensor]] = Registry("concentration")
CONCENTRATIONS.register("exp", exp_concentration)
CONCENTRATIONS.register("softplus", softplus_concentration)


def positive_concentration(raw: tf.Tensor, concentration: str = DEFAULT_CONCENTRATION) -> tf.Tensor:
    """Maps unconstrained decoder outputs to Beta concentrations.

    Args:
        raw: Unconstrained tensor of any shape.
        concentration: A name from :data:`CONCENTRATIONS`, ``"exp"`` or ``"softplus"``.

    Returns:
        A tensor of the same shape with values in ``[MIN_CONCENTRATION, MAX_CONCENTRATION]``.
    """
    return CONCENTRATIONS.get(concentration)(tf.convert_to_tensor(raw))


__all__ = [
    "CONCENTRATIONS",
    "DEFAULT_CONCENTRATION",
    "EXP_MAX_CONCENTRATION",
    "MAX_CONCENTRATION",
    "MIN_CONCENTRATION",
    "exp_concentration",
    "positive_concentration",
    "softplus_concentration",
]
