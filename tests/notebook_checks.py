"""Checks that a committed notebook looks like a notebook: one clean, full run.

Used by ``tests/test_notebook_outputs.py`` and by the pre-commit hook; run it as
``python tests/notebook_checks.py notebooks/*.ipynb`` (exit 1 lists each problem).
Plain JSON only, so it runs without TensorFlow or Jupyter installed.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

#: A tqdm text bar: ``training:  40%|████      | 600/1500 [...]``.
TQDM_BAR = re.compile(r"\d+%\|")
#: Keras progress: ``Epoch 3/10``, ``32/32 [====>....]`` (Keras 2) or ``━━━━`` (Keras 3).
KERAS_PROGRESS = re.compile(r"^Epoch \d+/\d+$|\d+/\d+ \[=*>?\.*\]|━━", re.MULTILINE)
#: TensorFlow's start-up and logging noise.
LOG_NOISE = re.compile(
    r"^[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\]|absl::InitializeLog|^WARNING:tensorflow|TqdmWarning",
    re.MULTILINE,
)


def _text(output: dict) -> str:
    if output.get("output_type") == "stream":
        text = output.get("text", "")
    else:
        text = output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else text


def _code_cells(path: Path) -> list[dict]:
    book = json.loads(Path(path).read_text(encoding="utf-8"))
    return [c for c in book.get("cells", []) if c.get("cell_type") == "code"]


def progress_problems(path: Path) -> list[str]:
    """Progress-bar fragments and Keras step lines in the outputs, and runs not in one go."""
    problems = []
    cells = _code_cells(path)
    counts = [c.get("execution_count") for c in cells]
    if counts != list(range(1, len(cells) + 1)):
        problems.append(
            f"execution counts {counts} are not 1..{len(cells)}: "
            "run the whole notebook once, top to bottom (Restart & Run All), and commit that"
        )
    for number, cell in enumerate(cells, 1):
        for output in cell.get("outputs", []):
            text = _text(output)
            if output.get("output_type") == "stream" and "\r" in text:
                problems.append(f"code cell {number}: carriage-return progress fragments")
            elif TQDM_BAR.search(text):
                problems.append(f"code cell {number}: a tqdm text bar")
            if KERAS_PROGRESS.search(text):
                problems.append(f"code cell {number}: Keras progress lines (pass verbose=0)")
    return sorted(set(problems), key=problems.index)


def log_problems(path: Path) -> list[str]:
    """TensorFlow's native log lines, Python warnings of TensorFlow, and tqdm's warning."""
    problems = []
    for number, cell in enumerate(_code_cells(path), 1):
        for output in cell.get("outputs", []):
            match = LOG_NOISE.search(_text(output))
            if match:
                problems.append(f"code cell {number}: log noise {match.group(0)!r}")
    return problems


def main(paths: list[str]) -> int:
    """Prints every progress problem of the given notebooks; 1 if there was one."""
    found = [f"{p}: {problem}" for p in paths for problem in progress_problems(Path(p))]
    if found:
        print("\n".join(found), file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
