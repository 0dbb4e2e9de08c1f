"""How a VAE meets tf_keras's config, cloning and saving calls.

:class:`KerasModelIO` is a mixin of :class:`tfpvae.VAE`:

* ``get_config()`` is the :class:`~tfpvae.config.VAEConfig` as a dict, plus
  ``custom_prior`` (whether the model was built with a prior of the user's);
* ``VAE.from_config(config)`` rebuilds a compiled VAE with fresh weights, which is
  what ``tf_keras.models.clone_model(vae)`` calls. A config with
  ``custom_prior`` needs the prior, given as ``custom_objects={"prior": p}`` or
  inside ``tf_keras.utils.custom_object_scope({"prior": p})``;
* ``vae.save(path)`` to a directory writes a SavedModel with serving signatures
  (:func:`tfpvae.models.serving.export_saved_model`); ``tf_keras.models.load_model(path)``
  reads it back, weights and optimizer state, while tfpvae is imported.
  Single-file Keras formats are refused: the TFP distribution layers cannot be
  rebuilt from Keras's layer configs, so ``tfpvae.save`` (config + weights) or
  ``save_weights`` is the way there;
* ``tf.saved_model.save(vae, path)`` (and ``tf_keras.models.save_model``) raise a
  ``TypeError`` naming ``vae.save``: they would trace every layer alone, which
  TFP's layers do not support.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, cast

from tfpvae._backend import tf, tfk
from tfpvae.models.serving import export_saved_model, is_keras_file

if TYPE_CHECKING:
    from tfpvae.models.vae import VAE

#: Key of ``get_config()`` that records a user-supplied prior.
CUSTOM_PRIOR_KEY = "custom_prior"
#: Name under which ``from_config`` looks the prior up in ``custom_objects``.
PRIOR_OBJECT = "prior"


def _tracing_layers_alone() -> bool:
    """Whether a SavedModel save in progress traces every layer (the tf.saved_model default)."""
    from tf_keras.src.saving.legacy.saved_model import utils

    return utils.should_save_traces()


class KerasModelIO:
    """tf_keras config, clone and save support for :class:`tfpvae.VAE` (a mixin)."""

    # A SavedModel's VAE must be rebuilt by from_config: without tfpvae (or without a
    # custom prior) load_model then fails with from_config's message, instead of
    # reviving layers whose TFP functions were never saved.
    _must_restore_from_config = True
    # Provided by the VAE this class is mixed into.
    config: Any
    custom_prior: bool

    def get_config(self) -> dict[str, Any]:
        """The model's :class:`~tfpvae.config.VAEConfig` fields and ``custom_prior``."""
        return {**self.config.to_dict(), CUSTOM_PRIOR_KEY: bool(self.custom_prior)}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None):
        """Builds a compiled VAE with fresh weights from :meth:`get_config`'s dict.

        Args:
            config: ``get_config()`` output (or the plain ``VAEConfig`` fields).
            custom_objects: May hold the prior under ``"prior"``; required when
                the config says ``custom_prior``. A ``custom_object_scope`` works too.

        Raises:
            ValueError: If the config needs a prior that was not given.
        """
        from tfpvae.config import VAEConfig
        from tfpvae.models.build import build_vae_from_config

        fields = dict(config)
        custom_prior = bool(fields.pop(CUSTOM_PRIOR_KEY, False))
        for keras_key in ("name", "trainable", "dtype"):
            fields.pop(keras_key, None)
        prior = None
        if custom_prior:
            prior = tfk.utils.get_registered_object(PRIOR_OBJECT, custom_objects)
            if prior is None:
                raise ValueError(
                    "this VAE was built with a custom prior, which its config cannot hold; pass "
                    "it as custom_objects={'prior': prior} or inside "
                    "tf_keras.utils.custom_object_scope({'prior': prior})"
                )
        return build_vae_from_config(VAEConfig.from_dict(fields), prior=prior)

    def save(
        self,
        filepath: str | os.PathLike,
        overwrite: bool = True,
        save_format: str | None = None,
        options: tf.saved_model.SaveOptions | None = None,
        **kw: Any,
    ) -> None:
        """Writes a SavedModel with serving signatures (see :mod:`tfpvae.models.serving`).

        Args:
            filepath: A directory. ``.h5``/``.keras`` files are refused.
            overwrite: Replace an existing SavedModel.
            save_format: ``None`` or ``"tf"``.
            options: ``tf.saved_model.SaveOptions`` (``ModelCheckpoint`` passes its own).
            **kw: Keras's other ``save`` options are not supported here.

        Raises:
            ValueError: For a single-file Keras format or an unsupported option.
        """
        if is_keras_file(filepath) or save_format not in (None, "tf"):
            raise ValueError(
                f"a tfpvae VAE cannot be saved as {filepath!s} (format {save_format or 'h5/keras'}"
                "): its TFP distribution layers do not rebuild from Keras layer configs; use "
                "tfpvae.save(vae, directory) for config + weights, vae.save_weights(path) for "
                "weights only, or vae.save(directory) for a SavedModel"
            )
        if kw:
            raise ValueError(
                f"VAE.save does not take {sorted(kw)}: it writes a SavedModel with serving "
                "signatures and without optimizer state"
            )
        export_saved_model(cast("VAE", self), filepath, overwrite=overwrite, options=options)

    def _trackable_children(self, save_type: str = "checkpoint", **kwargs):
        if save_type == "savedmodel" and _tracing_layers_alone():
            raise TypeError(
                "a tfpvae VAE cannot be saved by tracing its TFP distribution layers one by one "
                "(as tf.saved_model.save and tf_keras.models.save_model do); use "
                "vae.save(directory), which writes a SavedModel with the serving signatures "
                "encode, decode, sample and elbo"
            )
        return super()._trackable_children(save_type, **kwargs)  # type: ignore[misc]
