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


def save(fig, path, dpi: int = 90) -> Path:
    """Write ``fig`` as a PNG (modest dpi keeps notebooks and the repository small)."""
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


def contour_paths(
    X,
    Y,
    Z,
    paths=None,
    minima=None,
    ax=None,
    title="Loss landscape",
    levels=30,
    xlabel=r"$\theta_1$",
    ylabel=r"$\theta_2$",
):
    """Filled contours of a 2-D loss with optimizer paths drawn on top.

    paths:  {name: array (steps+1, 2)}, drawn from a circle (start) to a star (end).
    minima: {label: (x, y)}, marked with a black cross.
    """
    ax = _axes(ax)
    filled = ax.contourf(X, Y, Z, levels=levels, cmap="viridis")
    ax.contour(X, Y, Z, levels=levels, colors="k", linewidths=0.3, alpha=0.4)
    ax.figure.colorbar(filled, ax=ax, label="loss")
    for i, (name, path) in enumerate((paths or {}).items()):
        path = np.asarray(path)
        color = color_of(name, i)
        ax.plot(path[:, 0], path[:, 1], "-", color=color, lw=1.8, label=name)
        ax.plot(*path[0], "o", color=color, ms=6, mec="white")
        ax.plot(*path[-1], "*", color=color, ms=13, mec="white")
    for label, (x, y) in (minima or {}).items():
        ax.plot(x, y, "x", color="black", ms=9, mew=2)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 6), color="white")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if paths:
        ax.legend(loc="upper right", framealpha=0.9)
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
    ax.legend(handles=handles, loc="upper right", framealpha=0.9, fontsize=8)
    ax.set(title=title, xlabel=r"start $\theta_1$", ylabel=r"start $\theta_2$")
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
    end α_max, and (with ``steps_per_epoch``) faint lines at epoch boundaries."""
    ax = _axes(ax, figsize=(6.5, 3.4))
    steps = np.asarray(steps)
    if steps_per_epoch:
        for boundary in range(steps_per_epoch, int(steps.max()) + 1, steps_per_epoch):
            ax.axvline(boundary, color="lightgray", lw=0.6)
    ax.axhline(0, color=COLORS["SGD"], ls="--", lw=1, label=r"$\alpha=0$: $v_0$")
    ax.axhline(1, color=COLORS["SAM"], ls="--", lw=1, label=r"$\alpha=1$: $v_1$ (SAM)")
    ax.axhline(alpha_max, color="gray", ls=":", lw=1, label=rf"grid end $\alpha_{{max}}={alpha_max:g}$")
    ax.plot(steps, alphas, "o-", color=COLORS["XSAM"], ms=3, lw=1, label=r"$\alpha^*$ at each search")
    ax.set(title=title, xlabel="training step", ylabel=r"$\alpha^*$", ylim=(-0.1, alpha_max + 0.1))
    ax.legend(fontsize=8, loc="lower right", framealpha=0.9)
    ax.grid(alpha=0.3)
    return ax


def curves_with_spread(x, curves, ax=None, title="", xlabel="", ylabel="", over="points", spread="std"):
    """Several measurements at each x, one line per name: the mean with a ±1 standard
    deviation band (``spread="std"``), or the median with the middle half of the
    measurements, 25th to 75th percentile (``spread="quartiles"``).

    curves: {name: array (measurements, len(x))}, NaN where a name has no value at that x;
    ``over`` names what the rows are ("points", "seeds", ...) in the legend.
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
    to compare directions on the sphere). Names starting with SGD/SAM/XSAM get their
    optimizer's colour; other names get black, then further colours.
    """
    from matplotlib import patheffects

    ax = _axes(ax)
    center = np.asarray(center, dtype=float)
    angles = np.linspace(0, 2 * np.pi, 200)
    ax.plot(
        center[0] + rho * np.cos(angles),
        center[1] + rho * np.sin(angles),
        color="white",
        lw=1.2,
        ls="--",
        label=label_circle or rf"$\rho$-circle ($\rho$={rho:g})",
    )
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
    ax.plot(*center, "o", color="white", mec="black", ms=6, label=r"$\theta$")
    if title:
        ax.set_title(title)
    ax.set_aspect("equal")
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
