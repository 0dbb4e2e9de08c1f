"""Files that are either whole or absent, and the error for a bad saved model."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class ModelFileError(ValueError):
    """A saved model directory is missing, corrupted or does not match its config."""


def atomic_write_text(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
