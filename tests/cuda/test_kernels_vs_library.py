"""The CUDA kernels against the library's own NumPy path, in the library's own use.

test_kernels_emulated.py checks each kernel against float64 references written
for the tests; this file closes the loop: the emulated kernels replace the NumPy
im2col/col2im inside ``F.conv2d`` and ``F.conv_transpose2d`` (the GPU path's
structure: kernels for the layout changes, GEMMs for the products), and the
results must match the NumPy path that users get on the CPU. The LSTM cell
kernels are compared with the scan's own NumPy cell functions.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import emulator
import tinygen
import tinygen.functional as F
import tinygen.functional.conv as conv_module
import tinygen.functional.recurrent as recurrent
from tinygen.cuda import Kernels

pytestmark = pytest.mark.skipif(not emulator.available(), reason="the CUDA emulator needs Linux and g++")


def kernels(order):
    return Kernels(np, lambda file, name: emulator.load(file, name, order=order, seed=3))


def conv_grads(x, w, stride, padding, transposed):
    xt = tinygen.tensor(x, requires_grad=True)
    wt = tinygen.tensor(w, requires_grad=True)
    op = F.conv_transpose2d if transposed else F.conv2d
    y = op(xt, wt, stride=stride, padding=padding)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    (y * tinygen.tensor(g)).sum().backward()
    return y.numpy(), xt.grad.numpy(), wt.grad.numpy()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 2), c=st.integers(1, 3), o=st.integers(1, 3), h=st.integers(3, 7),
       w=st.integers(3, 7), k=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 1),
       transposed=st.booleans(), order=st.sampled_from(["forward", "reverse", "random"]))
def test_conv_through_the_kernels_matches_the_numpy_path(monkeypatch, n, c, o, h, w, k, stride, padding,
                                                        transposed, order):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wshape = (c, o, k, k) if transposed else (o, c, k, k)
    weight = rng.standard_normal(wshape).astype(np.float32)
    if not transposed and k > min(h, w) + 2 * padding:
        return
    expected = conv_grads(x, weight, stride, padding, transposed)
    kern = kernels(order)
    with monkeypatch.context() as m:
        m.setattr(conv_module, "CHANNELS_LAST_MIN", 10 ** 9)   # the GPU's layout: channels first
        m.setattr(conv_module, "_im2col", kern.im2col)
        m.setattr(conv_module, "_col2im", kern.col2im)
        got = conv_grads(x, weight, stride, padding, transposed)
    for a, b, name in zip(got, expected, ("output", "input gradient", "weight gradient")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("order", ["forward", "reverse", "random"])
@pytest.mark.parametrize("N,H", [(1, 1), (3, 5), (4, 33)])
def test_lstm_cell_kernels_match_the_scan_cell(order, N, H):
    rng = np.random.default_rng(N * 100 + H)
    pre = rng.standard_normal((N, 4 * H)).astype(np.float32) * 2
    c_prev = rng.standard_normal((N, H)).astype(np.float32)
    dh = rng.standard_normal((N, H)).astype(np.float32)
    dc = rng.standard_normal((N, H)).astype(np.float32)
    kern = kernels(order)
    h_k, c_k, gates_k = kern.lstm_cell_forward(pre, c_prev)
    h_n, c_n, gates_n = recurrent._cell_forward(pre.copy(), c_prev)
    for a, b in ((h_k, h_n), (c_k, c_n), (gates_k, gates_n)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    dpre_k, dcp_k = kern.lstm_cell_backward(gates_n, c_prev, c_n, dh, dc)
    dpre_n, dcp_n = recurrent._cell_backward(gates_n, c_prev, c_n, dh, dc.copy())
    np.testing.assert_allclose(dpre_k, dpre_n, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dcp_k, dcp_n, rtol=1e-5, atol=1e-6)
