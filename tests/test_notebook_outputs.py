"""The committed notebooks hold the outputs of one clean, full run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO
from notebook_checks import log_problems, main, progress_problems

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
#: Every notebook starts by quieting TensorFlow (tfpvae.interfaces.quiet): no log line may remain.
QUIET = [path.name for path in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_no_progress_fragments_and_one_run(path: Path) -> None:
    assert progress_problems(path) == []


@pytest.mark.parametrize("name", QUIET)
def test_committed_notebook_has_no_tensorflow_log_noise(name: str) -> None:
    assert log_problems(REPO / "notebooks" / name) == []


@pytest.mark.parametrize("name", QUIET)
def test_full_mode_outputs(name: str) -> None:
    """Committed outputs come from full mode, not from the smoke budget the suite runs."""
    book = json.loads((REPO / "notebooks" / name).read_text())
    text = "".join(
        "".join(o.get("text", ""))
        for c in book["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
    )
    assert "smoke=False" in text and "smoke budget" not in text


def _notebook(tmp_path: Path, cells: list[tuple[int | None, list[dict]]]) -> Path:
    book = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# title"},
            *(
                {"cell_type": "code", "metadata": {}, "source": "x", "execution_count": n,
                 "outputs": outputs}
                for n, outputs in cells
            ),
        ],
    }  # fmt: skip
    path = tmp_path / "book.ipynb"
    path.write_text(json.dumps(book))
    return path


def _stream(text: str, name: str = "stderr") -> dict:
    return {"output_type": "stream", "name": name, "text": text}


def test_the_checks_catch_what_they_are_for(tmp_path: Path, capsys) -> None:
    clean = _notebook(tmp_path, [(1, [_stream("loss 3.2\n", "stdout")]), (2, [])])
    assert progress_problems(clean) == [] and log_problems(clean) == []
    assert main([str(clean)]) == 0

    bar = "\rtraining:  40%|████      | 600/1500 [00:04<00:06, 150batch/s]"
    widget = {"output_type": "display_data", "metadata": {}, "data": {"text/plain": bar.strip()}}
    cases = {
        "carriage-return progress fragments": [(1, [_stream(bar)])],
        "a tqdm text bar": [(1, [widget])],
        "Keras progress lines": [(1, [_stream("Epoch 1/3\n32/32 [=====>....] - 0s\n", "stdout")])],
        "are not 1..2": [(1, []), (3, [])],
    }
    for problem, cells in cases.items():
        found = progress_problems(_notebook(tmp_path, cells))
        assert len(found) == 1 and problem in found[0], (problem, found)
    assert main([str(_notebook(tmp_path, cases["are not 1..2"]))]) == 1
    assert "Restart & Run All" in capsys.readouterr().err

    noisy = _notebook(
        tmp_path,
        [(1, [_stream("E0000 00:00:1795264976.893004   29592 cuda_platform.cc:52] cuInit\n")])],
    )
    assert len(log_problems(noisy)) == 1 and progress_problems(noisy) == []
