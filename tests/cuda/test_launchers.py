"""tinygen.cuda's launchers pick the kernel instantiation of their arrays' dtype, and never cast.

Every kernel in kernels/*.cu is compiled for float and double under the names
``kernel_name(kernel, dtype)`` = ``<kernel>_f32`` / ``<kernel>_f64``. These
tests need neither a GPU nor the emulator: a recording ``get_function`` stands
in for the compiled kernels and notes which entry point each launch asks for
and the dtypes of the arrays it is handed; a small stand-in for CuPy checks the
RawModule path (one module per file, the text NVRTC gets, the name looked up).
"""
import sys
import types

import numpy as np
import pytest

import emulator
from tinygen import cuda, resources
from tinygen.cuda import DIAGONAL_LSTM_KERNEL, Kernels
from tinygen.resources import DTYPE_SUFFIXES, KERNELS, kernel_name

DTYPES = [np.float32, np.float64]


class Recorder:
    """A ``get_function(file, name)`` whose kernels launch nothing and record (file, name, array dtypes)."""

    def __init__(self):
        self.launches = []

    def __call__(self, file, name):
        return lambda grid, block, args: self.launches.append(
            (file, name, {a.dtype for a in args if isinstance(a, np.ndarray) and a.size}))


def launch_every_kernel(k, dtype):
    """Call each launcher of Kernels ``k`` once on arrays of ``dtype``; returns every array it returned."""
    rng = np.random.default_rng(0)
    a = lambda *shape: rng.standard_normal(shape).astype(dtype)   # noqa: E731
    N, C, H, W, (K, pad) = 2, 3, 5, 4, DIAGONAL_LSTM_KERNEL
    outputs = [k.im2col(a(N, C, H, W), 2, 3, 1, 1, 1, 0),
               k.col2im(a(N, C * 6, 6 * 2), (N, C, H, W), 2, 3, 1, 1, 1, 0),
               k.conv2d_grad_weight(a(N, 4, 7), a(N, 5, 7))]
    outputs += k.lstm_cell_forward(a(N, 4 * H), a(N, H))
    outputs += k.lstm_cell_backward(a(N, 4 * H), a(N, H), a(N, H), a(N, H), None)
    outputs += k.pixelrnn_step_forward(a(N, W, 4 * H), a(N, W, K, 4 * H), a(N, W, H), K, pad)
    outputs += k.pixelrnn_step_backward(a(N, W, 4 * H), a(N, W, H), a(N, W, H), a(N, W, H), a(N, W, K, H),
                                        a(N, W, H), K, pad)
    return outputs


def test_kernel_name_maps_every_kernel_and_dtype_to_an_entry_point_its_file_defines():
    assert kernel_name("im2col", np.float64) == "im2col_f64"
    assert kernel_name("im2col", np.dtype("float32")) == "im2col_f32"
    assert kernel_name("lstm_cell_backward", "float64") == "lstm_cell_backward_f64"
    for file, kernels in KERNELS.items():
        defined = set(emulator.kernels_in(resources.kernel_source(file)))
        assert defined == {kernel_name(kernel, dtype) for kernel in kernels for dtype in DTYPE_SUFFIXES}, file


@pytest.mark.parametrize("dtype", [np.float16, np.int32, np.complex64, np.bool_])
def test_kernel_name_refuses_a_dtype_without_kernels(dtype):
    with pytest.raises(TypeError, match=rf"im2col: .*float32 and float64 arrays, got {np.dtype(dtype).name}"):
        kernel_name("im2col", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_launcher_runs_the_instantiation_of_its_dtype_on_arrays_of_that_dtype(dtype):
    recorder = Recorder()
    outputs = launch_every_kernel(Kernels(np, recorder), dtype)
    expected = [(file, kernel_name(kernel, dtype)) for file, kernels in KERNELS.items() for kernel in kernels]
    assert [(file, name) for file, name, _ in recorder.launches] == expected
    for file, name, dtypes in recorder.launches:
        assert dtypes == {np.dtype(dtype)}, f"{name} was handed arrays of {dtypes}"
    assert all(out.dtype == dtype for out in outputs)


def test_the_module_level_launchers_pick_float64_for_float64_arrays(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(cuda, "_gpu", Kernels(np, recorder))
    rng = np.random.default_rng(1)
    a = lambda *shape: rng.standard_normal(shape)   # noqa: E731
    N, H, S = 2, 3, 4
    assert cuda.im2col(a(N, 1, 3, 3), 2, 2, 1, 1, 0, 0).dtype == np.float64
    cuda.col2im(a(N, 4, 4), (N, 1, 3, 3), 2, 2, 1, 1, 0, 0)
    cuda.conv2d_grad_weight(a(N, 2, 5), a(N, 3, 5))
    cuda.lstm_cell_forward(a(N, 4 * H), a(N, H))
    cuda.lstm_cell_backward(a(N, 4 * H), a(N, H), a(N, H), None, a(N, H))
    for kind, (K, _) in (("row", cuda.ROW_LSTM_KERNEL), ("diagonal", cuda.DIAGONAL_LSTM_KERNEL)):
        getattr(cuda, f"{kind}_lstm_step_forward")(a(N, S, 4 * H), a(N, S, K, 4 * H), a(N, S, H))
        getattr(cuda, f"{kind}_lstm_step_backward")(a(N, S, 4 * H), a(N, S, H), a(N, S, H), a(N, S, H),
                                                    None, None)
    names = [name for _, name, _ in recorder.launches]
    assert names == ["im2col_f64", "col2im_f64", "conv2d_grad_weight_f64", "lstm_cell_forward_f64",
                     "lstm_cell_backward_f64"] + ["pixelrnn_step_forward_f64", "pixelrnn_step_backward_f64"] * 2
    assert all(dtypes == {np.dtype(np.float64)} for _, _, dtypes in recorder.launches)


def test_mixed_or_unsupported_dtypes_are_a_type_error_naming_them():
    k = Kernels(np, Recorder())
    f32, f64 = np.zeros((2, 8), np.float32), np.zeros((2, 2), np.float64)
    with pytest.raises(TypeError, match=r"lstm_cell_forward: .*one dtype, got pre float32, c_prev float64"):
        k.lstm_cell_forward(f32, f64)
    with pytest.raises(TypeError, match=r"lstm_cell_backward: .*got gates float32, c_prev float64, c float64"):
        k.lstm_cell_backward(f32, f64, f64, None, None)
    with pytest.raises(TypeError, match=r"conv2d_grad_weight: .*got dy float64, cols float32"):
        k.conv2d_grad_weight(np.zeros((1, 2, 3)), np.zeros((1, 2, 3), np.float32))
    with pytest.raises(TypeError, match=r"im2col: .*float32 and float64 arrays, got float16"):
        k.im2col(np.zeros((1, 1, 3, 3), np.float16), 2, 2, 1, 1, 0, 0)
    with pytest.raises(TypeError, match=r"col2im: .*float32 and float64 arrays, got int64"):
        k.col2im(np.zeros((1, 4, 4), np.int64), (1, 1, 3, 3), 2, 2, 1, 1, 0, 0)


def test_kernel_source_pastes_each_local_header_once(monkeypatch):
    files = {"a.cu": '#include "h.cuh"\n  # include "h.cuh"  // again\n// #include "x.cuh" in a comment\nA',
             "h.cuh": '#include "g.cuh"\nH', "g.cuh": "G"}
    monkeypatch.setattr(resources, "_read_kernel_source", files.__getitem__)
    assert resources.kernel_source("a.cu") == 'G\nH\n\n// #include "x.cuh" in a comment\nA'


# --- the CuPy path, with a stand-in for CuPy ------------------------------------------

class FakeRawModule:
    """cupy.RawModule's surface: compiled from ``code``; ``get_function`` of an ``extern "C"`` name."""

    built = []

    def __init__(self, code, options=()):
        self.code, self.options = code, options
        self.recorder = Recorder()
        FakeRawModule.built.append(self)

    def get_function(self, name):
        assert name in emulator.kernels_in(self.code), f"no kernel {name} in the module"
        return self.recorder(None, name)


def fake_cupy():
    """A module that is NumPy plus RawModule and cuda.Device: enough for tinygen.cuda's host code."""
    module = types.ModuleType("cupy")
    module.__getattr__ = lambda name: getattr(np, name)
    module.RawModule = FakeRawModule
    module.cuda = types.SimpleNamespace(Device=lambda: types.SimpleNamespace(id=0))
    return module


def test_the_raw_module_gets_standalone_text_and_is_built_once_per_file(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy())
    monkeypatch.setattr(cuda, "_gpu", None)
    monkeypatch.setattr(cuda, "_modules", {})
    monkeypatch.setattr(FakeRawModule, "built", [])
    rng = np.random.default_rng(2)
    pre, c_prev = rng.standard_normal((3, 8)), rng.standard_normal((3, 2))
    h, c, gates = cuda.lstm_cell_forward(pre, c_prev)
    cuda.lstm_cell_forward(pre.astype(np.float32), c_prev.astype(np.float32))
    assert h.dtype == c.dtype == gates.dtype == np.float64
    (module,) = FakeRawModule.built                     # one module for both dtypes
    assert '#include "' not in module.code and "TINYGEN_ACTIVATIONS_CUH" in module.code
    assert [name for _, name, _ in module.recorder.launches] == ["lstm_cell_forward_f64", "lstm_cell_forward_f32"]
