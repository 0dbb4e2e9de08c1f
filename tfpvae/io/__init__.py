"""Data and files: datasets, streaming sources, saving and loading."""

from tfpvae._lazy import submodule_getattr

#: ``tfpvae.io.<module>`` imports that module on first use.
__getattr__ = submodule_getattr(__name__)
