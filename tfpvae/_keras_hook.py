"""Makes tf_keras know ``tfpvae>VAE`` whenever tfpvae is imported, without loading TensorFlow.

``import tfpvae`` is lazy, so the module that registers :class:`tfpvae.VAE` with
Keras may never be imported before ``tf_keras.models.load_model(path)`` meets a
saved VAE. Importing tfpvae therefore registers a stand-in under the VAE's Keras
name as soon as tf_keras is loaded (at once if it already is, else when it is);
the stand-in imports the real class when Keras first asks it for a model, and the
real class takes its place in the registry when its module is imported.
"""

from __future__ import annotations

import sys
from typing import Any

from tfpvae._import_hook import around_import

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


def _import_then_register(exec_module: Any, module: Any) -> None:
    exec_module(module)
    _register()


def install() -> None:
    """Registers the stand-in now if tf_keras is loaded, else once it is."""
    if not around_import("tf_keras", _import_then_register):
        _register()
