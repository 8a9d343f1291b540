"""tinygen.cuda's launchers on stand-in arrays: the same bits as the same host code on NumPy
arrays with the emulator's kernels (``Kernels(numpy, emulator.load)``), results on the device,
the caller's ``out=`` arrays written in place (a strided one through a copy), and one compiled
module per (file, device) for both dtypes."""
import numpy as np
import pytest

import emulator
import fake_cupy as cp
from tinygen import cuda
from tinygen.cuda import DIAGONAL_LSTM_KERNEL, ROW_LSTM_KERNEL, Kernels

HOST = Kernels(np, emulator.load)


def _pair(rng, dtype, *shape):
    a = rng.standard_normal(shape).astype(dtype)
    return cp.asarray(a), a


def _same(device_results, host_results):
    for d, h in zip(device_results, host_results):
        assert isinstance(d, cp.ndarray) and d.dtype == h.dtype
        np.testing.assert_array_equal(cp.asnumpy(d), h)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_and_lstm_launchers_match_the_host_code(dtype):
    rng = np.random.default_rng(0)
    xd, xh = _pair(rng, dtype, 3, 2, 5, 4)
    _same([cuda.im2col(xd, 3, 2, 2, 1, 1, 0)], [HOST.im2col(xh, 3, 2, 2, 1, 1, 0)])
    cd, ch = _pair(rng, dtype, 3, 2 * 6, 3 * 3)
    _same([cuda.col2im(cd, (3, 2, 5, 4), 3, 2, 2, 1, 1, 0)], [HOST.col2im(ch, (3, 2, 5, 4), 3, 2, 2, 1, 1, 0)])
    (dyd, dyh), (cold, colh) = _pair(rng, dtype, 40, 3, 7), _pair(rng, dtype, 40, 5, 7)   # splits the batch
    _same([cuda.conv2d_grad_weight(dyd, cold)], [HOST.conv2d_grad_weight(dyh, colh)])
    (pd, ph), (c0d, c0h) = _pair(rng, dtype, 4, 12), _pair(rng, dtype, 4, 3)
    _same(cuda.lstm_cell_forward(pd, c0d), HOST.lstm_cell_forward(ph, c0h))
    args = [_pair(rng, dtype, *s) for s in ((4, 12), (4, 3), (4, 3), (4, 3))]
    _same(cuda.lstm_cell_backward(*[d for d, _ in args], None), HOST.lstm_cell_backward(*[h for _, h in args], None))


@pytest.mark.parametrize("kind, kernel", [("row", ROW_LSTM_KERNEL), ("diagonal", DIAGONAL_LSTM_KERNEL)])
def test_scan_steps_write_the_callers_out_arrays(kind, kernel):
    rng = np.random.default_rng(1)
    K, pad = kernel
    N, S, H = 2, 5, 3
    (pre_d, pre_h), (proj_d, proj_h), (c_d, c_h) = (_pair(rng, np.float64, *s)
                                                      for s in ((N, S, 4 * H), (N, S, K, 4 * H), (N, S, H)))
    want = HOST.pixelrnn_step_forward(pre_h.copy(), proj_h, c_h, K, pad)
    wide = cp.zeros((N, S, 2 * H))
    out = (wide[:, :, :H], cp.zeros((N, S, H)), pre_d)      # h strided (a copy), gates = pre in place
    got = getattr(cuda, f"{kind}_lstm_step_forward")(pre_d, proj_d, c_d, out=out)
    assert got[0] is out[0] and got[2] is pre_d
    _same(got, want)
    np.testing.assert_array_equal(cp.asnumpy(wide[:, :, :H]), want[0])
    gates_d, gates_h = cp.asarray(want[2]), want[2]
    rest = [_pair(rng, np.float64, *s) for s in ((N, S, H), (N, S, H), (N, S, H), (N, S, K, H), (N, S, H))]
    got = getattr(cuda, f"{kind}_lstm_step_backward")(gates_d, *[d for d, _ in rest])
    _same(got, HOST.pixelrnn_step_backward(gates_h, *[h for _, h in rest], K, pad))


def test_modules_are_compiled_once_per_file_and_device_for_both_dtypes():
    cuda.im2col(cp.zeros((1, 1, 3, 3), np.float32), 2, 2, 1, 1, 0, 0)
    before = dict(cuda._modules)
    cuda.col2im(cp.zeros((1, 4, 4), np.float32), (1, 1, 3, 3), 2, 2, 1, 1, 0, 0)
    cuda.col2im(cp.zeros((1, 4, 4), np.float64), (1, 1, 3, 3), 2, 2, 1, 1, 0, 0)
    assert cuda._modules == before and ("conv2d.cu", 0) in before
    assert [name for name, *_ in cp.LAUNCHES] == ["im2col_f32", "col2im_f32", "col2im_f64"]


def test_a_host_array_handed_to_a_launcher_is_refused_as_on_a_gpu():
    with pytest.raises(TypeError, match="Unsupported type"):
        cuda.lstm_cell_forward(np.zeros((2, 8)), np.zeros((2, 2)))
