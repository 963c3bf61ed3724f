"""Toy loss surfaces, written with Tensor operations so the real optimizers run on them.

A landscape is a loss over a parameter vector θ of shape (d,). Because ``loss`` is built
from Tensor arithmetic, ``optim.SGD``, ``optim.SAM`` and ``optim.XSAM`` step on it
exactly as they step on a network, and every path they take can be drawn on a contour
plot (2-D landscapes give ``bounds`` for that):

    from minisam import landscapes, optim

    surface = landscapes.SharpFlat2D()
    path = landscapes.run_optimizer(
        surface, lambda params: optim.XSAM(optim.SGD(params, lr=0.05), rho=0.1),
        start=(-1.6, -0.1), steps=1000)
    surface.nearest_minimum(path[-1])      # 'flat' (SGD from there: 'sharp')

The interface (``Landscape``):

- ``loss(theta) -> Tensor`` — the scalar loss at a 1-D Tensor θ.
- ``dim``, ``bounds`` (2-D only: ``((x0, x1), (y0, y1))``), ``minima`` — a list of
  ``Minimum(name, point)`` with the known local minima.
- ``value(point)``, ``gradient(point)``, ``hessian(point)`` — host float64 helpers.
- ``new_batch()`` — called by ``run_optimizer`` before every step; only the stochastic
  wrapper does anything there (it draws the step's "mini-batch").

Every argument is checked where it comes in: points, centres, Hessians and eigenvalues must be
finite real numbers (a string is not read as a number, NaN is not a Hessian), widths and
finite-difference steps > 0, so a bad argument is an error that names it, never a NaN later.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import backend, checks, rng
from .tensor import Tensor, no_grad


def _finite(who: str, name: str, value, ndim: int | None = None) -> np.ndarray:
    """``value`` as a float64 array of finite real numbers (of ``ndim`` dimensions), or an
    ArgumentError naming ``name``; strings, booleans and complex numbers are not numbers here."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged lists and the like
        array = np.asarray(None)
    if array.dtype.kind not in "iuf" or (ndim is not None and array.ndim != ndim):
        shape = "" if ndim is None else f" of {ndim} dimension{'s' if ndim != 1 else ''}"
        raise checks.ArgumentError(f"{who}: {name} must be an array of real numbers{shape}, got {value!r}")
    if not np.isfinite(array).all():
        raise checks.ArgumentError(f"{who}: {name} must be finite, got {value!r}")
    return array.astype(np.float64)


class Minimum(NamedTuple):
    """A known local minimum: a name ("sharp", "flat", "center") and its location."""

    name: str
    point: np.ndarray


class Landscape:
    """Base class: subclasses set ``dim`` and define ``loss``."""

    dim: int
    bounds: tuple | None = None
    minima: list[Minimum] = []

    def loss(self, theta: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, theta: Tensor) -> Tensor:
        return self.loss(theta)

    def new_batch(self) -> None:
        """Start a new optimizer step. Deterministic landscapes have nothing to draw."""

    def _check(self, theta: Tensor) -> Tensor:
        if not isinstance(theta, Tensor) or theta.shape != (self.dim,):
            shape = theta.shape if isinstance(theta, Tensor) else type(theta).__name__
            raise ValueError(
                f"{type(self).__name__}.loss expects a Tensor of shape ({self.dim},), got {shape}"
            )
        return theta

    def _constant(self, array, like: Tensor) -> Tensor:
        """A fixed array as a Tensor of θ's dtype on θ's device."""
        return Tensor(backend.to_device(np.asarray(array), like.dtype), dtype=like.dtype)

    # ---- host helpers (float64, for tests, plots and analysis) -----------------------
    def _point(self, point) -> np.ndarray:
        return _finite(type(self).__name__, "point", point)

    def value(self, point) -> float:
        """L(point) as a Python float, computed in float64."""
        with no_grad():
            return float(self.loss(Tensor(self._point(point), dtype=np.float64)).item())

    def gradient(self, point) -> np.ndarray:
        """∇L(point) by reverse-mode autodiff, in float64."""
        theta = Tensor(self._point(point), requires_grad=True, dtype=np.float64)
        self.loss(theta).backward()
        return backend.to_host(theta.grad).astype(np.float64)

    def hessian(self, point, eps: float = 1e-5) -> np.ndarray:
        """∇²L(point) by central differences of exact gradients, symmetrised:
        column j is (∇L(θ + ε e_j) − ∇L(θ − ε e_j)) / 2ε, error O(ε²)."""
        eps = checks.number(f"{type(self).__name__}.hessian", "eps", eps, 0.0, above=True)
        point = self._point(point)
        columns = []
        for j in range(self.dim):
            step = np.zeros(self.dim)
            step[j] = eps
            columns.append((self.gradient(point + step) - self.gradient(point - step)) / (2 * eps))
        h = np.stack(columns, axis=1)
        return 0.5 * (h + h.T)

    def minimum(self, name: str) -> Minimum:
        for m in self.minima:
            if m.name == name:
                return m
        raise KeyError(
            f"{type(self).__name__} has no minimum named {name!r}; it has {[m.name for m in self.minima]}"
        )

    def nearest_minimum(self, point, radius: float | None = None) -> str | None:
        """Name of the known minimum closest to ``point`` (None if farther than ``radius``)."""
        point = self._point(point)
        distances = [np.linalg.norm(point - m.point) for m in self.minima]
        if not distances:
            return None
        best = int(np.argmin(distances))
        return None if radius is not None and distances[best] > radius else self.minima[best].name

    def grid(self, resolution: int = 120):
        """X, Y, Z on ``bounds`` for a contour plot (2-D landscapes only)."""
        if self.dim != 2 or self.bounds is None:
            raise ValueError(f"{type(self).__name__}: grid() needs a 2-D landscape with bounds")
        resolution = checks.count(f"{type(self).__name__}.grid", "resolution", resolution, 2)
        from .plots import grid_values

        return grid_values(self.value, self.bounds, resolution)


def _refine_minimum(landscape: Landscape, guess, iterations: int = 50) -> np.ndarray:
    """Newton's method from ``guess`` to the nearby critical point (used to place the named
    minima and the saddle exactly); fails loudly rather than return a point that is not one."""
    point = np.asarray(guess, np.float64)
    for _ in range(iterations):
        point = point - np.linalg.solve(landscape.hessian(point), landscape.gradient(point))
        if np.linalg.norm(landscape.gradient(point)) < 1e-12:
            return point
    raise RuntimeError(f"{type(landscape).__name__}: Newton's method from {guess} found no critical point")


# ---- a sharp and a flat minimum -----------------------------------------------------------
class SharpFlat2D(Landscape):
    """Two wells of about equal depth, one narrow and one wide, in a shallow bowl:

        L(θ) = −a_s·exp(−‖θ − c_s‖²/2σ_s²) − a_f·exp(−‖θ − c_f‖²/2σ_f²) + ½·k·‖θ‖²

    Defaults (see the table): the sharp well has width σ_s = 0.2 and curvature
    a_s/σ_s² = 25 at its bottom, the flat one σ_f = 1.0 and curvature about 1, so the
    top Hessian eigenvalues differ ~20-fold while the two minima lie within a few
    percent of each other in loss. The bowl k makes the surface bounded below and above
    on any plotting box and gives the plateau between the wells a gentle slope towards
    the origin.

    ======  =========  ==================================================
    name    default    meaning
    ======  =========  ==================================================
    c_s     (-1, 0.5)  centre of the sharp well
    σ_s     0.2        width of the sharp well (its basin radius ~ 2.5σ_s)
    a_s     1.0        depth of the sharp well
    c_f     (1, -0.5)  centre of the flat well
    σ_f     1.0        width of the flat well
    a_f     1.0        depth of the flat well
    k       0.05       curvature of the bowl
    ======  =========  ==================================================

    ``minima`` holds the two exact local minima ("sharp", "flat"), found by Newton's
    method from the well centres (the other well and the bowl shift them slightly), and
    ``saddle`` the saddle point on the ridge between the basins. With the defaults:

    ======  ================  ======  =========================
    point   location          loss    Hessian eigenvalues
    ======  ================  ======  =========================
    sharp   (−0.991, 0.495)   −1.060  24.6, 25.1
    flat    (0.956, −0.478)   −1.060  1.14, 1.14
    saddle  (−0.538, 0.269)   −0.275  −5.47, 1.18
    ======  ================  ======  =========================

    (a_f = 1.09 rather than 1 makes the two depths equal to 5e-4: the flat well's tail
    deepens the sharp minimum.)

    What the optimizers do here (measured, lr = 0.05, 1000 steps, no momentum; the
    tests check the first row). Gaussian wells are soft, so no SAM-family method is
    thrown out of the sharp well once inside it: with ρ a fraction of σ_s the sharp
    minimum remains a minimum of the SAM objective max_{‖ε‖≤ρ} L(θ+ε), and its basin
    shrinks only by about ρ. The differences come from starts near that basin's edge:

        start          ρ     SGD     SAM                   XSAM
        (−1.6, −0.1)   0.1   sharp   bouncing on saddle    flat
        (−1.2, −0.1)   0.1   sharp   bouncing on saddle    flat
        (−2.0, −0.1)   0.1   sharp   bouncing on saddle    near saddle (flat if search_every=50)
        (−1.2,  0.1)   0.1   sharp   sharp                 sharp
        (−2.0, −0.1)   0.2   sharp   bouncing on saddle    flat

    So SGD settles in the sharp minimum from starts where XSAM reaches the flat one, as
    the paper's toy example has it; plain SAM there is caught bouncing across the
    saddle -- the attraction of SAM to saddle points described by Kim, Park, Kim & Yang
    ("Stability analysis of sharpness-aware minimization", 2023) -- rather than
    reaching the flat minimum. The outcome depends on the start and on ρ; it is a
    picture of the mechanisms, not a robust statistic.
    """

    dim = 2
    bounds = ((-2.5, 2.5), (-2.0, 2.0))

    def __init__(
        self,
        sharp_center=(-1.0, 0.5),
        sharp_width=0.2,
        sharp_depth=1.0,
        flat_center=(1.0, -0.5),
        flat_width=1.0,
        flat_depth=1.09,
        bowl=0.05,
        bowl_center=(0.0, 0.0),
    ):
        who, centres = "SharpFlat2D", {}
        for name, centre in zip(
            ("sharp_center", "flat_center", "bowl_center"),
            (sharp_center, flat_center, bowl_center),
            strict=True,
        ):
            centres[name] = _finite(who, name, centre, ndim=1)
            if centres[name].shape != (2,):
                raise checks.ArgumentError(f"{who}: {name} must be a point (x, y), got {centre!r}")
        self.sharp_center, self.flat_center, self.bowl_center = centres.values()
        self.sharp_width = checks.number(who, "sharp_width", sharp_width, 0.0, above=True)
        self.flat_width = checks.number(who, "flat_width", flat_width, 0.0, above=True)
        self.sharp_depth = checks.number(who, "sharp_depth", sharp_depth)
        self.flat_depth = checks.number(who, "flat_depth", flat_depth)
        self.bowl = checks.number(who, "bowl", bowl, 0.0)  # a negative bowl has no bottom
        self.minima = [
            Minimum("sharp", _refine_minimum(self, self.sharp_center)),
            Minimum("flat", _refine_minimum(self, self.flat_center)),
        ]
        # the saddle between the basins: Newton from the highest point of the segment joining them
        segment = [
            self.minima[0].point + t * (self.minima[1].point - self.minima[0].point)
            for t in np.linspace(0.0, 1.0, 201)
        ]
        self.saddle = _refine_minimum(self, max(segment, key=self.value))

    def _well(self, theta, center, width, depth):
        offset = theta - self._constant(center, theta)
        return -depth * (-(offset * offset).sum() / (2 * width**2)).exp()

    def loss(self, theta: Tensor) -> Tensor:
        theta = self._check(theta)
        bowl_offset = theta - self._constant(self.bowl_center, theta)
        return (
            self._well(theta, self.sharp_center, self.sharp_width, self.sharp_depth)
            + self._well(theta, self.flat_center, self.flat_width, self.flat_depth)
            + 0.5 * self.bowl * (bowl_offset * bowl_offset).sum()
        )


# ---- a valley of minima -------------------------------------------------------------------
class ValleyOfMinima(Landscape):
    """A straight valley whose floor is all minima, each one as deep as the next but not as flat:

        L(x, y) = ½·(1 + y²)·x²

    Every point (0, y) is a minimum with loss 0. Its Hessian there is diag(1 + y², 0): the
    curvature across the valley is 1 + y² and along it 0, so the flattest minimum is (0, 0),
    with curvature 1, and the minimum at y = √3 is four times as sharp. Loss values cannot
    tell these minima apart; only their curvature can, which makes this the smallest
    landscape on which "prefers flat minima" is a statement about the optimizer alone.

    Why SAM drifts along the floor (the derivation is in lesson 04): on the floor g₀ = 0 in
    the y direction, so gradient descent stops wherever it reaches x = 0. SAM evaluates the
    gradient at an ascent point about ρ away across the valley, (x ± ρ, y), where
    ∂L/∂y = x²·y ≈ ρ²·y is not zero; each step therefore shrinks y by about a factor
    (1 − lr·ρ²), and SAM slides to the flattest minimum. ``minima`` holds that one point,
    named "flattest"; ``curvature_across(point)`` gives 1 + y².
    """

    dim = 2
    bounds = ((-1.5, 1.5), (-0.5, 2.5))

    def __init__(self):
        self.minima = [Minimum("flattest", np.zeros(2))]

    def loss(self, theta: Tensor) -> Tensor:
        theta = self._check(theta)
        x, y = theta[0], theta[1]
        return 0.5 * (1.0 + y * y) * x * x

    @staticmethod
    def curvature_across(point) -> float:
        """1 + y²: the Hessian's eigenvalue across the valley at the floor point (0, y)."""
        return 1.0 + float(np.asarray(point, np.float64)[1]) ** 2


# ---- bumps and wells -------------------------------------------------------------------------
class GaussianBumps(Landscape):
    """A sum of Gaussian bumps (height > 0) and wells (height < 0), in any dimension:

        L(θ) = Σᵢ hᵢ·exp(−‖θ − cᵢ‖² / 2wᵢ²)

    Built for illustrations that need a loss with several local maxima inside one ρ-ball, such
    as lesson 06's multi-step ascent that climbs the nearer, lower bump and stops being a good
    guide to the ball's highest point. ``bounds`` (2-D only) is what the plots show.
    """

    def __init__(self, centers, heights, widths, bounds=None):
        centers = np.atleast_2d(_finite("GaussianBumps", "centers", centers))
        heights = _finite("GaussianBumps", "heights", heights).reshape(-1)
        widths = _finite("GaussianBumps", "widths", widths).reshape(-1)
        if not len(centers) == len(heights) == len(widths):
            raise ValueError(
                f"GaussianBumps: need one height and one width per centre, got {len(centers)} centres, "
                f"{len(heights)} heights and {len(widths)} widths"
            )
        if not np.all(np.isfinite(centers)) or not np.all(np.isfinite(heights)):
            raise ValueError("GaussianBumps: centres and heights must be finite numbers")
        if not np.all(widths > 0) or not np.all(np.isfinite(widths)):
            raise ValueError(f"GaussianBumps: widths must be finite numbers > 0, got {widths.tolist()}")
        self.centers, self.heights, self.widths = centers, heights, widths
        self.dim = centers.shape[1]
        self.bounds = bounds
        self.minima = []

    def loss(self, theta: Tensor) -> Tensor:
        theta = self._check(theta)
        total = None
        for center, height, width in zip(self.centers, self.heights, self.widths, strict=True):
            offset = theta - self._constant(center, theta)
            term = float(height) * (-(offset * offset).sum() / (2 * float(width) ** 2)).exp()
            total = term if total is None else total + term
        return total


# ---- a quadratic with a chosen Hessian ------------------------------------------------------
class Quadratic(Landscape):
    """L(θ) = ½ (θ − c)ᵀ H (θ − c), in any dimension, with a chosen symmetric Hessian H.

    Everything about it is known in closed form -- gradient H(θ − c), top eigenvalue, the
    worst loss in a ρ-ball -- which is what makes it the test bed for ``minisam.sharpness``.
    ``Quadratic.from_eigenvalues([10, 1])`` builds H = Q diag(λ) Qᵀ with a random rotation Q.
    """

    def __init__(self, hessian, center=None):
        h = _finite("Quadratic", "hessian", hessian)
        if h.ndim != 2 or h.shape[0] != h.shape[1] or h.size == 0:
            raise ValueError(f"Quadratic: hessian must be a non-empty square matrix, got shape {h.shape}")
        if not np.allclose(h, h.T, rtol=1e-12, atol=1e-12):
            raise ValueError("Quadratic: hessian must be symmetric")
        self.H, self.dim = h, h.shape[0]
        self.center = np.zeros(self.dim) if center is None else _finite("Quadratic", "center", center)
        if self.center.shape != (self.dim,):
            raise ValueError(f"Quadratic: center must have shape ({self.dim},), got {self.center.shape}")
        self.eigenvalues, self.eigenvectors = np.linalg.eigh(h)  # ascending
        self.minima = [Minimum("center", self.center)] if self.eigenvalues[0] > 0 else []
        if self.dim == 2:
            self.bounds = tuple((c - 2.0, c + 2.0) for c in self.center)

    @classmethod
    def from_eigenvalues(cls, eigenvalues, seed: int = 0, center=None) -> Quadratic:
        """H = Q diag(eigenvalues) Qᵀ, Q a random rotation from ``numpy.random.default_rng(seed)``
        (the Q of a QR factorisation of a Gaussian matrix, signs fixed: Haar-distributed)."""
        eigenvalues = _finite("Quadratic.from_eigenvalues", "eigenvalues", eigenvalues)
        seed = checks.count("Quadratic.from_eigenvalues", "seed", seed)
        if eigenvalues.ndim != 1 or len(eigenvalues) < 1:
            raise ValueError(
                f"Quadratic.from_eigenvalues: need a 1-D list of eigenvalues, got {eigenvalues!r}"
            )
        d = len(eigenvalues)
        q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
        q = q * np.sign(np.diag(r))
        return cls((q * eigenvalues) @ q.T, center=center)

    @property
    def top_eigenvalue(self) -> float:
        return float(self.eigenvalues[-1])

    @property
    def top_eigenvector(self) -> np.ndarray:
        return self.eigenvectors[:, -1]

    def loss(self, theta: Tensor) -> Tensor:
        offset = self._check(theta) - self._constant(self.center, theta)
        return 0.5 * (offset @ (self._constant(self.H, theta) @ offset))


# ---- noise ------------------------------------------------------------------------------
class Stochastic(Landscape):
    """A noisy, mini-batch-like version of a landscape.

    Each optimizer step draws one "batch" ξ ~ N(0, noise_std²·I) from the library
    generator (in ``new_batch``); every loss evaluated during that step -- SAM's ascent
    pass, the pass at the ascent point, XSAM's probes -- sees the same ξ, exactly as they
    all see the same mini-batch in training. Two kinds of noise:

    - ``kind="shift"`` (default): L_ξ(θ) = L(θ + ξ). Each batch loss is the full loss
      moved by ξ, as mini-batch losses have nearby but different minimisers. The gradient
      noise is then ≈ H ξ: large in sharp directions and small in flat ones, the shape
      the covariance of mini-batch gradients takes near a minimum (Zhu et al., ICML
      2019). E_ξ L_ξ is a Gaussian-smoothed L, not L itself.
    - ``kind="linear"``: L_ξ(θ) = L(θ) + ξᵀθ. The gradient noise is exactly ξ, isotropic
      and independent of curvature; E_ξ L_ξ = L. Use it to separate the effect of noise
      from that of curvature.

    ``minima`` and ``bounds`` are those of the noiseless landscape.
    """

    KINDS = ("shift", "linear")

    def __init__(self, landscape: Landscape, noise_std: float, kind: str = "shift"):
        if not isinstance(landscape, Landscape):
            raise TypeError(f"Stochastic wraps a Landscape, got {type(landscape).__name__}")
        noise_std = checks.number("Stochastic", "noise_std", noise_std, 0.0)
        if kind not in self.KINDS:
            raise ValueError(f"unknown noise kind {kind!r}; expected one of {', '.join(self.KINDS)}")
        self.base, self.noise_std, self.kind = landscape, float(noise_std), kind
        self.dim, self.bounds, self.minima = landscape.dim, landscape.bounds, landscape.minima
        self.xi = np.zeros(self.dim)

    def new_batch(self) -> None:
        self.xi = self.noise_std * rng.generator().standard_normal(self.dim)

    def loss(self, theta: Tensor) -> Tensor:
        xi = self._constant(self.xi, self._check(theta))
        if self.kind == "shift":
            return self.base.loss(theta + xi)
        return self.base.loss(theta) + (xi * theta).sum()


# ---- running an optimizer ---------------------------------------------------------------
def run_optimizer(landscape: Landscape, make_optimizer, start, steps: int, dtype=np.float64) -> np.ndarray:
    """Optimise ``landscape`` from ``start``; return the path, an array (steps + 1, d).

    ``make_optimizer(params)`` builds the optimizer for the one parameter θ, e.g.
    ``lambda p: optim.SAM(optim.SGD(p, lr=0.02), rho=0.1)``. Each step draws a new batch
    (for ``Stochastic``) and calls ``opt.step(closure)`` with a closure that returns the
    loss at θ without calling backward -- the same step as in training. float64 by default:
    these are small problems and the paths should not depend on rounding.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    start = _finite("run_optimizer", "start", start)
    try:
        floating = None if dtype is None else np.dtype(dtype)
    except TypeError:
        floating = None
    if floating is None or floating.kind != "f":
        raise checks.ArgumentError(
            f"run_optimizer: dtype must be a floating dtype such as np.float64, got {dtype!r}"
        )
    if start.shape != (landscape.dim,):
        raise ValueError(f"start must have shape ({landscape.dim},) for this landscape, got {start.shape}")
    theta = Tensor(start.copy(), requires_grad=True, dtype=dtype)  # a copy: steps update θ in place
    optimizer = make_optimizer([theta])
    path = [backend.to_host(theta.data).astype(np.float64)]
    for _ in range(steps):
        landscape.new_batch()
        optimizer.step(lambda: landscape.loss(theta))
        path.append(backend.to_host(theta.data).astype(np.float64))
    return np.stack(path)
