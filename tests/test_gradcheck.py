"""The gradient checker must catch a wrong backward, and say exactly where."""

import re

import numpy as np
import pytest

import minisam as ms
from minisam.gradcheck import GradcheckError, gradcheck
from minisam.tensor import _result


def scaled_sum_with_a_wrong_gradient_at(a, b, wrong_index):
    """f(a, b) = Σ 2a + Σ 3b, whose backward is right except for b at ``wrong_index``."""

    def backward(g):
        grad_b = np.full(b.shape, 3.0) * g
        grad_b[wrong_index] = 5.0 * g
        return np.full(a.shape, 2.0) * g, grad_b

    return _result((2 * a.data + 3 * b.data).sum(), (a, b), backward, "bad_scaled_sum")


def test_gradcheck_names_input_index_expected_and_received(float64):
    a = ms.Tensor(np.ones((2, 3)), requires_grad=True)
    b = ms.Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda a, b: scaled_sum_with_a_wrong_gradient_at(a, b, (1, 2)), [a, b])
    message = str(info.value)
    assert "input 1" in message and "index (1, 2)" in message, message
    expected = float(re.search(r"expected (\S+)", message).group(1))
    received = float(re.search(r"received (\S+)", message).group(1))
    assert expected == pytest.approx(3.0, rel=1e-8) and received == 5.0


def test_gradcheck_passes_a_correct_backward_and_leaves_inputs_as_they_were(float64):
    x = ms.Tensor(np.array([[0.3, -1.2], [2.0, 0.7]]), requires_grad=True)
    x.grad = np.full((2, 2), 7.0)  # a gradient the caller already had
    before = x.numpy()
    assert gradcheck(lambda x: (x * x.tanh()).sum(axis=0), [x]) is True
    np.testing.assert_array_equal(x.numpy(), before)
    np.testing.assert_array_equal(x.grad, np.full((2, 2), 7.0))


def test_gradcheck_weights_outputs_so_swapped_gradients_cannot_cancel(float64):
    # y = 2x, but backward hands each element the gradient meant for another one. With all
    # output gradients equal (a plain .sum()) the error would be invisible.
    def doubled_with_shuffled_backward(x):
        return _result(2 * x.data, (x,), lambda g: (2 * g[::-1],), "shuffled")

    x = ms.Tensor(np.arange(4.0), requires_grad=True)
    assert gradcheck(lambda x: doubled_with_shuffled_backward(x).sum(), [x])  # blind
    with pytest.raises(GradcheckError):
        gradcheck(doubled_with_shuffled_backward, [x])


def test_gradcheck_skips_inputs_that_do_not_require_grad(float64):
    x = ms.Tensor(np.ones(3), requires_grad=True)
    constant = ms.Tensor(np.arange(3.0))
    assert gradcheck(lambda x, c: x * c, [x, constant])


def test_gradcheck_requires_a_tensor_result(float64):
    x = ms.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TypeError, match="must return a Tensor"):
        gradcheck(lambda x: 1.0, [x])


def test_float32_central_differences_drown_in_rounding_error_at_tiny_eps():
    # Why gradients are checked in float64. A perturbation of 1e-6 is only ~8 float32
    # steps (machine epsilon 1.2e-7 near 1), so f(x + eps) - f(x - eps) keeps one or two
    # correct digits, and the quotient misses the true gradient by percent, not by 1e-6.
    def f(x):
        return (x * x).tanh().sum()

    values = np.array([0.9, -0.4, 1.3, 0.6])
    in_float64 = ms.Tensor(values, requires_grad=True, dtype=np.float64)
    assert gradcheck(f, [in_float64], eps=1e-6, rtol=1e-6)
    in_float32 = ms.Tensor(values, requires_grad=True, dtype=np.float32)
    with pytest.raises(GradcheckError, match="float32"):
        gradcheck(f, [in_float32], eps=1e-6, rtol=1e-6)
