"""Run code around the first import of another package, whoever imports it.

``import tfpvae`` must not import TensorFlow or tf_keras (``tfpvae --help`` stays
fast), yet two things must happen when they load: TensorFlow's start-up log is
filtered (:mod:`tfpvae._native_log`) and tfpvae's VAE is registered with
tf_keras (:mod:`tfpvae._keras_hook`). :func:`around_import` puts a finder first
on ``sys.meta_path`` that, asked for that one package, removes itself and
wraps its loader's ``exec_module``. This module imports nothing of either.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

#: ``around(exec_module, module)``: runs ``exec_module(module)`` with what it adds.
Around = Callable[[Callable[[ModuleType], None], ModuleType], None]


class _AroundImport(importlib.abc.MetaPathFinder):
    """Wraps the loading of the top-level package ``name`` in ``around``, once."""

    def __init__(self, name: str, around: Around) -> None:
        self.name, self.around = name, around

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def wrapped(module: ModuleType) -> None:
            self.around(exec_module, module)

        spec.loader.exec_module = wrapped  # type: ignore[method-assign]
        return spec


def around_import(name: str, around: Around) -> bool:
    """Runs ``around`` when ``name`` is first imported; ``False`` if it already is.

    Installing twice for one package keeps one finder.
    """
    if name in sys.modules:
        return False
    if not any(isinstance(f, _AroundImport) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _AroundImport(name, around))
    return True


__all__ = ["around_import"]
