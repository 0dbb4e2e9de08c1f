"""One place that imports TensorFlow, TFP and the Keras 2 API.

TFP 0.25's layers are written against Keras 2. TensorFlow 2.16+ ships Keras 3 as
``tf.keras`` unless ``TF_USE_LEGACY_KERAS=1`` is set *before* TensorFlow is
imported, so ``tf.keras`` may be either, depending on the order of imports and on
the environment. tfpvae never touches ``tf.keras``: every Keras object comes from
the ``tf_keras`` package, which is Keras 2 in every case, and which is also what
TFP itself resolves to whenever ``tf.keras`` is Keras 3.
"""

from __future__ import annotations

from tfpvae._native_log import import_tensorflow_quietly

# TensorFlow's C++ start-up lines: at most once, errors only unless the user chose a level.
tf = import_tensorflow_quietly()

import tensorflow_probability as tfp  # noqa: E402
import tf_keras  # noqa: E402

# tf.data's base class of datasets that keep their input's structure (not public API;
# used by tfpvae.training.pipeline for a dataset whose iterator outlives one fit).
from tensorflow.python.data.ops import dataset_ops as tf_dataset_ops  # noqa: E402

tfd = tfp.distributions
tfb = tfp.bijectors
tfpl = tfp.layers
tfk = tf_keras

__all__ = ["tf", "tf_dataset_ops", "tfb", "tfd", "tfk", "tfp", "tfpl"]
