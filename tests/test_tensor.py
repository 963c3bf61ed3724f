"""The Tensor: every op's value against NumPy and its gradient against central differences.

One catalogue of ops (``OPS``) drives the value, gradient and dtype tests. Each entry
names the op, gives it as a function of Tensors, the input shapes, how inputs are
sampled (away from kinks and outside the op's domain boundary), and -- where the same
expression does not already work on plain NumPy arrays -- a NumPy reference.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import minisam as ms
from minisam.gradcheck import gradcheck


# ---- how inputs are drawn ----------------------------------------------------------------
def anywhere(r, shape):
    return r.uniform(-1, 1, shape)


def away_from_zero(r, shape):
    """|x| in [0.2, 1.2]: keeps relu, abs and 1/x away from their kink or pole at 0."""
    return r.choice([-1.0, 1.0], shape) * r.uniform(0.2, 1.2, shape)


def positive(r, shape):
    return r.uniform(0.5, 2.0, shape)


@dataclass
class Op:
    name: str
    fn: Callable
    shapes: list
    sample: Callable = anywhere
    reference: Callable | None = None  # NumPy version; None: ``fn`` itself works on ndarrays

    def __str__(self):
        return self.name


OPS = [
    # arithmetic, tensor with tensor
    Op("add", lambda a, b: a + b, [(3, 4), (3, 4)]),
    Op("sub", lambda a, b: a - b, [(3, 4), (3, 4)]),
    Op("mul", lambda a, b: a * b, [(3, 4), (3, 4)]),
    Op("div", lambda a, b: a / b, [(3, 4), (3, 4)], away_from_zero),
    Op("neg", lambda a: -a, [(3, 4)]),
    # arithmetic with Python numbers, both sides
    Op("add_scalar", lambda a: a + 2.5, [(3, 4)]),
    Op("radd_scalar", lambda a: 2.5 + a, [(3, 4)]),
    Op("sub_scalar", lambda a: a - 2.5, [(3, 4)]),
    Op("rsub_scalar", lambda a: 2.5 - a, [(3, 4)]),
    Op("mul_scalar", lambda a: a * -1.5, [(3, 4)]),
    Op("rmul_scalar", lambda a: -1.5 * a, [(3, 4)]),
    Op("div_scalar", lambda a: a / 4.0, [(3, 4)]),
    Op("rdiv_scalar", lambda a: 4.0 / a, [(3, 4)], away_from_zero),
    Op("pow_int", lambda a: a**3, [(3, 4)]),
    Op("pow_float", lambda a: a**0.5, [(3, 4)], positive),
    Op("pow_negative", lambda a: a**-2, [(3, 4)], away_from_zero),
    # broadcasting
    Op("add_row", lambda a, b: a + b, [(3, 4), (4,)]),
    Op("sub_column", lambda a, b: a - b, [(3, 4), (3, 1)]),
    Op("mul_outer", lambda a, b: a * b, [(3, 1), (1, 4)]),
    Op("div_new_axes", lambda a, b: a / b, [(2, 3, 4), (3, 1)], away_from_zero),
    Op("mul_scalar_tensor", lambda a, b: a * b, [(3, 4), ()]),
    # NumPy arrays on the left defer to the Tensor's operators
    Op("rmul_array", lambda a: np.full(4, 2.0) * a, [(3, 4)]),
    Op("rsub_array", lambda a: np.arange(4.0) - a, [(3, 4)]),
    Op("rmatmul_array", lambda a: np.ones((2, 3)) @ a, [(3, 4)]),
    # matmul: 1-D, 2-D, batched, broadcast batches
    Op("matmul_vec_vec", lambda a, b: a @ b, [(4,), (4,)]),
    Op("matmul_vec_mat", lambda a, b: a @ b, [(4,), (4, 3)]),
    Op("matmul_mat_vec", lambda a, b: a @ b, [(3, 4), (4,)]),
    Op("matmul_mat_mat", lambda a, b: a @ b, [(3, 4), (4, 2)]),
    Op("matmul_batch_mat", lambda a, b: a @ b, [(2, 3, 4), (4, 2)]),
    Op("matmul_mat_batch", lambda a, b: a @ b, [(3, 4), (2, 4, 2)]),
    Op("matmul_broadcast_batches", lambda a, b: a @ b, [(2, 1, 3, 4), (3, 4, 2)]),
    Op("matmul_vec_batch", lambda a, b: a @ b, [(4,), (2, 4, 3)]),
    Op("matmul_batch_vec", lambda a, b: a @ b, [(2, 3, 4), (4,)]),
    # reductions
    Op("sum_all", lambda a: a.sum(), [(3, 4)]),
    Op("sum_axis0", lambda a: a.sum(axis=0), [(3, 4)]),
    Op("sum_axes_keepdims", lambda a: a.sum(axis=(0, 2), keepdims=True), [(2, 3, 4)]),
    Op("sum_negative_axis", lambda a: a.sum(axis=-1), [(2, 3, 4)]),
    Op("mean_all", lambda a: a.mean(), [(3, 4)]),
    Op("mean_axis1", lambda a: a.mean(axis=1), [(3, 4)]),
    Op("mean_axes_keepdims", lambda a: a.mean(axis=(1, 2), keepdims=True), [(2, 3, 4)]),
    Op("max_all", lambda a: a.max(), [(3, 4)]),
    Op("max_axis1", lambda a: a.max(axis=1), [(3, 4)]),
    Op("max_axis0_keepdims", lambda a: a.max(axis=0, keepdims=True), [(2, 3, 4)]),
    # the same reductions spelled as in PyTorch (dim=, keepdim=)
    Op("sum_dim", lambda a: a.sum(dim=1), [(3, 4)], reference=lambda a: a.sum(axis=1)),
    Op(
        "mean_dim_keepdim",
        lambda a: a.mean(dim=(0, 2), keepdim=True),
        [(2, 3, 4)],
        reference=lambda a: a.mean(axis=(0, 2), keepdims=True),
    ),
    Op("max_dim", lambda a: a.max(dim=-1), [(3, 4)], reference=lambda a: a.max(axis=-1)),
    # shape
    Op("reshape", lambda a: a.reshape(4, 3), [(3, 4)]),
    Op("reshape_tuple_infer", lambda a: a.reshape((2, -1)), [(2, 3, 4)]),
    Op("transpose", lambda a: a.transpose(), [(3, 4)]),
    Op("transpose_axes", lambda a: a.transpose(2, 0, 1), [(2, 3, 4)]),
    Op("T", lambda a: a.T, [(3, 4)]),
    # indexing
    Op("index_int", lambda a: a[1], [(3, 4)]),
    Op("index_slices", lambda a: a[:, 1:3], [(3, 4)]),
    Op("index_steps", lambda a: a[::2, ::-1], [(3, 4)]),
    Op("index_newaxis_ellipsis", lambda a: a[None, ..., 0], [(2, 3, 4)]),
    Op("index_list_repeats", lambda a: a[[0, 2, 0, 0]], [(3, 4)]),
    Op("index_arrays_repeats", lambda a: a[np.array([1, 1, 2]), np.array([0, 0, 3])], [(3, 4)]),
    Op("index_slice_and_list", lambda a: a[:, [3, 0, 3]], [(3, 4)]),
    Op(
        "index_int_tensor",
        lambda a: a[ms.Tensor(np.array([2, 0, 2]))],
        [(3, 4)],
        reference=lambda a: a[np.array([2, 0, 2])],
    ),
    Op("index_2d_array_repeats", lambda a: a[..., np.array([[0, 1], [1, 1]])], [(3, 4)]),
    Op("index_boolean_mask", lambda a: a[np.tile([True, False, True, True], (3, 1))], [(3, 4)]),
    # joining
    Op(
        "cat_axis0",
        lambda a, b: ms.cat([a, b]),
        [(2, 3), (4, 3)],
        reference=lambda a, b: np.concatenate([a, b]),
    ),
    Op(
        "cat_axis_last",
        lambda a, b, c: ms.cat([a, b, c], axis=-1),
        [(2, 1), (2, 3), (2, 2)],
        reference=lambda a, b, c: np.concatenate([a, b, c], axis=-1),
    ),
    Op(
        "stack_axis0",
        lambda a, b: ms.stack([a, b]),
        [(2, 3), (2, 3)],
        reference=lambda a, b: np.stack([a, b]),
    ),
    Op(
        "stack_axis_last",
        lambda a, b: ms.stack([a, b], axis=-1),
        [(2, 3), (2, 3)],
        reference=lambda a, b: np.stack([a, b], axis=-1),
    ),
    # element-wise functions
    Op("exp", lambda a: a.exp(), [(3, 4)], reference=np.exp),
    Op("log", lambda a: (a + 3).log(), [(3, 4)], reference=lambda a: np.log(a + 3)),
    Op("tanh", lambda a: a.tanh(), [(3, 4)], reference=np.tanh),
    Op("relu", lambda a: a.relu(), [(3, 4)], away_from_zero, reference=lambda a: np.maximum(a, 0)),
    Op("maximum", lambda a, b: ms.maximum(a, b), [(3, 4), (3, 4)], reference=np.maximum),
    Op("maximum_broadcast", lambda a, b: ms.maximum(a, b), [(3, 4), (4,)], reference=np.maximum),
    Op(
        "maximum_scalar",
        lambda a: ms.maximum(a, 0.1),
        [(3, 4)],
        away_from_zero,
        reference=lambda a: np.maximum(a, 0.1),
    ),
    # a composite, so ops are also checked in combination
    Op(
        "composite",
        lambda a, b: ((a @ b).tanh() * 2 - (a.sum(0) + 4).log().sum()).mean(),
        [(3, 4), (4, 2)],
        reference=lambda a, b: (np.tanh(a @ b) * 2 - np.log(a.sum(0) + 4).sum()).mean(),
    ),
]


# Central differences in float64: truncation error grows like eps², rounding error like
# 1e-16/eps; eps = 1e-5 sits near the best balance, (1e-16)^(1/3).
EPS = 1e-5


def make_inputs(op, seed=0, dtype=np.float64):
    r = np.random.default_rng(seed)
    arrays = [op.sample(r, shape) for shape in op.shapes]
    return arrays, [ms.Tensor(a, requires_grad=True, dtype=dtype) for a in arrays]


# ---- the catalogue: values, gradients, dtypes ---------------------------------------------
@pytest.mark.parametrize("op", OPS, ids=str)
def test_value_matches_numpy(op, float64):
    arrays, tensors = make_inputs(op)
    expected = (op.reference or op.fn)(*arrays)
    out = op.fn(*tensors)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", OPS, ids=str)
def test_gradient_matches_central_differences(op, float64):
    _, tensors = make_inputs(op)
    assert gradcheck(op.fn, tensors, eps=EPS, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("op", OPS, ids=str)
def test_float32_in_float32_out_and_float32_grads(op):
    _, tensors = make_inputs(op, dtype=np.float32)
    out = op.fn(*tensors)
    assert out.dtype == np.float32, f"{op.name} returned {out.dtype}"
    out.sum().backward()
    for n, t in enumerate(tensors):
        assert t.grad is not None and t.grad.dtype == np.float32, f"{op.name}: input {n}"


# ---- broadcasting ------------------------------------------------------------------------
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "maximum": lambda a, b: ms.maximum(a, b),
}


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("b_shape", [(4,), (1, 4), (3, 1), ()])
def test_broadcast_gradients_then_again_after_summing_an_operand(name, b_shape, float64):
    fn = BINARY[name]
    r = np.random.default_rng(1)
    a = ms.Tensor(away_from_zero(r, (2, 3, 4)), requires_grad=True)
    b = ms.Tensor(away_from_zero(r, b_shape), requires_grad=True)
    assert gradcheck(fn, [a, b])
    # the summed operand now has b's rank (or less), so broadcasting runs the other way round
    assert gradcheck(lambda a, b: fn(a.sum(axis=0), b), [a, b])
    assert gradcheck(lambda a, b: fn(b, a.sum(axis=(0, 1))), [a, b])


def test_broadcast_operand_gets_gradient_summed_to_its_own_shape(float64):
    a = ms.Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    b = ms.Tensor(np.ones(4), requires_grad=True)
    (a * b).sum().backward()
    assert b.grad.shape == (4,)
    np.testing.assert_array_equal(b.grad, a.data.sum(axis=0))
    np.testing.assert_array_equal(a.grad, np.ones((3, 4)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
    name=st.sampled_from(sorted(BINARY)),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_broadcastable_shapes(shapes, name, seed, float64):
    # (the float64 fixture only sets a global dtype, so sharing it across examples is safe)
    fn = BINARY[name]
    r = np.random.default_rng(seed)
    arrays = [away_from_zero(r, shape) for shape in shapes.input_shapes]
    a, b = (ms.Tensor(x, requires_grad=True) for x in arrays)
    out = fn(a, b)
    reference = np.maximum(*arrays) if name == "maximum" else fn(*arrays)
    assert out.shape == shapes.result_shape
    np.testing.assert_allclose(out.numpy(), reference, rtol=1e-12)
    assert gradcheck(fn, [a, b])


# ---- the graph and backward() ------------------------------------------------------------
def test_tensor_used_twice_accumulates_both_paths(float64):
    x = ms.Tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x * 3
    (x * x + y * y + y).sum().backward()  # d/dx = 2x + 18x + 3
    np.testing.assert_allclose(x.grad, 20 * x.data + 3, rtol=1e-15)


def test_same_tensor_as_both_operands(float64):
    x = ms.Tensor([1.5, -2.0], requires_grad=True)
    (x + x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_backward_twice_accumulates_into_leaves(float64):
    x = ms.Tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    loss.backward()  # the same graph again
    np.testing.assert_array_equal(x.grad, 2 * (2 * x.data))
    (x * x).sum().backward()  # and a freshly built one
    np.testing.assert_array_equal(x.grad, 3 * (2 * x.data))


def test_leaf_grads_of_two_inputs_are_independent_arrays(float64):
    # add's backward hands the same array to both parents; an in-place change to one
    # leaf's .grad (as an optimizer might make) must not change the other's
    a = ms.Tensor([1.0, 2.0], requires_grad=True)
    b = ms.Tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad *= 10
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_intermediate_grads_stay_none_and_nothing_leaks_between_passes(float64):
    x = ms.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    hidden = x * 2
    first = (hidden * hidden).sum()
    first.backward()
    assert hidden.grad is None and first.grad is None
    x.grad = None
    (hidden * 1.0).sum().backward()  # a second pass through the same intermediate
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])  # nothing left over from the first


def test_deep_graph_backward_has_no_recursion_limit(float64):
    x = ms.Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad, 1.0001**10_000, rtol=1e-10)


def test_backward_with_explicit_gradient(float64):
    x = ms.Tensor([1.0, 2.0], requires_grad=True)
    (x * 3).backward(np.array([1.0, -1.0]))
    np.testing.assert_array_equal(x.grad, [3.0, -3.0])


def test_no_grad_builds_no_graph_and_restores_on_exit(float64):
    x = ms.Tensor([1.0, 2.0], requires_grad=True)
    with ms.no_grad():
        y = (x * 2).sum()
        with ms.no_grad():
            pass
        assert not ms.is_grad_enabled()  # the inner block restored the outer state
    assert ms.is_grad_enabled()
    assert not y.requires_grad and y._parents == ()
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        y.backward()


def test_detach_cuts_the_graph_but_shares_the_data(float64):
    x = ms.Tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad
    (x * d).sum().backward()
    np.testing.assert_array_equal(x.grad, d.data)  # d acted as a constant
    assert np.shares_memory(x.detach().data, x.data)


def test_comparisons_give_boolean_tensors_outside_the_graph():
    x = ms.Tensor([-1.0, 0.0, 2.0], requires_grad=True)
    for result, expected in [
        (x > 0, [False, False, True]),
        (x >= 0, [False, True, True]),
        (x < 0, [True, False, False]),
        (x <= ms.Tensor([0.0, 0.0, 0.0]), [True, True, False]),
    ]:
        assert result.dtype == np.bool_ and not result.requires_grad
        np.testing.assert_array_equal(result.numpy(), expected)


def test_equality_is_element_wise_as_in_pytorch_and_hashing_is_by_identity():
    x = ms.Tensor([1.0, 2.0, 3.0])
    twin = ms.Tensor([1.0, 2.0, 3.0])
    pred, y = ms.Tensor([0, 1, 2]), np.array([0, 1, 1])
    np.testing.assert_array_equal((x == twin).numpy(), [True, True, True])
    np.testing.assert_array_equal((x != 2.0).numpy(), [True, False, True])
    assert (pred == y).sum().item() == 2  # accuracy counting, as a PyTorch user writes it
    assert not (x == twin).requires_grad
    assert len({x, twin}) == 2 and {x: "x", twin: "twin"}[twin] == "twin"  # identity hashing
    assert (x == None) is False and (x == "x") is False  # noqa: E711  not comparable: Python's identity


def test_bool_of_a_tensor_with_several_elements_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match=r"truth value of a Tensor of shape \(2,\) is ambiguous"):
        bool(ms.Tensor([1.0, 2.0]) == ms.Tensor([1.0, 2.0]))
    assert bool(ms.Tensor([3.0]) > 2) and not bool(ms.Tensor(0.0))


def test_float_and_int_of_a_one_element_tensor_and_a_clear_error_otherwise():
    assert float(ms.Tensor([2.5])) == 2.5 and int(ms.Tensor(7)) == 7
    assert float((ms.Tensor([1, 2]) == np.array([1, 3])).sum()) == 1.0
    with pytest.raises(ValueError, match=r"one element, got shape \(3,\)"):
        float(ms.Tensor([0, 0, 0]) == ms.Tensor([0, 0, 0]))


def test_int_data_stays_int_and_float64_data_follows_default_float32():
    assert ms.Tensor([1, 2]).dtype == np.int64
    assert ms.Tensor(np.zeros(2)).dtype == np.float32  # float64 input, float32 default


# ---- error messages ----------------------------------------------------------------------
def test_matmul_mismatch_names_both_shapes():
    a, b = ms.Tensor(np.ones((3, 4))), ms.Tensor(np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"matmul.*\(3, 4\).*\(5, 2\)"):
        a @ b


def test_broadcast_mismatch_names_op_and_both_shapes():
    a, b = ms.Tensor(np.ones((3, 4))), ms.Tensor(np.ones((3,)))
    with pytest.raises(ValueError, match=r"add.*\(3, 4\).*\(3,\)"):
        a + b


def test_backward_on_non_scalar_asks_for_a_scalar():
    x = ms.Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()


def test_backward_wrong_explicit_gradient_shape():
    x = ms.Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        (x * 2).backward(np.ones(3))


def test_tensor_owns_its_memory_so_updates_do_not_reach_the_callers_array():
    source = np.array([1.0, 2.0], dtype=np.float32)
    t = ms.Tensor(source, requires_grad=True)
    t.data -= 1.0  # what an optimizer step does
    np.testing.assert_array_equal(source, [1.0, 2.0])
    u = ms.Tensor(t)
    u.data *= 5.0
    np.testing.assert_array_equal(t.data, [0.0, 1.0])


# ---- dtypes: numbers and arrays take the Tensor's dtype; gradients take their tensor's -----
@pytest.mark.parametrize(
    "constant",
    [2.5, 3, np.float64(2.5), np.int64(3), np.full(4, 2.5), np.arange(4), np.array(True)],
    ids=["float", "int", "np.float64", "np.int64", "float64 array", "int64 array", "bool array"],
)
def test_a_number_or_array_combined_with_a_float32_tensor_stays_float32(constant):
    x = ms.Tensor(np.ones((3, 4)), requires_grad=True)
    for out in (x + constant, constant * x, x / (constant + 1), constant - x, ms.maximum(x, constant)):
        assert out.dtype == np.float32
    if not isinstance(constant, np.ndarray):
        assert (x**constant).dtype == np.float32


def test_every_gradient_has_the_dtype_of_its_tensor_even_when_float64_data_meets_it():
    w = ms.Tensor(np.ones(3), requires_grad=True)  # float32
    data = ms.Tensor(np.arange(3.0), dtype=np.float64)
    out = (w * data).sum()  # two Tensors: float64, as NumPy promotes
    assert out.dtype == np.float64
    out.backward()
    assert w.grad.dtype == np.float32
    np.testing.assert_array_equal(w.grad, [0.0, 1.0, 2.0])


def test_integer_tensors_keep_numpy_promotion():
    counts = ms.Tensor([1, 2, 3])
    assert (counts * 2).dtype == np.int64 and (counts / 2).dtype == np.float64
    assert counts.sum().item() == 6 and counts.mean().item() == 2.0


# ---- what a Tensor can be made of ------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [None, "abc", np.array(["a", "b"]), np.array([1 + 2j]), np.array([object()]), [[1, 2], [3]]],
    ids=["None", "str", "string array", "complex", "object array", "ragged list"],
)
def test_data_that_is_not_numbers_is_a_clear_error_naming_the_argument(data):
    with pytest.raises((TypeError, ValueError), match=r"Tensor: data must be numbers"):
        ms.Tensor(data)


def test_requires_grad_must_be_a_bool_and_only_floats_can_require_it():
    with pytest.raises(TypeError, match="requires_grad must be True or False, got 'yes'"):
        ms.Tensor([1.0], requires_grad="yes")
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients"):
        ms.Tensor([1, 2], requires_grad=True)


@pytest.mark.parametrize("join", [ms.cat, ms.stack])
def test_cat_and_stack_of_nothing_or_of_non_tensors_are_clear_errors(join):
    with pytest.raises(ValueError, match=r"tensors must be a non-empty sequence of Tensors"):
        join([])
    with pytest.raises(TypeError, match=r"tensors\[1\] must be a Tensor, got list"):
        join([ms.Tensor([1.0]), [2.0]])
    with pytest.raises(ValueError, match=r"\(2,\), \(3, 1\)"):
        join([ms.Tensor([1.0, 2.0]), ms.Tensor(np.ones((3, 1)))])


def test_batched_matmul_mismatch_names_the_batch_dimensions():
    a, b = ms.Tensor(np.ones((4, 2, 3))), ms.Tensor(np.ones((5, 3, 2)))
    with pytest.raises(ValueError, match=r"batch dimensions \(4,\) and \(5,\)"):
        a @ b
    with pytest.raises(ValueError, match=r"at least one dimension"):
        ms.Tensor(2.0) @ ms.Tensor([1.0])


def test_pow_takes_a_number_exponent_and_says_what_to_do_with_a_tensor_one():
    x = ms.Tensor([2.0], requires_grad=True)
    with pytest.raises(
        TypeError, match=r"exponent must be a number, got Tensor.*\(b \* a\.log\(\)\)\.exp\(\)"
    ):
        x ** ms.Tensor([2.0])


# ---- the first hour of a PyTorch user ------------------------------------------------
def test_no_grad_works_as_a_decorator_with_or_without_parentheses_and_under_recursion():
    x = ms.Tensor([1.0], requires_grad=True)

    @ms.no_grad()
    def probe():
        return x * 2

    @ms.no_grad
    def countdown(n):
        return (x * 2) if n == 0 else countdown(n - 1)

    assert not probe().requires_grad and not countdown(3).requires_grad
    assert ms.is_grad_enabled() and (x * 2).requires_grad  # switched back on afterwards


def test_reductions_take_axis_or_dim_but_not_both():
    x = ms.Tensor(np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match="sum: pass axis= or dim="):
        x.sum(axis=0, dim=0)


def test_argmax_tolist_and_like_constructors():
    x = ms.Tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]], requires_grad=True)
    assert x.argmax().item() == 3 and x.argmax(axis=1).tolist() == [1, 0]
    assert x.argmax(dim=0).tolist() == [1, 0, 1] and not x.argmax().requires_grad
    assert x.tolist() == [[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]]
    for like, value in ((ms.zeros_like, 0.0), (ms.ones_like, 1.0)):
        made = like(x)
        assert made.shape == x.shape and made.dtype == x.dtype and not made.requires_grad
        assert np.all(made.numpy() == value) and like(x, requires_grad=True).requires_grad
    assert ms.zeros((2, 3)).shape == ms.zeros(2, 3).shape == (2, 3)


def test_the_autograd_core_has_no_measurement_hooks_and_no_unused_ops():
    for gone in ("relu_mask_hook", "sqrt", "abs", "clip", "sigmoid"):
        assert not hasattr(ms.tensor, gone) and not hasattr(ms.Tensor, gone), gone


def test_every_op_in_the_core_has_one_shape_its_backward_nested_beside_it():
    """tensor.py writes each op the same way: compute the output, define ``backward`` right
    under it, hand both to ``_result``: no lambdas, no helper that builds backward elsewhere."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(ms.__file__).parent / "tensor.py").read_text(encoding="utf-8"))
    ops = 0
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef):
            continue
        for call in ast.walk(fn):
            if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "_result" and call.args:
                backward = call.args[2]
                if isinstance(backward, ast.Constant) and backward.value is None:
                    continue  # a leaf: no backward
                nested = [d.name for d in fn.body if isinstance(d, ast.FunctionDef)]
                assert (
                    isinstance(backward, ast.Name) and backward.id == "backward" and "backward" in nested
                ), f"{fn.name} does not define its backward beside its forward"
                ops += 1
    # + - * / ** neg @ sum max reshape transpose [] exp log tanh relu maximum cat stack
    assert ops >= 19
