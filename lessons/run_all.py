"""Execute the lessons in place, top to bottom, each in a fresh kernel.

    python lessons/run_all.py                 # every notebook in lessons/
    python lessons/run_all.py 03 05           # only those whose names start with 03 or 05

Outputs (figures included) are written back into the notebooks so they read on GitHub.
Each lesson is timed; the budget is 120 s per lesson on 2 cores.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
BUDGET_SECONDS = 120


def lessons(prefixes=()):
    found = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    return [p for p in found if not prefixes or p.name.startswith(tuple(prefixes))]


def execute(path: Path, write: bool = True, timeout: int = 600) -> float:
    """Run one notebook in a fresh ``python3`` kernel from the lessons folder; seconds taken."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    if write:
        nbformat.write(notebook, path)
    return seconds


def main(argv) -> int:
    failed = False
    for path in lessons(argv):
        seconds = execute(path)
        over = "  OVER BUDGET" if seconds > BUDGET_SECONDS else ""
        failed |= bool(over)
        print(f"{path.name:<40} {seconds:6.1f} s  {path.stat().st_size / 1024:6.0f} KiB{over}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
