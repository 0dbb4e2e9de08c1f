"""Shared fixtures: fixed seeds, the digits, and the optional Fashion-MNIST sample."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One intra-op thread per TensorFlow process (inherited by the CLI, notebook and
# worker subprocesses): two xdist workers already fill the two cores. On
# test_model + test_faults with -n 2 this took 170 s against 222 s.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
# Models build without XLA unless a test is marked ``xla``: compiling a training
# step costs about 5–8 s per model here, and most tests train for a few steps.
os.environ.setdefault("TFPVAE_XLA", "0")
# Compiled XLA steps are kept for this run only (shared by the xdist workers and the
# subprocesses, which inherit the variable), never in the user's ~/.cache.
if "TFPVAE_XLA_CACHE" not in os.environ:
    os.environ["TFPVAE_XLA_CACHE"] = tempfile.mkdtemp(prefix="tfpvae-test-xla-")
    atexit.register(shutil.rmtree, os.environ["TFPVAE_XLA_CACHE"], ignore_errors=True)

from tfpvae._backend import tf, tfk
from tfpvae.io.datasets import load_dataset, prepare

REPO = Path(__file__).resolve().parents[1]
#: The real 2,000-image Fashion-MNIST sample in Keras's cache layout (CI has it).
SHARED_CACHE = REPO.parent / "shared" / "data" / "keras-cache"
HAS_FASHION_SAMPLE = (SHARED_CACHE / "datasets" / "fashion-mnist").is_dir()

#: Scripts that tests run in subprocesses; importing them here (--doctest-modules) would
#: set up TensorFlow's devices in the test process.
collect_ignore = ["mirrored_check.py"]

needs_fashion_sample = pytest.mark.skipif(
    not HAS_FASHION_SAMPLE, reason=f"Fashion-MNIST sample not present at {SHARED_CACHE}"
)
#: The real 8,000-image MNIST sample as gzipped IDX files (no mnist.npz).
HAS_MNIST_SAMPLE = (SHARED_CACHE / "datasets" / "mnist").is_dir()
needs_mnist_sample = pytest.mark.skipif(
    not HAS_MNIST_SAMPLE, reason=f"MNIST sample not present at {SHARED_CACHE}"
)


def count_calls(monkeypatch, owner: type, name: str) -> list[int]:
    """Counts calls of the method ``owner.name`` for the test's length; ``[count]``."""
    calls = [0]
    original = getattr(owner, name)

    def counted(self, *args, **kwargs):
        calls[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def steps_compile_with_xla(vae, kind: str = "train") -> bool:
    """Whether the ``kind`` function ``vae``'s next call runs marks its step for XLA.

    Traced on a batch of four 8×8 images with weights, as ``fit`` and
    ``evaluate`` serve arrays.
    """
    x = np.full((4, 8, 8), 0.5, "float32")
    batches = iter(tf.data.Dataset.from_tensor_slices((x, x, np.ones(4, "float32"))).batch(4))
    function = getattr(vae, f"make_{kind}_function")()
    library = function.get_concrete_function(batches).graph.as_graph_def().library.function
    return any(f.attr["_XlaMustCompile"].b for f in library if "_XlaMustCompile" in f.attr)


@pytest.fixture(autouse=True)
def _xla(request, monkeypatch):
    """Tests marked ``xla`` build their models (and subprocesses) with XLA, as users get them."""
    if request.node.get_closest_marker("xla") is not None:
        monkeypatch.setenv("TFPVAE_XLA", "1")


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same seeds."""
    tfk.utils.set_random_seed(1234)
    yield
    tfk.backend.clear_session()


@pytest.fixture(scope="session")
def digits():
    """The bundled 8×8 digits as uint8: ((x_train, y_train), (x_test, y_test))."""
    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_beta(digits):
    """Digits prepared for the Beta likelihood: (x_train, x_test) float32 in (0, 1)."""
    (x_train, _), (x_test, _) = digits
    return prepare(x_train, "beta"), prepare(x_test, "beta")


def numpy_softplus(a: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, a)


def numpy_concentration(raw: np.ndarray, concentration: str = "exp") -> np.ndarray:
    """The Beta's concentration maps in NumPy, float64: the saturating exponential
    c_min + c_max / (1 + c_max e^-a) (algebraically the guarded exp), or softplus."""
    from tfpvae.components import concentration as maps

    raw, c_min = np.asarray(raw, np.float64), maps.MIN_CONCENTRATION
    if concentration == "exp":
        c_max = maps.EXP_MAX_CONCENTRATION
        with np.errstate(over="ignore"):  # e^-a = inf gives c = c_min, as it should
            return np.minimum(c_min + c_max / (1.0 + c_max * np.exp(-raw)), c_max)
    return np.minimum(numpy_softplus(raw) + c_min, maps.MAX_CONCENTRATION)


__all__ = [
    "HAS_FASHION_SAMPLE",
    "SHARED_CACHE",
    "needs_fashion_sample",
    "numpy_concentration",
    "numpy_softplus",
    "tf",
]


def shift_posterior(vae, offset: float = 1.5) -> None:
    """Moves q(z|x)'s mean away from the prior's so that the KL is several nats."""
    layer = vae.encoder.get_layer("posterior_params")
    kernel, bias = layer.get_weights()
    bias[: vae.config.latent_dim] += offset
    layer.set_weights([kernel, bias])


def continuous_bernoulli_log_pdf(x: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Closed form: log C(λ) + x log λ + (1−x) log(1−λ), C(λ) = 2 artanh(1−2λ)/(1−2λ)."""
    t = 1.0 - 2.0 * lam
    safe = np.where(np.abs(t) < 1e-6, 1e-6, t)
    log_norm = np.where(np.abs(t) < 1e-6, np.log(2.0), np.log(2.0 * np.arctanh(safe) / safe))
    return log_norm + x * np.log(lam) + (1.0 - x) * np.log1p(-lam)


def _expected_seconds(item: pytest.Item) -> float:
    marker = item.get_closest_marker("slow")
    return marker.kwargs.get("seconds", 30.0) if marker is not None else 0.0


def pytest_collection_modifyitems(config, items) -> None:
    """Starts the tests marked ``slow`` first, longest first (each 30–120 s on 2 cores).

    pytest-xdist hands out tests in collection order; with the longest ones
    last, one worker would end the run alone on them while the other idles.
    """
    items.sort(key=lambda item: -_expected_seconds(item))


def numpy_mlp(model, x: np.ndarray) -> np.ndarray:
    """``model``'s Dense layers applied to the flattened ``x``: ReLU between, linear last."""
    dense = [layer for layer in model.layers if isinstance(layer, tfk.layers.Dense)]
    assert [d.activation.__name__ for d in dense] == ["relu"] * (len(dense) - 1) + ["linear"]
    h = x.reshape(len(x), -1)
    for i, layer in enumerate(dense):
        kernel, bias = (w.astype(np.float64) for w in layer.get_weights())
        h = h @ kernel + bias
        if i < len(dense) - 1:
            h = np.maximum(h, 0.0)
    return h
