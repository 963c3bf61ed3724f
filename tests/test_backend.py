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
from minisam import checks as ms_checks

GPU_REASON = backend.gpu_unavailable_reason()  # None where CuPy really runs


def test_unknown_backend_is_refused_naming_the_argument_and_the_valid_names():
    with pytest.raises(ms_checks.ArgumentError, match="backend must be one of 'numpy', 'cupy', got 'tpu'"):
        backend.use("tpu")
    assert backend.name == "numpy"


@pytest.fixture
def without_cupy(monkeypatch):
    """CuPy made unimportable for one test, as on a machine where it is not installed."""
    monkeypatch.setitem(sys.modules, "cupy", None)


def test_use_cupy_where_it_is_not_installed_says_why_how_to_install_and_the_way_back_once(without_cupy):
    with pytest.raises(backend.BackendError) as info:
        backend.use("cupy")
    message = str(info.value)
    assert message.startswith("cannot use the CuPy backend: CuPy is not installed"), message
    assert 'pip install -e ".[gpu]"' in message  # the README's command, not pip install 'minisam[gpu]'
    assert message.count('ms.backend.use("numpy")') == 1 and "MINISAM_BACKEND" not in message
    assert ".." not in message and "\n" not in message
    assert backend.name == "numpy" and backend.xp is np  # nothing half-switched


@pytest.mark.skipif(GPU_REASON is None, reason="a GPU is available here, so CuPy can be used")
def test_use_cupy_without_a_usable_gpu_says_why_and_how_back_to_numpy():
    with pytest.raises(backend.BackendError) as info:
        backend.use("cupy")
    message = str(info.value)
    assert "CuPy" in message and 'ms.backend.use("numpy")' in message
    assert backend.name == "numpy" and backend.xp is np


def test_error_line_is_one_shell_line_with_the_shell_way_back(without_cupy):
    with pytest.raises(backend.BackendError) as info:
        backend.use("cupy")
    line = backend.error_line(info.value)
    assert line.startswith("error: cannot use the CuPy backend: CuPy is not installed")
    assert "\n" not in line and 'pip install -e ".[gpu]"' in line
    assert line.endswith("run on the CPU with MINISAM_BACKEND=numpy.")
    assert "ms.backend" not in line  # no Python advice for a shell user
    custom = backend.error_line(info.value, way_back="--backend numpy")
    assert custom.endswith("run on the CPU with --backend numpy.")


def run_python_with(value, code, hide_cupy=False):
    env = dict(os.environ, MINISAM_BACKEND=value)
    prelude = "import sys; sys.modules['cupy'] = None\n" if hide_cupy else ""
    return subprocess.run(
        [sys.executable, "-c", prelude + code], env=env, capture_output=True, text=True, timeout=120
    )


FIRST_USE = """
import minisam as ms
print("imported")
try:
    ms.Tensor([1.0])
except ms.backend.BackendError as err:
    print(ms.backend.error_line(err))
ms.backend.use("numpy")
print(ms.backend.name, ms.Tensor([1.0]).shape)
"""


def test_environment_asking_for_cupy_without_it_lets_import_work_and_fails_at_first_use():
    result = run_python_with("cupy", FIRST_USE, hide_cupy=True)
    assert result.returncode == 0, result.stderr
    imported, error, recovered = result.stdout.strip().splitlines()
    assert imported == "imported"
    assert error.startswith("error: MINISAM_BACKEND=cupy asks for CuPy, which cannot be used here"), error
    assert 'pip install -e ".[gpu]"' in error and error.endswith("MINISAM_BACKEND=numpy.")
    assert recovered == "numpy (1,)"  # use("numpy") is the way back from Python


def test_environment_with_an_unknown_backend_lets_import_work_and_names_the_variable_at_first_use():
    result = run_python_with("bogus", FIRST_USE)
    assert result.returncode == 0, result.stderr
    imported, error, recovered = result.stdout.strip().splitlines()
    assert imported == "imported" and recovered == "numpy (1,)"
    assert "MINISAM_BACKEND is 'bogus'" in error and "numpy or cupy" in error, error


def test_a_pending_environment_request_fails_every_time_until_use_overrides_it(monkeypatch, without_cupy):
    monkeypatch.setattr(backend, "_from_environment", "cupy")
    for _ in range(2):  # never a silent fallback to NumPy after the first complaint
        with pytest.raises(backend.BackendError, match="MINISAM_BACKEND=cupy"):
            backend.to_device(np.zeros(2))
    backend.use("numpy")
    assert backend._from_environment is None and backend.name == "numpy"


def test_environment_asking_for_numpy_works():
    result = run_python_with("numpy", "import minisam; print(minisam.backend.name)")
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
