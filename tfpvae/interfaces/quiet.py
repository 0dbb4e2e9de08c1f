"""Quiet TensorFlow: hide the native log lines it prints while loading and starting.

The library itself shows TensorFlow's start-up lines at most once and errors only
(:mod:`tfpvae._native_log`); the command line and the notebooks go further and call
:func:`quiet_tensorflow` before anything imports TensorFlow, which hides its errors
of the CUDA probe as well.

Example:
    >>> from tfpvae.interfaces.quiet import NATIVE_LOG_LINE
    >>> bool(NATIVE_LOG_LINE.match("E0000 00:00:1795264976.893004  29592 cuda_platform.cc:52] x"))
    True
"""

from __future__ import annotations

import sys

from tfpvae._native_log import (
    ABSL_PREAMBLE,
    NATIVE_LOG_LINE,
    SEVERITIES,
    import_tensorflow_quietly,
    native_log_filter,
)
from tfpvae._native_log import native_log_level as _native_log_level

__all__ = [
    "ABSL_PREAMBLE",
    "NATIVE_LOG_LINE",
    "SEVERITIES",
    "native_log_filter",
    "native_log_level",
    "quiet_tensorflow",
]


def native_log_level() -> int:
    """``TF_CPP_MIN_LOG_LEVEL`` as an int, after setting it to 3 if the user had not set it."""
    return _native_log_level("3")


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
    tf = import_tensorflow_quietly()
    if min_level >= 3:
        tf.get_logger().setLevel("ERROR")
