"""Every lesson runs top to bottom in a fresh kernel, without an error; the helpers the lessons
share (minisam.course) do what the lessons rely on."""

import importlib.util
import os
from pathlib import Path

import numpy as np
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


# ---- the lesson helpers in minisam.course --------------------------------------------------
def test_settle_reports_the_minimum_a_run_rests_in_and_none_when_it_reaches_neither():
    from minisam import landscapes, optim
    from minisam.course import settle

    surface = landscapes.SharpFlat2D()
    sgd = lambda p: optim.SGD(p, lr=0.05)  # noqa: E731
    name, end = settle(surface, sgd, surface.minimum("sharp").point + 0.05, chunk=10)
    assert name == "sharp" and np.linalg.norm(end - surface.minimum("sharp").point) <= 0.25
    frozen = lambda p: optim.SGD(p, lr=1e-12)  # noqa: E731  (never moves far enough to arrive anywhere)
    name, end = settle(surface, frozen, (0.0, 1.9), max_steps=20, chunk=10)
    assert name is None and np.allclose(end, (0.0, 1.9))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"max_steps": 0}, "max_steps"), ({"chunk": 2.5}, "chunk"), ({"radius": -1.0}, "radius")],
)
def test_settle_rejects_bad_arguments_by_name(kwargs, match):
    from minisam import landscapes, optim
    from minisam.course import settle

    with pytest.raises(ValueError, match=match):
        settle(landscapes.SharpFlat2D(), lambda p: optim.SGD(p, lr=0.05), (0.0, 0.0), **kwargs)


def test_settle_noisy_is_reproducible_for_a_seed():
    from minisam import landscapes, optim
    from minisam.course import settle_noisy

    surface = landscapes.SharpFlat2D()

    def run(seed):
        return settle_noisy(surface, lambda p: optim.SGD(p, lr=0.05), (-0.8, 0.6), 0.2, 30, seed, chunk=10)

    (a, end_a), (b, end_b) = run(3), run(3)
    assert a == b and np.array_equal(end_a, end_b)


def test_update_direction_reads_the_unit_update_and_leaves_theta_unchanged():
    import minisam as ms
    from minisam import landscapes, optim
    from minisam.course import update_direction

    surface = landscapes.Quadratic(np.diag([4.0, 1.0]))
    theta = ms.Tensor(np.array([1.0, 2.0]), requires_grad=True, dtype=np.float64)
    closure = lambda: surface.loss(theta)  # noqa: E731
    g0_direction, _ = update_direction([theta], closure, lambda base: base)
    np.testing.assert_allclose(g0_direction, np.array([4.0, 2.0]) / np.hypot(4.0, 2.0), rtol=1e-12)
    sam_direction, _ = update_direction([theta], closure, lambda base: optim.SAM(base, rho=0.5))
    ascent = np.array([1.0, 2.0]) + 0.5 * g0_direction  # g₁ = H·(θ + ρ·ĝ₀) on this quadratic
    g1 = np.diag([4.0, 1.0]) @ ascent
    np.testing.assert_allclose(sam_direction, g1 / np.linalg.norm(g1), rtol=1e-9)
    assert theta.numpy().tolist() == [1.0, 2.0]


def test_wilson_interval_matches_the_formula_and_stays_inside_zero_one():
    from minisam.course import wilson_interval

    low, high = wilson_interval(0, 17)
    assert low == 0.0 and 0.15 < high < 0.2  # 1.96²/(17 + 1.96²) = 0.184
    assert high == pytest.approx(1.96**2 / (17 + 1.96**2), rel=1e-12)
    low, high = wilson_interval(6, 16)
    assert low < 6 / 16 < high and 0 < low and high < 1
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(5, 4)


def test_sign_test_is_the_binomial_tail():
    from minisam.course import sign_test

    assert sign_test(3, 0) == pytest.approx(1 / 8)
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 1) == pytest.approx((6 + 1) / 64)


def test_explore_paths_draws_a_static_figure_when_ipywidgets_is_missing(monkeypatch, capsys):
    import sys

    import matplotlib

    matplotlib.use("Agg")
    from minisam import landscapes
    from minisam.course import explore_paths

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets now raises ImportError
    assert explore_paths(landscapes.SharpFlat2D(), (-0.6, 0.9), steps=5) == "static"
    assert "install ipywidgets" in capsys.readouterr().out


def test_explore_paths_rejects_a_bad_learning_rate_by_name():
    from minisam import landscapes
    from minisam.course import explore_paths

    with pytest.raises(ValueError, match="lr"):
        explore_paths(landscapes.SharpFlat2D(), (0.0, 0.0), lr=0.0, widgets=False)


def test_every_lesson_starts_with_setup_and_ends_with_questions_and_take_aways():
    import nbformat

    for path in NOTEBOOKS:
        if path.name[:2] in ("02", "03", "08"):
            continue  # written by other helpers
        cells = nbformat.read(path, as_version=4).cells
        first_code = next(c.source for c in cells if c.cell_type == "code")
        assert "setup()" in first_code and "OPENBLAS" not in first_code, path.name
        text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
        assert "## Take-aways" in text and "## Check your understanding" in text, path.name
        assert text.count("<details>") >= 4, path.name  # 3+ answers and a solution
        assert "README.md#glossary" in text, path.name


@pytest.mark.slow
def test_lesson_04_executes_without_ipywidgets(tmp_path, monkeypatch):
    # a module named ipywidgets that fails to import, first on the kernel's path
    (tmp_path / "ipywidgets.py").write_text("raise ImportError('ipywidgets hidden by the test')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    copy = tmp_path / "04_copy.ipynb"  # executed with outputs, in a copy, so the static path can be checked
    copy.write_bytes((LESSONS / "04_sharp_vs_flat_minima.ipynb").read_bytes())
    _runner().execute(copy, write=True)
    assert "static figure: install ipywidgets" in copy.read_text(encoding="utf-8")
