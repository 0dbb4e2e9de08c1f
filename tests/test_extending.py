"""Every Python block of ``docs/extending.md`` runs, in order, in one fresh namespace."""

from __future__ import annotations

import re

import pytest
from conftest import REPO

PAGE = REPO / "docs" / "extending.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


@pytest.mark.slow(seconds=15)
def test_the_guide_runs(capsys) -> None:
    assert len(blocks()) == 4
    namespace: dict = {}
    for code in blocks():
        exec(compile(code, str(PAGE), "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "['distortion', 'loss', 'rate']"
    assert float(abs(namespace["learned"].prior_layer.loc.numpy()).max()) > 1e-3
    assert printed[-2] == "Likelihood my_cb" and printed[-1] == "True"
    assert "my_cb" not in namespace["LIKELIHOODS"]  # registered only inside the block
