"""Save and load a VAE as its config plus its weights.

A ``build_vae`` model is saved as ``config.json`` (its
:class:`~tfpvae.config.VAEConfig`) and ``model.weights.h5``: loading rebuilds it from
the recipe, so no layer is serialised. A model built from a user's networks is
saved as ``VAE.get_config()`` (the networks' Keras configs, in which TFP's layers
pickle their functions: load them with the Python and TFP versions that wrote
them). Either way ``save`` first checks that the config rebuilds the model, and
refuses with a message otherwise. Loading loads the weights into the rebuilt
model. Files are written to temporary names and renamed into place, so a crash
never leaves a half-written model behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from tfpvae._backend import tfd
from tfpvae.config import VAEConfig
from tfpvae.files import ModelFileError, atomic_write_text
from tfpvae.models import VAE, build_vae_from_config

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
FORMAT_VERSION = 1
#: ``config.json`` of a model built from a user's networks (``"vae"``: ``VAE.get_config()``).
NETWORKS_FORMAT = 2


@contextlib.contextmanager
def _no_lambda_warnings() -> Iterator[None]:
    """Keras stores each layer's config beside the weights and warns that
    DistributionLambda's lambdas are not reloadable; tfpvae never reloads them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*includes a `lambda`")
        # TFP's autoregressive networks (IAF posterior) keep masked initializer functions.
        warnings.filterwarnings("ignore", message=".*should only be used for objects of type")
        yield


def save(vae: VAE, directory: str | os.PathLike, extra: dict | None = None) -> Path:
    """Saves ``vae``'s config and weights into ``directory``.

    Args:
        vae: The model.
        directory: Created if missing. Existing model files are replaced atomically.
        extra: More JSON-ready entries to keep beside the model config (the CLI
            stores its training options here).

    Returns:
        The directory.
    """
    vae.check_reads_back()  # a model that would not load fails here, before any file is written
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".weights.h5")
    os.close(fd)
    try:
        with _no_lambda_warnings():
            vae.save_weights(tmp)
        os.replace(tmp, directory / WEIGHTS_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    write_config(vae, directory, extra)
    return directory


def write_config(vae: VAE, directory: str | os.PathLike, extra: dict | None = None) -> Path:
    """Writes only ``config.json`` (``tfpvae train`` does so before its first epoch)."""
    if vae.recipe is not None:
        payload = {
            "format_version": FORMAT_VERSION,
            "model": vae.config.to_dict(),
            # Recorded from how the model was built, never guessed from the prior's name.
            "custom_prior": bool(vae.recipe.custom_prior),
            **(extra or {}),
        }
    else:  # a user's networks: their Keras configs, the prior and the settings
        payload = {"format_version": NETWORKS_FORMAT, "vae": vae.get_config(), **(extra or {})}
    path = Path(directory) / CONFIG_FILE
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True))
    return path


def read_config(directory: str | os.PathLike) -> dict:
    """Reads and checks ``config.json`` of a saved model; returns the whole payload."""
    path = Path(directory) / CONFIG_FILE
    if not Path(directory).is_dir():
        raise ModelFileError(f"no saved model at {directory}: the directory does not exist")
    if not path.is_file():
        raise ModelFileError(f"no saved model at {directory}: {CONFIG_FILE} is missing")
    try:
        payload = json.loads(path.read_text())
        if "vae" in payload:
            if not {"encoder", "decoder"} <= set(payload["vae"]):
                raise KeyError("vae.encoder / vae.decoder")
        else:
            VAEConfig.from_saved(payload["model"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"{path} is not a valid tfpvae config: {err}") from None
    return payload


def load(directory: str | os.PathLike, prior: tfd.Distribution | None = None) -> VAE:
    """Rebuilds a saved VAE from its config and loads its weights.

    Args:
        directory: A directory written by :func:`save` or ``tfpvae train``.
        prior: The prior, required when the model was saved with a custom one.

    Returns:
        The compiled :class:`~tfpvae.VAE`.

    Raises:
        ModelFileError: If files are missing or corrupted, or the weights do not
            fit the config.
    """
    payload = read_config(directory)
    if payload.get("custom_prior") and prior is None:
        raise ModelFileError(
            f"the model in {directory} was trained with a custom prior; "
            "pass it as load(..., prior=...)"
        )
    weights = Path(directory) / WEIGHTS_FILE
    if not weights.is_file():
        hint = (
            "; its training has not finished: continue it with "
            f"`tfpvae train --resume --out {directory}`"
            if (Path(directory) / "checkpoints").is_dir()
            else ""
        )
        raise ModelFileError(f"no weights in {directory}: {WEIGHTS_FILE} is missing{hint}")
    if "vae" in payload:
        vae = VAE.from_config(payload["vae"])
    else:
        vae = build_vae_from_config(VAEConfig.from_saved(payload["model"]), prior=prior)
    try:
        with _no_lambda_warnings():
            vae.load_weights(weights)
    except Exception as err:  # h5py and Keras raise several kinds here
        raise ModelFileError(
            f"cannot load {weights} into a model built from {CONFIG_FILE} "
            f"(corrupted file, or weights from a different model shape): {err}"
        ) from None
    return vae
