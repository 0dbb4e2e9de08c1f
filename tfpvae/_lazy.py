"""Submodules as attributes of their package, imported on first use (PEP 562).

``import tfpvae`` loads nothing heavy, yet every dotted path the docs write,
``tfpvae.evaluation.bounds.elbo`` say, works after it: ``tfpvae.evaluation``
imports itself on first use (``tfpvae.__getattr__``), and each subpackage's
``__getattr__`` (this module's :func:`submodule_getattr`) imports ``bounds``.

Example:
    >>> import tfpvae
    >>> tfpvae.evaluation.stats.__name__
    'tfpvae.evaluation.stats'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def submodule_getattr(package: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``package.<name>`` on first use."""

    def getattr_(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{package}.{name}":
                raise
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    return getattr_


__all__ = ["submodule_getattr"]
