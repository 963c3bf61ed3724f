"""The shared figures explain themselves: markers in the legend, legends beside the data, readable dpi."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from minisam import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _legend_texts(ax):
    legend = ax.get_legend()
    assert legend is not None, "the figure has no legend"
    return [t.get_text() for t in legend.get_texts()]


def _grid():
    xs = np.linspace(-1, 1, 20)
    X, Y = np.meshgrid(xs, xs)
    return X, Y, X**2 + 3 * Y**2


def test_save_writes_at_least_100_dpi_by_default(tmp_path):
    fig, ax = plt.subplots(figsize=(2.0, 1.0))
    ax.plot([0, 1], [0, 1])
    path = plots.save(fig, tmp_path / "figure.png")
    height, width = plt.imread(path).shape[:2]
    assert plots.DPI >= 100
    assert width >= 2.0 * 100 * 0.8 and height >= 1.0 * 100 * 0.8  # tight bbox trims a little


def test_contour_paths_explains_start_end_and_minimum_markers_in_the_legend():
    X, Y, Z = _grid()
    path = np.array([[0.8, 0.8], [0.1, 0.1], [0.0, 0.0]])
    ax = plots.contour_paths(X, Y, Z, {"SGD": path, "SAM": path * 0.9}, minima={"centre": (0.0, 0.0)})
    texts = _legend_texts(ax)
    for entry in ("SGD", "SAM", "start", "end", "minimum"):
        assert entry in texts, f"{entry!r} missing from the legend {texts}"


def test_contour_paths_legend_sits_outside_the_axes():
    X, Y, Z = _grid()
    ax = plots.contour_paths(X, Y, Z, {"SGD": np.zeros((2, 2))})
    fig = ax.figure
    fig.canvas.draw()
    legend_box = ax.get_legend().get_window_extent()
    assert legend_box.x0 >= ax.get_window_extent().x1, "the legend covers the data"


def test_contour_paths_draws_coinciding_paths_with_different_widths_so_none_is_hidden():
    X, Y, Z = _grid()
    path = np.array([[0.5, 0.5], [0.0, 0.0]])
    ax = plots.contour_paths(X, Y, Z, {"SGD": path, "SAM": path, "XSAM": path})
    widths = [line.get_linewidth() for line in ax.get_lines() if len(line.get_xdata()) == 2]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3


def test_contour_paths_colour_scale_stops_at_the_chosen_percentile():
    X, Y, Z = _grid()
    Z[0, 0] = 1e6  # one steep corner
    ax = plots.contour_paths(X, Y, Z, clip_percentile=95)
    filled = next(c for c in ax.collections if hasattr(c, "levels"))
    assert max(filled.levels) == pytest.approx(np.percentile(Z, 95))


def test_alpha_trajectory_marks_searches_clamped_at_the_grid_end():
    ax = plots.alpha_trajectory(np.arange(4), [1.0, 2.0, 1.5, 2.0], alpha_max=2.0)
    clamped = [t for t in _legend_texts(ax) if "grid's end" in t and "2 of 4" in t]
    assert clamped, _legend_texts(ax)


def test_alpha_trajectory_without_clamped_searches_has_no_clamp_entry():
    ax = plots.alpha_trajectory(np.arange(3), [1.0, 1.2, 1.5], alpha_max=2.0)
    assert not [t for t in _legend_texts(ax) if "may lie beyond" in t]


def test_curves_with_spread_can_show_every_row():
    rows = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0], [2.0, 0.0, -5.0]])
    ax = plots.curves_with_spread([1, 2, 3], {"SAM": rows}, show_each=True)
    assert len(ax.get_lines()) == 3 + 1  # every row, then the mean
    assert "each of the 3 points" in " ".join(_legend_texts(ax))


def test_outcome_bars_stack_the_counts_and_draw_the_total():
    ax = plots.outcome_bars([0.1, 0.2], {"flat": [1, 7], "sharp": [16, 10]}, total=17)
    heights = sorted(round(p.get_height()) for p in ax.patches)
    assert heights == [1, 7, 10, 16]
    assert "all 17 starts" in _legend_texts(ax)


def test_basin_map_legend_names_every_outcome_and_sits_outside():
    ax = plots.basin_map(np.array([[0, 1], [-1, 0]]), ((0, 1), (0, 1)), ["sharp", "flat"])
    assert _legend_texts(ax) == ["sharp", "flat", "neither"]
    ax.figure.canvas.draw()
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1


def test_neighbourhood_arrows_say_they_are_directions_not_steps():
    ax = plots.neighbourhood_arrows({"SGD: g₀": (0.3, 0.0)}, rho=0.3)
    assert "not steps" in ax.get_legend().get_title().get_text()
