"""Per-epoch training checkpoints that survive a kill at any moment.

A checkpoint holds everything a resumed run needs to continue exactly where
the interrupted one stopped: the weights, the optimizer's slots and step count,
and the state of the noise generator. It is written by
``tf.train.Checkpoint`` into a fresh temporary directory, which is then renamed
to ``epoch-NNNN``; only after that does ``latest.json`` (itself written to a
temporary file and renamed) point at it, and only then are older checkpoints
removed. A kill at any point therefore leaves ``latest.json`` naming a complete
checkpoint, or no checkpoint at all::

    checkpoints/
        latest.json        {"epoch": 3, "path": "epoch-0003"}
        epoch-0003/ckpt.index, ckpt.data-00000-of-00001
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from tfpvae._backend import tf, tfk
from tfpvae.files import ModelFileError, atomic_write_text

LATEST = "latest.json"
PREFIX = "ckpt"


class Checkpoints:
    """The checkpoint directory of one run.

    Args:
        vae: The model whose state is saved and restored (built and compiled).
        directory: Where checkpoints live; created on the first write.
    """

    def __init__(self, vae: tfk.Model, directory: str | Path) -> None:
        self.vae = vae
        self.directory = Path(directory)
        self.checkpoint = tf.train.Checkpoint(
            model=vae, optimizer=vae.optimizer, noise=vae.noise, kl_weight=vae.kl_weight
        )

    def latest_epoch(self) -> int:
        """Epochs completed by the newest checkpoint; 0 if there is none."""
        pointer = self._pointer()
        return 0 if pointer is None else int(pointer["epoch"])

    def _pointer(self) -> dict | None:
        path = self.directory / LATEST
        if not path.is_file():
            return None
        try:
            pointer = json.loads(path.read_text())
            int(pointer["epoch"])
            str(pointer["path"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"{path} is not a valid checkpoint pointer: {err}") from None
        return pointer

    def write(self, epoch: int) -> Path:
        """Saves the state after ``epoch`` completed epochs; returns its directory."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch:04d}"
        staging = Path(tempfile.mkdtemp(dir=self.directory, prefix=".tmp-"))
        try:
            self.checkpoint.write(str(staging / PREFIX))
            final = self.directory / name
            if final.exists():  # left by a run killed before it updated the pointer
                shutil.rmtree(final)
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        atomic_write_text(self.directory / LATEST, json.dumps({"epoch": epoch, "path": name}))
        for stale in self.directory.iterdir():
            if stale.is_dir() and stale.name != name:
                shutil.rmtree(stale, ignore_errors=True)
        return final

    def restore(self) -> int:
        """Loads the newest checkpoint into the model; returns its epoch (0 if none)."""
        pointer = self._pointer()
        if pointer is None:
            return 0
        path = self.directory / pointer["path"] / PREFIX
        try:
            self.checkpoint.read(str(path)).assert_existing_objects_matched()
        except (tf.errors.OpError, AssertionError, ValueError) as err:
            raise ModelFileError(
                f"cannot restore the checkpoint {path} (corrupted, or from a different "
                f"model): {str(err).splitlines()[0]}"
            ) from None
        return int(pointer["epoch"])


class EpochCheckpoint(tfk.callbacks.Callback):
    """Writes a :class:`Checkpoints` entry at the end of every finite epoch."""

    def __init__(self, checkpoints: Checkpoints) -> None:
        super().__init__()
        self.checkpoints = checkpoints

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if getattr(self.model, "training_fault", None) is None:
            self.checkpoints.write(epoch + 1)
