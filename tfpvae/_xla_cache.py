"""TensorFlow's persistent XLA cache, pointed at a directory before TensorFlow reads its flags.

A model compiled with XLA spends most of a short first ``fit`` compiling its
step (about 2 CPU-s of the 4.5 that ``build_vae(likelihood="beta")`` plus two
epochs on 1,600 images took). TensorFlow can keep compiled functions on disk
(``--tf_xla_persistent_cache_directory`` in ``TF_XLA_FLAGS``) and load them in a
later process that compiles the same function; :func:`use_compilation_cache`,
called by ``import tfpvae``, turns that on for the process:

* the directory is ``$TFPVAE_XLA_CACHE`` if set (``0``/``false``/``no``/``off``:
  no cache), else ``$XDG_CACHE_HOME/tfpvae/xla`` (``~/.cache/tfpvae/xla``), with a
  subdirectory per TensorFlow version and CPU (:func:`machine_key`), so code
  compiled for one machine's instruction set is never loaded on another;
* TensorFlow reads ``TF_XLA_FLAGS`` once, when it first runs a graph, so the
  cache is on only if ``import tfpvae`` comes before that (importing TensorFlow
  first is fine; running a ``tf.function`` first is not);
* a cache directory the user set in ``TF_XLA_FLAGS`` is left alone.

Each compiled step takes about 1 MB. This module imports nothing of TensorFlow's.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import os
import platform
import sys
from pathlib import Path

#: Environment variable: the directory of compiled XLA functions kept between
#: processes; ``0`` (or ``false``/``no``/``off``) keeps none.
XLA_CACHE_ENV = "TFPVAE_XLA_CACHE"
#: TensorFlow's flag (in ``TF_XLA_FLAGS``) for its persistent XLA compilation cache.
CACHE_FLAG = "--tf_xla_persistent_cache_directory"


def _tensorflow_install() -> str:
    """Which TensorFlow would be imported: its version, path and modification time.

    Read without importing TensorFlow (or ``importlib.metadata``, 20 ms): the
    version from the ``tensorflow-*.dist-info`` folder beside the package.
    """
    module = sys.modules.get("tensorflow")
    origin = getattr(module, "__file__", None)
    if origin is None:
        # The path finder alone: importlib.util.find_spec would also ask the finder that
        # _native_log installs for TensorFlow's import, which removes itself once asked.
        with contextlib.suppress(ImportError, ValueError):
            spec = importlib.machinery.PathFinder.find_spec("tensorflow")
            origin = spec.origin if spec is not None else None
    if origin is None:
        return "none"
    package = Path(origin).parent
    version = "unknown"
    with contextlib.suppress(OSError):
        for entry in os.scandir(package.parent):
            name = entry.name
            if name.startswith(("tensorflow-", "tensorflow_cpu-")) and name.endswith(".dist-info"):
                version = name[: -len(".dist-info")].split("-")[1]
                break
    with contextlib.suppress(OSError):
        return f"{version}|{package}|{Path(origin).stat().st_mtime_ns}"
    return f"{version}|{package}"


def machine_key() -> str:
    """A name for this TensorFlow install and CPU: its version, the architecture and a digest.

    The digest covers the CPU's feature flags and the TensorFlow install (path,
    modification time), so an upgrade or another machine gets a new directory.
    """
    flags = platform.processor()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        flags = next((line for line in cpuinfo if line.startswith("flags")), flags)
    install = _tensorflow_install()
    digest = hashlib.sha256(f"{platform.machine()}|{flags}|{install}".encode()).hexdigest()[:16]
    return f"tf{install.split('|')[0]}-{platform.machine()}-{digest}"


def xla_cache_directory() -> Path | None:
    """Where compiled XLA functions are kept between processes, or ``None`` for nowhere."""
    value = os.environ.get(XLA_CACHE_ENV, "").strip()
    if value.lower() in ("0", "false", "no", "off"):
        return None
    if value:
        base = Path(value).expanduser()
    else:
        home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        base = Path(home) / "tfpvae" / "xla"
    return base / machine_key()


def cache_in_use() -> bool:
    """Whether ``TF_XLA_FLAGS`` names a persistent XLA cache (tfpvae's or the user's)."""
    return CACHE_FLAG in os.environ.get("TF_XLA_FLAGS", "")


def use_compilation_cache() -> Path | None:
    """Adds :func:`xla_cache_directory` to ``TF_XLA_FLAGS`` (see the module docstring).

    Nothing changes where the user named a cache directory in ``TF_XLA_FLAGS``,
    where the cache is turned off, or where the directory cannot be made or has
    whitespace in its path (which TensorFlow's flag parser would split).

    Returns:
        The directory now in ``TF_XLA_FLAGS``, or ``None``.
    """
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if CACHE_FLAG in flags:
        return None
    directory = xla_cache_directory()
    if directory is None or any(c.isspace() for c in str(directory)):
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    os.environ["TF_XLA_FLAGS"] = f"{flags} {CACHE_FLAG}={directory}".strip()
    return directory


__all__ = [
    "CACHE_FLAG",
    "XLA_CACHE_ENV",
    "cache_in_use",
    "machine_key",
    "use_compilation_cache",
    "xla_cache_directory",
]
