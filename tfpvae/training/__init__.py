"""Training machinery around the model: input pipeline, checks, fault guard, callbacks, tuning."""

from tfpvae._lazy import submodule_getattr

#: ``tfpvae.training.<module>`` imports that module on first use.
__getattr__ = submodule_getattr(__name__)
