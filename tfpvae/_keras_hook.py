"""Makes tf_keras know ``tfpvae>VAE`` whenever tfpvae is imported, without loading TensorFlow.

``import tfpvae`` is lazy, so the module that registers :class:`tfpvae.VAE` with
Keras may never be imported before ``tf_keras.models.load_model(path)`` meets a
saved VAE. Importing tfpvae therefore registers a stand-in under the VAE's Keras
name as soon as tf_keras is loaded (at once if it already is, else when it is);
the stand-in imports the real class when Keras first asks it for a model, and the
real class takes its place in the registry when its module is imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any

#: The name ``tfpvae.models.vae`` registers the VAE under.
KERAS_NAME = "tfpvae>VAE"
_REGISTRY_MODULE = "tf_keras.src.saving.object_registration"


class _VAEStandIn:
    """Registered under :data:`KERAS_NAME` until the real class is imported."""

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Any:
        from tfpvae.models.vae import VAE

        return VAE.from_config(config, custom_objects=custom_objects)


def _register() -> None:
    registry = sys.modules.get(_REGISTRY_MODULE)
    if registry is not None:
        registry._GLOBAL_CUSTOM_OBJECTS.setdefault(KERAS_NAME, _VAEStandIn)


class _WhenKerasLoads(importlib.abc.MetaPathFinder):
    """Runs :func:`_register` right after ``tf_keras`` finishes importing."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "tf_keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module: Any) -> None:
            exec_module(module)
            _register()

        spec.loader.exec_module = exec_then_register  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Registers the stand-in now if tf_keras is loaded, else once it is."""
    if "tf_keras" in sys.modules:
        _register()
    elif not any(isinstance(finder, _WhenKerasLoads) for finder in sys.meta_path):
        sys.meta_path.insert(0, _WhenKerasLoads())
