"""kernels/pixelrnn.cu: one step of the Row / Diagonal LSTM scans, on the SIMT emulator (and a GPU).

As in test_kernels_emulated.py, the host code is tinygen.cuda's own
(``Kernels(numpy, emulated kernels)``) and every case runs in several thread
orders, which must agree bit for bit.

Every case runs the float32 and the float64 instantiation of the kernels.

The references. A step first adds K shifted taps to an array of its dtype:

    forward    pre[s] = x[s]  + sum_k proj[s + k - pad, k]
    backward   dh[s]  = dy[s] + sum_k q[s - k + pad, k]

The kernel adds them one addition at a time, in the order k = 0, 1, ...; an
IEEE addition is exactly rounded, so the reference does the same additions in
the same dtype in the same order and gets the same bits (no fused multiply-add
can enter a chain of additions). The rest is the LSTM cell of lstm.cu, compared
with kernel_reference's float64 cell within its bounds for the dtype
(cell_tolerance). With no taps (the first step) the step is lstm.cu's cell, and
must agree with that kernel bit for bit.

Last, the whole scan: F.row_lstm / F.diagonal_lstm's op run with the emulated
kernels in place of the NumPy cell (what it does on a GPU) must agree with the
float64 NumPy path, forward and every gradient: within float32's error through
the float32 kernels, within float64's through the float64 ones.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import emulator
import kernel_reference as ref
from kernel_reference import DTYPES, cell_tolerance
from tinygen import backend, cuda, resources
from tinygen.autograd import Tensor, grad
from tinygen.cuda import DIAGONAL_LSTM_KERNEL, ROW_LSTM_KERNEL, Kernels, kernel_name
from tinygen.functional.pixel_scans import DiagonalLSTMScan, RowLSTMScan

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
    """base[:, s] + sum_k taps[:, s + direction (k - pad), k], in base's dtype, k in increasing order."""
    out = np.array(base)
    S, K = base.shape[1], 0 if taps is None else taps.shape[2]
    for s in range(S):
        for k in range(K):
            src = s + direction * (k - pad)
            if 0 <= src < S:
                out[:, s] += taps[:, src, k]
    return out


def step_inputs(N, S, H, K, seed, scale=1.0, dtype=np.float32):
    """x (N, S, 4H) of size ~scale; proj (N, S, K, 4H) of size ~scale / K; c_prev, dy, dc; q (N, S, K, H)."""
    rng = np.random.default_rng(seed)
    draw = lambda shape, s=1.0: (s * rng.standard_normal(shape)).astype(dtype)   # noqa: E731
    return (draw((N, S, 4 * H), scale), draw((N, S, K, 4 * H), scale / K), draw((N, S, H)),
            draw((N, S, H)), draw((N, S, K, H), 1 / K), draw((N, S, H)))


def check_step(N, S, H, K, pad, seed, scale, first=False, dtype=np.float32):
    x, proj, c_prev, dy, q, dc = step_inputs(N, S, H, K, seed, scale, dtype)
    tol = cell_tolerance(dtype)
    proj = None if first else proj
    h, c, gates = in_every_order(lambda k: k.pixelrnn_step_forward(x, proj, c_prev, K, pad))
    for name, got, want in zip(("h", "c", "gates"), (h, c, gates),
                               ref.lstm_cell_forward(add_taps(x, proj, pad, +1).reshape(N * S, 4 * H),
                                                     c_prev.reshape(N * S, H))):
        assert got.dtype == dtype and got.shape[:2] == (N, S)
        np.testing.assert_allclose(got.reshape(want.shape), want, **tol, err_msg=name)
    # backward from the kernel's own gates and cell, as the scan uses it
    q = None if first else q
    dpre, dc_prev = in_every_order(lambda k: k.pixelrnn_step_backward(gates, c_prev, c, dy, q, dc, K, pad))
    flat = lambda a: a.reshape(N * S, -1)   # noqa: E731
    want = ref.lstm_cell_backward(flat(gates), flat(c_prev), flat(c), flat(add_taps(dy, q, pad, -1)), flat(dc))
    assert dpre.dtype == dc_prev.dtype == dtype
    np.testing.assert_allclose(flat(dpre), want[0], **tol, err_msg="dpre")
    np.testing.assert_allclose(flat(dc_prev), want[1], **tol, err_msg="dc_prev")
    return (h, c, gates), (dpre, dc_prev)


# --- one step ------------------------------------------------------------------------

@emulated
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", sorted(CONVS))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(N=st.integers(1, 3), S=st.integers(1, 9), H=st.integers(1, 40), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([0.1, 3.0, 30.0]), first=st.booleans())
@example(N=1, S=1, H=1, seed=0, scale=3.0, first=False)     # one position: every tap is padding but one
@example(N=1, S=2, H=1, seed=1, scale=3.0, first=False)
@example(N=3, S=7, H=33, seed=2, scale=30.0, first=False)   # more units than one block, saturated gates
def test_step_matches_the_float64_cell_on_same_dtype_tap_sums(kind, dtype, N, S, H, seed, scale, first):
    K, pad = CONVS[kind]
    check_step(N, S, H, K, pad, seed, scale, first, dtype)


@emulated
@pytest.mark.parametrize("dtype", DTYPES)
def test_first_step_is_the_plain_lstm_cell_bit_for_bit(dtype):
    N, S, H, K = 2, 5, 6, 3
    x, _, c_prev, dy, _, dc = step_inputs(N, S, H, K, seed=3, scale=3.0, dtype=dtype)
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
    # a non-contiguous out= array is filled from the kernel's own result
    h_strided = np.empty((N, S, 2 * H), np.float32)[:, :, ::2]
    got = k.pixelrnn_step_forward(x, proj, c_prev, K, pad, out=(h_strided, None, None))
    assert got[0] is h_strided
    for a, b in zip(got, want_f):
        np.testing.assert_array_equal(a, b)


@emulated
def test_a_step_never_casts():
    """Mixed dtypes, an out= of another dtype, or a dtype without kernels: a TypeError naming them."""
    N, S, H, (K, pad) = 2, 4, 3, ROW_LSTM_KERNEL
    x, proj, c_prev, dy, q, dc = step_inputs(N, S, H, K, seed=4)
    k = kernels()
    with pytest.raises(TypeError, match=r"pixelrnn_step_forward: .*one dtype, got pre float64, proj float32"):
        k.pixelrnn_step_forward(x.astype(np.float64), proj, c_prev, K, pad)
    out64 = (np.empty((N, S, H)), np.empty((N, S, H)), np.empty((N, S, 4 * H)))
    with pytest.raises(TypeError, match=r"out\[0\] has dtype float64, but the step computes in float32"):
        k.pixelrnn_step_forward(x, proj, c_prev, K, pad, out=out64)
    with pytest.raises(TypeError, match=r"pixelrnn_step_backward: .*float32 and float64 arrays, got float16"):
        k.pixelrnn_step_backward(*(a.astype(np.float16) for a in (x, c_prev, c_prev, dy, q, dc)), K, pad)


@emulated
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("grid, block", [(1, 32), (3, 64), (1, 1)])
def test_grid_stride_loops_cover_everything_with_few_threads(grid, block, dtype):
    N, S, H, (K, pad) = 2, 5, 7, DIAGONAL_LSTM_KERNEL
    x, proj, c_prev, dy, q, dc = step_inputs(N, S, H, K, seed=5, dtype=dtype)
    want_f = kernels().pixelrnn_step_forward(x, proj, c_prev, K, pad)
    gates, h, c = x.copy(), np.zeros_like(c_prev), np.zeros_like(c_prev)
    ints = tuple(np.int32(v) for v in (N, S, H, K, pad))
    emulator.load("pixelrnn.cu", kernel_name("pixelrnn_step_forward", dtype))(
        grid, block, (gates, proj, c_prev, h, c) + ints)
    for a, b in zip((h, c, gates), want_f):
        np.testing.assert_array_equal(a, b)
    want_b = kernels().pixelrnn_step_backward(gates, c_prev, c, dy, q, dc, K, pad)
    carried, dpre = dc.copy(), np.zeros_like(x)
    emulator.load("pixelrnn.cu", kernel_name("pixelrnn_step_backward", dtype))(
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
    assert resources.kernel_path("pixelrnn.cu").is_file()
    assert set(emulator.kernels_in(resources.kernel_source("pixelrnn.cu"))) == {
        f"pixelrnn_step_{way}_{suffix}" for way in ("forward", "backward") for suffix in ("f32", "f64")}


# --- the whole scan, through the emulated kernels -----------------------------------------

SCANS = {"row": RowLSTMScan, "diagonal": DiagonalLSTMScan}
# (rtol, atol / (1 + max |value|)) of a whole scan against the float64 NumPy path. Through T
# steps of a contracting recurrence: errors of a few ulp per step, summed over at most N S T
# terms in the weight gradients; float64's bound is one that float32 cannot meet.
SCAN_TOLERANCES = {np.float32: (1e-4, 2e-5), np.float64: (1e-11, 1e-12)}


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
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", sorted(SCANS))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(N=st.integers(1, 3), H=st.integers(1, 5), R=st.integers(1, 6), W=st.integers(1, 6),
       seed=st.integers(0, 2**32 - 1))
@example(N=1, H=1, R=1, W=1, seed=0)
@example(N=2, H=3, R=5, W=9, seed=1)
def test_scan_through_emulated_kernels_matches_numpy_float64(kind, dtype, N, H, R, W, seed):
    K = CONVS[kind][0]
    rtol, atol = SCAN_TOLERANCES[dtype]
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((N, 4 * H, R, W)), rng.standard_normal((4 * H, H, K)) / np.sqrt(H),
              0.5 * rng.standard_normal(4 * H)]
    v = rng.standard_normal((N, H, R, W))
    want = run_scan(kind, arrays, v)
    typed = [a.astype(dtype) for a in arrays]
    got = run_scan(kind, typed, v, emulated_steps(kind))
    again = run_scan(kind, typed, v, emulated_steps(kind, "random", seed % 7))
    for name, a, b, c in zip(["h", "dx_proj", "dw_ss", "db_ss"], got, want, again):
        assert a.dtype == dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, c, err_msg=f"{name}: thread orders disagree")
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * (1 + np.abs(b).max()), err_msg=name)


# --- on a GPU, where there is one -----------------------------------------------------------

def _gpu():
    return backend.cuda_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", sorted(CONVS))
@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 16), S=st.integers(1, 40), H=st.integers(1, 70), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([0.1, 3.0, 30.0]), first=st.booleans())
def test_step_on_the_gpu(kind, dtype, N, S, H, seed, scale, first):
    import cupy as cp
    K, pad = CONVS[kind]
    fwd = getattr(cuda, f"{kind}_lstm_step_forward")
    bwd = getattr(cuda, f"{kind}_lstm_step_backward")
    x, proj, c_prev, dy, q, dc = step_inputs(N, S, H, K, seed, scale, dtype)
    proj, q = (None, None) if first else (proj, q)
    tol = cell_tolerance(dtype)
    dev = lambda a: None if a is None else cp.asarray(a)   # noqa: E731
    h, c, gates = (cp.asnumpy(a) for a in fwd(dev(x), dev(proj), dev(c_prev)))
    flat = lambda a: a.reshape(N * S, -1)   # noqa: E731
    # a fused multiply-add may enter the cell (not the tap sums): the same bounds hold
    for got, want in zip((h, c, gates), ref.lstm_cell_forward(flat(add_taps(x, proj, pad, +1)), flat(c_prev))):
        assert got.dtype == dtype
        np.testing.assert_allclose(flat(got), want, **tol)
    dpre, dc_prev = (cp.asnumpy(a) for a in bwd(*(dev(a) for a in (gates, c_prev, c, dy, q, dc))))
    want = ref.lstm_cell_backward(flat(gates), flat(c_prev), flat(c), flat(add_taps(dy, q, pad, -1)), flat(dc))
    np.testing.assert_allclose(flat(dpre), want[0], **tol)
    np.testing.assert_allclose(flat(dc_prev), want[1], **tol)


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", sorted(SCANS))
def test_scan_on_the_gpu_matches_numpy_float64(kind, dtype):
    import cupy as cp
    rtol, atol = SCAN_TOLERANCES[dtype]
    K = CONVS[kind][0]
    rng = np.random.default_rng(7)
    N, H, R, W = 16, 16, 12, 23
    arrays = [rng.standard_normal((N, 4 * H, R, W)), rng.standard_normal((4 * H, H, K)) / np.sqrt(H),
              0.5 * rng.standard_normal(4 * H)]
    v = rng.standard_normal((N, H, R, W))
    want = run_scan(kind, arrays, v)
    inputs = [Tensor(cp.asarray(a.astype(dtype)), requires_grad=True) for a in arrays]
    y = SCANS[kind].apply(*inputs)
    got = [y.numpy()] + [g.numpy() for g in grad((y * Tensor(cp.asarray(v.astype(dtype)))).sum(), inputs)]
    for name, a, b in zip(["h", "dx_proj", "dw_ss", "db_ss"], got, want):
        assert a.dtype == dtype, name
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * (1 + np.abs(b).max()), err_msg=name)
