"""Held-out bounds, diagnostics and figures (``tfpvae.evaluation.plots`` imports matplotlib)."""

from tfpvae._lazy import submodule_getattr

#: ``tfpvae.evaluation.<module>`` imports that module on first use.
__getattr__ = submodule_getattr(__name__)
