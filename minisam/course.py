"""What the lesson notebooks share, so that their cells can hold the teaching.

    from minisam.course import setup
    setup()

is the first line of every lesson: it limits the BLAS library to one thread (small matrix
products on a busy, shared machine are many times slower with more; see
``minisam.threads``), seeds every random source the library uses, and sets figure
defaults that read well in a notebook and on GitHub (text large enough, 100 dpi).

The rest is bookkeeping a lesson needs but should not show:

- ``settle`` runs an optimizer on a 2-D landscape until it rests in a named minimum (or
  runs out of steps) and says where it ended; ``settle_noisy`` does the same with gradient
  noise for a while first.
- ``update_direction`` reads the direction a SAM-family optimizer would step along at θ,
  through the public API only, and leaves θ where it was; ``flat``, ``loss_at`` and
  ``sphere_maximiser`` handle directions as one vector over all parameters.
- ``wilson_interval`` gives a 95 % confidence interval for a count out of n; ``sign_test`` a
  one-sided p-value for paired wins and losses.
- ``verdict`` prints one line per claim: the claim, the pre-registered rule's outcome, the
  numbers it rests on.
- ``explore_paths`` draws SGD, SAM and XSAM paths on a 2-D landscape, with sliders for the
  learning rate and ρ where ipywidgets is installed, and a static figure where it is not.
"""

from __future__ import annotations

import math

import numpy as np

from . import backend, checks, landscapes, optim, rng, threads, vector

GLOSSARY = "README.md#glossary"  # lessons link to the one glossary, in lessons/README.md


def setup(seed: int = 0) -> None:
    """One BLAS thread (unless you set a thread variable yourself), ``ms.manual_seed(seed)``,
    and readable figure defaults."""
    threads.use_one_blas_thread()
    rng.manual_seed(seed)
    import matplotlib as mpl

    from .plots import DPI

    mpl.rcParams.update({"figure.dpi": DPI, "savefig.dpi": DPI, "font.size": 10, "legend.framealpha": 0.9})


# ---- where does a run end? ---------------------------------------------------------------
def settle(surface, make_optimizer, start, max_steps: int = 600, chunk: int = 50, radius: float = 0.25):
    """Run ``make_optimizer`` on ``surface`` from ``start`` in chunks of ``chunk`` steps and stop as
    soon as the iterate lies within ``radius`` of one of the surface's named minima; return
    (name or None, end point). None means it ended in none of them after ``max_steps``.

    Stopping early changes nothing for optimizers that keep no state between steps (SGD without
    momentum, SAM) and for XSAM when ``chunk`` is a multiple of its ``search_every`` (each chunk
    then searches at its step 0, as one long run would). Inside a disc of radius 0.25 around a
    minimum of ``SharpFlat2D`` every step points back to it, so no run leaves again.
    """
    max_steps = checks.count("settle", "max_steps", max_steps, minimum=1)
    chunk = checks.count("settle", "chunk", chunk, minimum=1)
    radius = checks.number("settle", "radius", radius, minimum=0.0, above=True)
    point = np.asarray(start, np.float64)
    for _ in range(math.ceil(max_steps / chunk)):
        point = landscapes.run_optimizer(surface, make_optimizer, point, steps=chunk)[-1]
        name = surface.nearest_minimum(point, radius=radius)
        if name is not None:
            return name, point
    return None, point


def settle_noisy(
    surface, make_optimizer, start, noise_std: float, noisy_steps: int, seed: int, **settle_args
):
    """``noisy_steps`` steps on ``Stochastic(surface, noise_std)`` (shift noise, drawn from the
    library generator seeded with ``seed``), then ``settle`` on the noiseless surface from where
    that left off. Returns what ``settle`` returns."""
    noise_std = checks.number("settle_noisy", "noise_std", noise_std, minimum=0.0)
    noisy_steps = checks.count("settle_noisy", "noisy_steps", noisy_steps)
    rng.manual_seed(checks.count("settle_noisy", "seed", seed))
    noisy = landscapes.Stochastic(surface, noise_std=noise_std)
    point = landscapes.run_optimizer(noisy, make_optimizer, start, steps=noisy_steps)[-1]
    return settle(surface, make_optimizer, point, **settle_args)


# ---- reading an optimizer's direction ------------------------------------------------------
def update_direction(params, closure, make_optimizer):
    """The unit vector (flat, float64, over all parameters) of the update a SAM-family optimizer
    applies at θ, and the optimizer's ``diagnostics`` ({} for plain SGD); θ is left exactly as it was.

    ``make_optimizer(base)`` wraps the base optimizer it is given, e.g.
    ``lambda base: optim.SAM(base, rho=0.05, steps=3)``. The base is plain SGD with lr = 1 and
    no momentum or weight decay, so the step moves θ by exactly −(the update); we read that move
    and put θ back.
    """
    params = list(params)
    before = [p.data.copy() for p in params]
    opt = make_optimizer(optim.SGD(params, lr=1.0))
    opt.step(closure)
    move = flat(vector.data_of(params)) - flat(before)
    for p, b in zip(params, before, strict=True):
        p.data = b
        p.grad = None
    size = np.linalg.norm(move)
    if not size > 0:
        raise ValueError("update_direction: the optimizer did not move θ (zero gradient?); no direction")
    return -move / size, getattr(opt, "diagnostics", {})  # plain SGD keeps no diagnostics


def _host(array):
    return backend.to_host(array)


def flat(arrays) -> np.ndarray:
    """One float64 host vector over all the arrays (parameters, gradients), in order, so that
    directions can be compared with a dot product."""
    return np.concatenate([_host(a).ravel().astype(np.float64) for a in arrays])


def _pieces(vector, params) -> list:
    """The inverse of ``flat``: one array per parameter, on the parameters' device and dtype."""
    out, start = [], 0
    for p in params:
        piece = np.asarray(vector[start : start + p.data.size]).reshape(p.data.shape)
        out.append(backend.to_device(piece, p.data.dtype))
        start += p.data.size
    return out


def loss_at(params, closure, offset) -> float:
    """L(θ + offset) for one flat ``offset`` over all parameters, without gradients; θ is put
    back exactly afterwards."""
    params = list(params)
    theta = vector.data_of(params)
    vector.set_data(params, [t + o for t, o in zip(theta, _pieces(offset, params), strict=True)])
    try:
        return vector.loss_value(closure, "loss_at")
    finally:
        vector.set_data(params, theta)


def sphere_maximiser(params, closure, rho: float, starts, iterations: int = 100, step: float = 0.2):
    """The highest point of L on the sphere ‖ε‖ = ρ around θ, by projected gradient ascent: from
    each start direction (flat vectors), move the offset uphill by ``step``·ρ along the unit
    gradient at θ + ε and pull it back onto the sphere, ``iterations`` times; return the best end
    offset (flat). A local search: several starts, and a check by the caller that no direction it
    tests beats the result, make it trustworthy."""
    params = list(params)
    rho = checks.number("sphere_maximiser", "rho", rho, minimum=0.0, above=True)
    iterations = checks.count("sphere_maximiser", "iterations", iterations)
    theta = vector.data_of(params)
    best_loss, best = -np.inf, None
    try:
        for direction in starts:
            offset = rho * np.asarray(direction, np.float64) / np.linalg.norm(direction)
            for _ in range(iterations):
                vector.set_data(params, [t + o for t, o in zip(theta, _pieces(offset, params), strict=True)])
                _, grads = vector.loss_and_gradients(closure, params, "sphere_maximiser")
                uphill = flat(grads)
                offset = offset + step * rho * uphill / np.linalg.norm(uphill)
                offset = rho * offset / np.linalg.norm(offset)  # back onto the sphere
            vector.set_data(params, theta)
            value = loss_at(params, closure, offset)
            if value > best_loss:
                best_loss, best = value, offset
    finally:
        vector.set_data(params, theta)
        for p in params:
            p.grad = None
    return best


# ---- statistics and verdicts ---------------------------------------------------------------
def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a proportion ``successes``/``n`` (95 % for z = 1.96): unlike
    p ± z·√(p(1−p)/n) it stays inside [0, 1] and is not of width 0 at 0 of n."""
    n = checks.count("wilson_interval", "n", n, minimum=1)
    successes = checks.count("wilson_interval", "successes", successes, maximum=n)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def sign_test(wins: int, losses: int) -> float:
    """One-sided sign test for paired outcomes: the chance of at least ``wins`` successes in
    ``wins + losses`` fair coin flips (ties are left out before calling). 1.0 when there are none."""
    wins = checks.count("sign_test", "wins", wins)
    losses = checks.count("sign_test", "losses", losses)
    n = wins + losses
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n if n else 1.0


def verdict(claim: str, outcome: str, evidence: str) -> str:
    """One printed line per claim: ``Claim 4 — NOT REPRODUCED: 0 of 42 ...``. Returns the line."""
    shout = "".join(c.upper() if c.isascii() else c for c in outcome)  # "ρ_max" stays "ρ_MAX", not "Ρ_MAX"
    line = f"{claim} — {shout}: {evidence}"
    print(line)
    return line


# ---- an interactive look at the 2-D landscape ---------------------------------------------
def explore_paths(surface, start, lr: float = 0.05, rho: float = 0.1, steps: int = 300, widgets=True):
    """SGD, SAM and XSAM paths from ``start`` on a 2-D ``surface``, drawn on its contour map.

    Always draws one static figure at the given ``lr`` and ``rho`` (it is what a stored notebook
    shows, on GitHub too). With ``widgets=True`` and ipywidgets installed, sliders for the
    learning rate and ρ follow, with a button that redraws (``interact_manual``: nothing is
    recomputed until asked); without ipywidgets, a line says how to get them. Returns "widgets"
    or "static".
    """
    lr = checks.number("explore_paths", "lr", lr, minimum=0.0, above=True)
    rho = checks.number("explore_paths", "rho", rho, minimum=0.0)
    steps = checks.count("explore_paths", "steps", steps, minimum=1)
    grid = surface.grid(resolution=70)

    def draw(lr=lr, rho=rho):
        import matplotlib.pyplot as plt

        from . import plots

        makers = {
            "SGD": lambda p: optim.SGD(p, lr=lr),
            "SAM": lambda p: optim.SAM(optim.SGD(p, lr=lr), rho=rho),
            "XSAM": lambda p: optim.XSAM(optim.SGD(p, lr=lr), rho=rho, search_every=10),
        }
        paths = {name: landscapes.run_optimizer(surface, make, start, steps) for name, make in makers.items()}
        fig, ax = plt.subplots(figsize=(8.5, 4.2))
        minima = {m.name: m.point for m in surface.minima}
        title = f"{steps} steps from ({start[0]:g}, {start[1]:g}), lr = {lr:g}, ρ = {rho:g}"
        plots.contour_paths(*grid, paths, minima=minima, ax=ax, title=title)
        fig.tight_layout()
        plt.show()

    draw()
    if widgets:
        try:
            import ipywidgets
        except ImportError:
            widgets = False
    if not widgets:
        print("(static figure: install ipywidgets, pip install -e '.[lessons]', for lr and ρ sliders)")
        return "static"
    ipywidgets.interact_manual(
        draw,
        lr=ipywidgets.FloatSlider(value=lr, min=0.01, max=0.1, step=0.01, description="lr"),
        rho=ipywidgets.FloatSlider(value=rho, min=0.0, max=0.4, step=0.05, description="ρ"),
    )
    return "widgets"


__all__ = [
    "GLOSSARY",
    "explore_paths",
    "flat",
    "loss_at",
    "sphere_maximiser",
    "settle",
    "settle_noisy",
    "setup",
    "sign_test",
    "update_direction",
    "verdict",
    "wilson_interval",
]
