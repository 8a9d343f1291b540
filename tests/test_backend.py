"""Devices and randomness: tinygen imports and runs without CuPy, and says clearly what is
missing when a GPU is asked for; the same seed gives the same numbers."""
import subprocess
import sys

import numpy as np
import pytest

import tinygen
from tinygen import backend


needs_no_gpu = pytest.mark.skipif(backend.cuda_available(), reason="this machine has a GPU")


@needs_no_gpu
@pytest.mark.parametrize("make", [
    lambda: tinygen.tensor([1.0], device="cuda"),
    lambda: tinygen.tensor([1.0]).to("cuda"),
    lambda: tinygen.nn.Linear(2, 2).to("cuda"),
])
def test_asking_for_cuda_without_a_gpu_says_what_is_missing(make):
    with pytest.raises(RuntimeError, match="CuPy|GPU") as e:
        make()
    msg = str(e.value)
    assert "pip install" in msg or "device='cpu'" in msg


def test_unknown_device_is_named():
    with pytest.raises(ValueError, match="'tpu'"):
        tinygen.tensor([1.0], device="tpu")


def test_import_works_without_cupy():
    code = ("import sys; sys.modules['cupy'] = None\n"
            "import tinygen, tinygen.functional as F, tinygen.nn, tinygen.optim, tinygen.distributions\n"
            "x = tinygen.tensor([1.0, 2.0], requires_grad=True); F.sum(x * x).backward()\n"
            "assert x.grad.numpy().tolist() == [2.0, 4.0]\n"
            "assert not tinygen.cuda_available()\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_manual_seed_gives_the_same_numbers():
    tinygen.manual_seed(123)
    a = tinygen.randn(5).numpy()
    lin_a = tinygen.nn.Linear(3, 2).weight.numpy()
    tinygen.manual_seed(123)
    b = tinygen.randn(5).numpy()
    lin_b = tinygen.nn.Linear(3, 2).weight.numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(lin_a, lin_b)
    tinygen.manual_seed(124)
    assert not np.array_equal(a, tinygen.randn(5).numpy())


def test_rng_state_round_trips():
    tinygen.manual_seed(5)
    state = backend.get_rng_state()
    a = tinygen.rand(4).numpy()
    backend.set_rng_state(state)
    np.testing.assert_array_equal(a, tinygen.rand(4).numpy())


@pytest.mark.parametrize("seed", [-1, 1.5, "x"])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match="seed"):
        tinygen.manual_seed(seed)
