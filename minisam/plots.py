"""The figures the demo and the lessons share.

Each helper draws one kind of figure on a Matplotlib ``Axes`` (made for you when you pass
none) from plain NumPy arrays, and returns the Axes, so a lesson cell stays one line
and every figure gets a title, axis labels and a legend. ``save(fig, path)`` writes a
small PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# One colour per optimizer everywhere, so a reader learns them once.
COLORS = {"SGD": "tab:blue", "SAM": "tab:orange", "XSAM": "tab:green", "ASAM": "tab:purple"}


def color_of(name: str, index: int = 0) -> str:
    for key, color in COLORS.items():
        if name.upper().startswith(key):
            return color
    return f"C{index % 10}"


def _axes(ax, figsize=(5.5, 4.2)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1]


DPI = 100  # text stays readable; with the modest figure sizes used here a PNG stays near 100 KiB or less


def save(fig, path, dpi: int = DPI) -> Path:
    """Write ``fig`` as a PNG at ``dpi`` (default 100: readable text, files of tens of KiB)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def grid_values(loss_fn, bounds, resolution: int = 120):
    """Evaluate ``loss_fn(point)`` (a 2-vector -> float) on a grid over
    ``bounds = ((x_min, x_max), (y_min, y_max))``; returns X, Y, Z for ``contour_paths``."""
    (x0, x1), (y0, y1) = bounds
    xs, ys = np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution)
    X, Y = np.meshgrid(xs, ys)
    Z = np.array([[loss_fn(np.array([x, y])) for x in xs] for y in ys])
    return X, Y, Z


# Paths are drawn widest first, so a later, thinner path on top of an earlier one never hides it.
_PATH_STYLES = [
    {"lw": 4.0, "ls": "-"},
    {"lw": 2.4, "ls": "--"},
    {"lw": 1.4, "ls": "-"},
    {"lw": 1.0, "ls": ":"},
]


def contour_paths(
    X,
    Y,
    Z,
    paths=None,
    minima=None,
    ax=None,
    title="Loss landscape",
    levels=20,
    xlabel=r"first parameter $\theta_1$",
    ylabel=r"second parameter $\theta_2$",
    clip_percentile=95,
    legend="outside",
    point_label="minimum",
):
    """Filled contours of a 2-D loss with optimizer paths drawn on top.

    paths:  {name: array (steps+1, 2)}, each drawn from a circle (its start) to a star (its
            end); the first path is the widest and each later one thinner and differently
            dashed, so paths that coincide stay visible.
    minima: {label: (x, y)}, marked with a black-and-white cross and labelled; the legend calls
            these points ``point_label`` ("minimum" unless you mark something else).

    The colour scale stops at the ``clip_percentile``-th percentile of Z (higher values share
    the top colour), so one steep corner cannot wash out the rest of the map; pass 100 to
    show the full range. Every marker is explained in the legend, which sits to the right of
    the axes (``legend="outside"``, so that it covers no data), inside them (``"inside"``), or
    is left out (``None``, e.g. for all but one panel of a row).
    """
    from matplotlib import patheffects
    from matplotlib.lines import Line2D

    ax = _axes(ax)
    Z = np.asarray(Z, dtype=float)
    top = float(np.percentile(Z, clip_percentile))
    bounds = np.linspace(float(Z.min()), top, levels)
    extend = "max" if top < Z.max() else "neither"
    # no anti-aliasing and no contour lines: the bands show the levels, and the PNG stays ~5x smaller
    filled = ax.contourf(
        X, Y, np.minimum(Z, top), levels=bounds, cmap="viridis", extend=extend, antialiased=False
    )
    note = "" if extend == "neither" else f" (top colour: ≥ {top:.3g})"
    ax.figure.colorbar(filled, ax=ax, label="loss" + note)
    handles = []
    for i, (name, path) in enumerate((paths or {}).items()):
        path = np.asarray(path)
        color, style = color_of(name, i), _PATH_STYLES[min(i, len(_PATH_STYLES) - 1)]
        ax.plot(path[:, 0], path[:, 1], color=color, zorder=3 + i, **style)
        ax.plot(*path[0], "o", color=color, ms=7, mec="white", zorder=10)
        ax.plot(*path[-1], "*", color=color, ms=12, mec="white", zorder=10)
        handles.append(Line2D([], [], color=color, label=name, **style))
    if paths:
        handles.append(Line2D([], [], ls="", marker="o", color="gray", mec="white", ms=7, label="start"))
        handles.append(Line2D([], [], ls="", marker="*", color="gray", mec="white", ms=12, label="end"))
    for label, (x, y) in (minima or {}).items():
        # under the end stars, and larger, so that a path ending on a minimum hides neither marker
        ax.plot(x, y, "x", color="white", ms=16, mew=4, zorder=8)
        ax.plot(x, y, "x", color="black", ms=15, mew=2, zorder=9)
        text = ax.annotate(label, (x, y), textcoords="offset points", xytext=(7, 5), color="white", zorder=12)
        text.set_path_effects([patheffects.withStroke(linewidth=2.5, foreground="black")])  # on any colour
    if minima:
        handles.append(Line2D([], [], ls="", marker="x", color="black", mew=2, ms=9, label=point_label))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if handles and legend:
        outside = {"loc": "upper left", "bbox_to_anchor": (1.38, 1.0)}
        where = outside if legend == "outside" else {"loc": "best"}
        ax.legend(handles=handles, fontsize=8, framealpha=0.9, **where)
    return ax


def basin_map(labels, bounds, names, ax=None, title="Where each start ends up"):
    """A grid of starting points coloured by the minimum the optimizer reached.

    labels: integer array (rows = y, columns = x) indexing ``names``; -1 means "neither".
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    ax = _axes(ax, figsize=(4.5, 4.2))
    palette = ["#d9d9d9", "#e6550d", "#3182bd", "#31a354", "#756bb1"][: len(names) + 1]
    (x0, x1), (y0, y1) = bounds
    ax.imshow(
        np.asarray(labels) + 1,
        origin="lower",
        extent=(x0, x1, y0, y1),
        aspect="auto",
        cmap=ListedColormap(palette),
        vmin=0,
        vmax=len(palette) - 1,
        interpolation="nearest",
    )
    handles = [Patch(color=palette[i + 1], label=n) for i, n in enumerate(names)]
    handles.append(Patch(color=palette[0], label="neither"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, title="ends in")
    ax.set(
        title=title, xlabel=r"start: first parameter $\theta_1$", ylabel=r"start: second parameter $\theta_2$"
    )
    return ax


def learning_curves(curves, ax=None, title="Learning curves", xlabel="epoch", ylabel="loss"):
    """Mean ± one standard deviation over seeds.

    curves: {name: array (seeds, points)} (a 1-D array is one seed).
    """
    ax = _axes(ax)
    for i, (name, runs) in enumerate(curves.items()):
        runs = np.atleast_2d(np.asarray(runs, dtype=float))
        mean, std = runs.mean(axis=0), runs.std(axis=0)
        x = np.arange(1, runs.shape[1] + 1)
        color = color_of(name, i)
        label = name if len(runs) == 1 else f"{name} (mean ± std, {len(runs)} seeds)"
        ax.plot(x, mean, color=color, lw=1.8, label=label)
        if len(runs) > 1:
            ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def bar_chart(values, ax=None, title="", ylabel="", errors=None):
    """One bar per name, with an error bar when ``errors`` (same keys) is given."""
    ax = _axes(ax, figsize=(4.5, 3.6))
    names = list(values)
    heights = [values[n] for n in names]
    yerr = [errors[n] for n in names] if errors else None
    bars = ax.bar(
        names, heights, yerr=yerr, capsize=5, color=[color_of(n, i) for i, n in enumerate(names)], label=names
    )
    ax.bar_label(bars, fmt="%.3g", padding=3, fontsize=8)
    ax.set(title=title, ylabel=ylabel, xlabel="optimizer")
    ax.legend(fontsize=8, loc="lower right")
    return ax


def loss_slices(
    alphas,
    curves,
    ax=None,
    title="Loss along a direction",
    xlabel=r"step $t$ along the direction",
    ylabel="loss",
):
    """1-D loss slices, one line per name: curves = {name: losses at ``alphas``}."""
    ax = _axes(ax)
    for i, (name, losses) in enumerate(curves.items()):
        ax.plot(alphas, losses, color=color_of(name, i), lw=1.8, label=name)
    ax.axvline(0, color="gray", lw=0.8, ls=":")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def probe_curve(alphas, losses, alpha_star=None, ax=None, title=r"XSAM probe loss along the arc $v(\alpha)$"):
    """Loss at θ + ρ_max·v(α) for each probed α, with the chosen α* and the two special
    directions α = 0 (v₀, the ascent direction) and α = 1 (v₁, SAM's gradient)."""
    ax = _axes(ax)
    ax.plot(alphas, losses, "o-", color=COLORS["XSAM"], ms=4, label="probe loss")
    ax.axvline(0, color=COLORS["SGD"], ls="--", lw=1, label=r"$\alpha=0$: $v_0$")
    ax.axvline(1, color=COLORS["SAM"], ls="--", lw=1, label=r"$\alpha=1$: $v_1$ (SAM)")
    if alpha_star is not None:
        ax.axvline(alpha_star, color="black", lw=1.5, label=rf"$\alpha^*={alpha_star:.1f}$")
    ax.set(title=title, xlabel=r"$\alpha$", ylabel=r"loss at $\theta+\rho_{max} v(\alpha)$")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def slerp_arc(psi, alpha_star=None, alpha_max=2.0, ax=None, title=r"The XSAM search arc $v(\alpha)$"):
    """The great circle through v₀ and v₁ drawn in their plane: v₀ along the x-axis, v₁ at
    angle ψ, and v(α) = [sin((1−α)ψ)·v₀ + sin(αψ)·v₁]/sin ψ, which sits at angle α·ψ, for
    α in [0, ``alpha_max``]; with the chosen α* marked."""
    ax = _axes(ax, figsize=(4.2, 4.2))
    circle = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(circle), np.sin(circle), color="lightgray", lw=1)
    arc = np.linspace(0, alpha_max, 100) * psi
    ax.plot(
        np.cos(arc),
        np.sin(arc),
        color=COLORS["XSAM"],
        lw=3,
        alpha=0.5,
        label=rf"$v(\alpha)$, $0\leq\alpha\leq{alpha_max:g}$",
    )
    arrows = [(0.0, COLORS["SGD"], r"$v_0$ ($\alpha=0$)"), (1.0, COLORS["SAM"], r"$v_1$ ($\alpha=1$)")]
    if alpha_star is not None:
        arrows.append((alpha_star, "black", rf"$v(\alpha^*)$, $\alpha^*={alpha_star:.1f}$"))
    for alpha, color, label in arrows:
        ax.annotate(
            "",
            (np.cos(alpha * psi), np.sin(alpha * psi)),
            (0, 0),
            arrowprops={"arrowstyle": "->", "color": color, "lw": 2},
        )
        ax.plot([], [], color=color, lw=2, label=label)  # legend entry for the arrow
    ax.annotate(r"$\psi$", (0.35 * np.cos(psi / 2), 0.35 * np.sin(psi / 2)), fontsize=12)
    ax.set(
        title=title,
        xlabel=r"along $v_0$",
        ylabel=r"perpendicular to $v_0$, towards $v_1$",
        xlim=(-1.15, 1.15),
        ylim=(-1.15, 1.15),
        aspect="equal",
    )
    ax.legend(fontsize=8, loc="lower left")
    return ax


def alpha_trajectory(
    steps, alphas, alpha_max=2.0, ax=None, steps_per_epoch=None, title=r"XSAM's $\alpha^*$ over training"
):
    """α* at each search step, with the α = 0 (v₀) and α = 1 (v₁, SAM) lines, the grid's
    end α_max, and (with ``steps_per_epoch``) faint lines at epoch boundaries. Searches whose
    α* is the grid's last point are marked with a triangle: there the probe loss was still
    rising, so α* was clamped by the grid, not found."""
    ax = _axes(ax, figsize=(6.5, 3.4))
    steps = np.asarray(steps)
    if steps_per_epoch:
        for boundary in range(steps_per_epoch, int(steps.max()) + 1, steps_per_epoch):
            ax.axvline(boundary, color="lightgray", lw=0.6)
    ax.axhline(0, color=COLORS["SGD"], ls="--", lw=1, label=r"$\alpha=0$: $v_0$")
    ax.axhline(1, color=COLORS["SAM"], ls="--", lw=1, label=r"$\alpha=1$: $v_1$ (SAM)")
    ax.axhline(alpha_max, color="gray", ls=":", lw=1, label=rf"grid end $\alpha_{{max}}={alpha_max:g}$")
    ax.plot(steps, alphas, "o-", color=COLORS["XSAM"], ms=3, lw=1, label=r"$\alpha^*$ at each search")
    alphas = np.asarray(alphas, dtype=float)
    clamped = np.isclose(alphas, alpha_max)
    if clamped.any():
        ax.plot(
            steps[clamped],
            alphas[clamped],
            "^",
            color="black",
            ms=7,
            ls="",
            label=rf"at the grid's end ({clamped.sum()} of {len(alphas)}): the maximum may lie beyond",
        )
    ax.set(title=title, xlabel="training step", ylabel=r"$\alpha^*$", ylim=(-0.1, alpha_max + 0.25))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), framealpha=0.9)
    ax.grid(alpha=0.3)
    return ax


def curves_with_spread(
    x, curves, ax=None, title="", xlabel="", ylabel="", over="points", spread="std", show_each=False
):
    """Several measurements at each x, one line per name: the mean with a ±1 standard
    deviation band (``spread="std"``), or the median with the middle half of the
    measurements, 25th to 75th percentile (``spread="quartiles"``).

    curves: {name: array (measurements, len(x))}, NaN where a name has no value at that x;
    ``over`` names what the rows are ("points", "seeds", ...) in the legend. ``show_each``
    also draws every row as a thin line, so that one row that moves the mean stays visible.
    """
    ax = _axes(ax)
    for i, (name, rows) in enumerate(curves.items()):
        rows = np.atleast_2d(np.asarray(rows, dtype=float))
        if spread == "quartiles":
            center = np.nanmedian(rows, axis=0)
            low, high = np.nanpercentile(rows, [25, 75], axis=0)
            what = "median, 25–75 %"
        else:
            center, std = np.nanmean(rows, axis=0), np.nanstd(rows, axis=0)
            low, high = center - std, center + std
            what = "mean ± std"
        color = color_of(name, i)
        label = name if len(rows) == 1 else f"{name} ({what} of {len(rows)} {over})"
        if show_each and len(rows) > 1:
            for j, row in enumerate(rows):
                each = f"{name}: each of the {len(rows)} {over}" if j == 0 else None
                ax.plot(x, row, "-", color=color, lw=0.6, alpha=0.45, label=each)
        ax.plot(x, center, "o-", color=color, ms=4, lw=1.8, label=label)
        if len(rows) > 1:
            ax.fill_between(x, low, high, color=color, alpha=0.15)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def neighbourhood_arrows(offsets, rho, center=(0.0, 0.0), ax=None, title=None, label_circle=None):
    """The ρ-circle around θ (at ``center``) and one arrow per direction, drawn on an
    existing plot (typically ``contour_paths`` of a loss slice): the paper's Fig. 1a.

    offsets: {name: 2-vector}, each arrow drawn from θ to θ + offset (pass ρ·unit vectors
    to compare directions on the sphere). An arrow is a direction, not an optimizer step (a step
    goes the other way, downhill, and has length lr·‖g‖); the legend says so. Names starting
    with SGD/SAM/XSAM get their optimizer's colour; other names get black, then further colours.
    """
    from matplotlib import patheffects

    ax = _axes(ax)
    center = np.asarray(center, dtype=float)
    angles = np.linspace(0, 2 * np.pi, 200)
    circle = center[:, None] + rho * np.stack([np.cos(angles), np.sin(angles)])
    ax.plot(*circle, color="white", lw=1.2, ls="--")
    # the legend's sample of the white circle is drawn in gray, or it would vanish on the white legend
    ax.plot([], [], color="gray", lw=1.2, ls="--", label=label_circle or rf"$\rho$-circle ($\rho$={rho:g})")
    others = iter(["black", "tab:red", "tab:purple", "tab:brown"])
    for i, (name, offset) in enumerate(offsets.items()):
        color = color_of(name, i) if name.upper().startswith(tuple(COLORS)) else next(others)
        tip = center + np.asarray(offset, dtype=float)
        style = {"arrowstyle": "-|>", "color": color, "lw": 2, "shrinkA": 0, "shrinkB": 0}
        arrow = ax.annotate("", tip, center, arrowprops=style)
        # a white outline keeps every arrow visible on any colour map
        outline = patheffects.withStroke(linewidth=4, foreground="white")
        arrow.arrow_patch.set_path_effects([outline])
        ax.plot([], [], color=color, lw=2, label=name)  # legend entry for the arrow
    ax.plot(*center, "o", color="white", mec="black", ms=6, label=r"$\theta$ (the current parameters)")
    if title:
        ax.set_title(title)
    ax.set_aspect("equal")
    ax.legend(
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.38, 1.0),
        framealpha=0.9,
        title="arrows: directions drawn\nwith length ρ, not steps",
        title_fontsize=8,
    )
    return ax


def outcome_bars(
    settings, counts, ax=None, title="", xlabel="", ylabel="number of starts", colors=None, total=None
):
    """Stacked bars: for each setting (e.g. each ρ) how many runs ended in each outcome.

    settings: the x labels; counts: {outcome: list of counts, one per setting}, stacked in
    the order given. Each segment is labelled with its count; ``total`` (the number of runs
    per setting) is drawn as a dashed line so a missing segment cannot go unnoticed.
    """
    ax = _axes(ax, figsize=(5.0, 3.6))
    palette = colors or {}
    x = np.arange(len(settings))
    bottom = np.zeros(len(settings))
    for i, (outcome, values) in enumerate(counts.items()):
        values = np.asarray(values, dtype=float)
        bars = ax.bar(x, values, bottom=bottom, color=palette.get(outcome, f"C{i}"), label=outcome, width=0.6)
        ax.bar_label(bars, labels=[f"{v:g}" if v else "" for v in values], label_type="center", fontsize=8)
        bottom += values
    if total is not None:
        ax.axhline(total, color="black", ls="--", lw=1, label=f"all {total} starts")
    ax.set_xticks(x, [str(s) for s in settings])
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return ax


# ---------------------------------------------------------------------------------------
# The comparison runner's figures (``python -m minisam compare``, ``minisam.compare``)
# ---------------------------------------------------------------------------------------


def comparison_curves(histories, what: str, path) -> Path:
    """Test accuracy and training loss per epoch, mean ± std over seeds, side by side.

    histories: {optimizer name: [one run's history (list of per-epoch dicts) per seed]}.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    learning_curves(
        {name: [[row["test_acc"] for row in h] for h in runs] for name, runs in histories.items()},
        ax=axes[0],
        title=f"Test accuracy on {what}",
        ylabel="test accuracy",
    )
    learning_curves(
        {name: [[row["train_loss"] for row in h] for h in runs] for name, runs in histories.items()},
        ax=axes[1],
        title="Training loss (mean over the epoch's mini-batches)",
        ylabel="cross-entropy",
    )
    saved = save(fig, path, dpi=100)
    plt.close(fig)
    return saved


def sharpness_bars(rows, rho: float, path) -> Path:
    """The top Hessian eigenvalue and the ρ-sharpness at the end of training, one bar per
    optimizer (mean over seeds) with the std over seeds as error bar.

    rows: {optimizer name: {"lambda_max": (mean, std), "rho_sharpness": (mean, std)}}.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    for ax, key, title, ylabel in (
        (axes[0], "lambda_max", r"Top Hessian eigenvalue $\lambda_{max}$", "λ_max (mean ± std over seeds)"),
        (
            axes[1],
            "rho_sharpness",
            rf"$\rho$-sharpness: worst loss rise in the $\rho$={rho} ball",
            "ρ-sharpness (mean ± std over seeds)",
        ),
    ):
        bar_chart(
            {name: row[key][0] for name, row in rows.items()},
            ax=ax,
            title=title,
            ylabel=ylabel,
            errors={name: row[key][1] for name, row in rows.items()},
        )
    saved = save(fig, path, dpi=100)
    plt.close(fig)
    return saved


# ---- lessons 02 and 03
# Contour lines and long paths are drawn without antialiasing: smoothed thin lines make a PNG several times
# larger (lesson 02's two-panel noise figure: 199 KiB smoothed, 80 KiB not), and at 110 dpi it is hard to see.
def descent_regimes(X, Y, Z, paths, minimum, title="Gradient descent on a quadratic valley", shown_steps=12):
    """Two panels for lesson 02: left, the iterates of each run on the contour lines of the
    loss for the first ``shown_steps`` steps (the start a circle, each later iterate a dot,
    joined by a line); right, the distance
    ‖θ_t − θ*‖ to the minimum θ* at each step, on a log scale (a straight falling line is
    convergence at a fixed rate, a rising one divergence). One legend, under both panels.

    paths: {label: array (steps+1, 2)}; minimum: θ*, a 2-vector. Returns (fig, (left, right)).
    """
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.6), gridspec_kw={"width_ratios": [1, 1.2]})
    left.contour(X, Y, Z, levels=12, colors="gray", linewidths=0.6, linestyles="solid", antialiased=False)
    minimum = np.asarray(minimum, dtype=float)
    for i, (label, path) in enumerate(paths.items()):
        path = np.asarray(path, dtype=float)
        color, width = f"C{i}", 2.2 - 0.6 * i  # earlier runs drawn wider, so later ones on top stay visible
        shown = path[: shown_steps + 1]
        left.plot(shown[:, 0], shown[:, 1], ".-", color=color, lw=width, ms=5, label=label)
        distances = np.linalg.norm(path - minimum, axis=1)
        right.semilogy(np.arange(len(path)), distances, ".-", color=color, lw=1.2, ms=4)
    left.plot(
        *np.asarray(next(iter(paths.values())))[0],
        "o",
        color="white",
        mec="black",
        ms=9,
        label="start (all runs)",
    )
    left.plot(*minimum, "x", color="black", ms=10, mew=2, label=r"minimum $\theta^*$")
    left.set(xlim=(X.min(), X.max()), ylim=(Y.min(), Y.max()), aspect="equal")
    left.set(xlabel=r"$\theta_1$ (curvature 10)", ylabel=r"$\theta_2$ (curvature 1)")
    left.set_title(f"the first {shown_steps} iterates on the loss contours", fontsize=10)
    right.set(xlabel="step t", ylabel=r"distance to the minimum $\|\theta_t-\theta^*\|$")
    right.set_title("distance to the minimum (log scale)", fontsize=10)
    right.grid(alpha=0.3)
    fig.suptitle(title)
    fig.legend(*left.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8, framealpha=0.9)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig, (left, right)


def ascent_picture(X, Y, Z, theta, rho, g0, g1, arrow_length=None, ax=None, title="SAM's ascent"):
    """Lesson 03's picture of one SAM step in 2-D: the contour lines of the loss, θ, the ρ-circle
    around it, the ascent point ϑ = θ + ρ·g₀/‖g₀‖, the gradient g₀ at θ, the gradient g₁ at ϑ,
    and g₁ carried back to θ (dashed), which is what SAM descends along. Arrows are drawn with
    a common length (``arrow_length``, default ρ) so that only their directions compare."""
    ax = _axes(ax, figsize=(5.6, 5.0))
    theta, g0, g1 = (np.asarray(v, dtype=float) for v in (theta, g0, g1))
    length = rho if arrow_length is None else arrow_length
    ascent_point = theta + rho * g0 / np.linalg.norm(g0)
    ax.contour(X, Y, Z, levels=20, colors="gray", linewidths=0.6, linestyles="solid", antialiased=False)
    angles = np.linspace(0, 2 * np.pi, 200)
    ax.plot(
        theta[0] + rho * np.cos(angles),
        theta[1] + rho * np.sin(angles),
        "k:",
        lw=1,
        label=rf"$\rho$-circle ($\rho$ = {rho:g})",
    )

    def arrow(start, vector, color, style, label):
        tip = start + length * vector / np.linalg.norm(vector)
        ax.annotate(
            "",
            tip,
            start,
            arrowprops={
                "arrowstyle": "-|>",
                "color": color,
                "lw": 2,
                "ls": style,
                "shrinkA": 0,
                "shrinkB": 0,
            },
        )
        ax.plot([], [], color=color, lw=2, ls=style, label=label)

    arrow(theta, g0, COLORS["SGD"], "-", r"$g_0=\nabla L(\theta)$ (direction)")
    arrow(ascent_point, g1, COLORS["SAM"], "-", r"$g_1=\nabla L(\vartheta)$ at the ascent point")
    arrow(theta, g1, COLORS["SAM"], "--", r"$g_1$ carried back to $\theta$ (SAM's direction)")
    ax.plot(*theta, "o", color="white", mec="black", ms=7, label=r"$\theta$")
    ax.plot(
        *ascent_point,
        "s",
        color=COLORS["SAM"],
        mec="black",
        ms=7,
        label=r"ascent point $\vartheta=\theta+\hat\epsilon$",
    )
    ax.set(title=title, xlabel=r"$\theta_1$", ylabel=r"$\theta_2$", aspect="equal")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, framealpha=0.9)
    return ax


def paths_on_contours(X, Y, Z, paths, points=None, ax=None, title="Paths on the loss contours"):
    """Optimizer paths on the contour lines of a 2-D loss, every marker named in the legend:
    each path a thin line from its start (circle) to its end (star); ``points``
    ({label: (x, y)}) marked with black crosses and labelled on the plot.

    paths: {label: array (steps+1, 2)}; paths that share a label share one legend entry."""
    ax = _axes(ax, figsize=(6.4, 4.8))
    ax.contour(X, Y, Z, levels=20, colors="gray", linewidths=0.6, linestyles="solid", antialiased=False)
    colors = {}
    for label, path in paths.items():
        name = label.split("#")[0].strip()  # "from sharp #3" and "from sharp #4" share a colour
        first = name not in colors
        color = colors.setdefault(name, f"C{len(colors)}")
        path = np.asarray(path, dtype=float)
        # not antialiased: a long jagged path in smoothed pixels makes a PNG several times larger
        ax.plot(
            path[:, 0], path[:, 1], "-", color=color, lw=0.7, antialiased=False, label=name if first else None
        )
        ax.plot(*path[0], "o", color=color, ms=6, mec="black")
        ax.plot(*path[-1], "*", color=color, ms=11, mec="black")
    ax.plot([], [], "o", color="white", mec="black", ms=6, label="start")
    ax.plot([], [], "*", color="white", mec="black", ms=11, label="end")
    for label, (x, y) in (points or {}).items():
        ax.plot(x, y, "x", color="black", ms=9, mew=2)
        ax.annotate(
            label,
            (x, y),
            textcoords="offset points",
            xytext=(8, 8),
            bbox={"fc": "white", "ec": "none", "alpha": 0.8},
        )
    ax.set(title=title, xlabel=r"$\theta_1$", ylabel=r"$\theta_2$", aspect="equal")
    ax.set(xlim=(np.min(X), np.max(X)), ylim=(np.min(Y), np.max(Y)))
    ax.legend(fontsize=8, loc="lower left", framealpha=0.9)
    return ax


# ---- main result (issue 12) -------------------------------------------------------------------
# Figures of ``minisam.reproduce``'s results (lessons/results/main_result.json and curves.json).
# Five optimizers, so SGD's two controls get colours of their own rather than SGD's blue.
MAIN_RESULT_COLORS = {
    "sgd": "tab:blue",
    "sam": "tab:orange",
    "xsam": "tab:green",
    "sgd+": "tab:olive",
    "sgd-2x": "midnightblue",
}


def _main_result_names(result):
    from .reproduce import LABELS

    return list(result["protocol"]["optimizers"]), LABELS


def main_result(result, settings=None):
    """Test accuracy of every final run: one panel per setting, one column per optimizer, one
    dot per seed, the same seed joined by a grey line (the comparisons are paired by seed),
    and the mean with its 95 % confidence interval beside the dots."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from .reproduce import t_975

    names, labels = _main_result_names(result)
    settings = list(result["summary"]) if settings is None else list(settings)
    fig, axes = plt.subplots(1, len(settings), figsize=(5.2 * len(settings), 4.2), squeeze=False)
    for ax, setting in zip(axes[0], settings, strict=True):
        runs = [r for r in result["runs"] if r["setting"] == setting]
        seeds = sorted({r["seed"] for r in runs})
        by_key = {(r["optimizer"], r["seed"]): r["test_acc"] for r in runs}
        acc = np.array([[by_key[(n, s)] for n in names] for s in seeds])  # rows: seeds
        x = np.arange(len(names))
        for row in acc:
            ax.plot(x, row, color="0.75", lw=0.8, zorder=1)
        for i, name in enumerate(names):
            ax.scatter(np.full(len(seeds), x[i]), acc[:, i], s=22, color=MAIN_RESULT_COLORS[name], zorder=2)
            half = t_975(len(seeds) - 1) * acc[:, i].std(ddof=1) / np.sqrt(len(seeds))
            ax.errorbar(x[i] + 0.22, acc[:, i].mean(), yerr=half, fmt="D", color="black", ms=4, capsize=4)
        ax.set_xticks(x, [labels[n].replace(" 2x epochs", "\n2x epochs") for n in names])
        ax.set(title=f"{setting}: {len(seeds)} seeds", ylabel="test accuracy", xlabel="optimizer")
        ax.grid(axis="y", alpha=0.3)
    key = [
        Line2D(
            [],
            [],
            marker="o",
            color="0.75",
            mfc="0.4",
            mec="0.4",
            ms=4,
            lw=0.8,
            label="one seed, joined across optimizers",
        ),
        Line2D(
            [],
            [],
            marker="D",
            color="black",
            ms=4,
            lw=0,
            label="mean, with a bar for its 95 % confidence interval",
        ),
    ]
    fig.legend(handles=key, loc="lower center", ncol=2, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def paired_differences(result, settings=None):
    """The paired differences in test accuracy, against SGD and against SAM: mean over seeds
    and its 95 % confidence interval, one panel per setting; an interval that does not cross
    the dashed zero line is a difference the seeds resolve."""
    import matplotlib.pyplot as plt

    names, labels = _main_result_names(result)
    settings = list(result["summary"]) if settings is None else list(settings)
    fig, axes = plt.subplots(1, len(settings), figsize=(5.6 * len(settings), 3.8), squeeze=False)
    for ax, setting in zip(axes[0], settings, strict=True):
        block = result["summary"][setting]
        rows = [(n, "SGD", block["vs_sgd"][n]) for n in names if n in block["vs_sgd"]]
        rows += [(n, "SAM", block["vs_sam"][n]) for n in names if n in block["vs_sam"]]
        for y, (name, _, d) in enumerate(rows):
            low, high = d["ci95"]
            color = MAIN_RESULT_COLORS[name]
            ax.plot([low, high], [y, y], color=color, lw=2)
            ax.plot(d["mean"], y, "o", color=color, ms=6)
            ax.annotate(
                f"wins {d['wins']}/{d['n']}",
                (high, y),
                xytext=(4, -3),
                textcoords="offset points",
                fontsize=7,
            )
        ax.set_yticks(range(len(rows)), [f"{labels[n]} − {against}" for n, against, _ in rows])
        ax.invert_yaxis()
        ax.axvline(0, color="black", ls="--", lw=0.8)
        ax.set(title=f"{setting}: paired differences, {block['n_seeds']} seeds",
               xlabel="difference in test accuracy (dot: mean; bar: 95 % CI)")  # fmt: skip
        ax.grid(axis="x", alpha=0.3)
        ax.margins(x=0.25)
    fig.tight_layout()
    return fig


def main_result_curves(result, curves, setting, metric="test_acc", ax=None, x="passes", names=None):
    """Per-epoch ``metric`` of the final runs of one setting, mean over seeds with a ±1 std band,
    against the forward+backward passes spent so far (``x="passes"``: SGD makes one per step,
    the others two, so SGD 2x epochs lines up with SAM) or against the epoch."""
    ax = _axes(ax)
    all_names, labels = _main_result_names(result)
    for name in all_names if names is None else names:
        rows = np.array(
            [c[metric] for key, c in curves.items() if key.startswith(f"{setting}/{name}/")], float
        )
        if rows.size == 0:
            continue
        run = next(r for r in result["runs"] if (r["setting"], r["optimizer"]) == (setting, name))
        epochs = np.arange(1, rows.shape[1] + 1)
        xs = epochs * run["passes"] / run["epochs"] / 1000 if x == "passes" else epochs
        mean, std = rows.mean(axis=0), rows.std(axis=0)
        color = MAIN_RESULT_COLORS[name]
        ax.plot(xs, mean, color=color, lw=1.6, label=f"{labels[name]} (mean ± std, {len(rows)} seeds)")
        ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.15)
    xlabel = "forward+backward passes (thousands)" if x == "passes" else "epoch"
    what = {
        "train_loss": "training loss (mini-batch mean)",
        "test_acc": "test accuracy",
        "val_acc": "validation accuracy",
        "test_loss": "test loss",
        "val_loss": "validation loss",
    }
    ax.set(title=f"{setting}: {what.get(metric, metric)}", xlabel=xlabel, ylabel=what.get(metric, metric))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def accuracy_vs_sharpness(result, setting, measure="lambda_max", ax=None):
    """Every final run of one setting as a point: its sharpness at the end of training against
    its test accuracy, coloured by optimizer."""
    ax = _axes(ax)
    names, labels = _main_result_names(result)
    for name in names:
        runs = [r for r in result["runs"] if (r["setting"], r["optimizer"]) == (setting, name)]
        ax.scatter([r[measure] for r in runs], [r["test_acc"] for r in runs], s=24,
                   color=MAIN_RESULT_COLORS[name], label=f"{labels[name]} (one dot per seed)")  # fmt: skip
    rho = result["protocol"]["sharpness_rho"]
    what = {"lambda_max": r"top Hessian eigenvalue $\lambda_{max}$ of the training loss",
            "rho_sharpness": rf"$\rho$-sharpness, $\rho$ = {rho}"}  # fmt: skip
    ax.set(
        title=f"{setting}: flatness and accuracy", xlabel=what.get(measure, measure), ylabel="test accuracy"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
