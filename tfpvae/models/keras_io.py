"""How a VAE meets tf_keras's config, cloning and saving calls.

:class:`KerasModelIO` is a mixin of :class:`tfpvae.VAE`:

* ``get_config()`` describes the model so that ``VAE.from_config`` rebuilds it
  with fresh weights (what ``tf_keras.models.clone_model`` and
  ``tf_keras.models.load_model`` call). A ``build_vae`` model is its recipe, the
  :class:`~tfpvae.config.VAEConfig`, plus ``custom_prior`` (a prior of the user's,
  which ``from_config`` needs back as ``custom_objects={"prior": p}``). Any other
  model is its networks' Keras configs, its prior and its settings
  (:mod:`tfpvae.models.serialization`), and its optimizer when compiled.
* ``vae.save(path)`` to a directory writes a SavedModel with serving signatures
  (:func:`tfpvae.models.serving.export_saved_model`) after checking that the
  config reads back: a model that could not be loaded fails here, at save time.
  ``tf_keras.models.load_model(path)`` reads it back, weights and optimizer state,
  in any process that imported tfpvae. Single-file Keras formats are refused.
* ``tf.saved_model.save(vae, path)`` (and ``tf_keras.models.save_model``) raise a
  ``TypeError`` naming ``vae.save``: they would trace every layer alone, which
  TFP's layers do not support.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from tfpvae._backend import tf, tfk
from tfpvae.models import serialization
from tfpvae.models.serving import export_saved_model, is_keras_file
from tfpvae.registry import Registry

if TYPE_CHECKING:
    from tfpvae.models.vae import VAE

#: Key of ``get_config()`` that records a user-supplied prior.
CUSTOM_PRIOR_KEY = "custom_prior"
#: Name under which ``from_config`` looks the prior up in ``custom_objects``.
PRIOR_OBJECT = "prior"
#: Key of ``get_config()`` that holds a ``build_vae`` model's recipe.
RECIPE_KEY = "recipe"


@dataclass(frozen=True)
class Recipe:
    """How ``build_vae`` made a model: its config, and whether the prior was the user's."""

    config: Any
    custom_prior: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {RECIPE_KEY: self.config.to_dict(), CUSTOM_PRIOR_KEY: self.custom_prior}


#: Builders of recipe models: ``"vae_config"`` → ``(VAEConfig dict, prior) → VAE``
#: (``tfpvae.models.build`` registers it, so that this module need not import it).
RECIPES: Registry = Registry("recipe")


def _tracing_layers_alone() -> bool:
    """Whether a SavedModel save in progress traces every layer (the tf.saved_model default)."""
    from tf_keras.src.saving.legacy.saved_model import utils

    return utils.should_save_traces()


class KerasModelIO:
    """tf_keras config, clone and save support for :class:`tfpvae.VAE` (a mixin)."""

    # A SavedModel's VAE must be rebuilt by from_config: without tfpvae load_model then
    # fails with a clear message, instead of reviving layers whose functions were never saved.
    _must_restore_from_config = True
    # Provided by the VAE this class is mixed into.
    encoder: Any
    decoder: Any
    recipe: Any
    settings: dict

    def get_config(self) -> dict[str, Any]:
        """The recipe of a ``build_vae`` model, else the networks, prior and settings."""
        if self.recipe is not None:
            return self.recipe.to_dict()
        vae = cast("VAE", self)
        if not isinstance(self.settings["objective"], str):
            raise serialization.SerializationError(
                "a VAE with an objective given as a function cannot be written; register it in "
                "tfpvae.OBJECTIVES and pass its name"
            )
        config: dict[str, Any] = {
            "encoder": serialization.serialize_network(self.encoder),
            "decoder": serialization.serialize_network(self.decoder),
            "prior": serialization.serialize_prior(
                vae.prior_layer if vae.prior_layer is not None else vae.parts.prior.fixed
            ),
            "kl_weight": float(vae.kl_weight.numpy()),
            **self.settings,
        }
        if getattr(vae, "optimizer", None) is not None:
            config["optimizer"] = tfk.optimizers.serialize(vae.optimizer)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None):
        """Builds a VAE with fresh weights from :meth:`get_config`'s dict.

        Args:
            config: ``get_config()`` output (or, as in earlier versions, the plain
                ``VAEConfig`` fields with ``custom_prior``).
            custom_objects: May hold the prior under ``"prior"``; required when
                the config says ``custom_prior``. A ``custom_object_scope`` works too.

        Raises:
            ValueError: If the config needs a prior that was not given.
        """
        fields = dict(config)
        for keras_key in ("name", "trainable", "dtype"):
            fields.pop(keras_key, None)
        if "encoder" in fields:
            return cls._from_networks(fields)
        custom_prior = bool(fields.pop(CUSTOM_PRIOR_KEY, False))
        recipe = fields.pop(RECIPE_KEY, fields)
        prior = None
        if custom_prior:
            prior = tfk.utils.get_registered_object(PRIOR_OBJECT, custom_objects)
            if prior is None:
                raise ValueError(
                    "this VAE was built with a custom prior, which its config cannot hold; pass "
                    "it as custom_objects={'prior': prior} or inside "
                    "tf_keras.utils.custom_object_scope({'prior': prior})"
                )
        return RECIPES.get("vae_config")(recipe, prior)

    @classmethod
    def _from_networks(cls, fields: dict[str, Any]):
        optimizer = fields.pop("optimizer", None)
        vae: Any = cls(  # type: ignore[call-arg]  # the VAE this class is mixed into
            serialization.deserialize_network(fields.pop("encoder")),
            serialization.deserialize_network(fields.pop("decoder")),
            serialization.deserialize_prior(fields.pop("prior")),
            **fields,
        )
        if optimizer is not None:
            vae.compile(optimizer=tfk.optimizers.deserialize(optimizer))
            vae.optimizer.build(vae.trainable_variables)
        return vae

    def check_reads_back(self) -> None:
        """Raises ``ValueError`` now if this model's config would not rebuild it on load.

        Rebuilds the model from :meth:`get_config` in this process and compares the
        shapes of the weights, which ``load_model`` and ``tfpvae.load`` restore.
        """
        if self.recipe is not None:
            return  # build_vae's recipe rebuilds its own networks (tests hold it to that)
        try:
            config = self.get_config()
            again = type(self).from_config(
                config, custom_objects={PRIOR_OBJECT: cast("VAE", self).prior}
            )
        except Exception as err:  # any failure here is one load_model would meet later
            raise ValueError(f"this VAE cannot be saved so that it reads back: {err}") from None
        mine = [tuple(w.shape) for w in cast("VAE", self).weights]
        theirs = [tuple(w.shape) for w in again.weights]
        if mine != theirs:
            raise ValueError(
                "this VAE cannot be saved so that it reads back: rebuilt from its config it "
                f"has {len(theirs)} weights of other shapes than its {len(mine)}; build the "
                "networks before VAE(...) and keep their layers in the model"
            )

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
            ValueError: For a single-file Keras format, an unsupported option, or a
                model whose config would not read back.
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
                "signatures"
            )
        self.check_reads_back()
        # Keras writes every layer's config into the SavedModel's metadata too.
        # Keras writes every layer's config into the SavedModel's metadata too; a recipe
        # model is rebuilt from its recipe and keeps Keras's own handling of its layers.
        configs = (
            serialization.kl_layers_serializable()
            if self.recipe is None
            else contextlib.nullcontext()
        )
        with configs, serialization.no_lambda_warnings():
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
