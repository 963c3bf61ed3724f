"""Choosing the array backend, moving arrays, and -- where a GPU exists -- the same numbers
from CuPy as from NumPy."""

import os
import subprocess
import sys

import numpy as np
import pytest

import minisam as ms
import minisam.functional as F
from minisam import backend

GPU_REASON = backend.gpu_unavailable_reason()  # None where CuPy really runs


def test_unknown_backend_lists_the_valid_names():
    with pytest.raises(ValueError, match="numpy, cupy"):
        backend.use("tpu")
    assert backend.name == "numpy"


@pytest.mark.skipif(GPU_REASON is None, reason="a GPU is available here, so CuPy can be used")
def test_use_cupy_without_a_usable_gpu_says_why_and_how_back_to_numpy():
    with pytest.raises(backend.BackendError) as info:
        backend.use("cupy")
    message = str(info.value)
    assert "CuPy" in message
    assert 'use("numpy")' in message and "MINISAM_BACKEND=numpy" in message
    assert backend.name == "numpy" and backend.xp is np  # nothing half-switched


def import_minisam_with(value):
    env = dict(os.environ, MINISAM_BACKEND=value)
    return subprocess.run(
        [sys.executable, "-c", "import minisam; print(minisam.backend.name)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(GPU_REASON is None, reason="a GPU is available here, so CuPy can be used")
def test_environment_asking_for_cupy_fails_at_import_with_a_one_line_reason():
    result = import_minisam_with("cupy")
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "CuPy" in last_line and "numpy" in last_line, last_line


def test_environment_with_an_unknown_backend_lists_the_valid_names():
    result = import_minisam_with("bogus")
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "MINISAM_BACKEND" in last_line and "numpy, cupy" in last_line, last_line


def test_environment_asking_for_numpy_works():
    result = import_minisam_with("numpy")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "numpy"


def test_to_device_and_to_host_round_trip(backend):
    host = np.arange(6.0).reshape(2, 3)
    on_device = ms.backend.to_device(host)
    assert ms.backend.get_array_module(on_device) is ms.backend.xp
    back = ms.backend.to_host(on_device)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, host)
    assert ms.backend.to_device(host, np.float32).dtype == np.float32
    assert ms.backend.to_device([1, 2]).shape == (2,)


def test_tensor_numpy_is_a_host_copy(backend):
    t = ms.Tensor([1.0, 2.0])
    copy = t.numpy()
    copy[0] = 99.0
    assert t.numpy()[0] == 1.0


def representative_step():
    """A bit of everything: conv, batch norm (running stats), pooling, dropout, linear,
    cross-entropy, and the gradients, on whatever backend is in use. Returns host arrays."""
    r = np.random.default_rng(0)
    x = ms.Tensor(r.normal(size=(4, 2, 6, 6)))
    w1 = ms.Tensor(r.normal(size=(3, 2, 3, 3)), requires_grad=True)
    b1 = ms.Tensor(r.normal(size=3), requires_grad=True)
    w2 = ms.Tensor(r.normal(size=(5, 27)), requires_grad=True)
    running_mean, running_var = ms.backend.xp.zeros(3), ms.backend.xp.ones(3)
    ms.manual_seed(1)
    h = F.conv2d(x, w1, b1, stride=1, padding=1)
    h = F.relu(F.batch_norm(h, running_mean, running_var))
    h = F.dropout(F.max_pool2d(h, 2), p=0.25)
    logits = F.linear(h.reshape(4, -1), w2)
    loss = F.cross_entropy(logits, np.array([0, 4, 2, 1])) + (F.softmax(logits) ** 2).mean()
    loss.backward()
    return [loss.numpy(), w1.grad, b1.grad, w2.grad, running_mean, running_var]


@pytest.mark.gpu
def test_cupy_gives_the_same_values_and_gradients_as_numpy(cupy_backend, float64):
    on_gpu = [ms.backend.to_host(a) for a in representative_step()]
    backend.use("numpy")
    on_cpu = representative_step()
    for n, (gpu, cpu) in enumerate(zip(on_gpu, on_cpu, strict=True)):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-10, atol=1e-12, err_msg=f"output {n}")
