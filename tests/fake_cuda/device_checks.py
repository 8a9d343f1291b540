"""What the device tests compare with: values brought to the host, closeness to the CPU result,
and a CUDA generator that draws the CPU's stream."""
import numpy as np

import fake_cupy
from tinygen import backend
from tinygen.autograd import Tensor


def host(value):
    """A Tensor's, a device array's or a host array's values as a NumPy array."""
    if isinstance(value, Tensor):
        value = value.data
    return fake_cupy.asnumpy(value)


def assert_close(cuda_value, cpu_value, rtol=1e-5, atol=1e-6, what=""):
    """The CUDA result matches the CPU one up to summation order; also that it lives on the device."""
    if isinstance(cuda_value, Tensor) or backend.get_array_module(cuda_value) is not np:
        data = cuda_value.data if isinstance(cuda_value, Tensor) else cuda_value
        assert backend.device_of(data) == "cuda", f"{what}: came back on {backend.device_of(data)}"
    got, want = host(cuda_value), host(cpu_value)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} on cuda, {want.dtype} on cpu"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


def share_cpu_noise():
    """Make the "cuda" generator draw the CPU generator's stream (after ``manual_seed``), so a CUDA
    run sees exactly the noise of the CPU run it is compared with; cuRAND's would differ."""
    backend._generators["cuda"] = fake_cupy.random.Generator(backend.generator("cpu"))
