from __future__ import annotations

import re

import pytest
from conftest import REPO

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


def test_readme_python_examples_import_only_public_names() -> None:
    readme = (REPO / "README.md").read_text()
    names = {
        name.strip()
        for block in re.findall(r"```python\n(.*?)```", readme, flags=re.S)
        for imported in re.findall(r"^from tfpvae import ([\w, ]+)$", block, flags=re.M)
        for name in imported.split(",")
    }
    assert names, "the README shows no `from tfpvae import ...` example"
    assert names <= set(tfpvae.__all__), names - set(tfpvae.__all__)


def test_temporarily_registers_for_the_block_only() -> None:
    reg = Registry[int]("widget")
    reg.register("a", 1)
    reg.register("b", 2)
    with reg.temporarily("c", 3) as item:
        assert item == 3 and reg.get("c") == 3
        assert reg.names() == ["a", "b", "c"]
    assert reg.names() == ["a", "b"] and "c" not in reg
    with pytest.raises(RuntimeError, match="boom"), reg.temporarily("c", 3):
        raise RuntimeError("boom")
    assert reg.names() == ["a", "b"]  # removed even when the block fails


def test_temporarily_refuses_or_restores_an_existing_name() -> None:
    reg = Registry[int]("widget")
    reg.register("a", 1)
    reg.register("b", 2)
    refused = pytest.raises(ValueError, match="widget 'a' is already registered")
    with refused, reg.temporarily("a", 10):
        pytest.fail("the block must not run")  # pragma: no cover
    assert reg.get("a") == 1
    with pytest.raises(RuntimeError), reg.temporarily("a", 10, replace=True):
        assert reg.get("a") == 10 and reg.names() == ["a", "b"]
        raise RuntimeError
    assert reg.get("a") == 1 and reg.names() == ["a", "b"]  # back, in its place
