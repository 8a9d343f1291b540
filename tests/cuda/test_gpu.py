"""tinygen.cuda on a real GPU: the same comparisons as test_kernels_emulated.py, through CuPy.

Skipped unless CuPy is installed and sees a GPU. The kernels are compiled by
NVRTC (cupy.RawModule) from the same kernels/*.cu files the emulator runs;
the error bounds of kernel_reference.py hold on the GPU too (it may fuse a
multiply and an add into one rounding, which only tightens them), for the
float32 and the float64 instantiations alike: a float64 case that ran in
float32 anywhere misses float64's bounds by orders of magnitude.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kernel_reference as ref
from kernel_reference import DTYPES, case, cell_tolerance, conv_cases, lstm_inputs
from tinygen import backend

pytestmark = pytest.mark.gpu
cp = pytest.importorskip("cupy", reason="CuPy is not installed")
if not backend.cuda_available():
    pytest.skip("CuPy sees no CUDA GPU", allow_module_level=True)

from tinygen import cuda  # noqa: E402

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(conv_cases(np.float64), st.integers(0, 2**32 - 1))
def test_im2col_and_col2im(dtype, args, seed):
    x, kh, kw, sh, sw, ph, pw = args
    x = x.astype(dtype)
    cols = cuda.im2col(cp.asarray(x), kh, kw, sh, sw, ph, pw)
    assert cols.dtype == dtype
    np.testing.assert_array_equal(cp.asnumpy(cols), ref.im2col(x, kh, kw, sh, sw, ph, pw))
    y = np.random.default_rng(seed).standard_normal(cols.shape).astype(dtype)
    got = cp.asnumpy(cuda.col2im(cp.asarray(y), x.shape, kh, kw, sh, sw, ph, pw))
    want = ref.col2im(y, x.shape, kh, kw, sh, sw, ph, pw)
    assert (np.abs(got - want) <= ref.col2im_tolerance(y, x.shape, kh, kw, sh, sw, ph, pw)).all()
    again = cp.asnumpy(cuda.col2im(cp.asarray(y), x.shape, kh, kw, sh, sw, ph, pw))
    np.testing.assert_array_equal(got, again)   # a gather: the same bits every run


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_layer_is_deterministic_and_right(dtype):
    x, kh, kw, sh, sw, ph, pw = case(16, 32, 33, 31, 4, 4, 2, 2, 1, 1, seed=1, dtype=dtype)
    cols = cuda.im2col(cp.asarray(x), kh, kw, sh, sw, ph, pw)
    np.testing.assert_array_equal(cp.asnumpy(cols), ref.im2col(x, kh, kw, sh, sw, ph, pw))
    back = cp.asnumpy(cuda.col2im(cols, x.shape, kh, kw, sh, sw, ph, pw))
    c = cp.asnumpy(cols)
    assert (np.abs(back - ref.col2im(c, x.shape, kh, kw, sh, sw, ph, pw))
            <= ref.col2im_tolerance(c, x.shape, kh, kw, sh, sw, ph, pw)).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, o, r, l", [(1, 16, 16, 16), (3, 17, 33, 17), (64, 64, 288, 196), (2, 3, 5, 1000)])
def test_conv2d_grad_weight(n, o, r, l, dtype):
    rng = np.random.default_rng(n + o + r + l)
    dy = rng.standard_normal((n, o, l)).astype(dtype)
    cols = rng.standard_normal((n, r, l)).astype(dtype)
    dw = cp.asnumpy(cuda.conv2d_grad_weight(cp.asarray(dy), cp.asarray(cols)))
    assert dw.dtype == dtype
    want, bound = ref.grad_weight(dy, cols)
    assert (np.abs(dw - want) <= bound).all()
    np.testing.assert_array_equal(dw, cp.asnumpy(cuda.conv2d_grad_weight(cp.asarray(dy), cp.asarray(cols))))


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 64), H=st.integers(1, 300), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([0.1, 3.0, 30.0]))
def test_lstm_cell(dtype, N, H, seed, scale):
    pre, c_prev, dh, dc = lstm_inputs(N, H, seed, scale, dtype)
    tol = cell_tolerance(dtype)
    h, c, gates = cuda.lstm_cell_forward(cp.asarray(pre), cp.asarray(c_prev))
    for got, want in zip((h, c, gates), ref.lstm_cell_forward(pre, c_prev)):
        assert got.dtype == dtype
        np.testing.assert_allclose(cp.asnumpy(got), want, **tol)
    gates, c = cp.asnumpy(gates), cp.asnumpy(c)
    dpre, dc_prev = cuda.lstm_cell_backward(*(cp.asarray(a) for a in (gates, c_prev, c, dh, dc)))
    for got, want in zip((dpre, dc_prev), ref.lstm_cell_backward(gates, c_prev, c, dh, dc)):
        assert got.dtype == dtype
        np.testing.assert_allclose(cp.asnumpy(got), want, **tol)


def test_modules_are_compiled_once_per_device():
    cuda.im2col(cp.zeros((1, 1, 3, 3), cp.float32), 2, 2, 1, 1, 0, 0)
    before = dict(cuda._modules)
    cuda.col2im(cp.zeros((1, 4, 4), cp.float32), (1, 1, 3, 3), 2, 2, 1, 1, 0, 0)
    cuda.col2im(cp.zeros((1, 4, 4), cp.float64), (1, 1, 3, 3), 2, 2, 1, 1, 0, 0)   # one module, both types
    assert cuda._modules == before and ("conv2d.cu", cp.cuda.Device().id) in before


def test_a_float64_gradient_check_on_the_gpu_means_float64():
    """conv2d, conv_transpose2d and the LSTM scan pass tinygen's float64 gradcheck on the GPU."""
    import tinygen
    import tinygen.functional as F
    from tinygen.autograd.gradcheck import gradcheck
    rng = np.random.default_rng(0)
    x = tinygen.tensor(rng.standard_normal((2, 3, 6, 5)), requires_grad=True, device="cuda")
    w = tinygen.tensor(rng.standard_normal((4, 3, 3, 2)), requires_grad=True, device="cuda")
    assert F.conv2d(x, w).dtype == np.float64
    assert gradcheck(lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=1), (x, w))
    wt = tinygen.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True, device="cuda")
    assert gradcheck(lambda x, w: F.conv_transpose2d(x, w, stride=2), (x, wt))
