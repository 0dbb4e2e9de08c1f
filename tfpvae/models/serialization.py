"""Keras configs of a user's networks and prior, so that any VAE reads back.

A :class:`~tfpvae.VAE` built from a user's encoder and decoder is saved as their
Keras configs (``tf_keras.layers.serialize``), its prior as a distribution class
with its parameters, and its settings. Two things Keras cannot serialise are
handled here:

* TFP's KL layers (``KLDivergenceAddLoss``, ``KLDivergenceRegularizer``) have no
  ``get_config``; while a VAE is serialised they get one that records their
  settings (the prior as below, the test points, the weight), and they are
  rebuilt from it on load;
* a prior is written as ``{"class": "MultivariateNormalDiag", "parameters": ...}``
  with tensors as lists and variables marked, so that they are tracked again.

TFP's own distribution layers serialise their functions with cloudpickle, which
ties a saved file to the Python and TFP versions that wrote it. Whatever cannot
be written this way raises :class:`SerializationError` when the model is saved.
"""

from __future__ import annotations

import base64
import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from tfpvae._backend import tf, tfd, tfk, tfpl
from tfpvae.components.kl import SampleTestPoints


class SerializationError(ValueError):
    """A part of a VAE that cannot be written so that it reads back."""


def serialize_distribution(d: Any) -> dict:
    """A JSON-ready description of a ``tfd`` distribution built from tensors and distributions."""
    cls = type(d)
    if getattr(tfd, cls.__name__, None) is not cls:
        raise SerializationError(
            f"the prior {cls.__name__} is not a tfd distribution tfpvae can write; use one from "
            "tfp.distributions, or a Keras layer registered with "
            "tf_keras.utils.register_keras_serializable"
        )
    params: dict[str, Any] = {}
    for key, value in d.parameters.items():
        if value is None or isinstance(value, (bool, int, float, str)):
            params[key] = value
        elif isinstance(value, tfd.Distribution):
            params[key] = {"distribution": serialize_distribution(value)}
        elif isinstance(value, tf.Variable):
            params[key] = {"variable": np.asarray(value).tolist(), "dtype": value.dtype.name,
                           "trainable": bool(value.trainable)}  # fmt: skip
        elif tf.is_tensor(value) or isinstance(value, np.ndarray):
            array = np.asarray(value)
            params[key] = {"tensor": array.tolist(), "dtype": array.dtype.name}
        else:
            raise SerializationError(
                f"the prior's parameter {key!r} ({type(value).__name__}) cannot be written; "
                "give the prior as tensors and distributions, or as a registered Keras layer"
            )
    return {"class": cls.__name__, "parameters": params}


def _value(entry: Any) -> Any:
    if not isinstance(entry, dict):
        return entry
    if "distribution" in entry:
        return deserialize_distribution(entry["distribution"])
    if "variable" in entry:
        return tf.Variable(
            np.asarray(entry["variable"], entry["dtype"]), trainable=entry["trainable"]
        )
    return tf.constant(np.asarray(entry["tensor"], entry["dtype"]))


def deserialize_distribution(config: dict) -> tfd.Distribution:
    """The distribution :func:`serialize_distribution` described."""
    params = {key: _value(value) for key, value in config["parameters"].items()}
    return getattr(tfd, config["class"])(**params)


def serialize_prior(prior: Any) -> dict | None:
    """A distribution, a registered Keras layer, or ``None``, as JSON-ready data."""
    if prior is None:
        return None
    if isinstance(prior, tfd.Distribution):
        return {"distribution": serialize_distribution(prior)}
    if isinstance(prior, tfk.layers.Layer):
        return {"layer": _serialize_layer(prior)}
    raise SerializationError(
        f"a prior given as {type(prior).__name__} cannot be written; pass a tfd distribution "
        "or a Keras layer registered with tf_keras.utils.register_keras_serializable"
    )


def deserialize_prior(config: dict | None) -> Any:
    if config is None:
        return None
    if "distribution" in config:
        return deserialize_distribution(config["distribution"])
    return deserialize_network(config["layer"])


def _serialize_test_points(fn: Any) -> Any:
    if fn is tf.convert_to_tensor:
        return "convert_to_tensor"
    if isinstance(fn, SampleTestPoints):
        return {"sample": fn.n}
    import cloudpickle  # a dependency of TFP, which pickles its layers' functions the same way

    return {"pickled": base64.b64encode(cloudpickle.dumps(fn)).decode("ascii")}


def _deserialize_test_points(config: Any) -> Any:
    if config == "convert_to_tensor":
        return tf.convert_to_tensor
    if "sample" in config:
        return SampleTestPoints(config["sample"])
    import cloudpickle

    return cloudpickle.loads(base64.b64decode(config["pickled"]))


def _kl_settings(regularizer: Any) -> dict:
    weight = regularizer.weight
    prior = regularizer.distribution_b
    if not isinstance(prior, (tfd.Distribution, tfk.layers.Layer)):
        raise SerializationError(
            "the KL layer's distribution_b is a function, which tfpvae cannot write; pass the "
            "prior to VAE(encoder, decoder, prior=...) and give the KL layer the distribution"
        )
    return {
        "distribution_b": serialize_prior(prior),
        "use_exact_kl": bool(regularizer.use_exact_kl),
        "test_points_reduce_axis": regularizer.test_points_reduce_axis,
        "test_points_fn": _serialize_test_points(regularizer.test_points_fn),
        "weight": None if weight is None else float(np.asarray(weight)),
    }


def _kl_arguments(config: dict) -> dict:
    axis = config["test_points_reduce_axis"]
    return {
        "distribution_b": deserialize_prior(config["distribution_b"]),
        "use_exact_kl": config["use_exact_kl"],
        "test_points_reduce_axis": tuple(axis) if isinstance(axis, list) else axis,
        "test_points_fn": _deserialize_test_points(config["test_points_fn"]),
        "weight": config["weight"],
    }


def _add_loss_config(layer: Any) -> dict:
    return {**tfk.layers.Layer.get_config(layer), **_kl_settings(layer._regularizer)}


class _KLAddLossFromConfig:
    """Rebuilds a ``tfpl.KLDivergenceAddLoss`` from :func:`_add_loss_config`."""

    @classmethod
    def from_config(cls, config: dict) -> Any:
        keras = {k: config[k] for k in ("name", "trainable", "dtype") if k in config}
        return tfpl.KLDivergenceAddLoss(**_kl_arguments(config), **keras)


class _KLRegularizerFromConfig:
    """Rebuilds a ``tfpl.KLDivergenceRegularizer``."""

    @classmethod
    def from_config(cls, config: dict) -> Any:
        return tfpl.KLDivergenceRegularizer(**_kl_arguments(config))


def _tril_config(layer: Any) -> dict:
    """``tfpl.MultivariateNormalTriL``'s config with the ``event_size`` TFP leaves out.

    d follows from the layer's input width p = d + d(d + 1)/2.
    """
    width = int(layer.input_shape[-1])
    event_size = round((-3.0 + (9.0 + 8.0 * width) ** 0.5) / 2.0)
    return {**tfpl.DistributionLambda.get_config(layer), "event_size": event_size}


class _TriLFromConfig:
    """Rebuilds a ``tfpl.MultivariateNormalTriL`` from :func:`_tril_config`."""

    @classmethod
    def from_config(cls, config: dict) -> Any:
        from tensorflow_probability.python.layers.distribution_layer import _deserialize

        keras = {k: config[k] for k in ("name", "trainable", "dtype") if k in config}
        return tfpl.MultivariateNormalTriL(
            config["event_size"],
            convert_to_tensor_fn=_deserialize(config["convert_to_tensor_fn"]),
            **keras,
        )


#: TFP classes without a usable ``get_config``, and the one tfpvae gives them while saving.
_CONFIGS = {
    tfpl.KLDivergenceAddLoss: _add_loss_config,
    tfpl.KLDivergenceRegularizer: _kl_settings,
    tfpl.MultivariateNormalTriL: _tril_config,
}


@contextlib.contextmanager
def kl_layers_serializable() -> Iterator[None]:
    """Gives TFP's KL layer, KL regulariser and TriL layer a ``get_config`` while inside."""
    previous = {cls: cls.__dict__.get("get_config") for cls in _CONFIGS}
    for cls, get_config in _CONFIGS.items():
        cls.get_config = get_config
    try:
        yield
    finally:
        for cls, before in previous.items():
            if before is None:
                del cls.get_config
            else:
                cls.get_config = before


def custom_objects() -> dict[str, Any]:
    """TFP's layer classes by name (Keras does not know them), and the KL rebuilders."""
    objects = {name: obj for name, obj in vars(tfpl).items() if isinstance(obj, type)}
    objects["KLDivergenceAddLoss"] = _KLAddLossFromConfig
    objects["KLDivergenceRegularizer"] = _KLRegularizerFromConfig
    objects["MultivariateNormalTriL"] = _TriLFromConfig
    return objects


def serialize_network(network: Any) -> dict:
    """A user's encoder or decoder as its Keras config."""
    try:
        return _serialize_layer(network)
    except (NotImplementedError, TypeError, ValueError, AttributeError) as err:
        raise SerializationError(
            f"the network {network.name!r} has no Keras config to save ({err}); give its custom "
            "layers get_config() and register them with tf_keras.utils.register_keras_serializable"
        ) from None


@contextlib.contextmanager
def no_lambda_warnings() -> Iterator[None]:
    """Keras warns about every lambda it writes; TFP's layers are made of them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*includes a `lambda`")
        yield


def _serialize_layer(layer: Any) -> dict:
    """Keras's legacy (SavedModel-era) config, in which TFP's layers keep their functions."""
    with kl_layers_serializable(), no_lambda_warnings():
        return tfk.layers.serialize(layer, use_legacy_format=True)


def deserialize_network(config: dict) -> Any:
    """The network (or prior layer) of a :func:`serialize_network` config.

    TFP's distribution layers rebuild from the functions pickled in their configs,
    which Keras's safe mode refuses; loading a model runs that code, so load only
    files you trust (as for any pickle).
    """
    from tf_keras.src.saving.serialization_lib import SafeModeScope

    with SafeModeScope(False):
        return tfk.layers.deserialize(
            config, custom_objects=custom_objects(), use_legacy_format=True
        )
