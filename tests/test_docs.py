"""The README, the docs pages and the docstring examples stay correct."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
import warnings
from pathlib import Path

import pytest
import yaml
from conftest import REPO

import tfpvae

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
PAGES = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").rglob("*.md"))]


def test_readme_is_short() -> None:
    assert len((REPO / "README.md").read_text().splitlines()) <= 150


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path) -> None:
    prose = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code is not links
    targets = [t for t in LINK.findall(prose) if "://" not in t]
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert missing == []


def test_docs_nav_lists_every_page() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())

    def files(node) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [f for item in node for f in files(item)]
        return [f for value in node.values() for f in files(value)]

    listed = set(files(config["nav"]))
    present = {str(p.relative_to(REPO / "docs")) for p in (REPO / "docs").rglob("*.md")}
    assert listed == present


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(tfpvae.__path__, "tfpvae."))


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_import_what_they_use(name: str) -> None:
    """Runs each module's examples in an empty namespace (pytest's doctests see the module's)."""
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(module, name, globs={}):
        runner.run(test)
    assert runner.failures == 0


def test_pre_commit_runs_ruff_and_the_notebook_check() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff", "ruff-format", "notebook-outputs"} <= set(hooks)
    script = hooks["notebook-outputs"]["entry"].split()[-1]
    assert (REPO / script).is_file()
    assert re.search(hooks["notebook-outputs"]["files"], "notebooks/05_evaluation.ipynb")


def _warns_from(module: str) -> list[warnings.WarningMessage]:
    code = compile("import warnings; warnings.warn('old API', DeprecationWarning)", module, "exec")
    with warnings.catch_warnings(record=True) as caught:
        exec(code, {"__name__": module})  # the warning is attributed to ``module``
    return [w for w in caught if issubclass(w.category, DeprecationWarning)]


@pytest.mark.parametrize(
    ("module", "shown"),
    [("tfpvae.models.vae", True), ("tests.test_docs", True),
     ("tensorflow_probability.python", False), ("tf_keras.src.engine", False),
     ("jupyter_client.session", False)],
)  # fmt: skip
def test_only_named_third_party_deprecations_are_hidden(module: str, shown: bool) -> None:
    assert bool(_warns_from(module)) is shown
