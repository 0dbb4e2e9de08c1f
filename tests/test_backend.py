"""`import tfpvae` works in any import order and with any TF_USE_LEGACY_KERAS."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import numpy as np
{first}
import tfpvae
import tf_keras
vae = tfpvae.build_vae(input_shape=(4, 4), hidden_units=(8,))
assert isinstance(vae, tf_keras.Model), type(vae).__mro__
for layer in vae.encoder.layers + vae.decoder.layers:
    assert isinstance(layer, tf_keras.layers.Layer), type(layer)
assert tfpvae.tfk is tf_keras
dist = vae(np.full((2, 4, 4), 0.5, "float32"))
assert tuple(dist.event_shape) == (4, 4)
print("OK", tf_keras.__version__)
"""


@pytest.mark.slow(seconds=15)  # a fresh interpreter importing TensorFlow per case
@pytest.mark.parametrize("first", ["", "import tensorflow as tf; tf.constant(1.0)"])
@pytest.mark.parametrize("legacy", [None, "0", "1"])
def test_import_in_any_order_and_keras_setting(first: str, legacy: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    if legacy is not None:
        env["TF_USE_LEGACY_KERAS"] = legacy
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(first=first)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK 2." in result.stdout
