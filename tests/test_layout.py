"""The package's layers import only downwards, and ``import tfpvae`` stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

#: Each package (or top-level module) of tfpvae and its layer: a module may import
#: from its own layer and the ones below it, never from above.
LAYERS = {
    "_backend": 0,
    "_keras_hook": 9,
    "registry": 0,
    "files": 0,
    "components": 1,
    "objectives": 2,
    "config": 3,
    "training": 4,
    "models": 5,
    "io": 6,
    "evaluation": 7,
    "interfaces": 8,
    "__init__": 9,
    "__main__": 9,
}


def _part(module: str) -> str:
    """``tfpvae.models.vae`` → ``models``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> set[str]:
    """Every tfpvae module ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tfpvae"):
            if node.module == "tfpvae":
                found.update(f"tfpvae.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tfpvae"))
    return found


def test_every_module_belongs_to_a_layer() -> None:
    parts = {_part(".".join(p.relative_to(REPO).with_suffix("").parts)) for p in _modules()}
    assert parts <= set(LAYERS), parts - set(LAYERS)


def _modules() -> list[Path]:
    return sorted((REPO / "tfpvae").rglob("*.py"))


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for path in _modules():
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        if module == "tfpvae.__init__":
            continue  # the public API re-exports every layer
        own = LAYERS[_part(module)]
        for imported in _imports(path):
            if imported != "tfpvae" and LAYERS.get(_part(imported), 0) > own:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, "\n".join(wrong)


def test_the_layer_check_sees_an_upward_import(tmp_path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from tfpvae.interfaces.cli import main\n")
    assert _imports(bad) == {"tfpvae.interfaces.cli"}
    assert LAYERS[_part("tfpvae.interfaces.cli")] > LAYERS["components"]


@pytest.mark.slow(seconds=6)
def test_import_tfpvae_loads_no_plotting_of_its_own() -> None:
    """TensorFlow's bundled Keras 3 may import matplotlib itself; tfpvae adds none."""
    script = (
        "import sys, tensorflow\n"
        "before = set(sys.modules)\n"
        "import tfpvae\n"
        "added = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(added & {'matplotlib', 'seaborn', 'pandas'}))\n"
        "tfpvae.TrainSettings  # the lazy public names still resolve\n"
        "print('seaborn' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True"
