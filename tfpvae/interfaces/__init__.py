"""What users drive: the command line, whole training runs and the notebooks' helpers."""

from tfpvae._lazy import submodule_getattr

#: ``tfpvae.interfaces.<module>`` imports that module on first use.
__getattr__ = submodule_getattr(__name__)
