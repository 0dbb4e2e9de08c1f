"""Quiet TensorFlow: hide the native log lines it prints while loading and starting.

TensorFlow's shared libraries log a few ``I0000 ...`` lines while they load,
before they read ``TF_CPP_MIN_LOG_LEVEL``, and its CUDA probe logs ``E0000 ...
failed call to cuInit`` on machines without a GPU. The command line and the
notebooks call :func:`quiet_tensorflow` before anything imports TensorFlow.

Example:
    >>> from tfpvae.interfaces.quiet import NATIVE_LOG_LINE
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

#: A line of TensorFlow's native (absl) logging, e.g.
#: ``I0000 00:00:1795264973.170001  29592 port.cc:153] oneDNN custom operations are on...``;
#: group 1 is the severity letter.
NATIVE_LOG_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ [^ \]]+:\d+\] ")
#: What absl prints once before its first line when logging was not set up yet.
ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"
SEVERITIES = "IWEF"


def _hidden(line: str, min_level: int) -> bool:
    if line.startswith(ABSL_PREAMBLE):
        return min_level >= 1
    match = NATIVE_LOG_LINE.match(line)
    return match is not None and SEVERITIES.index(match.group(1)) < min_level


@contextlib.contextmanager
def native_log_filter(min_level: int) -> Iterator[None]:
    """Drops native log lines below ``min_level`` from file descriptor 2; the rest passes.

    TensorFlow's shared libraries log a few lines while they load, before they
    read ``TF_CPP_MIN_LOG_LEVEL``, so the only way to hide those is to catch the
    descriptor itself while TensorFlow is imported.
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
            kept = "".join(line for line in lines if not _hidden(line, min_level))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def native_log_level() -> int:
    """``TF_CPP_MIN_LOG_LEVEL`` as an int, after setting it to 3 if the user had not set it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        return int(os.environ["TF_CPP_MIN_LOG_LEVEL"])
    except ValueError:
        return 0


def quiet_tensorflow() -> None:
    """Imports TensorFlow with its native logging quiet, or as quiet as the user asked.

    ``TF_CPP_MIN_LOG_LEVEL`` becomes 3 (so ``failed call to cuInit`` and other
    errors of the CUDA probe are hidden) only when it is unset; the lines that
    TensorFlow's libraries log while loading, which ignore that variable, are
    dropped below the same level. With level 3 TensorFlow's Python logger is
    lowered to errors as well (no retracing warnings).
    """
    if "tensorflow" in sys.modules:
        return
    min_level = native_log_level()
    with native_log_filter(min_level):
        import tensorflow as tf
    if min_level >= 3:
        tf.get_logger().setLevel("ERROR")
