"""kernels/pixelrnn.cu: one step of the Row / Diagonal LSTM scans, on the SIMT emulator (and a GPU).

As in test_kernels_emulated.py, the host code is tinygen.cuda's own
(``Kernels(numpy, emulated kernels)``) and every case runs in several thread
orders, which must agree bit for bit.

The references. A step first adds K shifted taps to a float32 array:

    forward    pre[s] = x[s]  + sum_k proj[s + k - pad, k]
    backward   dh[s]  = dy[s] + sum_k q[s - k + pad, k]

The kernel adds them one float32 addition at a time, in the order k = 0, 1, ...;
an IEEE float32 addition is exactly rounded, so the reference does the same
additions in float32 in the same order and gets the same bits (no fused
multiply-add can enter a chain of additions). The rest is the LSTM cell of
lstm.cu, compared with kernel_reference's float64 cell within its bounds
(RTOL, ATOL). With no taps (the first step) the step is lstm.cu's cell, and
must agree with that kernel bit for bit.

Last, the whole scan: F.row_lstm / F.diagonal_lstm's op run with the emulated
kernels in place of the NumPy cell (what it does on a GPU) must agree with the
float64 NumPy path, forward and every gradient.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import emulator
import kernel_reference as ref
from kernel_reference import ATOL, RTOL
from tinygen import backend, cuda
from tinygen.autograd import Tensor, grad
from tinygen.cuda import DIAGONAL_LSTM_KERNEL, ROW_LSTM_KERNEL, Kernels
from tinygen.functional.recurrent import DiagonalLSTMScan, RowLSTMScan

ORDERS = [("forward", 0), ("reverse", 0), ("random", 1), ("random", 2)]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONVS = {"row": ROW_LSTM_KERNEL, "diagonal": DIAGONAL_LSTM_KERNEL}   # (K, pad)

emulated = pytest.mark.skipif(not emulator.available(), reason="the CUDA emulator needs Linux and g++")


def kernels(order="forward", seed=0):
    return Kernels(np, lambda file, name: emulator.load(file, name, order=order, seed=seed))


def in_every_order(run):
    """run(kernels) in every thread order; asserts the results agree bit for bit and returns them."""
    results = [run(kernels(order, seed)) for order, seed in ORDERS]
    for (order, _), result in zip(ORDERS[1:], results[1:]):
        for a, b in zip(results[0], result):
            np.testing.assert_array_equal(a, b, err_msg=f"forward and {order} thread orders disagree")
    return results[0]


# --- references ----------------------------------------------------------------------

def add_taps(base, taps, pad, direction):
    """base[:, s] + sum_k taps[:, s + direction (k - pad), k], in float32, k in increasing order."""
    out = np.array(base, np.float32)
    S, K = base.shape[1], 0 if taps is None else taps.shape[2]
    for s in range(S):
        for k in range(K):
            src = s + direction * (k - pad)
            if 0 <= src < S:
                out[:, s] += taps[:, src, k]
    return out


def step_inputs(N, S, H, K, seed, scale=1.0):
    """x (N, S, 4H) of size ~scale; proj (N, S, K, 4H) of size ~scale / K; c_prev, dy, dc; q (N, S, K, H)."""
    rng = np.random.default_rng(seed)
    f32 = lambda shape, s=1.0: (s * rng.standard_normal(shape)).astype(np.float32)   # noqa: E731
    return (f32((N, S, 4 * H), scale), f32((N, S, K, 4 * H), scale / K), f32((N, S, H)),
            f32((N, S, H)), f32((N, S, K, H), 1 / K), f32((N, S, H)))


def check_step(N, S, H, K, pad, seed, scale, first=False):
    x, proj, c_prev, dy, q, dc = step_inputs(N, S, H, K, seed, scale)
    proj = None if first else proj
    h, c, gates = in_every_order(lambda k: k.pixelrnn_step_forward(x, proj, c_prev, K, pad))
    for name, got, want in zip(("h", "c", "gates"), (h, c, gates),
                               ref.lstm_cell_forward(add_taps(x, proj, pad, +1).reshape(N * S, 4 * H),
                                                     c_prev.reshape(N * S, H))):
        assert got.dtype == np.float32 and got.shape[:2] == (N, S)
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=RTOL, atol=ATOL, err_msg=name)
    # backward from the kernel's own float32 gates and cell, as the scan uses it
    q = None if first else q
    dpre, dc_prev = in_every_order(lambda k: k.pixelrnn_step_backward(gates, c_prev, c, dy, q, dc, K, pad))
    flat = lambda a: a.reshape(N * S, -1)   # noqa: E731
    want = ref.lstm_cell_backward(flat(gates), flat(c_prev), flat(c), flat(add_taps(dy, q, pad, -1)), flat(dc))
    np.testing.assert_allclose(flat(dpre), want[0], rtol=RTOL, atol=ATOL, err_msg="dpre")
    np.testing.assert_allclose(flat(dc_prev), want[1], rtol=RTOL, atol=ATOL, err_msg="dc_prev")
    return (h, c, gates), (dpre, dc_prev)


# --- one step ------------------------------------------------------------------------

@emulated
@pytest.mark.parametrize("kind", sorted(CONVS))
@SETTINGS
@given(N=st.integers(1, 3), S=st.integers(1, 9), H=st.integers(1, 40), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([0.1, 3.0, 30.0]), first=st.booleans())
@example(N=1, S=1, H=1, seed=0, scale=3.0, first=False)     # one position: every tap is padding but one
@example(N=1, S=2, H=1, seed=1, scale=3.0, first=False)
@example(N=3, S=7, H=33, seed=2, scale=30.0, first=False)   # more units than one block, saturated gates
def test_step_matches_the_float64_cell_on_float32_tap_sums(kind, N, S, H, seed, scale, first):
    K, pad = CONVS[kind]
    check_step(N, S, H, K, pad, seed, scale, first)


@emulated
def test_first_step_is_the_plain_lstm_cell_bit_for_bit():
    N, S, H, K = 2, 5, 6, 3
    x, _, c_prev, dy, _, dc = step_inputs(N, S, H, K, seed=3, scale=3.0)
    k = kernels()
    h, c, gates = k.pixelrnn_step_forward(x, None, c_prev, K, 1)
    h2, c2, gates2 = k.lstm_cell_forward(x.reshape(N * S, 4 * H), c_prev.reshape(N * S, H))
    for a, b in ((h, h2), (c, c2), (gates, gates2)):
        np.testing.assert_array_equal(a.reshape(b.shape), b)
    dpre, dc_prev = k.pixelrnn_step_backward(gates, c_prev, c, dy, None, dc, K, 1)
    dpre2, dc_prev2 = k.lstm_cell_backward(gates2, c_prev.reshape(N * S, H), c2, dy.reshape(N * S, H),
                                           dc.reshape(N * S, H))
    np.testing.assert_array_equal(dpre.reshape(dpre2.shape), dpre2)
    np.testing.assert_array_equal(dc_prev.reshape(dc_prev2.shape), dc_prev2)


@emulated
def test_in_place_buffers_and_missing_dc():
    """gates may be pre itself and dc_prev may be dc (how the scan calls them); dc=None means zero."""
    N, S, H, (K, pad) = 2, 4, 3, ROW_LSTM_KERNEL
    x, proj, c_prev, dy, q, dc = step_inputs(N, S, H, K, seed=4)
    k = kernels()
    want_f = k.pixelrnn_step_forward(x, proj, c_prev, K, pad)
    buf, h, c = x.copy(), np.empty_like(c_prev), np.empty_like(c_prev)
    got = k.pixelrnn_step_forward(buf, proj, c_prev, K, pad, out=(h, c, buf))
    assert got[0] is h and got[1] is c and got[2] is buf
    for a, b in zip(got, want_f):
        np.testing.assert_array_equal(a, b)
    want_b = k.pixelrnn_step_backward(buf, c_prev, c, dy, q, dc, K, pad)
    carried, dpre = dc.copy(), np.empty_like(x)
    got = k.pixelrnn_step_backward(buf, c_prev, c, dy, q, carried, K, pad, out=(dpre, carried))
    assert got[1] is carried
    for a, b in zip(got, want_b):
        np.testing.assert_array_equal(a, b)
    zero = k.pixelrnn_step_backward(buf, c_prev, c, dy, q, np.zeros_like(dc), K, pad)
    for a, b in zip(k.pixelrnn_step_backward(buf, c_prev, c, dy, q, None, K, pad), zero):
        np.testing.assert_array_equal(a, b)
    # float64 arrays given as out= are filled with the float32 results
    out64 = (np.empty((N, S, H)), np.empty((N, S, H)), np.empty((N, S, 4 * H)))
    got = k.pixelrnn_step_forward(x.astype(np.float64), proj, c_prev, K, pad, out=out64)
    assert got[0] is out64[0]
    for a, b in zip(got, want_f):
        np.testing.assert_array_equal(a, b)


@emulated
@pytest.mark.parametrize("grid, block", [(1, 32), (3, 64), (1, 1)])
def test_grid_stride_loops_cover_everything_with_few_threads(grid, block):
    N, S, H, (K, pad) = 2, 5, 7, DIAGONAL_LSTM_KERNEL
    x, proj, c_prev, dy, q, dc = step_inputs(N, S, H, K, seed=5)
    want_f = kernels().pixelrnn_step_forward(x, proj, c_prev, K, pad)
    gates, h, c = x.copy(), np.zeros_like(c_prev), np.zeros_like(c_prev)
    ints = tuple(np.int32(v) for v in (N, S, H, K, pad))
    emulator.load("pixelrnn.cu", "pixelrnn_step_forward")(grid, block, (gates, proj, c_prev, h, c) + ints)
    for a, b in zip((h, c, gates), want_f):
        np.testing.assert_array_equal(a, b)
    want_b = kernels().pixelrnn_step_backward(gates, c_prev, c, dy, q, dc, K, pad)
    carried, dpre = dc.copy(), np.zeros_like(x)
    emulator.load("pixelrnn.cu", "pixelrnn_step_backward")(
        grid, block, (gates, c_prev, c, dy, q, carried, dpre) + ints, order="reverse")
    for a, b in zip((dpre, carried), want_b):
        np.testing.assert_array_equal(a, b)


@emulated
def test_host_code_rejects_bad_shapes_with_the_shapes_in_the_message():
    k = kernels()
    z = lambda *s: np.zeros(s, np.float32)   # noqa: E731
    with pytest.raises(ValueError, match=r"expected pre \(N, S, 4H\) and c_prev \(N, S, H\), got pre \(2, 3, 8\) "
                                         r"and c_prev \(2, 3, 3\)"):
        k.pixelrnn_step_forward(z(2, 3, 8), None, z(2, 3, 3), 3, 1)
    with pytest.raises(ValueError,
                       match=r"proj has shape \(2, 3, 2, 8\), expected \(N, S, K, 8\) = \(2, 3, 3, 8\)"):
        k.pixelrnn_step_forward(z(2, 3, 8), z(2, 3, 2, 8), z(2, 3, 2), 3, 1)
    with pytest.raises(ValueError, match=r"dy has shape \(2, 4, 2\), but gates \(2, 3, 8\) needs \(2, 3, 2\)"):
        k.pixelrnn_step_backward(z(2, 3, 8), z(2, 3, 2), z(2, 3, 2), z(2, 4, 2), None, None, 2, 1)
    with pytest.raises(ValueError, match=r"q has shape \(2, 3, 2, 8\), expected \(N, S, K, 2\)"):
        k.pixelrnn_step_backward(z(2, 3, 8), z(2, 3, 2), z(2, 3, 2), z(2, 3, 2), z(2, 3, 2, 8), None, 2, 1)


@emulated
def test_kernel_source_is_found():
    assert cuda.kernel_path("pixelrnn.cu").is_file()
    assert set(emulator.kernels_in(cuda.kernel_source("pixelrnn.cu"))) == {"pixelrnn_step_forward",
                                                                            "pixelrnn_step_backward"}


# --- the whole scan, through the emulated kernels -----------------------------------------

SCANS = {"row": RowLSTMScan, "diagonal": DiagonalLSTMScan}


@pytest.mark.parametrize("kind", SCANS)
def test_each_scan_finds_its_gpu_launchers_by_name(kind):
    """The GPU path never runs where there is no GPU: at least its launchers must exist."""
    forward, backward = SCANS[kind]().gpu_steps()
    assert forward is getattr(cuda, f"{SCANS[kind].name}_step_forward")
    assert backward is getattr(cuda, f"{SCANS[kind].name}_step_backward")


def emulated_steps(kind, order="forward", seed=0):
    """(step forward, step backward) with the signatures of tinygen.cuda.row_lstm_step_*, emulated."""
    k, (K, pad) = kernels(order, seed), CONVS[kind]
    return (lambda pre, proj, c_prev, out=None: k.pixelrnn_step_forward(pre, proj, c_prev, K, pad, out=out),
            lambda gates, c_prev, c, dy, q, dc, out=None:
                k.pixelrnn_step_backward(gates, c_prev, c, dy, q, dc, K, pad, out=out))


def run_scan(kind, arrays, v, steps=None):
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    y = SCANS[kind].apply(*inputs, kernels=steps)
    return [y.numpy()] + [g.numpy() for g in grad((y * Tensor(v.astype(arrays[0].dtype))).sum(), inputs)]


@emulated
@pytest.mark.parametrize("kind", sorted(SCANS))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(N=st.integers(1, 3), H=st.integers(1, 5), R=st.integers(1, 6), W=st.integers(1, 6),
       seed=st.integers(0, 2**32 - 1))
@example(N=1, H=1, R=1, W=1, seed=0)
@example(N=2, H=3, R=5, W=9, seed=1)
def test_scan_through_emulated_kernels_matches_numpy_float64(kind, N, H, R, W, seed):
    K = CONVS[kind][0]
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((N, 4 * H, R, W)), rng.standard_normal((4 * H, H, K)) / np.sqrt(H),
              0.5 * rng.standard_normal(4 * H)]
    v = rng.standard_normal((N, H, R, W))
    want = run_scan(kind, arrays, v)
    arrays32 = [a.astype(np.float32) for a in arrays]
    got = run_scan(kind, arrays32, v, emulated_steps(kind))
    again = run_scan(kind, arrays32, v, emulated_steps(kind, "random", seed % 7))
    for name, a, b, c in zip(["h", "dx_proj", "dw_ss", "db_ss"], got, want, again):
        assert a.dtype == np.float32 and a.shape == b.shape, name
        np.testing.assert_array_equal(a, c, err_msg=f"{name}: thread orders disagree")
        # float32 through T steps of a contracting recurrence: errors of a few ulp per step,
        # summed over at most N S T terms in the weight gradients
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5 * (1 + np.abs(b).max()), err_msg=name)


# --- on a GPU, where there is one -----------------------------------------------------------

def _gpu():
    return backend.cuda_available()


@pytest.mark.skipif(not _gpu(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("kind", sorted(CONVS))
@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 16), S=st.integers(1, 40), H=st.integers(1, 70), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([0.1, 3.0, 30.0]), first=st.booleans())
def test_step_on_the_gpu(kind, N, S, H, seed, scale, first):
    import cupy as cp
    K, pad = CONVS[kind]
    fwd = getattr(cuda, f"{kind}_lstm_step_forward")
    bwd = getattr(cuda, f"{kind}_lstm_step_backward")
    x, proj, c_prev, dy, q, dc = step_inputs(N, S, H, K, seed, scale)
    proj, q = (None, None) if first else (proj, q)
    dev = lambda a: None if a is None else cp.asarray(a)   # noqa: E731
    h, c, gates = (cp.asnumpy(a) for a in fwd(dev(x), dev(proj), dev(c_prev)))
    flat = lambda a: a.reshape(N * S, -1)   # noqa: E731
    # a fused multiply-add may enter the cell (not the tap sums): the same bounds hold
    for got, want in zip((h, c, gates), ref.lstm_cell_forward(flat(add_taps(x, proj, pad, +1)), flat(c_prev))):
        np.testing.assert_allclose(flat(got), want, rtol=RTOL, atol=ATOL)
    dpre, dc_prev = (cp.asnumpy(a) for a in bwd(*(dev(a) for a in (gates, c_prev, c, dy, q, dc))))
    want = ref.lstm_cell_backward(flat(gates), flat(c_prev), flat(c), flat(add_taps(dy, q, pad, -1)), flat(dc))
    np.testing.assert_allclose(flat(dpre), want[0], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(flat(dc_prev), want[1], rtol=RTOL, atol=ATOL)


@pytest.mark.skipif(not _gpu(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("kind", sorted(SCANS))
def test_scan_on_the_gpu_matches_numpy_float64(kind):
    import cupy as cp
    K = CONVS[kind][0]
    rng = np.random.default_rng(7)
    N, H, R, W = 16, 16, 12, 23
    arrays = [rng.standard_normal((N, 4 * H, R, W)), rng.standard_normal((4 * H, H, K)) / np.sqrt(H),
              0.5 * rng.standard_normal(4 * H)]
    v = rng.standard_normal((N, H, R, W))
    want = run_scan(kind, arrays, v)
    inputs = [Tensor(cp.asarray(a.astype(np.float32)), requires_grad=True) for a in arrays]
    y = SCANS[kind].apply(*inputs)
    got = [y.numpy()] + [g.numpy() for g in grad((y * Tensor(cp.asarray(v.astype(np.float32)))).sum(), inputs)]
    for name, a, b in zip(["h", "dx_proj", "dw_ss", "db_ss"], got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5 * (1 + np.abs(b).max()), err_msg=name)
