"""The package's layers import only downwards, without cycles, and ``import tfpvae`` stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from conftest import REPO

#: Each package (or top-level module) of tfpvae and its layer: a module may import
#: from its own layer and the ones below it, never from above.
LAYERS = {
    "_backend": 0,
    "_native_log": 0,
    "_xla_cache": 0,
    "_import_hook": 0,
    "_lazy": 0,
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
    "testing": 8,
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


def _is_type_checking(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``): a block that never runs."""
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that can run: at module level or inside functions.

    The bodies of ``if TYPE_CHECKING:`` are skipped (their ``else`` is kept).
    """
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        if _is_type_checking(node):
            assert isinstance(node, ast.If)
            for child in node.orelse:
                yield from _runtime_imports(ast.Module(body=[child], type_ignores=[]))
        else:
            yield from _runtime_imports(node)


def _module_names(root: Path, package: str) -> dict[str, Path]:
    """``tfpvae.models.vae`` → its file, for every module of ``package`` under ``root``."""
    names = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _import_graph(root: Path, package: str = "tfpvae") -> dict[str, set[str]]:
    """Module → the modules of ``package`` it imports when run.

    ``from a.b import c`` points at the module ``a.b.c`` when there is one, else at
    ``a.b``; a relative import is resolved against the importing module. Parent
    packages that Python also runs are not edges: a package's ``__init__`` that
    imports its own submodules is not a cycle.
    """
    modules = _module_names(root, package)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        edges = graph.setdefault(module, set())
        for node in _runtime_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in modules)
                continue
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in modules:
                    edges.add(target)
                elif base in modules:
                    edges.add(base)
        edges.discard(module)
    return graph


def _cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One shortest import cycle per knot of mutually importing modules.

    Each knot (a strongly connected component with more than one module) gives
    the shortest cycle through its first module in sorted order, written
    ``[a, b, ..., a]``.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    knots: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            knot = set()
            while True:
                member = stack.pop()
                knot.add(member)
                if member == node:
                    break
            if len(knot) > 1:
                knots.append(knot)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    cycles = []
    for knot in sorted(knots, key=min):
        start = min(knot)
        came_from: dict[str, str] = {}  # breadth first from start, inside the knot
        frontier = [start]
        while start not in came_from:
            reached = []
            for node in frontier:
                for nxt in sorted(graph[node] & knot):
                    if nxt not in came_from:
                        came_from[nxt] = node
                        reached.append(nxt)
            frontier = reached
        back = [start]
        while (node := came_from[back[-1]]) != start:
            back.append(node)
        cycles.append([start, *back[:0:-1], start])
    return cycles


def test_no_module_imports_itself_through_others() -> None:
    """A cycle makes what a module sees depend on which one Python imported first."""
    cycles = _cycles(_import_graph(REPO))
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def test_the_cycle_check_sees_a_cycle_through_a_function(tmp_path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from pkg.a import f\n")  # a package's own: no cycle
    (package / "a.py").write_text("from pkg.sub import b\n\ndef f():\n    return b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg import d\n"  # never runs: not an edge
        "def g():\n    from ..c import h\n    return h\n"
    )
    (package / "c.py").write_text("import pkg.a\n")
    (package / "d.py").write_text("from pkg.sub.b import g\n")
    graph = _import_graph(tmp_path, "pkg")
    assert graph["pkg.sub.b"] == {"pkg.c"} and graph["pkg.d"] == {"pkg.sub.b"}
    assert _cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
    (package / "c.py").write_text("VALUE = 1\n")
    assert _cycles(_import_graph(tmp_path, "pkg")) == []


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
