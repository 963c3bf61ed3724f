"""Checkers for the exercises of lesson 03: you write SAM's and XSAM's pieces, minisam checks them.

Each checker calls your function on a few fixed, small problems and compares what it returns,
in float64, with what minisam itself computes there:

    from minisam import exercises
    exercises.check_sam_perturbation(sam_perturbation)     # fn(grads, rho) -> list
    exercises.check_sam_gradient(sam_gradient)             # fn(params, loss_and_grad, rho) -> list
    exercises.check_slerp(slerp)                           # fn(v0, v1, alpha) -> list
    exercises.check_xsam_gradient(xsam_gradient)           # fn(params, loss_and_grad, loss, rho,
                                                           #    rho_max, alphas) -> (alpha_star, grad)

Parameters, gradients and directions are lists of NumPy arrays, one per parameter, and every
norm is the global L2 norm over all of them together (minisam/optim/ALGORITHMS.md's ‖·‖, with ε₀ = 1e-12
added wherever a norm is divided by; see minisam/optim/ALGORITHMS.md, sections SAM and XSAM).
``loss_and_grad(params)`` returns ``(loss, grads)`` and ``loss(params)`` the loss alone, both
as plain NumPy: the problems are minisam models and landscapes behind them.

Where do the expected values come from? From the library's optimizers, through their public
interface, wherever they compute the quantity: the SAM gradient is the gradient that
``optim.SAM`` hands its base optimizer (the base here is a recorder that writes it down and
moves nothing); XSAM's α* is ``opt.alpha`` after a search step and its gradient is what it
hands its base; SAM's perturbation ε̂ is where ``optim.SAM`` puts the parameters for its
second pass, started at θ = 0 on the linear loss ⟨g, θ⟩, whose gradient is g everywhere.
The spherical interpolation has no public function in the library, so its expected value is
the formula itself, written out below. The tests cross-check all of them against the
independent NumPy implementation in tests/reference_sam.py.

A mismatch raises ``AssertionError`` naming the case, the array and index, the expected and
the received value (and, for the common mistakes, what the received value looks like). On
success one line is printed: "exact" when every number agrees to the last bit, else "close"
with the largest difference. The tolerance, |received − expected| ≤ 1e-9·|expected| + 1e-12·
(1 + ‖expected‖), leaves room for a different order of summation, or an ε₀ written
differently, and for nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import backend, optim
from . import functional as F
from .checks import ArgumentError
from .tensor import Tensor, maximum

EPS0 = 1e-12  # ε₀, as in minisam/optim/ALGORITHMS.md
# below this v₀ and v₁ are (anti)parallel and v(α) = v₁ (minisam/optim/ALGORITHMS.md, XSAM)
SIN_PSI_MIN = 1e-8
RTOL, ATOL = 1e-9, 1e-12
ALPHAS = tuple(j * 0.1 for j in range(21))  # XSAM's default grid j·alpha_step, 0 … 2.0


# ---- the fixed problems -----------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """A small problem: θ (one float64 array per parameter), its loss written with minisam's
    Tensor operations, and the radius ρ to use on it."""

    name: str
    theta: tuple
    loss: Callable  # list of Tensors -> scalar Tensor
    rho: float

    def params(self) -> list:
        """A fresh copy of θ, to hand to a learner's function."""
        return [a.copy() for a in self.theta]

    def _tensors(self, arrays, requires_grad):
        return [Tensor(np.array(a, dtype=np.float64), requires_grad, dtype=np.float64) for a in arrays]

    def loss_and_grad(self, arrays):
        """(L, ∇L) at ``arrays``, as a float and a list of new float64 NumPy arrays."""
        tensors = self._tensors(arrays, True)
        loss = self.loss(tensors)
        loss.backward()
        return float(loss.item()), [backend.to_host(t.grad).astype(np.float64) for t in tensors]

    def loss_value(self, arrays) -> float:
        """L at ``arrays``, a float."""
        return float(self.loss(self._tensors(arrays, False)).item())


def _constant(array) -> Tensor:
    return Tensor(np.asarray(array, np.float64), dtype=np.float64)


def _mlp_case() -> Case:
    """A tanh MLP 3 → 5 → 2 with cross-entropy on 8 points. Its four arrays have very
    different sizes (‖W₁‖ ≈ 10, ‖b₁‖ ≈ 0.02), so a per-array norm and the global norm differ."""
    rng = np.random.default_rng(2026)
    x, y = rng.standard_normal((8, 3)), np.array([0, 1, 1, 0, 1, 0, 0, 1])
    theta = (
        2.0 * rng.standard_normal((5, 3)),
        0.01 * rng.standard_normal(5),
        0.5 * rng.standard_normal((2, 5)),
        np.array([0.1, -0.1]),
    )

    def loss(p):
        hidden = F.tanh(F.linear(_constant(x), p[0], p[1]))
        return F.cross_entropy(F.linear(hidden, p[2], p[3]), y)

    return Case("tanh MLP 3-5-2, four arrays of very different norms", theta, loss, rho=0.5)


def _valley_case() -> Case:
    """A quadratic valley ½ Σ λᵢθᵢ² over a vector and a 2×2 matrix, curvatures 0.1 … 40, where
    g₁ = g₀ + ρ·H·g₀/‖g₀‖ turns clearly away from g₀ (ψ ≈ 20°) and XSAM's α* is 1.3."""
    curvature_a = np.array([40.0, 1.0, 0.1])
    curvature_b = np.array([[5.0, 0.5], [2.0, 20.0]])
    theta = (np.array([0.05, -2.0, 5.0]), np.array([[0.3, -0.7], [0.1, 0.05]]))

    def loss(p):
        a, b = p
        return 0.5 * ((_constant(curvature_a) * a * a).sum() + (_constant(curvature_b) * b * b).sum())

    return Case("quadratic valley, curvatures 0.1 to 40", theta, loss, rho=0.5)


def _capped_case() -> Case:
    """min(½(10θ₁² + θ₂²) + θ₃², 3.7): a bowl whose top is cut flat at 3.7. θ and its ascent
    point lie below the cut; the XSAM probes at distance ρ_max = 0.6 with α = 0.9 … 2.0 lie
    above it, so their losses are all exactly 3.7: a tie, where the smallest α, 0.9, must win.
    (The third coordinate, an array of its own, gets a zero gradient at θ.)"""
    curvature = np.array([10.0, 1.0])
    theta = (np.array([0.2, 1.0]), np.array([0.0]))

    def loss(p):
        bowl = 0.5 * (_constant(curvature) * p[0] * p[0]).sum() + (p[1] * p[1]).sum()
        return -maximum(-bowl, -3.7)  # min(bowl, 3.7)

    return Case("bowl cut flat at loss 3.7: probe losses tie", theta, loss, rho=0.3)


def gradient_cases() -> list[Case]:
    """The problems ``check_sam_gradient`` and ``check_xsam_gradient`` use."""
    return [_mlp_case(), _valley_case(), _capped_case()]


def perturbation_cases() -> list[tuple[str, list, float]]:
    """(name, grads, ρ) for ``check_sam_perturbation``: the gradients at θ of the problems
    above, and one whose arrays differ in norm by a factor of a million."""
    cases = [(f"∇L of the {c.name}", c.loss_and_grad(c.theta)[1], c.rho) for c in gradient_cases()]
    lopsided = [np.array([1.0e3, -2.0e3]), np.array([[1e-3, 2e-3], [0.0, -1e-3]]), np.array([0.5])]
    cases.append(("three arrays with norms 2e3, 2e-3 and 0.5", lopsided, 0.05))
    return cases


def slerp_cases() -> list[tuple[str, list, list, tuple]]:
    """(name, v₀, v₁, alphas) for ``check_slerp``: unit vectors split over two arrays, at
    angles from 0.001 rad to π, exactly parallel and exactly antiparallel included."""

    def split(flat):
        return [flat[:3].copy(), flat[3:].reshape(2, 2).copy()]

    def unit(flat):
        return flat / np.linalg.norm(flat)

    rng = np.random.default_rng(7)
    a, b = unit(rng.standard_normal(7)), rng.standard_normal(7)
    b = unit(b - (b @ a) * a)  # perpendicular to a
    at_angle = lambda psi: unit(math.cos(psi) * a + math.sin(psi) * b)  # noqa: E731
    alphas = (0.0, 0.3, 0.5, 1.0, 1.5, 2.0)
    exact = np.full(7, 0.0)
    exact[[0, 2, 3, 6]] = 0.5  # a unit vector whose norm is exactly 1 in floating point
    return [
        ("ψ = 60°", split(a), split(at_angle(math.pi / 3)), alphas),
        ("ψ = 150°", split(a), split(at_angle(5 * math.pi / 6)), alphas),
        ("ψ = 0.001 rad, nearly parallel", split(a), split(at_angle(1e-3)), alphas),
        ("v₁ = v₀ exactly (parallel)", split(exact), split(exact), alphas),
        ("v₁ = −v₀ exactly (antiparallel)", split(exact), split(-exact), alphas),
    ]


# ---- the expected values, from the library ----------------------------------------------------
class _Recorder(optim.Optimizer):
    """A base optimizer that writes down the gradient it is handed and moves nothing."""

    def __init__(self, params):
        super().__init__(params)
        self.lr, self.received = 1.0, None

    def step(self, closure=None):
        self.received = [backend.to_host(p.grad).astype(np.float64) for p in self.params]

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def _parameters(arrays) -> list:
    return [Tensor(np.array(a, dtype=np.float64), requires_grad=True, dtype=np.float64) for a in arrays]


def expected_perturbation(grads, rho) -> list:
    """ε̂ = ρ·g/(‖g‖ + ε₀), read from ``optim.SAM``: started at θ = 0 on the linear loss
    ⟨g, θ⟩ (gradient g everywhere), its second pass runs at θ + ε̂ = ε̂."""
    params = _parameters([np.zeros_like(g) for g in grads])
    slopes = [_constant(g) for g in grads]
    visited = []

    def closure():
        visited.append([backend.to_host(p.data).astype(np.float64) for p in params])
        total = (slopes[0] * params[0]).sum()
        for g, p in zip(slopes[1:], params[1:], strict=True):
            total = total + (g * p).sum()
        return total

    optim.SAM(_Recorder(params), rho=rho).step(closure)
    return visited[1]  # pass 1 at θ = 0, pass 2 at the ascent point ε̂


def expected_sam_gradient(case: Case, rho: float) -> list:
    """g(θ + ε̂(θ)): the gradient ``optim.SAM`` hands its base optimizer."""
    params = _parameters(case.theta)
    base = _Recorder(params)
    optim.SAM(base, rho=rho).step(lambda: case.loss(params))
    return base.received


def expected_xsam(case: Case, rho: float, rho_max: float):
    """(α*, ‖g₁‖·v(α*), probe losses) of one XSAM search step (k = 1, grid 0, 0.1, …, 2):
    ``opt.alpha`` after the step, the gradient it hands its base optimizer, and the
    (α, loss) pairs of its diagnostics."""
    params = _parameters(case.theta)
    base = _Recorder(params)
    opt = optim.XSAM(base, rho=rho, rho_max=rho_max, alpha_max=2.0, alpha_step=0.1, search_every=1)
    opt.step(lambda: case.loss(params))
    return float(opt.alpha), base.received, list(opt.diagnostics.get("probe_losses", []))


def slerp_formula(v0, v1, alpha) -> list:
    """v(α) = [sin((1−α)ψ)·v₀ + sin(αψ)·v₁]/sin ψ, ψ = arccos(clip(⟨v₀, v₁⟩, −1, 1)); v₁ when
    sin ψ < 1e-8 (minisam/optim/ALGORITHMS.md, XSAM step 3). The library keeps its slerp inside XSAM, so
    this is the expected value's only source written here."""
    cos_psi = sum(float(np.vdot(a, b)) for a, b in zip(v0, v1, strict=True))
    psi = math.acos(min(1.0, max(-1.0, cos_psi)))
    if math.sin(psi) < SIN_PSI_MIN:
        return [np.array(b, dtype=np.float64) for b in v1]
    a, b = math.sin((1 - alpha) * psi) / math.sin(psi), math.sin(alpha * psi) / math.sin(psi)
    return [a * x + b * y for x, y in zip(v0, v1, strict=True)]


# ---- comparing -------------------------------------------------------------------------------
def _check_function(who: str, fn) -> None:
    if not callable(fn):
        raise ArgumentError(f"{who}: fn must be your function (something callable), got {fn!r}")


def _as_arrays(who, case, what, received, like) -> list:
    """The learner's list of arrays as float64 arrays, shaped like ``like``, all finite."""
    if isinstance(received, np.ndarray) or not isinstance(received, (list, tuple)):
        raise AssertionError(
            f"{who}, case {case!r}: {what} must be a list of {len(like)} arrays (one per parameter), "
            f"got {type(received).__name__}"
        )
    if len(received) != len(like):
        raise AssertionError(
            f"{who}, case {case!r}: {what} must have {len(like)} arrays (one per parameter), "
            f"got {len(received)}"
        )
    arrays = []
    for i, (r, e) in enumerate(zip(received, like, strict=True)):
        r = backend.to_host(r)
        if r.shape != np.shape(e):
            raise AssertionError(
                f"{who}, case {case!r}: {what} array {i} has shape {r.shape}, expected {np.shape(e)}"
            )
        r = r.astype(np.float64)
        if not np.all(np.isfinite(r)):
            index = tuple(int(j) for j in np.argwhere(~np.isfinite(r))[0])
            raise AssertionError(
                f"{who}, case {case!r}: {what} array {i}, index {index}: expected "
                f"{float(np.asarray(e)[index]):.17g}, received {float(r[index])} (not a finite number)"
            )
        arrays.append(r)
    return arrays


def _compare(who, case, what, expected, received, hints=()) -> float:
    """Largest |received − expected|; ``AssertionError`` naming the first element out of
    tolerance. ``hints``: (description, wrong value) pairs; a mismatch that matches one of
    them says so."""
    received = _as_arrays(who, case, what, received, expected)
    scale = math.sqrt(sum(float(np.vdot(e, e)) for e in expected))
    largest = 0.0
    for i, (e, r) in enumerate(zip(expected, received, strict=True)):
        difference = np.abs(r - e)
        bad = difference > RTOL * np.abs(e) + ATOL * (1 + scale)
        if np.any(bad):
            index = tuple(int(j) for j in np.argwhere(bad)[0])
            message = (
                f"{who}, case {case!r}: {what} array {i}, index {index}: expected "
                f"{float(e[index]):.17g}, received {float(r[index]):.17g}"
            )
            for description, wrong in hints:
                if all(
                    np.allclose(x, w, rtol=1e-7, atol=1e-12) for x, w in zip(received, wrong, strict=True)
                ):
                    message += f" -- what you returned is {description}"
                    break
            raise AssertionError(message)
        if difference.size:
            largest = max(largest, float(difference.max()))
    return largest


def _unchanged(who, case, what, before, after) -> None:
    """θ (or an input) must come back byte for byte: no in-place update, not even one undone
    by subtracting again ((θ + ε) − ε is not always θ in floating point)."""
    changed = len(after) != len(before) or any(
        not isinstance(a, np.ndarray) or a.shape != b.shape or a.tobytes() != b.tobytes()
        for a, b in zip(after, before, strict=False)
    )
    if changed:
        for i, (b, a) in enumerate(zip(before, after, strict=False)):
            if isinstance(a, np.ndarray) and a.shape == b.shape and a.tobytes() != b.tobytes():
                index = tuple(int(j) for j in np.argwhere(a != b)[0]) if np.any(a != b) else ()
                detail = f"array {i}, index {index}: was {float(b[index]):.17g}, now {float(a[index]):.17g}"
                break
        else:
            detail = "the list or an array in it was replaced"
        raise AssertionError(
            f"{who}, case {case!r}: your function changed {what} ({detail}). Work on new arrays "
            "(θ + ε as a new list) and leave the inputs as they came"
        )


def _report(who: str, count: int, largest: float, source: str = "minisam") -> float:
    verdict = "exact" if largest == 0.0 else f"close, max diff {largest:.2g}"
    print(f"{who}: all {count} cases agree with {source} -- {verdict}")
    return largest


# ---- the checkers ---------------------------------------------------------------------------
def check_sam_perturbation(fn) -> float:
    """Check ``fn(grads, rho) -> list``: SAM's perturbation ε̂ = ρ·g/(‖g‖ + ε₀), with ‖g‖ the
    norm over all arrays together. Returns the largest difference found."""
    who = "check_sam_perturbation"
    _check_function(who, fn)
    largest = 0.0
    for name, grads, rho in perturbation_cases():
        given = [g.copy() for g in grads]
        received = fn(given, rho)
        _unchanged(who, name, "the gradients you were given", grads, given)
        per_array = [rho * g / (np.linalg.norm(g) + EPS0) for g in grads]
        hints = [
            ("ρ·g: the ascent is not normalised (divide by ‖g‖)", [rho * g for g in grads]),
            ("each array divided by its own norm: ‖g‖ must be over all arrays together", per_array),
        ]
        expected = expected_perturbation(grads, rho)
        largest = max(largest, _compare(who, name, f"ε̂ (ρ = {rho:g})", expected, received, hints))
    return _report(who, len(perturbation_cases()), largest)


def check_sam_gradient(fn) -> float:
    """Check ``fn(params, loss_and_grad, rho) -> list``: the SAM gradient g(θ + ε̂(θ)), with
    ``params`` (θ) left exactly as it came. Returns the largest difference found."""
    who = "check_sam_gradient"
    _check_function(who, fn)
    cases = gradient_cases()
    largest = 0.0
    for case in cases:
        given = case.params()
        received = fn(given, case.loss_and_grad, case.rho)
        _unchanged(who, case.name, "params (θ)", case.theta, given)
        g0 = case.loss_and_grad(case.theta)[1]
        hints = [("g₀ = ∇L(θ), the gradient before the ascent, not at θ + ε̂", g0)]
        expected = expected_sam_gradient(case, case.rho)
        what = f"g(θ + ε̂) (ρ = {case.rho:g})"
        largest = max(largest, _compare(who, case.name, what, expected, received, hints))
    return _report(who, len(cases), largest)


def check_slerp(fn) -> float:
    """Check ``fn(v0, v1, alpha) -> list``: the spherical interpolation v(α) of two unit
    vectors, finite (and v₁) when they are parallel or antiparallel. Returns the largest
    difference found."""
    who = "check_slerp"
    _check_function(who, fn)
    largest, count = 0.0, 0
    for name, v0, v1, alphas in slerp_cases():
        for alpha in alphas:
            given0, given1 = [v.copy() for v in v0], [v.copy() for v in v1]
            received = fn(given0, given1, alpha)
            _unchanged(who, name, "v0", v0, given0)
            _unchanged(who, name, "v1", v1, given1)
            lerp = [(1 - alpha) * a + alpha * b for a, b in zip(v0, v1, strict=True)]
            hints = [("(1−α)·v₀ + α·v₁: a straight line, not the arc of the sphere", lerp)]
            expected = slerp_formula(v0, v1, alpha)
            what = f"v(α = {alpha:g})"
            largest = max(largest, _compare(who, name, what, expected, received, hints))
            count += 1
    return _report(who, count, largest, source="the formula of minisam/optim/ALGORITHMS.md")


def check_xsam_gradient(fn) -> float:
    """Check ``fn(params, loss_and_grad, loss, rho, rho_max, alphas) -> (alpha_star, grad)``:
    one XSAM search step with k = 1 on the grid ``alphas`` (0, 0.1, …, 2): α*, the grid point of
    largest probe loss L(θ + ρ_max·v(α)) (the smallest α on ties), and the gradient
    ‖g₁‖·v(α*), with ``params`` left exactly as it came. Returns the largest difference found."""
    who = "check_xsam_gradient"
    _check_function(who, fn)
    cases = gradient_cases()
    largest = 0.0
    for case in cases:
        rho, rho_max = case.rho, 2 * case.rho
        given = case.params()
        received = fn(given, case.loss_and_grad, case.loss_value, rho, rho_max, list(ALPHAS))
        _unchanged(who, case.name, "params (θ)", case.theta, given)
        if not isinstance(received, (tuple, list)) or len(received) != 2:
            raise AssertionError(
                f"{who}, case {case.name!r}: return (alpha_star, grad), a pair, got {type(received).__name__}"
            )
        alpha_star, grad = received
        alpha, expected, probes = expected_xsam(case, rho, rho_max)
        if isinstance(alpha_star, bool) or not isinstance(alpha_star, (int, float, np.floating, np.integer)):
            raise AssertionError(
                f"{who}, case {case.name!r}: alpha_star must be a number, got {alpha_star!r}"
            )
        if abs(float(alpha_star) - alpha) > 1e-12:
            message = (
                f"{who}, case {case.name!r}: alpha_star: expected {alpha:g}, received {float(alpha_star):g}"
            )
            top = max(loss for _, loss in probes) if probes else None
            tied = [a for a, loss in probes if loss == top]
            if len(tied) > 1 and any(abs(float(alpha_star) - a) < 1e-12 for a in tied):
                message += (
                    f" -- the α = {', '.join(f'{a:g}' for a in tied)} all reach the largest probe loss "
                    f"{top:.17g}; on a tie the rule is the smallest α"
                )
            raise AssertionError(message)
        what = f"‖g₁‖·v(α*) (α* = {alpha:g})"
        largest = max(largest, _compare(who, case.name, what, expected, grad))
    return _report(who, len(cases), largest)
