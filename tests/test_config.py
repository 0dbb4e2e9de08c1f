from __future__ import annotations

import math

import pytest

from tfpvae import VAEConfig


def test_json_round_trip() -> None:
    config = VAEConfig(likelihood="bernoulli", latent_dim=4, hidden_units=(32,), kl_weight=0.5)
    again = VAEConfig.from_json(config.to_json())
    assert again == config
    assert again.hidden_units == (32,)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"latent_dim": 0}, "latent_dim must be a positive integer"),
        ({"latent_dim": 2.5}, "latent_dim must be a positive integer"),
        ({"kl_samples": -1}, "kl_samples must be a positive integer"),
        ({"kl_weight": -0.1}, "kl_weight must be a finite number >= 0"),
        ({"kl_weight": math.nan}, "kl_weight must be a finite number"),
        ({"learning_rate": 0.0}, "learning_rate must be a finite number > 0"),
        ({"input_shape": (28,), "architecture": "conv"}, "needs architecture='mlp'"),
        ({"input_shape": (2, 2, 2, 2)}, "input_shape for architecture='mlp' must be"),
        ({"hidden_units": (64, 0)}, "every entry of hidden_units"),
        ({"use_exact_kl": "yes"}, "use_exact_kl must be true or false"),
        ({"concentration": "relu"}, "unknown concentration 'relu'; choose one of: exp, softplus"),
    ],
)
def test_invalid_values_raise_clear_errors(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VAEConfig(**changes)


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ValueError, match=r"unknown config keys \['latent'\]"):
        VAEConfig.from_dict({"latent": 3})


def test_a_saved_config_without_a_later_field_means_what_it_meant_then() -> None:
    old = VAEConfig(concentration="softplus").to_dict()
    del old["concentration"]  # written before the field existed
    assert VAEConfig.from_saved(old).concentration == "softplus"
    assert VAEConfig.from_dict(old).concentration == "exp"  # a user's file: today's default
    new = VAEConfig().to_dict()
    assert VAEConfig.from_saved(new) == VAEConfig()
