from __future__ import annotations

import pytest

import tfpvae
from tfpvae.registry import Registry


def test_unknown_name_lists_known_names() -> None:
    reg = Registry[int]("widget")
    reg.register("a", 1)
    reg.register("b", 2)
    with pytest.raises(ValueError, match=r"unknown widget 'c'; choose one of: a, b"):
        reg.get("c")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", 3)


@pytest.mark.parametrize(
    ("field", "value", "names"),
    [
        ("likelihood", "poisson", "bernoulli, beta, continuous_bernoulli, discretized_logistic"),
        ("kl", "analytic", "add_loss, regularizer"),
        ("architecture", "resnet", "mlp, conv"),
        ("posterior", "flow", "full, diag"),
    ],
)
def test_build_vae_rejects_unknown_names(field: str, value: str, names: str) -> None:
    with pytest.raises(ValueError, match=f"unknown {field} '{value}'; choose one of: {names}"):
        tfpvae.build_vae(**{field: value})


def test_public_api_is_declared() -> None:
    for name in tfpvae.__all__:
        assert hasattr(tfpvae, name), name


def test_readme_quickstart_names_are_public() -> None:
    from tfpvae import build_vae, load, load_dataset, prepare, save  # noqa: F401
