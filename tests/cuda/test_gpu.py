"""tinygen.cuda on a real GPU: the same comparisons as test_kernels_emulated.py, through CuPy.

Skipped unless CuPy is installed and sees a GPU. The kernels are compiled by
NVRTC (cupy.RawModule) from the same kernels/*.cu files the emulator runs;
the float32 error bounds of kernel_reference.py hold on the GPU too (it may fuse a
multiply and an add into one rounding, which only tightens them).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kernel_reference as ref
from kernel_reference import ATOL, RTOL, case, conv_cases, lstm_inputs
from tinygen import backend

cp = pytest.importorskip("cupy", reason="CuPy is not installed")
if not backend.cuda_available():
    pytest.skip("CuPy sees no CUDA GPU", allow_module_level=True)

from tinygen import cuda  # noqa: E402

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(conv_cases(), st.integers(0, 2**32 - 1))
def test_im2col_and_col2im(args, seed):
    x, kh, kw, sh, sw, ph, pw = args
    cols = cuda.im2col(cp.asarray(x), kh, kw, sh, sw, ph, pw)
    np.testing.assert_array_equal(cp.asnumpy(cols), ref.im2col(x, kh, kw, sh, sw, ph, pw))
    y = np.random.default_rng(seed).standard_normal(cols.shape).astype(np.float32)
    got = cp.asnumpy(cuda.col2im(cp.asarray(y), x.shape, kh, kw, sh, sw, ph, pw))
    want = ref.col2im(y, x.shape, kh, kw, sh, sw, ph, pw)
    assert (np.abs(got - want) <= ref.col2im_tolerance(y, x.shape, kh, kw, sh, sw, ph, pw)).all()
    again = cp.asnumpy(cuda.col2im(cp.asarray(y), x.shape, kh, kw, sh, sw, ph, pw))
    np.testing.assert_array_equal(got, again)   # a gather: the same bits every run


def test_large_layer_is_deterministic_and_right():
    x, kh, kw, sh, sw, ph, pw = case(16, 32, 33, 31, 4, 4, 2, 2, 1, 1, seed=1)
    cols = cuda.im2col(cp.asarray(x), kh, kw, sh, sw, ph, pw)
    np.testing.assert_array_equal(cp.asnumpy(cols), ref.im2col(x, kh, kw, sh, sw, ph, pw))
    back = cp.asnumpy(cuda.col2im(cols, x.shape, kh, kw, sh, sw, ph, pw))
    c = cp.asnumpy(cols)
    assert (np.abs(back - ref.col2im(c, x.shape, kh, kw, sh, sw, ph, pw))
            <= ref.col2im_tolerance(c, x.shape, kh, kw, sh, sw, ph, pw)).all()


@pytest.mark.parametrize("n, o, r, l", [(1, 16, 16, 16), (3, 17, 33, 17), (64, 64, 288, 196), (2, 3, 5, 1000)])
def test_conv2d_grad_weight(n, o, r, l):
    rng = np.random.default_rng(n + o + r + l)
    dy = rng.standard_normal((n, o, l)).astype(np.float32)
    cols = rng.standard_normal((n, r, l)).astype(np.float32)
    dw = cp.asnumpy(cuda.conv2d_grad_weight(cp.asarray(dy), cp.asarray(cols)))
    want, bound = ref.grad_weight(dy, cols)
    assert (np.abs(dw - want) <= bound).all()
    np.testing.assert_array_equal(dw, cp.asnumpy(cuda.conv2d_grad_weight(cp.asarray(dy), cp.asarray(cols))))


@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 64), H=st.integers(1, 300), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([0.1, 3.0, 30.0]))
def test_lstm_cell(N, H, seed, scale):
    pre, c_prev, dh, dc = lstm_inputs(N, H, seed, scale)
    h, c, gates = cuda.lstm_cell_forward(cp.asarray(pre), cp.asarray(c_prev))
    for got, want in zip((h, c, gates), ref.lstm_cell_forward(pre, c_prev)):
        np.testing.assert_allclose(cp.asnumpy(got), want, rtol=RTOL, atol=ATOL)
    gates, c = cp.asnumpy(gates), cp.asnumpy(c)
    dpre, dc_prev = cuda.lstm_cell_backward(*(cp.asarray(a) for a in (gates, c_prev, c, dh, dc)))
    for got, want in zip((dpre, dc_prev), ref.lstm_cell_backward(gates, c_prev, c, dh, dc)):
        np.testing.assert_allclose(cp.asnumpy(got), want, rtol=RTOL, atol=ATOL)


def test_modules_are_compiled_once_per_device():
    cuda.im2col(cp.zeros((1, 1, 3, 3), cp.float32), 2, 2, 1, 1, 0, 0)
    before = dict(cuda._modules)
    cuda.col2im(cp.zeros((1, 4, 4), cp.float32), (1, 1, 3, 3), 2, 2, 1, 1, 0, 0)
    assert cuda._modules == before and ("conv2d.cu", cp.cuda.Device().id) in before
