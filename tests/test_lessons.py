"""Every lesson runs top to bottom in a fresh kernel, without an error."""

import importlib.util
from pathlib import Path

import pytest

LESSONS = Path(__file__).resolve().parent.parent / "lessons"
NOTEBOOKS = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))


def _runner():
    spec = importlib.util.spec_from_file_location("run_all", LESSONS / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_lessons_to_run():
    assert NOTEBOOKS, f"no lesson notebooks found in {LESSONS}"


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_lesson_executes_in_a_fresh_kernel(notebook, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    _runner().execute(notebook, write=False)
