"""Datasets and the per-likelihood preprocessing of uint8 images.

``load_dataset`` returns ``(x_train, y_train), (x_test, y_test)`` with uint8 images
and integer labels, as ``tf_keras.datasets`` does. ``prepare`` turns the images
into observations in the chosen likelihood's support.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfpvae._backend import tfk
from tfpvae.components.likelihoods import get_likelihood
from tfpvae.io.idx import read_idx_split
from tfpvae.registry import Registry

Split = tuple[np.ndarray, np.ndarray]

#: Environment variable giving the default Keras cache directory.
CACHE_ENV = "TFPVAE_KERAS_CACHE"

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGIT_CLASSES = tuple(str(d) for d in range(10))


class DatasetUnavailableError(OSError):
    """A dataset could not be downloaded or found in the cache."""


@dataclass(frozen=True)
class Dataset:
    """A registered dataset.

    Attributes:
        loader: ``cache_dir → ((x_train, y_train), (x_test, y_test))``.
        class_names: Names of the label values.
        image_shape: Shape of one image.
    """

    loader: Callable[[str | None], tuple[Split, Split]]
    class_names: tuple[str, ...]
    image_shape: tuple[int, ...]


def _keras_loader(module_name: str) -> Callable[[str | None], tuple[Split, Split]]:
    def load(cache_dir: str | None) -> tuple[Split, Split]:
        module = getattr(tfk.datasets, module_name)
        try:
            return module.load_data(cache_dir=cache_dir)
        except Exception as err:
            where = cache_dir or "~/.keras"
            raise DatasetUnavailableError(
                f"could not load {module_name!r} from {where} or download it ({err}). "
                f"Offline, point at a Keras cache that holds datasets/ with "
                f"cache_dir=... / --cache-dir, or set {CACHE_ENV}=/path/to/keras-cache; "
                "or use the bundled dataset 'digits'."
            ) from err

    return load


#: The IDX files of an MNIST-layout folder, by split.
IDX_SPLITS = ("train", "t10k")


def _idx_folder(cache_dir: str | None, folder: str) -> Path:
    """``<cache>/datasets/<folder>``, the cache being ``cache_dir`` or Keras's ``~/.keras``."""
    return Path(cache_dir or Path.home() / ".keras") / "datasets" / folder


def _mnist_loader(cache_dir: str | None) -> tuple[Split, Split]:
    """MNIST: Keras's ``mnist.npz`` when cached (or downloadable), else the cache's IDX files.

    Keras's loader wants ``datasets/mnist.npz`` and checks its hash against the
    full download; a cache that holds the original IDX files in
    ``datasets/mnist/`` instead (as the shared sample does) is read with
    :func:`tfpvae.io.idx.read_idx_split`. A present ``mnist.npz`` always wins.
    """
    folder = _idx_folder(cache_dir, "mnist")
    has_npz = (folder.parent / "mnist.npz").is_file()
    has_idx = all((folder / f"{split}-images-idx3-ubyte.gz").is_file() for split in IDX_SPLITS)
    if has_npz or not has_idx:
        return _keras_loader("mnist")(cache_dir)
    train, test = (read_idx_split(folder, split) for split in IDX_SPLITS)
    return train, test


def _load_digits(_cache_dir: str | None) -> tuple[Split, Split]:
    """scikit-learn's bundled 8×8 digits (values 0..16) as uint8 0..255, split 80/20."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)  # [1797, 8, 8]
    labels = digits.target.astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(images))  # the fixed split
    n_test = len(images) // 5
    test, train = order[:n_test], order[n_test:]
    return (images[train], labels[train]), (images[test], labels[test])


#: Dataset registry.
DATASETS: Registry[Dataset] = Registry("dataset")
DATASETS.register("digits", Dataset(_load_digits, DIGIT_CLASSES, (8, 8)))
DATASETS.register(
    "fashion_mnist", Dataset(_keras_loader("fashion_mnist"), FASHION_MNIST_CLASSES, (28, 28))
)
DATASETS.register("mnist", Dataset(_mnist_loader, DIGIT_CLASSES, (28, 28)))


def load_dataset(name: str, cache_dir: str | os.PathLike | None = None) -> tuple[Split, Split]:
    """Loads a dataset as uint8 images and integer labels.

    Args:
        name: ``"digits"`` (bundled, offline), ``"fashion_mnist"`` or ``"mnist"``
            (read from the cache's ``datasets/mnist/`` IDX files when Keras's
            ``mnist.npz`` is not cached there).
        cache_dir: Keras cache directory (the folder holding ``datasets/``). Defaults
            to ``$TFPVAE_KERAS_CACHE`` and then to Keras's own ``~/.keras``.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``.

    Raises:
        ValueError: For an unknown name.
        DatasetUnavailableError: When the data is neither cached nor downloadable;
            the message says how to point at a cache.
    """
    dataset = DATASETS.get(name)
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV) or None
    if cache_dir is not None:
        cache_dir = os.path.abspath(os.fspath(cache_dir))
    return dataset.loader(cache_dir)


def class_names(name: str) -> tuple[str, ...]:
    """Names of the classes of a registered dataset."""
    return DATASETS.get(name).class_names


def prepare(x: np.ndarray, likelihood: str = "beta", **options) -> np.ndarray:
    r"""Turns uint8 images into observations in the support of ``likelihood``.

    * ``"beta"``, ``"continuous_bernoulli"`` and ``"gaussian"``: the open interval
      (0, 1). By default the course's fixed shift ``(x + 0.5) / 256``;
      ``dequantize="uniform"`` gives ``(x + u) / 256`` with fresh ``u ~ U[0, 1)``
      per pixel (seeded by ``seed``), whose bound is a bound on the 8-bit data
      (see :mod:`tfpvae.components.dequantize`).
    * ``"discretized_logistic"`` and ``"categorical"``: the levels themselves,
      ``x`` as float32 integers 0..255 (no options).
    * ``"bernoulli"``: {0, 1}; ``binarize="threshold"`` (default, pixel/255 > 0.5)
      or ``binarize="sample"`` (a Bernoulli draw per pixel, with ``seed``).

    Real-valued (float) data goes to ``"gaussian"`` only, which *standardises* it:
    each dimension becomes :math:`(x - \mu) / \sigma` with its mean and standard
    deviation over the examples (axis 0), or with ``mean=`` and ``std=`` given
    (the training set's, for a test set).

    Args:
        x: uint8 images (integers in 0..255), or for ``"gaussian"`` any finite
            real array of shape ``[n, *dims]``.
        likelihood: A registered likelihood name.
        **options: Likelihood-specific options (``dequantize``, ``binarize``, ``seed``).

    Returns:
        float32 array of the same shape.

    Raises:
        ValueError: If ``x`` is not integer pixel data in 0..255, or an option is
            not one the likelihood takes.
    """
    x = np.asarray(x)
    entry = get_likelihood(likelihood)
    real = np.issubdtype(x.dtype, np.floating) and entry.prepare_real is not None
    if not real and not (
        np.issubdtype(x.dtype, np.integer) and x.size and x.min() >= 0 and x.max() <= 255
    ):
        raise ValueError(
            "prepare expects raw integer pixels in 0..255 (e.g. uint8 from load_dataset), "
            f"got dtype {x.dtype}"
            + (f" with range [{x.min()}, {x.max()}]" if x.size else " (empty)")
            + "; real-valued data goes to likelihood='gaussian', which standardises it"
        )
    preprocess = entry.prepare_real if real and entry.prepare_real is not None else entry.preprocess
    accepted = inspect.signature(preprocess).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(options) - (set(accepted) - {"x"}))
        if unknown:
            takes = sorted(set(accepted) - {"x"}) or ["no options"]
            raise ValueError(
                f"the {likelihood} likelihood takes {', '.join(takes)}, not {', '.join(unknown)}"
            )
    return preprocess(x, **options)
