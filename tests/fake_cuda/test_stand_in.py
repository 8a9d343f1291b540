"""The stand-in itself: a distinct array type, CuPy's rules on mixing with NumPy, and the launch
checks of a real GPU, so that what fails on a GPU fails here too."""
import numpy as np
import pytest

import fake_cupy as cp
from tinygen import backend

SOURCE = r'''
extern "C" __global__ void scale(const float* x, float* y, int n, float a) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i];
}
extern "C" __global__ void shared_copy(const float* x, float* y, int n) {
    extern __shared__ float buffer[];
    int i = threadIdx.x;
    if (i < n) buffer[i] = x[i];
    __syncthreads();
    if (i < n) y[i] = buffer[n - 1 - i];
}
'''


@pytest.fixture(scope="module")
def module():
    return cp.RawModule(code=SOURCE, options=("-std=c++17",))


def test_tinygen_sees_the_stand_in_as_cupy():
    assert backend.cupy_available() and backend.cuda_available()
    a = cp.asarray(np.arange(3.0))
    assert not isinstance(a, np.ndarray)
    assert backend.get_array_module(a) is cp and backend.device_of(a) == "cuda"
    assert type(a).__module__.split(".")[0] == "cupy"   # what serialization and metrics check


def test_no_implicit_device_to_host_copy_and_no_mixing():
    a = cp.asarray(np.ones(3))
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    for mixed in (lambda: a + np.ones(3), lambda: np.ones(3) * a, lambda: cp.maximum(a, np.ones(3)),
                  lambda: cp.concatenate([a, np.ones(3)]), lambda: cp.where(a > 0, a, np.zeros(3))):
        with pytest.raises(TypeError, match="Unsupported type"):
            mixed()
    a[...] = np.full(3, 2.0)                 # host -> device by assignment is allowed, as in CuPy
    assert cp.asnumpy(a).tolist() == [2.0, 2.0, 2.0]


def test_results_are_device_arrays_and_reductions_are_0d_arrays():
    a = cp.asarray(np.arange(6.0).reshape(2, 3))
    for r in (a.sum(), a[0, 1], cp.sum(a), np.sum(a), np.exp(a), a.T @ a):
        assert isinstance(r, cp.ndarray)
    assert a.sum().shape == () and float(a.sum()) == 15.0 and a.max().item() == 5.0


def test_asarray_copies_host_data_and_asnumpy_copies_it_back():
    h = np.zeros(2)
    d = cp.asarray(h)
    h[0] = 1.0
    assert cp.asnumpy(d)[0] == 0.0 and cp.asarray(d) is d
    back = cp.asnumpy(d)
    back[1] = 5.0
    assert cp.asnumpy(d)[1] == 0.0


def test_empty_memory_reads_as_nan_not_zero():
    assert np.isnan(cp.asnumpy(cp.empty((3,), np.float32))).all()
    assert (cp.asnumpy(cp.empty_like(cp.zeros(2, np.int64))) == cp.UNWRITTEN_INT).all()


def test_a_missing_function_fails_loudly_naming_it():
    with pytest.raises(cp.NotInStandIn, match="cupy.lexsort"):
        cp.lexsort
    with pytest.raises(cp.NotInStandIn, match="cupy.ndarray.partition"):
        cp.zeros(3).partition(1)
    with pytest.raises(cp.NotInStandIn, match="cupy.multiply.reduce"):
        cp.multiply.reduce(cp.zeros(3))
    for name in ("choice", "permutation", "normal"):      # not in CuPy's Generator either
        with pytest.raises(cp.NotInStandIn, match=f"cupy.random.Generator.{name}"):
            getattr(cp.random.default_rng(0), name)(3)
    with pytest.raises(TypeError, match="CUDA atomics"):
        cp.add.at(cp.zeros(3, np.int64), cp.asarray(np.array([0, 0])), 1)


def test_device_generator_gives_device_arrays_repeatably():
    a, b = cp.random.default_rng(3), cp.random.default_rng(3)
    x = a.standard_normal((2, 3), dtype=np.float32)
    assert isinstance(x, cp.ndarray) and x.dtype == np.float32
    np.testing.assert_array_equal(cp.asnumpy(x), cp.asnumpy(b.standard_normal((2, 3), dtype=np.float32)))


def test_a_kernel_runs_on_the_emulator_with_the_launch_geometry(module):
    x = cp.asarray(np.arange(5, dtype=np.float32))
    y = cp.zeros(5, np.float32)
    module.get_function("scale")((1,), (8,), (x, y, np.int32(5), np.float32(3.0)))
    np.testing.assert_array_equal(cp.asnumpy(y), 3.0 * np.arange(5))
    assert cp.LAUNCHES == [("scale", (1, 1, 1), (8, 1, 1), 0)]
    module.get_function("shared_copy")((1,), (5,), (x, y, np.int32(5)), shared_mem=5 * 4)
    np.testing.assert_array_equal(cp.asnumpy(y), np.arange(5)[::-1])


@pytest.mark.parametrize("grid, block, shared, match", [
    ((1,), (1025,), 0, "block"), ((1,), (32, 33), 0, "more than 1024"),
    ((1,), (1, 1, 65), 0, "block"), ((1, 65536), (32,), 0, "grid"), ((2**31,), (32,), 0, "grid"),
    ((1,), (0,), 0, "block"), ((1,), (32,), 48 * 1024 + 4, "shared_mem")])
def test_launches_a_gpu_refuses_are_refused(module, grid, block, shared, match):
    x, y = cp.zeros(4, np.float32), cp.zeros(4, np.float32)
    with pytest.raises(cp.LaunchError, match=match):
        module.get_function("shared_copy")(grid, block, (x, y, np.int32(4)), shared_mem=shared)


@pytest.mark.parametrize("n, a, match", [(5, np.float32(1), "int64 value for a parameter of type i4"),
                                          (np.int64(5), np.float32(1), "int64 value"),
                                          (np.int32(5), 1.0, "float64 value for a parameter of type f4")])
def test_scalars_must_be_the_parameter_type_as_cupy_passes_them(module, n, a, match):
    x, y = cp.zeros(5, np.float32), cp.zeros(5, np.float32)
    with pytest.raises(TypeError, match=match):
        module.get_function("scale")((1,), (8,), (x, y, n, a))


def test_host_arrays_and_views_cannot_be_kernel_arguments(module):
    x, y = cp.zeros(8, np.float32), cp.zeros(4, np.float32)
    with pytest.raises(TypeError, match="NumPy array passed to a CUDA kernel"):
        module.get_function("scale")((1,), (4,), (np.zeros(4, np.float32), y, np.int32(4), np.float32(1)))
    with pytest.raises(Exception, match="C-contiguous"):
        module.get_function("scale")((1,), (4,), (x[::2], y, np.int32(4), np.float32(1)))


def test_only_existing_devices_can_be_used():
    with pytest.raises(RuntimeError, match="device 'cuda' was asked|invalid device"):
        backend.to_device(np.zeros(2), "cuda:1")
