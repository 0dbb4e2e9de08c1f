"""TensorFlow's native start-up log, shown at most once and only at the chosen level.

TensorFlow's shared libraries log a few ``I0000 ...`` lines while they load,
before they read ``TF_CPP_MIN_LOG_LEVEL``, and two of its libraries each print
them (so every line comes twice); its CUDA probe then logs ``E0000 ... failed
call to cuInit`` on a machine whose CUDA stub has just said that there are no
drivers. ``import tfpvae`` installs :func:`install`: whoever imports TensorFlow
afterwards (tfpvae itself, ``import tf_keras``, the user), it is imported inside
:func:`native_log_filter` and its devices are listed there too, so that

* ``TF_CPP_MIN_LOG_LEVEL`` defaults to 2 (errors only) when the user has not set it;
* lines below that level are dropped, and each remaining line is printed once;
* above level 0, the cuInit failure is dropped where the CUDA stub found no
  drivers (a machine without a GPU, where the failure is expected; on a GPU
  machine it stays).

This module imports nothing of TensorFlow's, so that it can run before it.

Example:
    >>> from tfpvae._native_log import NATIVE_LOG_LINE
    >>> bool(NATIVE_LOG_LINE.match("E0000 00:00:1795264976.893004  29592 cuda_platform.cc:52] x"))
    True
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from tfpvae._import_hook import around_import

#: A line of TensorFlow's native (absl) logging, e.g.
#: ``I0000 00:00:1795264973.170001  29592 port.cc:153] oneDNN custom operations are on...``;
#: group 1 is the severity letter, group 2 the source location and message.
NATIVE_LOG_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ ([^ \]]+:\d+\] .*)")
#: What absl prints once before its first line when logging was not set up yet.
ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"
SEVERITIES = "IWEF"
#: The CUDA stub's line on a machine without drivers, and the probe failure it explains.
NO_CUDA_DRIVERS = "Could not find cuda drivers on your machine"
CUINIT_FAILURE = "failed call to cuInit"
#: What TensorFlow logs, at error level, each time it loads a step from its persistent
#: XLA cache (:func:`tfpvae._xla_cache.use_compilation_cache`): it first
#: tries to read the entry as text, and it names two tuning hints of the compiler as
#: CPU features the host lacks. The load succeeds; a real instruction-set mismatch
#: (any other feature) is still shown.
XLA_CACHE_NOISE = (
    re.compile(r"Error parsing text-format tensorflow\.XlaSerializedCacheEntry"),
    re.compile(r"Target machine feature \+prefer-no-(scatter|gather) is not +supported"),
)
#: ``TF_CPP_MIN_LOG_LEVEL`` when the user has not set it: errors only.
LIBRARY_LEVEL = "2"


def _kept(lines: list[str], min_level: int) -> list[str]:
    """The lines of ``lines`` to print: at or above ``min_level``, each once."""
    kept, seen = [], set()
    no_drivers = any(NO_CUDA_DRIVERS in line for line in lines)
    for line in lines:
        match = NATIVE_LOG_LINE.match(line)
        if line.startswith(ABSL_PREAMBLE):
            key, hidden = ABSL_PREAMBLE, min_level >= 1
        elif match is not None:
            key = match.group(2)
            hidden = (
                SEVERITIES.index(match.group(1)) < min_level
                or (min_level >= 1 and no_drivers and CUINIT_FAILURE in line)
                or (min_level >= 1 and any(noise.search(line) for noise in XLA_CACHE_NOISE))
            )
        else:  # not a native log line (a traceback, the user's own output): always kept
            kept.append(line)
            continue
        if not hidden and key not in seen:
            kept.append(line)
        seen.add(key)
    return kept


@contextlib.contextmanager
def native_log_filter(min_level: int) -> Iterator[None]:
    """Drops native log lines below ``min_level``, and repeats, from file descriptor 2.

    Everything else written to descriptor 2 meanwhile passes, after the block.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable descriptor 2: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(_kept(lines, min_level))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def native_log_level(default: str = LIBRARY_LEVEL) -> int:
    """``TF_CPP_MIN_LOG_LEVEL`` as an int, after setting it to ``default`` if it was unset."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", default)
    try:
        return int(os.environ["TF_CPP_MIN_LOG_LEVEL"])
    except ValueError:
        return 0


def import_tensorflow_quietly(default_level: str = LIBRARY_LEVEL) -> Any:
    """Imports TensorFlow (if not yet imported) and lists its devices inside the filter."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with native_log_filter(native_log_level(default_level)):
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe logs now, inside the filter
    return tf


def _import_quietly(exec_module: Any, module: Any) -> None:
    """Runs TensorFlow's import, and its CUDA probe, inside the filter."""
    with native_log_filter(native_log_level()):
        exec_module(module)
        module.config.list_physical_devices()  # the CUDA probe logs now


def install() -> None:
    """Filters TensorFlow's start-up log once it is imported (nothing if it already is)."""
    around_import("tensorflow", _import_quietly)
