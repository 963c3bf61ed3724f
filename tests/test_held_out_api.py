"""A second, held-out sweep of bad and edge inputs across the Python API (issue 10).

tests/test_bad_inputs.py holds the first sweep; the cases here are new ones of the same kinds,
grouped by the rule they enforce, one test per rule. A refused case checks three things, as there:

1. the error is of the expected type (``ArgumentError`` is a ValueError and a TypeError at once);
2. the message names the argument (or key, or file) that was wrong;
3. nothing changed: on top of what tests/test_bad_inputs.py snapshots (the model, its gradients,
   BatchNorm's buffers and counter, the random stream, the files, the backend, the default
   dtype), the optimizers' and the scheduler's state, a second parameter and its gradient, and
   the grad mode.

A valid edge case must be accepted and give the answer computed by hand in its check.
"""

import collections
import math
import os
import pathlib
import signal
import sys

import numpy as np
import pytest
from helpers import assert_same_state
from test_bad_inputs import assert_same, snapshot
from test_bad_inputs import world as world  # noqa: F401  (the fixture that `held` builds on)

import minisam as ms
import minisam.functional as F
from minisam import backend, data, models, nn, optim, sharpness
from minisam.gradcheck import GradcheckError, gradcheck
from minisam.landscapes import GaussianBumps, Quadratic, SharpFlat2D, Stochastic, run_optimizer
from minisam.serialization import CheckpointError

NAN, INF = math.nan, math.inf
V, T = ValueError, TypeError
VT = (ValueError, TypeError)


# ---- the world: test_bad_inputs' world, plus optimizers with state and a few tensors ------------
@pytest.fixture
def held(world):  # noqa: F811
    w = world
    w.y = np.array([0, 1, 2, 0, 1])
    w.params = list(w.model.parameters())
    ms.manual_seed(0)
    w.sgd = optim.SGD(w.params, lr=0.1, momentum=0.9, weight_decay=1e-3)
    w.sgd.step(lambda: F.cross_entropy(w.model(w.x), w.y))  # momentum buffers and fresh gradients
    w.q = nn.Parameter(np.array([0.3, -0.7, 1.1]))
    w.adam = optim.Adam([w.q], lr=0.1, amsgrad=True)
    w.q.grad = np.array([0.1, -0.2, 0.3], np.float32)
    w.adam.step()
    w.q.grad = np.array([0.5, 0.5, -0.5], np.float32)
    w.sched = optim.StepLR(w.sgd, step_size=2, gamma=0.5)
    w.sched.step()
    w.sam = optim.SAM(optim.SGD(w.params, lr=0.05, momentum=0.5), rho=0.05)
    w.xsam = optim.XSAM(optim.SGD(w.params, lr=0.05), rho=0.05)
    w.bn2 = nn.BatchNorm2d(3)
    w.theta = nn.Parameter(np.array([0.3, 0.1]))
    h = ms.Tensor(np.array([[2.0, 0.0], [0.0, 1.0]]))
    w.quad = lambda: 0.5 * (w.theta * (h @ w.theta)).sum()  # L = θ₁² + θ₂²/2: λ_max = 2
    w.inputs = ms.Tensor(w.x.numpy())  # w.x requires a gradient; a closure's own backward would reach it
    w.closure = lambda: F.cross_entropy(w.model(w.inputs), w.y)
    w.t, w.i = ms.Tensor([1.0, 2.0, 3.0]), ms.Tensor([1, 2, 3])
    w.m = ms.Tensor(np.arange(6.0).reshape(2, 3))
    w.logits = ms.Tensor(np.linspace(-1, 1, 15).reshape(5, 3), requires_grad=True)
    w.img = ms.Tensor(np.linspace(0, 1, 100).reshape(2, 2, 5, 5))
    w.seq = ms.Tensor(np.linspace(0, 1, 24).reshape(2, 2, 6))
    w.w1 = ms.Tensor(np.full((3, 2, 3), 0.1))
    ms.manual_seed(1)  # the stream every case must leave alone
    yield w
    ms.set_default_dtype(np.float32)  # a valid case may have changed them
    backend.use("numpy")


def extra_snapshot(w):
    """What `snapshot` of tests/test_bad_inputs.py does not cover."""
    state = {name: getattr(w, name).state_dict() for name in ("sgd", "adam", "sched", "sam", "xsam")}
    state["bn2"] = w.bn2.state_dict()
    for name in ("q", "theta"):
        p = getattr(w, name)
        state[name] = [p.numpy(), None if p.grad is None else np.array(p.grad)]
    state["grad mode"] = ms.is_grad_enabled()
    return state


def snap(w):
    return snapshot(w), extra_snapshot(w)


def assert_nothing_changed(before, after):
    assert_same(before[0], after[0])
    assert_same_state(before[1], after[1])


def close(a, b, tol=1e-5):
    a = a.numpy() if isinstance(a, ms.Tensor) else np.asarray(a)
    return np.allclose(a.astype(float), np.asarray(b, float), rtol=tol, atol=tol)


# ---- the cases: P(kind, id, call, expectation) ---------------------------------------------------
CASES = []


class E:
    """Refused: one of ``types`` is raised, its message contains ``text`` (the argument, key or
    file), and nothing changed. ``prepare(w)`` runs first, before the snapshot: it sets up what
    the call then refuses (a malformed gradient, a damaged file)."""

    def __init__(self, types, text, prepare=None):
        self.types, self.text, self.prepare = types, text, prepare


class OK:
    """Accepted, with the answer ``check(result, w)`` holds for (computed by hand). ``state`` says
    whether the call may change the world (a valid call may: a new layer draws its weights)."""

    def __init__(self, check=lambda r, w: True, state=False):
        self.check, self.state = check, state


def P(kind, id, call, expect):
    CASES.append((kind, id, call, expect))


def A(t):
    return t.numpy() if isinstance(t, ms.Tensor) else np.asarray(t)


# fmt: off
# ============================================================================================
# T: Tensor and creation
# ============================================================================================
P("tensor", "Tensor dtype='banana'", lambda w: ms.Tensor([1, 2], dtype="banana"), E(T, "dtype"))
P("tensor", "Tensor dtype=complex64", lambda w: ms.Tensor([1.0], dtype=np.complex64), E(VT, "dtype"))
P("tensor", "Tensor [300] dtype=uint8", lambda w: ms.Tensor([300], dtype=np.uint8), E(V, "uint8"))
P("tensor", "Tensor array 300 dtype=uint8", lambda w: ms.Tensor(np.array([300]), dtype=np.uint8),
  E(V, "uint8"))
P("tensor", "Tensor [-1] dtype=uint8", lambda w: ms.Tensor([-1], dtype=np.uint8), E(V, "uint8"))
P("tensor", "Tensor 2**40 dtype=int32", lambda w: ms.Tensor(np.array([2**40]), dtype=np.int32), E(V, "int32"))
P("tensor", "Tensor [1.5] dtype=int64", lambda w: ms.Tensor([1.5], dtype=np.int64), E(V, "int64"))
P("tensor", "Tensor [nan] dtype=int64", lambda w: ms.Tensor([NAN], dtype=np.int64), E(V, "int64"))
P("tensor", "Tensor 1e300 into float32", lambda w: ms.Tensor(np.array([1e300])), E(V, "float32"))
P("tensor", "Tensor 1e300 dtype=float16", lambda w: ms.Tensor([1e300], dtype=np.float16), E(V, "float16"))
P("tensor", "Tensor [2.0] dtype=int64 (exact)", lambda w: ms.Tensor([2.0], dtype=np.int64),
  OK(lambda r, w: r.dtype == np.int64 and r.tolist() == [2]))
P("tensor", "Tensor float16 array", lambda w: ms.Tensor(np.float16([1, 2])),
  OK(lambda r, w: r.dtype == np.float32 and r.tolist() == [1.0, 2.0]))
P("tensor", "Tensor 0-d array", lambda w: ms.Tensor(np.array(3.5)),
  OK(lambda r, w: r.shape == () and r.item() == 3.5))
P("tensor", "Tensor (0, 3)", lambda w: ms.Tensor(np.zeros((0, 3))), OK(lambda r, w: r.shape == (0, 3)))
P("tensor", "Tensor []", lambda w: ms.Tensor([]), OK(lambda r, w: r.shape == (0,) and r.dtype == np.float32))
P("tensor", "Tensor bools", lambda w: ms.Tensor([True, False]), OK(lambda r, w: r.dtype == bool))
P("tensor", "Tensor uint64", lambda w: ms.Tensor(np.array([1, 2], np.uint64)),
  OK(lambda r, w: r.dtype == np.uint64))
P("tensor", "Tensor(Tensor) is a copy", lambda w: (w.t, ms.Tensor(w.t)),
  OK(lambda r, w: r[1].data is not r[0].data and r[1].tolist() == [1.0, 2.0, 3.0]))
P("tensor", "Tensor(range(3))", lambda w: ms.Tensor(range(3)), OK(lambda r, w: r.tolist() == [0, 1, 2]))
P("tensor", "Tensor(dict)", lambda w: ms.Tensor({"a": 1}), E(VT, "data"))
P("tensor", "Tensor(bytes)", lambda w: ms.Tensor(b"abc"), E(VT, "data"))
P("tensor", "Tensor(datetime64)", lambda w: ms.Tensor(np.datetime64("2020-01-01")), E(VT, "data"))
P("tensor", "Tensor([1, None])", lambda w: ms.Tensor([1, None]), E(VT, "data"))
P("tensor", "Tensor requires_grad=np.True_", lambda w: ms.Tensor([1.0], requires_grad=np.bool_(True)),
  OK(lambda r, w: r.requires_grad is True))
P("tensor", "Tensor requires_grad=1", lambda w: ms.Tensor([1.0], requires_grad=1), E(T, "requires_grad"))
P("tensor", "Tensor float16 requires_grad", lambda w: ms.Tensor([1.0], dtype=np.float16, requires_grad=True),
  OK(lambda r, w: r.dtype == np.float16))
P("tensor", "Tensor bool requires_grad", lambda w: ms.Tensor([1.0], dtype=bool, requires_grad=True),
  E(T, "floating"))
P("creation", "zeros(-1)", lambda w: ms.zeros(-1), E(V, "shape"))
P("creation", "zeros(2.5)", lambda w: ms.zeros(2.5), E(T, "shape"))
P("creation", "zeros('3')", lambda w: ms.zeros("3"), E(T, "shape"))
P("creation", "zeros(True)", lambda w: ms.zeros(True), E(T, "shape"))
P("creation", "zeros(None)", lambda w: ms.zeros(None), E(T, "shape"))
P("creation", "ones((2, -3))", lambda w: ms.ones((2, -3)), E(V, "shape"))
P("creation", "ones([2, 3])", lambda w: ms.ones([2, 3]), OK(lambda r, w: r.shape == (2, 3)))
P("creation", "ones(int64, 3)", lambda w: ms.ones(np.int64(2), 3), OK(lambda r, w: r.shape == (2, 3)))
P("creation", "randn(-2)", lambda w: ms.randn(-2), E(V, "shape"))
P("creation", "randn(2.0)", lambda w: ms.randn(2.0), E(T, "shape"))
P("creation", "randn((2, 3), 4)", lambda w: ms.randn((2, 3), 4), E(T, "shape"))
P("creation", "zeros()", lambda w: ms.zeros(), OK(lambda r, w: r.shape == ()))
P("creation", "randn(0)", lambda w: ms.randn(0), OK(lambda r, w: r.shape == (0,)))
P("creation", "zeros_like(ndarray)", lambda w: ms.zeros_like(np.zeros(3)), E(T, "Tensor"))
P("creation", "ones_like(list)", lambda w: ms.ones_like([1, 2]), E(T, "Tensor"))
P("creation", "zeros(2, requires_grad='yes')", lambda w: ms.zeros(2, requires_grad="yes"),
  E(T, "requires_grad"))
P("creation", "randn(2, requires_grad=1) draws nothing", lambda w: ms.randn(2, requires_grad=1),
  E(T, "requires_grad"))
P("creation", "randn(3, dtype=...)", lambda w: ms.randn(3, dtype=np.float64), E(T, "dtype"))
P("creation", "zeros_like(t, requires_grad='no')", lambda w: ms.zeros_like(w.t, requires_grad="no"),
  E(T, "requires_grad"))
P("creation", "Linear(10**6, 10**6): memory", lambda w: nn.Linear(10**6, 10**6),
  E(MemoryError, "shape (1000000, 1000000)"))
P("creation", "zeros(2**62, 2**62)", lambda w: ms.zeros(2**62, 2**62),
  E(MemoryError, "zeros: cannot allocate"))
P("creation", "randn(2**62, 4)", lambda w: ms.randn(2**62, 4), E(MemoryError, "randn: cannot allocate"))
P("dtype", "set_default_dtype(None)", lambda w: ms.set_default_dtype(None), E(T, "dtype"))
P("dtype", "set_default_dtype('banana')", lambda w: ms.set_default_dtype("banana"), E(T, "dtype"))
P("dtype", "set_default_dtype(True)", lambda w: ms.set_default_dtype(True), E(T, "dtype"))
P("dtype", "set_default_dtype(float16)", lambda w: ms.set_default_dtype(np.float16),
  E(V, "float32 or float64"))
P("dtype", "set_default_dtype(int)", lambda w: ms.set_default_dtype(int), E(V, "float32 or float64"))
P("dtype", "set_default_dtype('f8') works", lambda w: (ms.set_default_dtype("f8"), ms.get_default_dtype()),
  OK(lambda r, w: r[1] == np.float64, state=True))
P("dtype", "set_default_dtype([np.float32])", lambda w: ms.set_default_dtype([np.float32]), E(T, "dtype"))

# ---- operators -----------------------------------------------------------------------------
P("ops", "t + None", lambda w: w.t + None, E(T, "add"))
P("ops", "t * None", lambda w: w.t * None, E(T, "mul"))
P("ops", "None + t", lambda w: None + w.t, E(T, "add"))
P("ops", "t - 'a'", lambda w: w.t - "a", E(T, "sub"))
P("ops", "'a' - t", lambda w: "a" - w.t, E(T, "sub"))
P("ops", "t / object()", lambda w: w.t / object(), E(T, "div"))
P("ops", "t + 1j", lambda w: w.t + 1j, E(T, "add"))
P("ops", "t + complex array", lambda w: w.t + np.array([1j, 2j, 3j]), E(T, "add"))
P("ops", "int t + None", lambda w: w.i + None, E(T, "add"))
P("ops", "int t * 'x'", lambda w: w.i * "x", E(T, "mul"))
P("ops", "t + [1.0, 2.0]", lambda w: w.t + [1.0, 2.0], E(V, "add"))
P("ops", "t + True", lambda w: w.t + True, OK(lambda r, w: r.tolist() == [2.0, 3.0, 4.0]))
P("ops", "t * np.float64(2)", lambda w: w.t * np.float64(2), OK(lambda r, w: r.dtype == np.float32))
P("ops", "t + {}", lambda w: w.t + {}, E(T, "add"))
P("ops", "maximum(t, None)", lambda w: ms.maximum(w.t, None), E(T, "maximum"))
P("ops", "maximum(ndarray, t)", lambda w: ms.maximum(np.ones(3), w.t), E(T, "maximum"))
P("ops", "t ** None", lambda w: w.t ** None, E(T, "exponent"))
P("ops", "t ** 1j", lambda w: w.t ** 1j, E(T, "exponent"))
P("ops", "t ** np.float32(2)", lambda w: w.t ** np.float32(2), OK(lambda r, w: r.tolist() == [1.0, 4.0, 9.0]))
P("ops", "t @ None", lambda w: w.t @ None, E(T, "matmul"))
P("ops", "t @ 'ab'", lambda w: w.t @ "ab", E(T, "matmul"))
P("ops", "m @ [[1.0]] mismatch", lambda w: w.m @ [[1.0]], E(V, "matmul"))
P("ops", "t == None", lambda w: w.t == None, OK(lambda r, w: r is False))  # noqa: E711
P("ops", "t < None", lambda w: w.t < None, E(T, "<"))
P("ops", "t == [1, 5, 3]", lambda w: w.t == [1, 5, 3], OK(lambda r, w: r.tolist() == [True, False, True]))
P("ops", "-bool tensor", lambda w: -ms.Tensor([True]), E(T, "bool"))
# ---- reductions ----------------------------------------------------------------------------
P("reduce", "sum(axis=2) on 2-D", lambda w: w.m.sum(axis=2), E(V, "axis"))
P("reduce", "sum(axis=1.5)", lambda w: w.m.sum(axis=1.5), E(T, "axis"))
P("reduce", "sum(axis=True)", lambda w: w.m.sum(axis=True), E(T, "axis"))
P("reduce", "sum(axis='0')", lambda w: w.m.sum(axis="0"), E(T, "axis"))
P("reduce", "sum(axis=[0])", lambda w: w.m.sum(axis=[0]), E(T, "axis"))
P("reduce", "sum(axis=(0, 1))", lambda w: w.m.sum(axis=(0, 1)), OK(lambda r, w: r.item() == 15.0))
P("reduce", "sum(axis=np.int64(1))", lambda w: w.m.sum(axis=np.int64(1)),
  OK(lambda r, w: r.tolist() == [3.0, 12.0]))
P("reduce", "sum(keepdims='yes')", lambda w: w.m.sum(keepdims="yes"), E(T, "keepdims"))
P("reduce", "sum(keepdim=1)", lambda w: w.m.sum(dim=0, keepdim=1), E(T, "keepdim"))
P("reduce", "sum(axis=(0, 0))", lambda w: w.m.sum(axis=(0, 0)), E(V, "axis"))
P("reduce", "sum(dim=5)", lambda w: w.m.sum(dim=5), E(V, "axis"))
P("reduce", "mean(axis=3)", lambda w: w.m.mean(axis=3), E(V, "axis"))
P("reduce", "mean of empty", lambda w: ms.Tensor(np.zeros(0)).mean(), E(V, "mean"))
P("reduce", "mean(axis=0) of (0, 3)", lambda w: ms.Tensor(np.zeros((0, 3))).mean(axis=0), E(V, "mean"))
P("reduce", "mean(axis=0) of (2, 0)", lambda w: ms.Tensor(np.zeros((2, 0))).mean(axis=0),
  OK(lambda r, w: r.shape == (0,)))
P("reduce", "sum of empty", lambda w: ms.Tensor(np.zeros(0)).sum(), OK(lambda r, w: r.item() == 0.0))
P("reduce", "max of empty", lambda w: ms.Tensor(np.zeros(0)).max(), E(V, "max"))
P("reduce", "max(axis=5)", lambda w: w.m.max(axis=5), E(V, "axis"))
P("reduce", "max(axis=0.0)", lambda w: w.m.max(axis=0.0), E(T, "axis"))
P("reduce", "argmax(axis=2)", lambda w: w.m.argmax(axis=2), E(V, "axis"))
P("reduce", "argmax(axis=0.5)", lambda w: w.m.argmax(axis=0.5), E(T, "axis"))
P("reduce", "argmax(axis=True)", lambda w: w.m.argmax(axis=True), E(T, "axis"))
P("reduce", "max(dim=1, keepdim=True)", lambda w: w.m.max(dim=1, keepdim=True),
  OK(lambda r, w: r.shape == (2, 1) and r.tolist() == [[2.0], [5.0]]))
P("reduce", "mean of int tensor", lambda w: w.i.mean(), OK(lambda r, w: r.item() == 2.0))
# ---- shape and indexing --------------------------------------------------------------------
P("shape", "reshape(5) of 6", lambda w: w.m.reshape(5), E(V, "reshape"))
P("shape", "reshape(2.5, 2)", lambda w: w.m.reshape(2.5, 2), E(T, "shape"))
P("shape", "reshape(True, 6)", lambda w: w.m.reshape(True, 6), E(T, "shape"))
P("shape", "reshape(-1, -1)", lambda w: w.m.reshape(-1, -1), E(V, "unknown dimension"))
P("shape", "reshape(-1)", lambda w: w.m.reshape(-1), OK(lambda r, w: r.shape == (6,)))
P("shape", "reshape([3, 2])", lambda w: w.m.reshape([3, 2]), OK(lambda r, w: r.shape == (3, 2)))
P("shape", "transpose(0, 0)", lambda w: w.m.transpose(0, 0), E(V, "axis"))
P("shape", "transpose(1.5, 0)", lambda w: w.m.transpose(1.5, 0), E(T, "transpose"))
P("shape", "transpose(0)", lambda w: w.m.transpose(0), E(V, "axes"))
P("index", "t[5]", lambda w: w.t[5], E(IndexError, "out of bounds"))
P("index", "t[1.5]", lambda w: w.t[1.5], E(IndexError, "integers"))
P("index", "t['a']", lambda w: w.t["a"], E(IndexError, "integers"))
P("index", "t[[]]", lambda w: w.t[[]], OK(lambda r, w: r.shape == (0,)))
P("index", "t[float tensor]", lambda w: w.t[ms.Tensor([0.0, 1.0])], E(IndexError, "integer"))


def mask_backward(w):
    x = ms.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[ms.Tensor([True, False, True])].sum().backward()
    return x.grad


P("index", "bool-mask index backward", mask_backward, OK(lambda r, w: r.tolist() == [1.0, 0.0, 1.0]))


def repeat_backward(w):
    x = ms.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2]].sum().backward()
    return x.grad


P("index", "repeated index backward", repeat_backward, OK(lambda r, w: r.tolist() == [2.0, 0.0, 1.0]))
P("index", "t[None]", lambda w: w.t[None], OK(lambda r, w: r.shape == (1, 3)))
P("index", "m[..., 0]", lambda w: w.m[..., 0], OK(lambda r, w: r.tolist() == [0.0, 3.0]))
P("index", "m[:, 5]", lambda w: w.m[:, 5], E(IndexError, "out of bounds"))
P("index", "t[mask of wrong length]", lambda w: w.t[np.array([True, False])], E(IndexError, "boolean"))
P("len", "len(0-d tensor)", lambda w: len(ms.Tensor(3.0)), E(T, "0-d"))
P("len", "float(empty)", lambda w: float(ms.Tensor([])), E(V, "one element"))
P("len", "bool(empty)", lambda w: bool(ms.Tensor([])), E(V, "ambiguous"))
P("backward", "backward(grad='a')", lambda w: (w.t * ms.Tensor([1.0], requires_grad=True)).backward(grad="a"),
  E(T, "grad"))
P("backward", "backward(grad=None) on a scalar",
  lambda w: (ms.Tensor(2.0, requires_grad=True) * 3).backward(),

  OK())
P("backward", "backward(grad=[[1.0]]) shape",
  lambda w: (ms.Tensor([2.0], requires_grad=True) * 3).backward([[1.0]]),

  E(V, "grad"))
P("nograd", "no_grad('x')", lambda w: ms.no_grad("x"), E(T, "no_grad"))
P("nograd", "no_grad(3)", lambda w: ms.no_grad(3), E(T, "no_grad"))


def grad_mode_after_error(w):
    try:
        with ms.no_grad():
            raise KeyError("inside")
    except KeyError:
        pass
    return ms.is_grad_enabled()


P("nograd", "grad mode back after an error", grad_mode_after_error, OK(lambda r, w: r is True))
P("join", "cat axis=1.5", lambda w: ms.cat([w.m, w.m], axis=1.5), E(T, "axis"))
P("join", "cat axis=True", lambda w: ms.cat([w.m, w.m], axis=True), E(T, "axis"))
P("join", "stack axis=-5", lambda w: ms.stack([w.m, w.m], axis=-5), E(V, "axis"))
P("join", "stack axis='0'", lambda w: ms.stack([w.m, w.m], axis="0"), E(T, "axis"))
P("join", "cat of a generator", lambda w: ms.cat(t for t in [w.t, w.t]), OK(lambda r, w: r.shape == (6,)))
P("join", "cat float32 with float64", lambda w: ms.cat([w.t, ms.Tensor([1.0], dtype=np.float64)]),
  OK(lambda r, w: r.dtype == np.float64))
P("join", "stack of 0-d", lambda w: ms.stack([ms.Tensor(1.0), ms.Tensor(2.0)]),
  OK(lambda r, w: r.shape == (2,)))
P("join", "cat int with float", lambda w: ms.cat([ms.Tensor([1.0]), ms.Tensor([1])]),
  OK(lambda r, w: r.dtype.kind == "f"))
P("join", "cat of 0-d", lambda w: ms.cat([ms.Tensor(1.0), ms.Tensor(2.0)]), E(V, "cat"))
P("join", "cat(tensors=Tensor)", lambda w: ms.cat(w.m), E(T, "tensors"))

# ============================================================================================
# F: functional
# ============================================================================================
P("loss", "cross_entropy empty batch",
  lambda w: F.cross_entropy(ms.Tensor(np.zeros((0, 3))), np.zeros(0, int)),

  E(V, "empty"))
P("loss", "cross_entropy labels list", lambda w: F.cross_entropy(w.logits, [0, 1, 2, 0, 1]),
  OK(lambda r, w: abs(r.item() - F.cross_entropy(w.logits, w.y).item()) < 1e-7))
P("loss", "cross_entropy uint8 labels", lambda w: F.cross_entropy(w.logits, w.y.astype(np.uint8)), OK())
P("loss", "cross_entropy bool labels", lambda w: F.cross_entropy(w.logits, w.y > 0), E(T, "targets"))
P("loss", "cross_entropy float Tensor labels", lambda w: F.cross_entropy(w.logits, ms.Tensor(w.y * 1.0)),
  E(T, "targets"))
P("loss", "cross_entropy label_smoothing=0.1", lambda w: F.cross_entropy(w.logits, w.y, label_smoothing=0.1),
  E(T, "label_smoothing"))
P("loss", "cross_entropy 0-d labels", lambda w: F.cross_entropy(w.logits, np.array(1)), E(V, "targets"))
P("loss", "cross_entropy ndarray logits", lambda w: F.cross_entropy(np.zeros((5, 3)), w.y), E(T, "logits"))
P("loss", "cross_entropy int logits", lambda w: F.cross_entropy(ms.Tensor(np.zeros((5, 3), int)), w.y),
  OK(lambda r, w: abs(r.item() - math.log(3)) < 1e-6))
P("loss", "cross_entropy (5, 0) logits", lambda w: F.cross_entropy(ms.Tensor(np.zeros((5, 0))), w.y),
  E(V, "out of range"))
P("loss", "cross_entropy uint64 huge label",
  lambda w: F.cross_entropy(w.logits, np.array([2**63] * 5, np.uint64)),

  E(V, "out of range"))
P("loss", "cross_entropy int8 -1 label",
  lambda w: F.cross_entropy(w.logits, np.array([0, 1, 2, 0, -1], np.int8)),

  E(V, "out of range"))
P("loss", "cross_entropy NaN logits -> NaN",
  lambda w: F.cross_entropy(ms.Tensor(np.full((2, 3), NAN)), [0, 1]),

  OK(lambda r, w: math.isnan(r.item())))
P("loss", "cross_entropy labels None", lambda w: F.cross_entropy(w.logits, None), E(T, "targets"))
P("loss", "cross_entropy labels strings", lambda w: F.cross_entropy(w.logits, np.array(list("abcab"))),
  E(T, "targets"))
P("loss", "mse empty", lambda w: F.mse_loss(ms.Tensor(np.zeros(0)), np.zeros(0)), E(V, "empty"))
P("loss", "mse target None", lambda w: F.mse_loss(w.t, None), E(T, "target"))
P("loss", "mse target 'abc'", lambda w: F.mse_loss(w.t, "abc"), E(T, "target"))
P("loss", "mse ndarray pred", lambda w: F.mse_loss(np.zeros(3), w.t), E(T, "pred"))
P("loss", "mse int target", lambda w: F.mse_loss(w.t, np.array([1, 2, 4])),
  OK(lambda r, w: abs(r.item() - 1 / 3) < 1e-6 and r.dtype == np.float32))
P("loss", "mse broadcasting (3,) vs (1,)", lambda w: F.mse_loss(w.t, [1.0]), E(V, "shape"))
P("softmax", "softmax axis=2 of 2-D", lambda w: F.softmax(w.m, axis=2), E(V, "axis"))
P("softmax", "softmax axis=1.5", lambda w: F.softmax(w.m, axis=1.5), E(T, "axis"))
P("softmax", "softmax axis=dim=0", lambda w: F.softmax(w.m, axis=0, dim=0), E(T, "axis"))
P("softmax", "softmax of 0-d", lambda w: F.softmax(ms.Tensor(3.0)), OK(lambda r, w: r.item() == 1.0))
P("softmax", "log_softmax axis=True", lambda w: F.log_softmax(w.m, axis=True), E(T, "axis"))
P("softmax", "softmax of ints", lambda w: F.softmax(w.i), OK(lambda r, w: abs(r.numpy().sum() - 1) < 1e-9))
P("softmax", "softmax dim=np.int64(0)", lambda w: F.softmax(w.m, dim=np.int64(0)),
  OK(lambda r, w: np.allclose(r.numpy().sum(axis=0), 1)))
P("act", "relu(ndarray)", lambda w: F.relu(np.ones(3)), E(T, "Tensor"))
P("act", "sigmoid of ints", lambda w: F.sigmoid(ms.Tensor([0, 1])),
  OK(lambda r, w: close(r, [0.5, 1 / (1 + math.exp(-1))])))
P("act", "leaky_relu slope=None", lambda w: F.leaky_relu(w.t, None), E(T, "negative_slope"))
P("act", "leaky_relu of ints", lambda w: F.leaky_relu(ms.Tensor([-2, 3]), 0.5),
  OK(lambda r, w: close(r, [-1.0, 3.0])))
P("act", "tanh of bools", lambda w: F.tanh(ms.Tensor([True, False])),
  OK(lambda r, w: close(r, [math.tanh(1), 0.0], tol=1e-7) and r.dtype == np.float32))
P("act", "exp of int8", lambda w: ms.Tensor(np.array([1, 2], np.int8)).exp(),
  OK(lambda r, w: close(r, [math.e, math.e**2], tol=1e-6)))
P("act", "log of uint8", lambda w: ms.Tensor(np.array([3], np.uint8)).log(),
  OK(lambda r, w: close(r, [math.log(3)], tol=1e-7)))


def bn_unchanged(call):
    """A batch_norm call whose running stats must stay as they were when it raises."""

    def run(w):
        rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
        x = ms.Tensor(np.arange(12.0).reshape(4, 3))
        try:
            return call(x, rm, rv)
        except Exception:
            if not (np.array_equal(rm, np.zeros(3)) and np.array_equal(rv, np.ones(3))):
                raise AssertionError("a refused batch_norm call changed the running statistics") from None
            raise

    return run


P("bn", "batch_norm momentum=2", bn_unchanged(lambda x, rm, rv: F.batch_norm(x, rm, rv, momentum=2)),
  E(V, "momentum"))
P("bn", "batch_norm momentum=-0.5", bn_unchanged(lambda x, rm, rv: F.batch_norm(x, rm, rv, momentum=-0.5)),
  E(V, "momentum"))
P("bn", "batch_norm momentum=nan", bn_unchanged(lambda x, rm, rv: F.batch_norm(x, rm, rv, momentum=NAN)),
  E(V, "momentum"))
P("bn", "batch_norm eps=0", bn_unchanged(lambda x, rm, rv: F.batch_norm(x, rm, rv, eps=0)), E(V, "eps"))
P("bn", "batch_norm eps=-1", bn_unchanged(lambda x, rm, rv: F.batch_norm(x, rm, rv, eps=-1)), E(V, "eps"))
P("bn", "batch_norm eps=nan", bn_unchanged(lambda x, rm, rv: F.batch_norm(x, rm, rv, eps=NAN)), E(V, "eps"))
P("bn", "batch_norm training='no'", bn_unchanged(lambda x, rm, rv: F.batch_norm(x, rm, rv, training="no")),
  E(T, "training"))
P("bn", "batch_norm update_stats=1", bn_unchanged(lambda x, rm, rv: F.batch_norm(x, rm, rv, update_stats=1)),
  E(T, "update_stats"))
P("bn", "batch_norm running_mean list",
  lambda w: F.batch_norm(ms.Tensor(np.ones((4, 3))), [0.0] * 3, np.ones(3)), E(T, "running_mean"))
P("bn", "batch_norm int running_mean in training",
  bn_unchanged(lambda x, rm, rv: F.batch_norm(x, np.zeros(3, int), rv)), E(T, "running_mean"))
P("bn", "batch_norm int x in eval",
  lambda w: F.batch_norm(ms.Tensor([[1, 2], [3, 4]]), np.array([0.5, 0.5]), np.array([0.25, 0.25]),
                         training=False, eps=1e-12),
  OK(lambda r, w: close(r, [[1.0, 3.0], [5.0, 7.0]])))
P("bn", "batch_norm no stats in training",
  lambda w: F.batch_norm(ms.Tensor(np.arange(6.0).reshape(3, 2)), None, None),

  OK(lambda r, w: close(r.numpy().mean(axis=0), [0, 0])))
P("dropout", "dropout training='yes'", lambda w: F.dropout(w.t, 0.5, training="yes"), E(T, "training"))
P("dropout", "dropout p=1 gives zeros", lambda w: F.dropout(w.t, 1.0),
  OK(lambda r, w: r.tolist() == [0, 0, 0], state=True))
P("dropout", "dropout p=np.float32(0.5)", lambda w: F.dropout(w.t, np.float32(0.5)), OK(state=True))
P("dropout", "dropout of ints p=0.3", lambda w: F.dropout(ms.Tensor([10] * 8), 0.3),
  OK(lambda r, w: np.allclose(r.numpy()[r.numpy() != 0], 10 / 0.7) and r.dtype.kind == "f", state=True))
P("linear", "linear bias ndarray", lambda w: F.linear(w.m, ms.Tensor(np.ones((2, 3))), np.zeros(2)),
  E(T, "bias"))
P("linear", "linear ndarray x", lambda w: F.linear(np.ones((2, 3)), ms.Tensor(np.ones((2, 3)))),
  E(T, "Tensor"))
P("linear", "linear 1-D x", lambda w: F.linear(w.t, ms.Tensor(np.ones((2, 3)))),
  OK(lambda r, w: r.tolist() == [6, 6]))
CONV_W = lambda: ms.Tensor(np.ones((3, 2, 3, 3)) * 0.1)  # noqa: E731
P("conv", "conv2d padding=(-1, 0)", lambda w: F.conv2d(w.img, CONV_W(), padding=(-1, 0)), E(V, "padding"))
P("conv", "conv2d stride=np.int64(2)", lambda w: F.conv2d(w.img, CONV_W(), stride=np.int64(2)),
  OK(lambda r, w: r.shape == (2, 3, 2, 2)))
P("conv", "conv2d dilation=2", lambda w: F.conv2d(w.img, CONV_W(), dilation=2), E(T, "dilation"))
P("conv", "conv2d empty batch", lambda w: F.conv2d(ms.Tensor(np.zeros((0, 2, 5, 5))), CONV_W()),
  OK(lambda r, w: r.shape == (0, 3, 3, 3)))
P("conv", "conv2d int x", lambda w: F.conv2d(ms.Tensor(np.ones((1, 2, 3, 3), int)), CONV_W()),
  OK(lambda r, w: close(r, np.full((1, 3, 1, 1), 1.8))))
P("conv", "conv2d bias ndarray", lambda w: F.conv2d(w.img, CONV_W(), np.zeros(3)), E(T, "bias"))
P("conv", "conv2d weight ndarray", lambda w: F.conv2d(w.img, np.ones((3, 2, 3, 3))), E(T, "weight"))
P("conv", "conv2d stride=(1, 2, 3)", lambda w: F.conv2d(w.img, CONV_W(), stride=(1, 2, 3)), E(T, "stride"))
P("conv", "conv2d mixed dtypes",
  lambda w: F.conv2d(w.img, ms.Tensor(np.ones((3, 2, 3, 3)), dtype=np.float64)),

  OK(lambda r, w: r.dtype == np.float64))
P("conv", "conv1d stride=0", lambda w: F.conv1d(w.seq, w.w1, stride=0), E(V, "conv1d"))
P("conv", "conv1d stride=-1", lambda w: F.conv1d(w.seq, w.w1, stride=-1), E(V, "conv1d"))
P("conv", "conv1d padding=-1", lambda w: F.conv1d(w.seq, w.w1, padding=-1), E(V, "conv1d"))
P("conv", "conv1d stride=2.0", lambda w: F.conv1d(w.seq, w.w1, stride=2.0), E(T, "stride"))
P("conv", "conv1d stride=(2,)", lambda w: F.conv1d(w.seq, w.w1, stride=(2,)),
  OK(lambda r, w: r.shape == (2, 3, 2)))
P("pool", "max_pool1d kernel 7 > 6", lambda w: F.max_pool1d(w.seq, 7), E(V, "max_pool1d"))
P("pool", "max_pool1d stride=0", lambda w: F.max_pool1d(w.seq, 2, stride=0), E(V, "max_pool1d"))
P("pool", "max_pool1d kernel=0", lambda w: F.max_pool1d(w.seq, 0), E(V, "max_pool1d"))
P("pool", "max_pool2d kernel (2, 0)", lambda w: F.max_pool2d(w.img, (2, 0)), E(V, "kernel_size"))
P("pool", "avg_pool2d of ints", lambda w: F.avg_pool2d(ms.Tensor(np.arange(4).reshape(1, 1, 2, 2)), 2),
  OK(lambda r, w: close(r, [[[[1.5]]]])))
P("pool", "avg_pool2d of bools",
  lambda w: F.avg_pool2d(ms.Tensor(np.array([True, False] * 2).reshape(1, 1, 2, 2)), 2),

  OK(lambda r, w: close(r, [[[[0.5]]]])))
P("pool", "max_pool2d kernel_size=True", lambda w: F.max_pool2d(w.img, True), E(T, "kernel_size"))
P("pool", "avg_pool2d stride 3", lambda w: F.avg_pool2d(w.img, 2, stride=3),
  OK(lambda r, w: r.shape == (2, 2, 2, 2)))
P("pool", "max_pool2d 3-D input", lambda w: F.max_pool2d(w.seq, 2), E(V, "(N, C, H, W)"))

# ============================================================================================
# N: layers and models
# ============================================================================================
P("layer", "Linear bias=np.True_", lambda w: nn.Linear(3, 2, bias=np.bool_(True)),
  OK(lambda r, w: r.bias is not None, state=True))
P("layer", "Linear(2**62, 2**62)", lambda w: nn.Linear(2**62, 2**62), E(MemoryError, "shape"))
P("layer", "Conv2d stride=np.array", lambda w: nn.Conv2d(3, 4, 3, stride=np.array([1, 1])), E(T, "stride"))
P("layer", "Conv2d padding 3 items", lambda w: nn.Conv2d(3, 4, 3, padding=(1, 2, 3)), E(V, "padding"))
P("layer", "Conv2d stride (int32, 1)", lambda w: nn.Conv2d(3, 4, 3, stride=(np.int32(2), 1)),
  OK(lambda r, w: r.stride == (2, 1), state=True))
P("layer", "Conv1d stride=[2]", lambda w: nn.Conv1d(2, 3, 3, stride=[2]),
  OK(lambda r, w: r.stride == 2, state=True))
P("layer", "Conv1d kernel_size=np.int8(3)", lambda w: nn.Conv1d(2, 3, np.int8(3)), OK(state=True))
P("layer", "MaxPool2d stride=(1, 0)", lambda w: nn.MaxPool2d(2, stride=(1, 0)), E(V, "stride"))
P("layer", "BatchNorm1d momentum float32", lambda w: nn.BatchNorm1d(3, momentum=np.float32(0.5)),
  OK(lambda r, w: r.momentum == 0.5))
P("layer", "BatchNorm2d affine=np.False_", lambda w: nn.BatchNorm2d(3, affine=np.bool_(False)),
  OK(lambda r, w: r.weight is None))
P("layer", "BatchNorm1d eps=inf", lambda w: nn.BatchNorm1d(3, eps=INF), E(V, "eps"))
P("layer", "BatchNorm1d momentum=1+0j", lambda w: nn.BatchNorm1d(3, momentum=1 + 0j), E(T, "momentum"))
P("layer", "Dropout p=0.999999", lambda w: nn.Dropout(0.999999), OK())
P("layer", "Dropout p=np.float64(1.0)", lambda w: nn.Dropout(np.float64(1.0)), E(V, "p must"))
P("layer", "Dropout p=[0.5]", lambda w: nn.Dropout([0.5]), E(T, "p must"))
P("layer", "LeakyReLU slope float32 nan", lambda w: nn.LeakyReLU(np.float32("nan")), E(V, "negative_slope"))
P("layer", "Flatten start_dim=np.int8(1)", lambda w: nn.Flatten(np.int8(1)),
  OK(lambda r, w: r.start_dim == 1))
P("layer", "Sequential() identity", lambda w: nn.Sequential()(w.t), OK(lambda r, w: r is w.t))
P("layer", "Sequential(Linear, Linear class)", lambda w: nn.Sequential(w.model[0], nn.Linear), E(T, "item 1"))
P("layer", "model['0']", lambda w: w.model["0"], E(T, "indices"))
P("layer", "model[10]", lambda w: w.model[10], E(IndexError, "range"))
P("forward", "Linear on ints", lambda w: nn.Linear(3, 2)(w.i),
  OK(lambda r, w: r.dtype == np.float32, state=True))
P("forward", "Linear on bools", lambda w: nn.Linear(2, 2)(ms.Tensor([True, False])),
  OK(lambda r, w: r.dtype == np.float32, state=True))
P("forward", "Linear on 1-D", lambda w: w.model[0](ms.Tensor(np.ones(4))), OK(lambda r, w: r.shape == (8,)))
P("forward", "Linear kwargs", lambda w: w.model[0](x=w.x), E(T, "one input"))
P("forward", "Linear on (5, 0)", lambda w: w.model[0](ms.Tensor(np.zeros((5, 0)))), E(V, "features"))
P("forward", "BatchNorm1d eval on ints",
  lambda w: _bn_eval_ints(), OK(lambda r, w: close(r, [[1.0, 3.0], [5.0, 7.0]], tol=1e-4)))


def _bn_eval_ints():
    layer = nn.BatchNorm1d(2, eps=1e-12)
    layer.running_mean[...] = 0.5
    layer.running_var[...] = 0.25
    return layer.eval()(ms.Tensor([[1, 2], [3, 4]]))


def _bn_train_ints():
    layer = nn.BatchNorm1d(2)
    out = layer(ms.Tensor([[1, 2], [3, 6]]))
    return out, layer


P("forward", "BatchNorm1d train on ints", lambda w: _bn_train_ints(),
  OK(lambda r, w: close(r[0], [[-1.0, -1.0], [1.0, 1.0]], tol=1e-4) and r[0].dtype == np.float32
     and close(r[1].running_mean, [0.2, 0.4])))
P("forward", "BatchNorm2d train batch of 1 pixel", lambda w: w.bn2(ms.Tensor(np.ones((1, 3, 1, 1)))),
  E(V, "per channel"))
P("forward", "BatchNorm2d given 3 dims", lambda w: w.bn2(ms.Tensor(np.ones((2, 3, 4)))), E(V, "dimensions"))
P("forward", "Dropout eval is identity", lambda w: nn.Dropout(0.5).eval()(w.t), OK(lambda r, w: r is w.t))
P("forward", "Dropout on empty", lambda w: nn.Dropout(0.5)(ms.Tensor(np.zeros((0, 3)))),
  OK(lambda r, w: r.shape == (0, 3)))
P("forward", "Conv2d on 3-D input", lambda w: w.conv(ms.Tensor(np.ones((2, 5, 5)))), E(V, "(N, C, H, W)"))
P("forward", "MaxPool2d on 2-D input", lambda w: nn.MaxPool2d(2)(w.m), E(V, "(N, C, H, W)"))
P("forward", "Flatten on 0-d", lambda w: nn.Flatten()(ms.Tensor(1.0)), E(V, "start_dim"))
P("forward", "model(int Tensor)", lambda w: w.model.eval()(ms.Tensor(np.ones((5, 4), int))),
  OK(lambda r, w: r.dtype == np.float32, state=True))
P("module", "train(np.False_)", lambda w: w.model.train(np.bool_(False)),
  OK(lambda r, w: not w.model[1].training, state=True))
P("module", "train(None)", lambda w: w.model.train(None), E(T, "mode"))
P("module", "Parameter of ints", lambda w: nn.Parameter(np.array([1, 2])), E(T, "floating"))
P("module", "Parameter requires_grad=False", lambda w: nn.Parameter([1.0], requires_grad=False),
  OK(lambda r, w: not r.requires_grad))
P("module", "Parameter requires_grad='no'", lambda w: nn.Parameter([1.0], requires_grad="no"),
  E(T, "requires_grad"))


class NoSuper(nn.Module):
    def __init__(self):
        self.w = 1


P("module", "Module without super().__init__", lambda w: NoSuper(), E(AttributeError, "super().__init__()"))
P("module", "register_buffer name 3", lambda w: nn.ReLU().register_buffer(3, np.zeros(2)), E(T, "name"))
P("module", "register_buffer of a list", lambda w: nn.ReLU().register_buffer("b", [1, 2]), E(T, "array"))


def damaged(key, value):
    def call(w):
        state = dict(w.model.state_dict())
        state[key] = value
        w.model.load_state_dict(state)

    return call


P("state", "load_state_dict OrderedDict",
  lambda w: w.model.load_state_dict(collections.OrderedDict(w.model.state_dict())), OK())
P("state", "load_state_dict Tensor value", damaged("4.bias", ms.Tensor([0.1, 0.2, 0.3])),
  OK(lambda r, w: close(w.model[4].bias, [0.1, 0.2, 0.3]), state=True))
P("state", "load_state_dict nested list", damaged("4.bias", [0.1, 0.2, 0.3]),
  OK(lambda r, w: close(w.model[4].bias, [0.1, 0.2, 0.3]), state=True))
P("state", "load_state_dict counter 3.0", damaged("1.num_batches_tracked", np.array(3.0)),
  E(V, "num_batches_tracked"))
P("state", "load_state_dict float16 bias", damaged("4.bias", np.float16([1, 2, 3])),
  OK(lambda r, w: close(w.model[4].bias, [1, 2, 3]), state=True))
P("state", "load_state_dict -inf running_var", damaged("1.running_var", np.full(8, -INF)),
  E(V, "1.running_var"))
P("state", "load_state_dict a scalar for a vector", damaged("4.bias", 0.5), E(V, "4.bias"))
P("state", "load_state_dict a 0-size array", damaged("4.bias", np.zeros(0)), E(V, "4.bias"))
P("state", "load_state_dict uint64 counter", damaged("1.num_batches_tracked", np.array(5, np.uint64)),
  OK(lambda r, w: int(w.model[1].num_batches_tracked) == 5, state=True))
P("state", "load_state_dict {} on ReLU", lambda w: nn.ReLU().load_state_dict({}), OK())
P("state", "load_state_dict extra on ReLU", lambda w: nn.ReLU().load_state_dict({"a": 1}), E(KeyError, "'a'"))
P("state", "load_state_dict int key", lambda w: w.model.load_state_dict({**w.model.state_dict(), 0: 1}),
  E(KeyError, "0"))
P("models", "MLP activation 'RELU'", lambda w: models.MLP([4, 8, 2], activation="RELU"), OK(state=True))
P("models", "MLP sizes with int64", lambda w: models.MLP([4, np.int64(8), 2]), OK(state=True))
P("models", "MLP sizes True", lambda w: models.MLP([4, True, 2]), E(T, "sizes[1]"))
P("models", "MLP sizes 4.0", lambda w: models.MLP([4.0, 8, 2]), E(T, "sizes[0]"))
P("models", "MLP dropout float32", lambda w: models.MLP([4, 8, 2], dropout=np.float32(0.1)), OK(state=True))
P("models", "MLP nested sizes", lambda w: models.MLP([[4, 8]]), E(T, "sizes"))
P("models", "MLP sizes a set", lambda w: models.MLP({4, 8}), E(T, "sizes"))
P("models", "MLP sizes 2-D array", lambda w: models.MLP(np.array([[4, 8, 2]])), E(T, "sizes"))
P("models", "MLP sizes a dict", lambda w: models.MLP({4: 1, 8: 2}), E(T, "sizes"))
P("models", "CNN1d length int64", lambda w: models.CNN1d(length=np.int64(40)), OK(state=True))
P("models", "CNN2d image_size=3", lambda w: models.CNN2d(image_size=3), E(V, "image_size"))
P("models", "CNN1d channels=(0,)", lambda w: models.CNN1d(channels=(0,)), E(V, "channels[0]"))
P("models", "CNN1d channels='16'", lambda w: models.CNN1d(channels="16"), E(T, "channels"))
P("models", "CNN2d dropout=1.0", lambda w: models.CNN2d(image_size=8, dropout=1.0), E(V, "dropout"))

# ============================================================================================
# O: optimizers
# ============================================================================================


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(np.ones(2))


P("optim", "SGD(plain module)", lambda w: optim.SGD(Plain(), lr=0.1), E(T, "params"))
P("optim", "SGD(None)", lambda w: optim.SGD(None, lr=0.1), E(T, "params"))
P("optim", "SGD(bare 1-D Parameter)", lambda w: optim.SGD(w.q, lr=0.1), E(T, "params"))
P("optim", "SGD(bare matrix Parameter)", lambda w: optim.SGD(w.params[0], lr=0.1), E(T, "params"))
P("optim", "Adam(bare Parameter)", lambda w: optim.Adam(w.q), E(T, "params"))
P("optim", "SGD(5)", lambda w: optim.SGD(5, lr=0.1), E(T, "params"))
P("optim", "SGD(non-leaf)", lambda w: optim.SGD([w.q * 2], lr=0.1), E(T, "leaf"))
P("optim", "SGD lr float32", lambda w: optim.SGD([w.q], lr=np.float32(0.1)),
  OK(lambda r, w: r.lr == np.float32(0.1)))


def twice(w):
    gen = w.model.parameters()
    optim.SGD(gen, lr=0.1)
    return optim.SGD(gen, lr=0.1)


P("optim", "SGD on a generator consumed twice", twice, E(V, "empty"))
P("optim", "SGD nesterov with numpy", lambda w: optim.SGD([w.q], lr=0.1, momentum=np.float64(0.9),
                                                           nesterov=np.bool_(True)), OK())
P("optim", "SGD dampening=1.5", lambda w: optim.SGD([w.q], lr=0.1, momentum=0.9, dampening=1.5), OK())
P("optim", "SGD param groups", lambda w: optim.SGD([{"params": [w.q]}], lr=0.1), E(T, "parameter 0"))
P("optim", "SGD detached", lambda w: optim.SGD([w.q.detach()], lr=0.1), E(T, "requires_grad"))
P("optim", "SGD lr=None", lambda w: optim.SGD([w.q], lr=None), E(T, "lr"))
P("optim", "SGD lr='0.1'", lambda w: optim.SGD([w.q], lr="0.1"), E(T, "lr"))


def sgd_step(w):
    return w.sgd.step()


def grad_of(index, make):
    """Preparation: parameter ``index`` of the model gets the gradient ``make(parameter)``."""

    def prepare(w):
        w.params[index].grad = make(w.params[index])

    return prepare


P("step", "SGD grad of shape (1,)", sgd_step,
  E(V, "grad", prepare=grad_of(4, lambda p: np.ones(1, np.float32))))
P("step", "SGD grad of another shape", sgd_step,
  E(V, "grad", prepare=grad_of(4, lambda p: np.ones(5, np.float32))))
P("step", "SGD grad (8,4) -> (3,)", sgd_step,
  E(V, "grad", prepare=grad_of(0, lambda p: np.ones(3, np.float32))))
P("step", "SGD grad list", sgd_step, E(T, "grad", prepare=grad_of(4, lambda p: [0.1] * 3)))
P("step", "SGD grad Tensor", sgd_step, E(T, "grad", prepare=grad_of(4, lambda p: ms.Tensor(np.ones(3)))))
P("step", "SGD grad complex", sgd_step, E(T, "grad", prepare=grad_of(5, lambda p: np.ones(p.shape) * 1j)))
P("step", "SGD grad int", sgd_step, E(T, "grad", prepare=grad_of(5, lambda p: np.ones(p.shape, int))))
P("step", "SGD grad string array", sgd_step,
  E(T, "grad", prepare=grad_of(5, lambda p: np.array(["a"] * p.size).reshape(p.shape))))
P("step", "SGD grad float64 ok", lambda w: (grad_of(5, lambda p: np.ones(p.shape))(w), w.sgd.step()),
  OK(state=True))


def adam_step(w):
    return w.adam.step()


def adam_grad(value):
    def prepare(w):
        w.q.grad = value

    return prepare


P("step", "Adam grad (1,)", adam_step, E(V, "grad", prepare=adam_grad(np.ones(1, np.float32))))
P("step", "Adam grad (4,)", adam_step, E(V, "grad", prepare=adam_grad(np.ones(4, np.float32))))
P("step", "Adam grad list", adam_step, E(T, "grad", prepare=adam_grad([0.1, 0.2, 0.3])))
P("step", "Adam grad bool", adam_step, E(T, "grad", prepare=adam_grad(np.ones(3, bool))))
P("optim", "Adam eps=0", lambda w: optim.Adam([w.q], eps=0), E(V, "eps"))


def adam_eps0_zero_grad(w):
    p = nn.Parameter(np.array([1.0, 2.0]))
    opt = optim.Adam([p], eps=0.0)
    p.grad = np.array([0.0, 1.0], np.float32)
    opt.step()
    return p


P("optim", "Adam eps=0 then a zero gradient", adam_eps0_zero_grad, E(V, "eps"))
P("optim", "Adam betas 3 items", lambda w: optim.Adam([w.q], betas=(0.9, 0.99, 0.1)), E(V, "betas"))
P("optim", "Adam betas ndarray", lambda w: optim.Adam([w.q], betas=np.array([0.9, 0.99])), E(T, "betas"))
P("optim", "Adam betas (True, 0.9)", lambda w: optim.Adam([w.q], betas=(True, 0.9)), E(T, "betas[0]"))
P("optim", "Adam betas (0, 0)", lambda w: optim.Adam([w.q], betas=(0.0, 0.0)), OK())
P("optim", "Adam lr=0", lambda w: optim.Adam([w.q], lr=0), OK())
P("optim", "AdamW weight_decay=-0.1", lambda w: optim.AdamW([w.q], weight_decay=-0.1), E(V, "weight_decay"))
P("optim", "AdamW lr*wd=2", lambda w: optim.AdamW([w.q], lr=10, weight_decay=0.2), OK())
P("optim", "Adam betas=None", lambda w: optim.Adam([w.q], betas=None), E(T, "betas"))
P("optim", "Adam betas (0.9, -0.1)", lambda w: optim.Adam([w.q], betas=(0.9, -0.1)), E(V, "betas[1]"))


def adam_state(**changes):
    def call(w):
        state = w.adam.state_dict()
        for k, v in changes.items():
            state[k] = v(state) if callable(v) else v
        w.adam.load_state_dict(state)

    return call


P("ostate", "Adam exp_avg_sq negative", adam_state(exp_avg_sq=[-np.ones(3)]), E(V, "exp_avg_sq"))
P("ostate", "Adam max_exp_avg_sq negative", adam_state(max_exp_avg_sq=[-np.ones(3)]), E(V, "max_exp_avg_sq"))
P("ostate", "Adam exp_avg NaN", adam_state(exp_avg=[np.full(3, NAN)]), E(V, "exp_avg"))
P("ostate", "Adam exp_avg inf", adam_state(exp_avg=[np.array([0, INF, 0])]), E(V, "exp_avg"))
P("ostate", "Adam exp_avg complex", adam_state(exp_avg=[np.ones(3) * 1j]), E(T, "exp_avg"))
P("ostate", "Adam exp_avg strings", adam_state(exp_avg=[np.array(["a", "b", "c"])]), E(T, "exp_avg"))
P("ostate", "Adam exp_avg bools", adam_state(exp_avg=[np.ones(3, bool)]), E(T, "exp_avg"))
P("ostate", "Adam exp_avg 1e300", adam_state(exp_avg=[np.full(3, 1e300)]), E(V, "exp_avg"))
P("ostate", "Adam exp_avg a Tensor", adam_state(exp_avg=[ms.Tensor(np.ones(3))]),
  OK(lambda r, w: close(w.adam.exp_avg[0], [1, 1, 1]), state=True))
P("ostate", "Adam exp_avg nested list", adam_state(exp_avg=[[0.5, 0.5, 0.5]]),
  OK(lambda r, w: close(w.adam.exp_avg[0], [0.5] * 3), state=True))
P("ostate", "Adam steps [np.int64(3)]", adam_state(steps=[np.int64(3)]),
  OK(lambda r, w: w.adam.steps == [3] and type(w.adam.steps[0]) is int, state=True))
P("ostate", "Adam steps tuple", adam_state(steps=(1,)), OK(state=True))
P("ostate", "Adam steps [1.0]", adam_state(steps=[1.0]), E(T, "steps[0]"))
P("ostate", "Adam betas list", adam_state(betas=[0.9, 0.999]), OK(state=True))
P("ostate", "Adam amsgrad 'True'", adam_state(amsgrad="True"), E(T, "amsgrad"))
P("ostate", "Adam max_exp_avg_sq None", adam_state(max_exp_avg_sq=None), E(T, "max_exp_avg_sq"))
P("ostate", "Adam eps=0 via state", adam_state(eps=0.0), E(V, "eps"))
P("ostate", "Adam exp_avg wrong shape", adam_state(exp_avg=[np.ones(4)]), E(V, "exp_avg"))
P("ostate", "Adam steps negative huge", adam_state(steps=[-(2**70)]), E(V, "steps[0]"))


def sgd_state(**changes):
    def call(w):
        state = w.sgd.state_dict()
        for k, v in changes.items():
            state[k] = v(state) if callable(v) else v
        w.sgd.load_state_dict(state)

    return call


def bufs(fn):
    return lambda state: [fn(b) for b in state["momentum_buffers"]]


P("ostate", "SGD buffers NaN", sgd_state(momentum_buffers=bufs(lambda b: np.full(b.shape, NAN))),
  E(V, "momentum_buffers"))
P("ostate", "SGD buffers complex", sgd_state(momentum_buffers=bufs(lambda b: b * 1j)),
  E(T, "momentum_buffers"))
P("ostate", "SGD buffers strings", sgd_state(momentum_buffers=bufs(lambda b: np.full(b.shape, "x"))),
  E(T, "momentum_buffers"))
P("ostate", "SGD buffers nested lists", sgd_state(momentum_buffers=bufs(lambda b: b.tolist())),
  OK(state=True))
P("ostate", "SGD buffers tuple", sgd_state(momentum_buffers=lambda s: tuple(s["momentum_buffers"])),
  OK(state=True))
P("ostate", "SGD buffers objects", sgd_state(momentum_buffers=bufs(lambda b: np.full(b.shape, None))),
  E(T, "momentum_buffers"))
P("ostate", "SGD buffers int64", sgd_state(momentum_buffers=bufs(lambda b: np.zeros(b.shape, np.int64))),
  OK(state=True))
P("ostate", "SGD buffers 1e300", sgd_state(momentum_buffers=bufs(lambda b: np.full(b.shape, 1e300))),
  E(V, "momentum_buffers"))
P("ostate", "SGD nesterov with momentum 0 via state", sgd_state(nesterov=True, momentum=0.0),
  E(V, "nesterov"))
P("ostate", "SGD lr '0.1' via state", sgd_state(lr="0.1"), E(T, "lr"))
P("ostate", "SGD state None", lambda w: w.sgd.load_state_dict(None), E(T, "dict"))
P("ostate", "SGD buffers of a Tensor", sgd_state(momentum_buffers=bufs(lambda b: ms.Tensor(b))),
  OK(state=True))


def growing_schedule(w):
    w.sched = optim.StepLR(w.adam, step_size=1, gamma=1e200)  # snapshotted as the scheduler
    w.sched.step()  # lr 1e199: the next step's lr would be inf


P("sched", "StepLR step that overflows lr", lambda w: w.sched.step(), E(V, "lr", prepare=growing_schedule))
P("sched", "StepLR step_size int64", lambda w: optim.StepLR(w.sgd, step_size=np.int64(2)), OK(state=True))
P("sched", "StepLR step_size True", lambda w: optim.StepLR(w.sgd, step_size=True), E(T, "step_size"))
P("sched", "StepLR on object()", lambda w: optim.StepLR(object(), 2), E(T, "lr"))
P("sched", "StepLR gamma -0.5", lambda w: optim.StepLR(w.sgd, 2, gamma=-0.5), E(V, "gamma"))
P("sched", "Cosine T_max 2.5", lambda w: optim.CosineAnnealingLR(w.sgd, T_max=2.5), E(T, "T_max"))
P("sched", "Cosine eta_min above lr", lambda w: optim.CosineAnnealingLR(w.sgd, T_max=10, eta_min=1.0),
  OK(state=True))
P("sched", "Cosine numpy args",
  lambda w: optim.CosineAnnealingLR(w.sgd, T_max=np.int64(10), eta_min=np.float32(0)),

  OK(state=True))
P("sched", "Cosine eta_min nan", lambda w: optim.CosineAnnealingLR(w.sgd, T_max=10, eta_min=NAN),
  E(V, "eta_min"))


def sched_state(**changes):
    def call(w):
        state = w.sched.state_dict()
        state.update(changes)
        w.sched.load_state_dict(state)

    return call


P("sched", "StepLR state last_epoch=-1", sched_state(last_epoch=-1), E(V, "last_epoch"))
P("sched", "StepLR state base_lr=inf", sched_state(base_lr=INF), E(V, "base_lr"))
P("sched", "StepLR state gamma='0.5'", sched_state(gamma="0.5"), E(T, "gamma"))
P("sched", "StepLR state step_size=0", sched_state(step_size=0), E(V, "step_size"))
P("sched", "StepLR state None", lambda w: w.sched.load_state_dict(None), E(T, "dict"))
P("sched", "LRScheduler base class", lambda w: optim.LRScheduler(w.sgd), E(NotImplementedError, "get_lr"))


def set_lr(value):
    def call(w):
        w.sgd.lr = value

    return call


P("sched", "sgd.lr = -1", set_lr(-1), E(V, "lr"))
P("sched", "sgd.lr = np.float32(0.05)", set_lr(np.float32(0.05)),
  OK(lambda r, w: w.sgd.lr == np.float32(0.05), state=True))
P("sched", "sam.lr = 'x'", lambda w: setattr(w.sam, "lr", "x"), E(T, "lr"))


# ---- step misuse: closures -----------------------------------------------------------------
def raising_after_forward(w):
    def closure():
        w.model(w.x)  # Dropout draws, BatchNorm updates
        raise RuntimeError("data pipeline broke")

    return closure


P("closure", "SGD closure raising after the forward", lambda w: w.sgd.step(raising_after_forward(w)),
  E(RuntimeError, "data pipeline broke"))
P("closure", "Adam closure raising", lambda w: w.adam.step(lambda: (_ for _ in ()).throw(KeyError("batch"))),
  E(KeyError, "batch"))
P("closure", "SGD closure non-scalar", lambda w: w.sgd.step(lambda: w.model(w.x)), E(T, "closure"))
P("closure", "SGD closure float", lambda w: w.sgd.step(lambda: 1.0), E(T, "closure"))


def calls_backward(w):
    def closure():
        loss = w.closure()
        loss.backward()
        return loss

    return closure


P("closure", "SGD closure calls backward", lambda w: w.sgd.step(calls_backward(w)),
  E(RuntimeError, "backward"))
P("closure", "SGD closure=5", lambda w: w.sgd.step(5), E(T, "closure"))
P("closure", "SGD closure constant loss", lambda w: w.sgd.step(lambda: ms.Tensor(1.0)),
  E(RuntimeError, "closure"))
P("closure", "SGD closure loss off the graph (no_grad)",
  lambda w: w.sgd.step(ms.no_grad()(w.closure)), E(RuntimeError, "gradient"))
P("sam-closure", "SAM closure raising at the second pass", lambda w: w.sam.step(_raise_on_call(w, 2)),
  E(RuntimeError, "second pass"))
P("sam-closure", "XSAM closure raising at the 2nd pass", lambda w: w.xsam.step(_raise_on_call(w, 2)),
  E(RuntimeError, "second pass"))
P("sam-closure", "SAM closure non-scalar", lambda w: w.sam.step(lambda: w.model(w.x)), E(T, "closure"))
P("sam-closure", "SAM closure calls backward", lambda w: w.sam.step(calls_backward(w)),
  E(RuntimeError, "backward"))


def _raise_on_call(w, n):
    calls = []

    def closure():
        calls.append(1)
        loss = w.closure()
        if len(calls) >= n:
            raise RuntimeError("second pass broke")
        return loss

    return closure


def sam_m(m, **step):
    def call(w):
        opt = optim.SAM(optim.SGD(w.params, lr=0.1), m=m)
        return opt.step(lambda part=slice(None): F.cross_entropy(w.model(w.x[part]), w.y[part]), **step)

    return call


P("sam", "SAM m=2 batch_size=5", sam_m(2, batch_size=5), E(V, "batch_size"))
P("sam", "SAM m=2 no batch_size", sam_m(2), E(V, "batch_size"))
P("sam", "SAM m=None batch_size=0", sam_m(None, batch_size=0), E(V, "batch_size"))
P("sam", "SAM m=4 batch_size=2", sam_m(4, batch_size=2), E(V, "batch_size"))
P("sam", "SAM m=2 batch_size=4.0", sam_m(2, batch_size=4.0), E(T, "batch_size"))
P("sam", "SAM m=True", lambda w: optim.SAM(optim.SGD(w.params, lr=0.1), m=True), E(T, "m must"))
P("sam", "SAM m=0", lambda w: optim.SAM(optim.SGD(w.params, lr=0.1), m=0), E(V, "m must"))
P("sam", "SAM rho float32", lambda w: optim.SAM(optim.SGD(w.params, lr=0.1), rho=np.float32(0.05)), OK())
P("sam", "SAM base=[sgd]", lambda w: optim.SAM([w.sgd]), E(T, "base"))
P("sam", "SAM base=SGD class", lambda w: optim.SAM(optim.SGD), E(T, "base"))
P("sam", "SAM steps=0", lambda w: optim.SAM(w.sgd, steps=0), E(V, "steps"))
P("sam", "SAM eta=-1", lambda w: optim.SAM(w.sgd, eta=-1), E(V, "eta"))
P("sam", "XSAM m=2", lambda w: optim.XSAM(w.sgd, m=2), E(V, "m-sharpness"))
P("sam", "XSAM alpha_step tiny", lambda w: optim.XSAM(w.sgd, alpha_step=1e-4), E(V, "alpha_step"))
P("sam", "XSAM rho_max=-1", lambda w: optim.XSAM(w.sgd, rho_max=-1), E(V, "rho_max"))
P("sam", "XSAM search_every=-1", lambda w: optim.XSAM(w.sgd, search_every=-1), E(V, "search_every"))
P("sam", "XSAM alpha=nan", lambda w: optim.XSAM(w.sgd, alpha=NAN), E(V, "alpha"))
P("sam", "XSAM alpha_max=0", lambda w: optim.XSAM(w.sgd, alpha_max=0), E(V, "alpha_max"))
P("sam", "XSAM steps=1.5", lambda w: optim.XSAM(w.sgd, steps=1.5), E(T, "steps"))
P("sam", "XSAM step(None)", lambda w: w.xsam.step(None), E(T, "closure"))
P("sam", "SAM step(closure=3)", lambda w: w.sam.step(3), E(T, "closure"))


def sam_state(**changes):
    def call(w):
        state = w.sam.state_dict()
        state.update({k: (v(state) if callable(v) else v) for k, v in changes.items()})
        w.sam.load_state_dict(state)

    return call


P("sam", "SAM state: Adam base into SGD base", sam_state(base=lambda s: w_adam_state()),
  E(KeyError, "momentum_buffers"))
P("sam", "SAM state step_count=-1", sam_state(step_count=-1), E(V, "step_count"))
P("sam", "SAM state m=0", sam_state(m=0), E(V, "m must"))
P("sam", "SAM state rho=nan", sam_state(rho=NAN), E(V, "rho"))
P("sam", "SAM state base None", sam_state(base=None), E(T, "dict"))
P("sam", "SAM state base NaN buffers",
  lambda w: w.sam.load_state_dict({**w.sam.state_dict(), "base": {
      **w.sam.base.state_dict(), "momentum_buffers": [np.full(p.shape, NAN) for p in w.params]}}),
  E(V, "momentum_buffers"))
P("sam", "XSAM state alpha='1'", lambda w: w.xsam.load_state_dict({**w.xsam.state_dict(), "alpha": "1"}),
  E(T, "alpha"))


def w_adam_state():
    p = nn.Parameter(np.zeros(2))
    return optim.Adam([p]).state_dict()


# ============================================================================================
# S: serialization
# ============================================================================================
def roundtrip(obj, name="rt.npz"):
    def call(w):
        ms.save(obj, w.dir / name)
        back = ms.load(w.dir / name)
        (w.dir / name).unlink()
        return back

    return call


P("save", "np.float32 scalar round trip", roundtrip({"a": np.float32(1.5)}),
  OK(lambda r, w: float(r["a"]) == 1.5 and r["a"].dtype == np.float32))
P("save", "unicode file name", roundtrip({"a": 1}, "ck_é_😀.npz"), OK(lambda r, w: r == {"a": 1}))
P("save", "bytes path", lambda w: (ms.save({"a": 1}, bytes(w.dir / "b.npz")), ms.load(bytes(w.dir / "b.npz")),
                                   (w.dir / "b.npz").unlink())[1], OK(lambda r, w: r == {"a": 1}))
P("save", "key 70000 characters", lambda w: ms.save({"k" * 70000: 1}, w.dir / "long.npz"), E(V, "key"))
P("save", "nested structure", roundtrip({"a": {"b": {"c": [1, (2, None)]}}}),
  OK(lambda r, w: r == {"a": {"b": {"c": [1, (2, None)]}}}))
P("save", "0-d str array", roundtrip({"a": np.array("text")}), OK(lambda r, w: str(r["a"]) == "text"))
P("save", "Tensor value", roundtrip({"t": ms.Tensor([1.0], requires_grad=True)}),
  OK(lambda r, w: r["t"].tolist() == [1.0]))
P("save", "generator value", lambda w: ms.save({"g": (i for i in range(3))}, w.dir / "g.npz"), E(T, "'g'"))
P("save", "NaN float", roundtrip({"f": NAN}), OK(lambda r, w: math.isnan(r["f"])))
P("save", "float key", lambda w: ms.save({1.5: 2}, w.dir / "f.npz"), E(T, "keys must be strings"))
P("save", "path with trailing slash on a folder", lambda w: ms.save({"a": 1}, str(w.dir / "a_folder") + "/"),
  E(OSError, "a_folder"))
P("save", "key with / and %2F", roundtrip({"a/b": 1, "%2F": 2, "%": 3}),
  OK(lambda r, w: r == {"a/b": 1, "%2F": 2, "%": 3}))
P("save", "datetime64 array", roundtrip({"d": np.array(["2020-01-01"], dtype="datetime64[D]")}),
  OK(lambda r, w: r["d"].dtype.kind == "M"))
P("save", "(0, 3) array", roundtrip({"a": np.zeros((0, 3))}), OK(lambda r, w: r["a"].shape == (0, 3)))
P("save", "int64 extremes", roundtrip({"hi": 2**63 - 1, "lo": -(2**63)}),
  OK(lambda r, w: r == {"hi": 2**63 - 1, "lo": -(2**63)}))
P("save", "empty list at the top", roundtrip([]), OK(lambda r, w: r == []))
P("save", "None at the top", roundtrip(None), OK(lambda r, w: r is None))
P("save", "bool and np.bool_", roundtrip({"a": True, "b": np.bool_(False)}),
  OK(lambda r, w: r["a"] is True and not bool(r["b"])))
P("save", "complex array", roundtrip({"c": np.array([1 + 2j])}), OK(lambda r, w: r["c"][0] == 1 + 2j))
P("save", "object in a nested list", lambda w: ms.save({"a": [1, [object()]]}, w.dir / "o.npz"),
  E(T, "'a/1/0'"))
P("save", "set inside a tuple", lambda w: ms.save({"a": ({1},)}, w.dir / "o.npz"), E(T, "'a/0'"))
P("save", "ragged list value", lambda w: ms.save({"r": [[1, 2], [3]]}, w.dir / "o.npz"), OK(state=True))
P("save", "structured array", lambda w: ms.save({"s": np.zeros(2, dtype=[("a", "i4")])}, w.dir / "o.npz"),
  E(T, "'s'"))
P("save", "path None-like 0", lambda w: ms.save({"a": 1}, 0), E(T, "path"))


def appended_junk(w):
    path = w.dir / "junk.npz"
    ms.save({"a": np.arange(3)}, path)
    with open(path, "ab") as f:
        f.write(b"\x00junk" * 10)
    return ms.load(path)


P("load", "junk appended after save", appended_junk,
  OK(lambda r, w: r["a"].tolist() == [0, 1, 2], state=True))


def flipped_byte(w):  # preparation
    path = w.dir / "flip.npz"
    ms.save({"a": np.arange(1000, dtype=np.int64)}, path)
    raw = bytearray(path.read_bytes())
    i = raw.find(np.arange(1000, dtype=np.int64)[500:501].tobytes())
    raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))


P("load", "one byte flipped in an array", lambda w: ms.load(w.dir / "flip.npz"),
  E(CheckpointError, "flip.npz", prepare=flipped_byte))


def fifo(w):
    path = w.dir / "pipe.npz"
    os.mkfifo(path)
    try:
        return ms.load(path)
    finally:
        os.unlink(path)


P("load", "a FIFO", fifo, E((CheckpointError, OSError, V), "pipe.npz"))
P("load", "/dev/null", lambda w: ms.load("/dev/null"), E((CheckpointError, OSError, V), "/dev/null"))


def foreign_zip(w):
    import zipfile

    path = w.dir / "z.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    try:
        return ms.load(path)
    finally:
        path.unlink()


P("load", "a zip that is no npz", foreign_zip, E(CheckpointError, "z.npz"))


def npy_file(w):
    path = w.dir / "a.npy"
    np.save(path, np.zeros(3))
    try:
        return ms.load(path)
    finally:
        path.unlink()


P("load", "an .npy file", npy_file, E(CheckpointError, "a.npy"))
P("load", "Path('')", lambda w: ms.load(pathlib.Path("")), E(IsADirectoryError, "directory"))


def overwritten_by_text(w):  # preparation
    path = w.dir / "over.npz"
    ms.save({"a": 1}, path)
    path.write_text("PK\x03\x04 but not a zip")


P("load", "header PK but no zip", lambda w: ms.load(w.dir / "over.npz"),
  E(CheckpointError, "over.npz", prepare=overwritten_by_text))


def truncated_to_header(w):  # preparation
    path = w.dir / "t.npz"
    ms.save({"a": np.arange(100)}, path)
    path.write_bytes(path.read_bytes()[:30])


P("load", "truncated to 30 bytes", lambda w: ms.load(w.dir / "t.npz"),
  E(CheckpointError, "t.npz", prepare=truncated_to_header))

# ============================================================================================
# D: data
# ============================================================================================
X6, Y6 = np.linspace(0, 1, 12).reshape(6, 2), np.array([0, 1, 2, 0, 1, 2])
P("data", "DataLoader x NaN", lambda w: data.DataLoader(np.full((6, 2), NAN), Y6, 2), E(V, "x"))
P("data", "DataLoader x inf", lambda w: data.DataLoader(np.where(X6 > 0.5, INF, X6), Y6, 2), E(V, "x"))
P("data", "DataLoader x bool", lambda w: data.DataLoader(X6 > 0.5, Y6, 2), E(T, "x"))
P("data", "DataLoader x float16", lambda w: data.DataLoader(X6.astype(np.float16), Y6, 2), OK())
P("data", "DataLoader Tensors",
  lambda w: list(data.DataLoader(ms.Tensor(X6), ms.Tensor(Y6), 4, shuffle=False)),

  OK(lambda r, w: len(r) == 2))
P("data", "DataLoader lists", lambda w: data.DataLoader(X6.tolist(), Y6.tolist(), 2), OK())
P("data", "DataLoader negative labels", lambda w: data.DataLoader(X6, Y6 - 1, 2), E(V, "y"))
P("data", "DataLoader 1-D x", lambda w: list(data.DataLoader(np.arange(6.0), Y6, 3, shuffle=False)),
  OK(lambda r, w: r[0][0].shape == (3,)))
P("data", "DataLoader batch_size 10**9", lambda w: len(data.DataLoader(X6, Y6, 10**9)),
  OK(lambda r, w: r == 1))
P("data", "DataLoader uint64 labels", lambda w: data.DataLoader(X6, Y6.astype(np.uint64), 2), OK())
P("data", "DataLoader shuffle np.False_", lambda w: data.DataLoader(X6, Y6, 2, shuffle=np.bool_(False)), OK())
P("data", "DataLoader x complex", lambda w: data.DataLoader(X6 * 1j, Y6, 2), E(T, "x"))
P("data", "DataLoader x object", lambda w: data.DataLoader(np.array([None] * 6), Y6, 2), E(T, "x"))
P("data", "DataLoader y huge uint64", lambda w: data.DataLoader(X6, np.full(6, 2**64 - 1, np.uint64), 2),
  E(V, "y"))
P("data", "two_moons int64 n", lambda w: data.two_moons(np.int64(10)), OK(state=True))
P("data", "two_moons float32 noise", lambda w: data.two_moons(10, noise=np.float32(0.1)), OK(state=True))
P("data", "spirals classes 10**9", lambda w: data.spirals(10, classes=10**9), E(V, "classes"))
P("data", "spirals classes > n", lambda w: data.spirals(2, classes=3), E(V, "classes"))
P("data", "gaussian_blobs centers > n", lambda w: data.gaussian_blobs(2, centers=5), E(V, "centers"))
P("data", "gaussian_blobs centers 10**9", lambda w: data.gaussian_blobs(10, centers=10**9), E(V, "centers"))
P("data", "gaussian_blobs dim 3 vs 2-D centres",
  lambda w: data.gaussian_blobs(10, centers=[[0, 0], [1, 1]], dim=3),

  E(V, "dim"))
P("data", "gaussian_blobs std inf", lambda w: data.gaussian_blobs(10, centers=[[0, 0]], std=INF), E(V, "std"))
P("data", "gaussian_blobs 3-D centres, default dim",
  lambda w: data.gaussian_blobs(4, centers=np.zeros((2, 3))),

  OK(lambda r, w: r[0].shape == (4, 3), state=True))
P("data", "gaussian_blobs more centres than n", lambda w: data.gaussian_blobs(2, centers=np.zeros((3, 2))),
  E(V, "centers"))
P("data", "label noise seed 2**70", lambda w: data.add_label_noise(Y6, 0.5, 3, seed=2**70), OK())
P("data", "label noise list", lambda w: data.add_label_noise(Y6.tolist(), 0.5, 3, seed=0), OK())
P("data", "label noise uint8", lambda w: data.add_label_noise(Y6.astype(np.uint8), 0.5, 3, seed=0), OK())
P("data", "label noise fraction float32", lambda w: data.add_label_noise(Y6, np.float32(0.5), 3, seed=0),
  OK(lambda r, w: r[1].sum() == 3))
P("data", "label noise empty", lambda w: data.add_label_noise(np.array([], int), 0.5, 3), OK())
P("data", "label noise bools", lambda w: data.add_label_noise(Y6 > 0, 0.5, 2), E(V, "y must"))
P("data", "label noise num_classes 2.0", lambda w: data.add_label_noise(Y6, 0.5, 3.0), E(T, "num_classes"))
P("data", "load_toy int64 sizes", lambda w: data.load_toy("moons", n_train=np.int64(5), n_test=5), OK())
P("data", "load_toy seed 2**80", lambda w: data.load_toy("moons", 5, 5, seed=2**80), OK())
P("data", "load_toy ' moons '", lambda w: data.load_toy(" moons "), E(V, "name"))
P("data", "load_toy blobs noise inf", lambda w: data.load_toy("blobs", 5, 5, noise=INF), E(V, "noise"))
P("data", "load_digits validation=0.0", lambda w: data.load_digits(validation=0.0), OK())
P("data", "load_mnist1d validation=np.int64(10)", lambda w: data.load_mnist1d(validation=np.int64(10)),
  OK(lambda r, w: len(r.y_val) == 10))
P("data", "load_mnist1d validation='0.1'", lambda w: data.load_mnist1d(validation="0.1"), E(T, "validation"))
P("data", "load_mnist1d validation=nan", lambda w: data.load_mnist1d(validation=NAN), E(V, "validation"))

# ============================================================================================
# R: random state
# ============================================================================================
P("rng", "manual_seed(2**64)", lambda w: ms.manual_seed(2**64), OK(state=True))
P("rng", "manual_seed(10**100)", lambda w: ms.manual_seed(10**100), OK(state=True))
P("rng", "manual_seed(np.float64(3))", lambda w: ms.manual_seed(np.float64(3.0)), E(T, "seed"))
P("rng", "manual_seed(np.True_)", lambda w: ms.manual_seed(np.bool_(True)), E(T, "seed"))
P("rng", "manual_seed(np.array([3]))", lambda w: ms.manual_seed(np.array([3])), E(T, "seed"))
P("rng", "manual_seed(np.array(3))", lambda w: ms.manual_seed(np.array(3)), OK(state=True))
P("rng", "manual_seed(-0)", lambda w: ms.manual_seed(-0), OK(state=True))
P("rng", "manual_seed(-2**70)", lambda w: ms.manual_seed(-(2**70)), E(V, "seed"))
P("rng", "manual_seed(inf)", lambda w: ms.manual_seed(INF), E(T, "seed"))
P("rng", "set_rng_state(Tensor)", lambda w: ms.set_rng_state(ms.Tensor(ms.get_rng_state())), E(T, "state"))
P("rng", "set_rng_state(tuple)", lambda w: ms.set_rng_state(tuple(int(v) for v in ms.get_rng_state())), OK())
P("rng", "set_rng_state(list of np.uint64)", lambda w: ms.set_rng_state(list(ms.get_rng_state())), OK())
P("rng", "set_rng_state(float64)", lambda w: ms.set_rng_state(ms.get_rng_state().astype(float)),
  E(T, "state"))
P("rng", "set_rng_state((1, 6))", lambda w: ms.set_rng_state(ms.get_rng_state()[None]), E(T, "state"))
P("rng", "set_rng_state(list with 2**64)", lambda w: ms.set_rng_state([2**64, 0, 0, 1, 0, 0]), E(T, "state"))
P("rng", "set_rng_state(dict)", lambda w: ms.set_rng_state({"state": 1}), E(T, "state"))
P("rng", "set_rng_state(string)", lambda w: ms.set_rng_state("123456"), E(T, "state"))

# ============================================================================================
# G: gradcheck
# ============================================================================================
GX = lambda: ms.Tensor(np.array([0.5, -0.3]), dtype=np.float64, requires_grad=True)  # noqa: E731
P("gradcheck", "fn returns an int Tensor", lambda w: gradcheck(lambda x: x.argmax(), [GX()]),
  E(VT, "gradcheck"))
P("gradcheck", "eps float32",
  lambda w: gradcheck(lambda x: (x * x).sum(), [GX()], eps=np.float32(1e-4), rtol=1e-4),

  OK(lambda r, w: r is True))
P("gradcheck", "inputs a tuple", lambda w: gradcheck(lambda x: (x * x).sum(), (GX(),)),
  OK(lambda r, w: r is True))
P("gradcheck", "inputs with a float", lambda w: gradcheck(lambda x, y: x * y, [GX(), 3.0]), E(T, "inputs[1]"))
P("gradcheck", "input with NaN",
  lambda w: gradcheck(lambda x: x * x, [ms.Tensor([NAN, 1.0], dtype=np.float64, requires_grad=True)]),
  E((V, GradcheckError), "inputs[0]"))
P("gradcheck", "empty input", lambda w: gradcheck(lambda x: x * 2, [ms.Tensor(np.zeros(0), dtype=np.float64,
                                                                                  requires_grad=True)]),
  E(V, "inputs"))
P("gradcheck", "seed 2**70", lambda w: gradcheck(lambda x: x * x, [GX()], seed=2**70),
  OK(lambda r, w: r is True))
P("gradcheck", "atol inf", lambda w: gradcheck(lambda x: x * x, [GX()], atol=INF), E(V, "atol"))
P("gradcheck", "fn under no_grad", lambda w: gradcheck(ms.no_grad()(lambda x: x * x), [GX()]),
  E(VT, "gradcheck"))
P("gradcheck", "rtol True", lambda w: gradcheck(lambda x: x * x, [GX()], rtol=True), E(T, "rtol"))

# ============================================================================================
# H: sharpness
# ============================================================================================
P("sharp", "worst_case_loss rho nan", lambda w: sharpness.worst_case_loss(w.quad, [w.theta], rho=NAN),
  E(V, "rho"))
P("sharp", "worst_case_loss NaN loss",
  lambda w: sharpness.worst_case_loss(lambda: w.quad() * NAN, [w.theta], rho=0.1), E(V, "loss"))
P("sharp", "worst_case_loss inf loss",
  lambda w: sharpness.worst_case_loss(lambda: w.quad() * INF, [w.theta], rho=0.1), E(V, "loss"))
P("sharp", "worst_case_loss []", lambda w: sharpness.worst_case_loss(w.quad, [], rho=0.1), E(V, "empty"))
P("sharp", "worst_case_loss bare Tensor", lambda w: sharpness.worst_case_loss(w.quad, w.theta, rho=0.1),
  E(T, "params"))
P("sharp", "worst_case_loss steps int64",
  lambda w: sharpness.worst_case_loss(w.quad, [w.theta], 0.1, steps=np.int64(2)),

  OK(state=True))
P("sharp", "worst_case_loss non-leaf param", lambda w: sharpness.worst_case_loss(w.quad, [w.theta * 1], 0.1),
  E(T, "leaf"))
P("sharp", "worst_case_loss closure non-scalar",
  lambda w: sharpness.worst_case_loss(lambda: w.theta * 2, [w.theta], rho=0.1), E(T, "closure"))


def slice1(**kw):
    def call(w):
        args = dict(closure=w.quad, params=[w.theta], direction=[np.ones(2)], alphas=[0.0, 0.5]) | kw
        return sharpness.loss_slice_1d(**args)

    return call


P("slice", "loss_slice_1d alphas None", slice1(alphas=None), E(T, "alphas"))
P("slice", "loss_slice_1d alphas strings", slice1(alphas=["a"]), E(T, "alphas"))
P("slice", "loss_slice_1d alphas NaN", slice1(alphas=[0.0, NAN]), E(V, "alphas"))
P("slice", "loss_slice_1d alphas inf", slice1(alphas=[INF]), E(V, "alphas"))
P("slice", "loss_slice_1d alphas True", slice1(alphas=True), E(T, "alphas"))
P("slice", "loss_slice_1d alphas complex", slice1(alphas=[1 + 1j]), E(T, "alphas"))
P("slice", "loss_slice_1d alphas []", slice1(alphas=[]), OK(lambda r, w: r.shape == (0,)))
P("slice", "loss_slice_1d alphas scalar", slice1(alphas=0.5), OK(lambda r, w: r.shape == (1,)))
P("slice", "loss_slice_1d alphas int array", slice1(alphas=np.arange(3)), OK(lambda r, w: r.shape == (3,)))
P("slice", "loss_slice_1d direction NaN", slice1(direction=[np.full(2, NAN)]), E(V, "direction"))
P("slice", "loss_slice_1d direction strings", slice1(direction=[["a", "b"]]), E(T, "direction"))
P("slice", "loss_slice_1d direction complex", slice1(direction=[np.ones(2) * 1j]), E(T, "direction"))
P("slice", "loss_slice_1d direction None", slice1(direction=[None]), E(T, "direction"))
P("slice", "loss_slice_1d direction a Tensor", slice1(direction=[ms.Tensor([1.0, 1.0])]), OK())
def slice_backward(w):
    def closure():
        loss = w.quad()
        loss.backward()
        return loss

    return sharpness.loss_slice_1d(closure, [w.theta], [np.ones(2)], [0.0])


P("slice", "loss_slice_1d closure calls backward", slice_backward, E(RuntimeError, "closure"))


def slice2(**kw):
    def call(w):
        args = dict(closure=w.quad, params=[w.theta], d1=[np.ones(2)], d2=[np.array([1.0, -1.0])],
                    alphas=[0.0], betas=[0.0, 1.0]) | kw
        return sharpness.loss_slice_2d(**args)

    return call


P("slice", "loss_slice_2d betas None", slice2(betas=None), E(T, "betas"))
P("slice", "loss_slice_2d alphas NaN", slice2(alphas=[NAN]), E(V, "alphas"))
P("slice", "loss_slice_2d d2 NaN", slice2(d2=[np.array([NAN, 0.0])]), E(V, "d2"))
P("slice", "loss_slice_2d d1 wrong count", slice2(d1=[np.ones(2), np.ones(2)]), E(V, "d1"))
P("slice", "circle_losses rho 0",
  lambda w: sharpness.circle_losses(w.quad, [w.theta], [np.ones(2)], [np.ones(2)], 0),

  E(V, "rho"))
P("slice", "circle_losses num 0",
  lambda w: sharpness.circle_losses(w.quad, [w.theta], [np.ones(2)], [np.ones(2)], 0.1,
                                                                     num=0), E(V, "num"))
P("slice", "circle_losses d1 inf", lambda w: sharpness.circle_losses(w.quad, [w.theta], [np.array([INF, 0])],
                                                                      [np.ones(2)], 0.1, num=4), E(V, "d1"))
P("sharp", "grad_plane NaN loss", lambda w: sharpness.grad_plane(lambda: w.quad() * NAN, [w.theta], 0.1),
  E(V, "loss"))
P("sharp", "grad_plane rho '0.1'", lambda w: sharpness.grad_plane(w.quad, [w.theta], "0.1"), E(T, "rho"))
P("sharp", "hvp vector NaN",
  lambda w: sharpness.hessian_vector_product(w.quad, [w.theta], [np.array([NAN, 1.0])]),

  E(V, "vector"))
P("sharp", "hvp eps 0", lambda w: sharpness.hessian_vector_product(w.quad, [w.theta], [np.ones(2)], eps=0),
  E(V, "eps"))
P("sharp", "hvp zero vector", lambda w: sharpness.hessian_vector_product(w.quad, [w.theta], [np.zeros(2)]),
  OK(lambda r, w: r[0].tolist() == [0.0, 0.0]))
P("sharp", "hvp vector count", lambda w: sharpness.hessian_vector_product(w.quad, [w.theta], []),
  E(V, "vector"))
P("sharp", "top eigenvalue iters int64",
  lambda w: sharpness.top_hessian_eigenvalue(w.quad, [w.theta], iters=np.int64(20)),

  OK(lambda r, w: abs(r - 2.0) < 1e-4, state=True))
P("sharp", "top eigenvalue NaN loss",
  lambda w: sharpness.top_hessian_eigenvalue(lambda: w.quad() * NAN, [w.theta],
                                                                                 iters=3), E(V, "loss"))
P("sharp", "top eigenvalue return_vector 1", lambda w: sharpness.top_hessian_eigenvalue(w.quad, [w.theta],
                                                                                        return_vector=1),
  E(T, "return_vector"))
P("sharp", "cosine_to_maximum [] []", lambda w: sharpness.cosine_to_maximum([], []), E(V, "direction"))
P("sharp", "cosine_to_maximum NaN",
  lambda w: sharpness.cosine_to_maximum([np.array([NAN, 1.0])], [np.ones(2)]),

  E(V, "direction"))
P("sharp", "cosine_to_maximum strings", lambda w: sharpness.cosine_to_maximum([["a", "b"]], [np.ones(2)]),
  E(T, "direction"))
P("sharp", "cosine_to_maximum zero vectors",
  lambda w: sharpness.cosine_to_maximum([np.zeros(2)], [np.zeros(2)]),

  OK(lambda r, w: r == 0.0))
P("sharp", "filter_normalized_direction(bare Tensor)",
  lambda w: sharpness.filter_normalized_direction(w.params[0]),

  E(T, "params"))
P("sharp", "filter_normalized_direction([ndarray])",
  lambda w: sharpness.filter_normalized_direction([np.ones((2, 2))]),

  E(T, "parameter 0"))
P("sharp", "filter_normalized_direction([])", lambda w: sharpness.filter_normalized_direction([]),
  E(V, "empty"))

# ============================================================================================
# L: landscapes
# ============================================================================================
P("land", "Quadratic [[nan]]", lambda w: Quadratic([[NAN]]), E(V, "finite"))
P("land", "Quadratic [[inf]]", lambda w: Quadratic([[INF]]), E(V, "finite"))
P("land", "Quadratic (0, 0)", lambda w: Quadratic(np.zeros((0, 0))), E(V, "hessian"))
P("land", "Quadratic 'ab'", lambda w: Quadratic("ab"), E(T, "hessian"))
P("land", "Quadratic centre NaN", lambda w: Quadratic(np.eye(2), center=[NAN, 0]), E(V, "center"))
P("land", "Quadratic complex hessian", lambda w: Quadratic(np.eye(2) * 1j), E(T, "hessian"))
P("land", "from_eigenvalues seed -1", lambda w: Quadratic.from_eigenvalues([1.0], seed=-1), E(V, "seed"))
P("land", "from_eigenvalues seed 1.5", lambda w: Quadratic.from_eigenvalues([1.0], seed=1.5), E(T, "seed"))
P("land", "from_eigenvalues NaN", lambda w: Quadratic.from_eigenvalues([NAN]), E(V, "eigenvalues"))
P("land", "from_eigenvalues []", lambda w: Quadratic.from_eigenvalues([]), E(V, "eigenvalues"))
P("land", "Stochastic noise True", lambda w: Stochastic(Quadratic(np.eye(2)), noise_std=True),
  E(T, "noise_std"))
P("land", "Stochastic noise inf", lambda w: Stochastic(Quadratic(np.eye(2)), noise_std=INF),
  E(V, "noise_std"))
P("land", "Stochastic noise float32", lambda w: Stochastic(Quadratic(np.eye(2)), noise_std=np.float32(0.1)),
  OK())
P("land", "Stochastic kind None", lambda w: Stochastic(Quadratic(np.eye(2)), 0.1, kind=None), E(V, "kind"))
SGD_MAKE = lambda p: optim.SGD(p, lr=0.1)  # noqa: E731
P("land", "run_optimizer start NaN", lambda w: run_optimizer(Quadratic(np.eye(2)), SGD_MAKE, [NAN, 0], 2),
  E(V, "start"))
P("land", "run_optimizer steps True", lambda w: run_optimizer(Quadratic(np.eye(2)), SGD_MAKE, [0, 0], True),
  E(V, "steps"))
P("land", "run_optimizer dtype 'banana'", lambda w: run_optimizer(Quadratic(np.eye(2)), SGD_MAKE, [0, 0], 2,
                                                                   dtype="banana"), E(T, "dtype"))
P("land", "run_optimizer dtype int64", lambda w: run_optimizer(Quadratic(np.eye(2)), SGD_MAKE, [0, 0], 2,
                                                                dtype=np.int64), E(T, "floating"))
P("land", "run_optimizer start strings",
  lambda w: run_optimizer(Quadratic(np.eye(2)), SGD_MAKE, ["a", "b"], 2),

  E(T, "start"))
P("land", "hessian eps 0", lambda w: Quadratic(np.eye(2)).hessian([0, 0], eps=0), E(V, "eps"))
P("land", "hessian eps nan", lambda w: Quadratic(np.eye(2)).hessian([0, 0], eps=NAN), E(V, "eps"))
P("land", "value wrong dim", lambda w: Quadratic(np.eye(2)).value([0, 0, 0]), E(V, "shape (2,)"))
P("land", "value of 'ab'", lambda w: Quadratic(np.eye(2)).value("ab"), E(T, "point"))
P("land", "SharpFlat2D sharp_width 0", lambda w: SharpFlat2D(sharp_width=0), E(V, "sharp_width"))
P("land", "SharpFlat2D sharp_width '0.2'", lambda w: SharpFlat2D(sharp_width="0.2"), E(T, "sharp_width"))
P("land", "SharpFlat2D sharp_width -0.2", lambda w: SharpFlat2D(sharp_width=-0.2), E(V, "sharp_width"))
P("land", "SharpFlat2D bowl nan", lambda w: SharpFlat2D(bowl=NAN), E(V, "bowl"))
P("land", "SharpFlat2D sharp_center (0,)", lambda w: SharpFlat2D(sharp_center=(0,)), E(V, "sharp_center"))
P("land", "SharpFlat2D flat_depth True", lambda w: SharpFlat2D(flat_depth=True), E(T, "flat_depth"))
P("land", "grid resolution 0", lambda w: SharpFlat2D().grid(resolution=0), E(V, "resolution"))
P("land", "minimum('nope')", lambda w: Quadratic(np.eye(2)).minimum("nope"), E(KeyError, "nope"))
P("land", "GaussianBumps width inf", lambda w: GaussianBumps([[0, 0]], [1.0], [INF]), E(V, "widths"))
P("land", "GaussianBumps heights strings", lambda w: GaussianBumps([[0, 0]], ["1.0"], [1.0]), E(T, "heights"))

# ============================================================================================
# B: backend
# ============================================================================================
P("backend", "use('NUMPY')", lambda w: backend.use("NUMPY"), OK(lambda r, w: backend.name == "numpy"))
P("backend", "use(' numpy')", lambda w: backend.use(" numpy"), E(V, "backend"))
P("backend", "use(np.str_)", lambda w: backend.use(np.str_("numpy")), OK())
P("backend", "use(b'numpy')", lambda w: backend.use(b"numpy"), E(T, "backend"))


def environment(value, hide=False):
    def call(w):
        saved = os.environ.get("MINISAM_BACKEND")
        saved_cupy = sys.modules.get("cupy", "absent")
        os.environ["MINISAM_BACKEND"] = value
        if hide:
            sys.modules["cupy"] = None
        try:
            backend._read_environment()
            return ms.Tensor([1.0]).dtype, backend.name
        finally:
            if saved is None:
                os.environ.pop("MINISAM_BACKEND", None)
            else:
                os.environ["MINISAM_BACKEND"] = saved
            if hide:
                if saved_cupy == "absent":
                    sys.modules.pop("cupy", None)
                else:
                    sys.modules["cupy"] = saved_cupy
            backend.use("numpy")

    return call


P("backend", "MINISAM_BACKEND=tpu", environment("tpu"), E(backend.BackendError, "MINISAM_BACKEND"))
P("backend", "MINISAM_BACKEND=''", environment(""), OK(lambda r, w: r[1] == "numpy"))
P("backend", "MINISAM_BACKEND='NumPy '", environment("NumPy "), OK(lambda r, w: r[1] == "numpy"))
P("backend", "MINISAM_BACKEND=cupy without CuPy", environment("cupy", hide=True),
  E(backend.BackendError, "CuPy"))
P("backend", "MINISAM_BACKEND=' '", environment(" "), OK(lambda r, w: r[1] == "numpy"))
P("backend", "MINISAM_BACKEND=numpy,cupy", environment("numpy,cupy"), E(backend.BackendError, "numpy,cupy"))
P("backend", "error_line multi-line", lambda w: backend.error_line(ValueError("a\n  b")),
  OK(lambda r, w: r == "error: a b"))


# fmt: on


# ============================================================================================
# the tests: one per rule, each over its cases
# ============================================================================================
class Hang(Exception):
    pass


def _hang(*_):
    raise Hang("the call did not return within 20 s")


def run(w, call, expect):
    """Run one case: refused by name with nothing changed, or accepted with the right answer. A
    call that does not return within 20 s fails (three of the first probes hung)."""
    alarm = hasattr(signal, "SIGALRM")
    if alarm:
        previous = signal.signal(signal.SIGALRM, _hang)
        signal.alarm(20)
    try:
        if isinstance(expect, OK):
            result = call(w)
            assert expect.check(result, w), f"wrong answer: {result!r}"
            return
        if expect.prepare is not None:
            expect.prepare(w)
        before = snap(w)
        with pytest.raises(expect.types) as info:
            call(w)
        assert expect.text in str(info.value), f"the message does not mention {expect.text!r}: {info.value}"
        assert_nothing_changed(before, snap(w))
    finally:
        if alarm:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)


def cases(*kinds):
    chosen = [pytest.param(call, expect, id=id) for kind, id, call, expect in CASES if kind in kinds]
    assert chosen, kinds
    return chosen


@pytest.mark.parametrize("call, expect", cases("ops"))
def test_an_operand_is_a_tensor_a_number_or_numbers_never_none_read_as_nan(held, call, expect):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("tensor", "dtype"))
def test_a_tensor_holds_numbers_and_a_dtype_conversion_never_changes_a_value(held, call, expect):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("creation", "reduce", "shape", "index", "len", "join"))
def test_shapes_axes_and_flags_are_integers_and_bools_and_a_mean_of_nothing_is_an_error(held, call, expect):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("backward", "nograd"))
def test_backward_and_no_grad_refuse_what_they_cannot_use_by_name(held, call, expect):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("loss", "softmax", "act", "linear", "conv", "pool"))
def test_functional_ops_take_tensors_refuse_empty_batches_and_compute_integers_in_floating_point(
    held, call, expect
):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("bn", "dropout"))
def test_batch_norm_and_dropout_check_their_settings_before_touching_stats_or_the_stream(held, call, expect):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("layer", "forward", "module", "state", "models"))
def test_layers_models_and_their_state_refuse_bad_arguments_by_name(held, call, expect):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("optim"))
def test_optimizers_take_an_iterable_of_leaf_tensors_and_checked_settings(held, call, expect):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("step"))
def test_a_step_refuses_a_malformed_gradient_before_changing_anything(held, call, expect):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("closure"))
def test_a_failed_closure_leaves_gradients_statistics_and_the_random_stream_as_they_were(held, call, expect):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("sam-closure"))
def test_a_failed_closure_in_sam_or_xsam_leaves_gradients_and_the_random_stream_as_they_were(
    held, call, expect
):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("ostate", "sched", "sam"))
def test_checkpoints_and_schedules_of_optimizers_hold_finite_real_values_and_refuse_by_name(
    held, call, expect
):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("save", "load"))
def test_checkpoint_files_refuse_pipes_long_keys_and_damage_by_name(held, call, expect):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("data"))
def test_data_helpers_refuse_non_finite_inputs_bad_labels_and_empty_classes(held, call, expect):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("rng"))
def test_seeds_and_random_states_are_checked_by_name(held, call, expect):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("gradcheck"))
def test_gradcheck_refuses_what_it_cannot_check(held, call, expect):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("sharp", "slice"))
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the cases that multiply a loss by inf
def test_measurements_refuse_non_finite_directions_grids_and_losses_and_draw_nothing_on_error(
    held, call, expect
):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("land"))
def test_landscapes_check_every_argument_by_name(held, call, expect):
    run(held, call, expect)


@pytest.mark.parametrize("call, expect", cases("backend"))
def test_backend_selection_refuses_by_name_and_accepts_any_spelling_of_numpy(held, call, expect):
    run(held, call, expect)


def test_the_held_out_set_holds_several_hundred_cases_each_named_once():
    assert len(CASES) > 500
    assert len({id for _, id, _, _ in CASES}) == len(CASES)
    refused = sum(isinstance(expect, E) for *_, expect in CASES)
    assert refused > 350, refused
