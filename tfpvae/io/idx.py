"""A reader for IDX files, the format of the original MNIST and Fashion-MNIST downloads.

An IDX file (optionally gzipped) is a big-endian header and the raw array::

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte  3     number of dimensions n
    4n bytes    the n dimensions, unsigned 32-bit big-endian
    the rest    prod(dimensions) elements, big-endian, C order
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

#: IDX element type codes → big-endian NumPy dtypes.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class IdxFormatError(ValueError):
    """An IDX file is corrupt, truncated or not IDX at all."""


def _raw_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip (by content, not by name)."""
    data = path.read_bytes()
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise IdxFormatError(f"{path} is a corrupt gzip file ({err}); download it again") from err


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads one IDX file (gzipped or not) into a NumPy array of its native dtype.

    Args:
        path: The file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
        The array, with the dimensions of its header, in native byte order.

    Raises:
        IdxFormatError: On a wrong magic number, an unknown element type, or a
            size that does not match the header; the message names the file.
        OSError: If the file cannot be read.
    """
    path = Path(path)
    data = _raw_bytes(path)
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in IDX_DTYPES:
        raise IdxFormatError(
            f"{path} is not an IDX file: its magic number is {data[:4].hex() or 'missing'}, "
            "expected 0000 followed by a type code (08 for uint8) and the number of dimensions"
        )
    dtype, ndim = IDX_DTYPES[data[2]], data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IdxFormatError(f"{path} is truncated inside its header ({len(data)} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header_size + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise IdxFormatError(
            f"{path} holds {len(data)} bytes, but its header says {shape} of {dtype.name} "
            f"({expected} bytes): the file is truncated or corrupt; download it again"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx_split(folder: str | os.PathLike, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` from ``{prefix}-images-idx3-ubyte.gz`` and ``…-labels-idx1-ubyte.gz``.

    Raises:
        IdxFormatError: If a file is corrupt, or the two do not fit together
            (not uint8, not [n, h, w] images and [n] labels).
    """
    folder = Path(folder)
    images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise IdxFormatError(f"{folder}/{prefix}-*: expected uint8 images and labels")
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise IdxFormatError(
            f"{folder}/{prefix}-*: {images.shape} images do not fit {labels.shape} labels"
        )
    return images, labels
