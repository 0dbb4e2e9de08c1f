"""Where a run's data lives, so that a run directory works from any working directory.

``tfpvae train`` records in ``config.json`` the Keras cache it read the data from
as an absolute path (``train.cache_dir``: the ``--cache-dir`` given, else
``$TFPVAE_KERAS_CACHE``, else ``null`` for Keras's own ``~/.keras``), and the
working directory it ran in (``cwd``). ``tfpvae evaluate`` and ``tfpvae plot``
then find the data from anywhere. The cache they read is, first match wins:

1. ``--cache-dir`` (``cache_dir=`` of :func:`run_cache_dir`), relative to the
   current directory;
2. ``$TFPVAE_KERAS_CACHE``;
3. the cache the run recorded. A relative path (a run written before paths
   were recorded absolute, or a hand-edited ``config.json``) is looked up
   against the recorded working directory, the current one, then the run
   directory and each folder above it; the first that exists wins.

So a moved cache is one ``--cache-dir`` (or one exported variable) away, and a
run directory copied to another machine is evaluated there the same way.

Example:
    >>> import os, tempfile
    >>> from tfpvae.interfaces.locations import run_cache_dir
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(root, "cache", "datasets"))
    >>> run = os.path.join(root, "runs", "x")
    >>> os.makedirs(run)
    >>> found = run_cache_dir(run, recorded="../../cache", recorded_cwd=None, environ={})
    >>> found == os.path.join(root, "cache")
    True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from tfpvae.io.datasets import CACHE_ENV


def cache_dir_to_record(
    cache_dir: str | os.PathLike | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The cache a run reads now: ``cache_dir``, else ``$TFPVAE_KERAS_CACHE``, else ``None``.

    Returns:
        An absolute path, or ``None`` for the default ``~/.keras``.
    """
    environ = os.environ if environ is None else environ
    chosen = cache_dir if cache_dir is not None else (environ.get(CACHE_ENV) or None)
    return None if chosen is None else str(Path(chosen).expanduser().resolve())


def _candidates(run_dir: Path, recorded: Path, recorded_cwd: str | None) -> list[Path]:
    bases = [Path(recorded_cwd)] if recorded_cwd else []
    bases += [Path.cwd(), run_dir.resolve(), *run_dir.resolve().parents]
    return [base / recorded for base in bases]


def run_cache_dir(
    run_dir: str | os.PathLike,
    recorded: str | None,
    recorded_cwd: str | None,
    cache_dir: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """The Keras cache to read a run's data from: flag, then environment, then recorded.

    Args:
        run_dir: The run directory.
        recorded: ``train.cache_dir`` of its ``config.json``.
        recorded_cwd: The working directory recorded with it (``cwd``), or ``None``.
        cache_dir: An override (``--cache-dir``), or ``None``.
        environ: The environment (default ``os.environ``).

    Returns:
        An absolute path, or ``None`` for Keras's default ``~/.keras``.
    """
    environ = os.environ if environ is None else environ
    if cache_dir is not None or environ.get(CACHE_ENV):
        return cache_dir_to_record(cache_dir, environ)
    if recorded is None:
        return None
    path = Path(recorded).expanduser()
    if path.is_absolute():
        return str(path)
    candidates = _candidates(Path(run_dir), path, recorded_cwd)
    found = next((c for c in candidates if c.is_dir()), candidates[0])
    return str(found.resolve())


__all__ = ["cache_dir_to_record", "run_cache_dir"]
