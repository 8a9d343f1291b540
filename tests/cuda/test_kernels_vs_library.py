"""The CUDA kernels against the library's own NumPy path, in the library's own use.

test_kernels_emulated.py checks each kernel against float64 references written
for the tests; this file closes the loop: the emulated kernels replace the NumPy
im2col/col2im inside ``F.conv2d`` and ``F.conv_transpose2d`` (the GPU path's
structure: kernels for the layout changes, GEMMs for the products), and the
results must match the NumPy path that users get on the CPU. The LSTM cell
kernels are compared with the scan's own NumPy cell functions. Both in float32
and in float64, where the kernels' float64 instantiations must agree with the
NumPy path to within float64's rounding (a float32 step anywhere would not).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import emulator
import tinygen
import tinygen.functional as F
import tinygen.functional._conv_arrays as arrays_module
import tinygen.functional._conv_im2col as im2col_module
import tinygen.functional._scan_arrays as recurrent   # the cell on arrays
from kernel_reference import DTYPES, cell_tolerance
from tinygen.cuda import Kernels

pytestmark = pytest.mark.skipif(not emulator.available(), reason="the CUDA emulator needs Linux and g++")


def kernels(order):
    return Kernels(np, lambda file, name: emulator.load(file, name, order=order, seed=3))


# (rtol, atol) of a convolution through the kernels against the NumPy path: the same
# products, their sums taken in another order, so a few roundings in the dtype
CONV_TOLERANCES = {np.float32: (1e-5, 1e-5), np.float64: (1e-12, 1e-12)}


def conv_grads(x, w, stride, padding, transposed):
    xt = tinygen.tensor(x, requires_grad=True)
    wt = tinygen.tensor(w, requires_grad=True)
    op = F.conv_transpose2d if transposed else F.conv2d
    y = op(xt, wt, stride=stride, padding=padding)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)
    (y * tinygen.tensor(g)).sum().backward()
    return y.numpy(), xt.grad.numpy(), wt.grad.numpy()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 2), c=st.integers(1, 3), o=st.integers(1, 3), h=st.integers(3, 7),
       w=st.integers(3, 7), k=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 1),
       transposed=st.booleans(), order=st.sampled_from(["forward", "reverse", "random"]),
       dtype=st.sampled_from(DTYPES))
def test_conv_through_the_kernels_matches_the_numpy_path(monkeypatch, n, c, o, h, w, k, stride, padding,
                                                        transposed, order, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wshape = (c, o, k, k) if transposed else (o, c, k, k)
    weight = rng.standard_normal(wshape).astype(dtype)
    if not transposed and k > min(h, w) + 2 * padding:
        return
    expected = conv_grads(x, weight, stride, padding, transposed)
    kern = kernels(order)
    calls = []

    def counted(f):
        def run(*args):
            calls.append(f)
            return f(*args)
        return run
    with monkeypatch.context() as m:
        m.setattr(arrays_module, "CHANNELS_LAST_MIN", 10 ** 9)   # the GPU's layout: channels first
        m.setattr(arrays_module, "_pointwise", lambda *args: False)   # and im2col even for 1x1
        m.setattr(im2col_module, "_im2col", counted(kern.im2col))
        m.setattr(im2col_module, "_col2im", counted(kern.col2im))
        got = conv_grads(x, weight, stride, padding, transposed)
    assert kern.im2col in calls and kern.col2im in calls   # the emulated kernels really ran
    rtol, atol = CONV_TOLERANCES[dtype]
    for a, b, name in zip(got, expected, ("output", "input gradient", "weight gradient")):
        assert a.dtype == dtype, name
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ["forward", "reverse", "random"])
@pytest.mark.parametrize("N,H", [(1, 1), (3, 5), (4, 33)])
def test_lstm_cell_kernels_match_the_scan_cell(order, N, H, dtype):
    rng = np.random.default_rng(N * 100 + H)
    pre = rng.standard_normal((N, 4 * H)).astype(dtype) * 2
    c_prev = rng.standard_normal((N, H)).astype(dtype)
    dh = rng.standard_normal((N, H)).astype(dtype)
    dc = rng.standard_normal((N, H)).astype(dtype)
    tol = cell_tolerance(dtype)
    kern = kernels(order)
    h_k, c_k, gates_k = kern.lstm_cell_forward(pre, c_prev)
    h_n, c_n, gates_n = recurrent._cell_forward(pre.copy(), c_prev)
    for a, b in ((h_k, h_n), (c_k, c_n), (gates_k, gates_n)):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, **tol)
    dpre_k, dcp_k = kern.lstm_cell_backward(gates_n, c_prev, c_n, dh, dc)
    dpre_n, dcp_n = recurrent._cell_backward(gates_n, c_prev, c_n, dh, dc.copy())
    np.testing.assert_allclose(dpre_k, dpre_n, **tol)
    np.testing.assert_allclose(dcp_k, dcp_n, **tol)


@pytest.mark.parametrize("transposed", [False, True])
def test_float64_gradcheck_through_the_kernels(monkeypatch, transposed):
    """What a float64 gradient check on a GPU runs: the float64 kernels, central differences at eps 1e-6.

    A kernel computing in float32 would add noise of ~1e-7 / 1e-6 to every difference quotient.
    """
    from tinygen.autograd.gradcheck import gradcheck
    rng = np.random.default_rng(2)
    x = tinygen.tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=True)
    w = tinygen.tensor(rng.standard_normal((2, 3, 3, 2) if transposed else (3, 2, 3, 2)), requires_grad=True)
    op = F.conv_transpose2d if transposed else F.conv2d
    kern = kernels("random")
    monkeypatch.setattr(arrays_module, "CHANNELS_LAST_MIN", 10 ** 9)
    monkeypatch.setattr(im2col_module, "_im2col", kern.im2col)
    monkeypatch.setattr(im2col_module, "_col2im", kern.col2im)
    assert gradcheck(lambda x, w: op(x, w, stride=(2, 1), padding=1), (x, w), atol=1e-8, rtol=1e-6)
