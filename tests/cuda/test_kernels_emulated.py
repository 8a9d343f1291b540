"""tinygen's CUDA kernels, run on the CPU by the SIMT emulator, against float64 NumPy references.

The host code is tinygen.cuda's own (``Kernels(numpy, emulated kernels)``), so
shapes, launch configurations and argument lists are checked along with the
kernels. Every case runs in three thread orders (forward, reverse, random);
the kernels are deterministic, so the results must be bit-for-bit equal
across orders, as well as within the bounds of kernel_reference.py for the
precision they were launched in: each case runs the float32 and the float64
instantiation, and float64's bounds are ones no float32 computation meets.
"""
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import emulator
import kernel_reference as ref
from kernel_reference import DTYPES, case, cell_tolerance, conv_cases, lstm_inputs
from tinygen import cuda, resources
from tinygen.cuda import Kernels, conv_output_size, kernel_name

pytestmark = pytest.mark.skipif(not emulator.available(), reason="the CUDA emulator needs Linux and g++")

ORDERS = [("forward", 0), ("reverse", 0), ("random", 1), ("random", 2)]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def kernels(order="forward", seed=0):
    """tinygen.cuda's host code on NumPy arrays, launching emulated kernels in thread order ``order``."""
    return Kernels(np, lambda file, name: emulator.load(file, name, order=order, seed=seed))


def in_every_order(run):
    """run(kernels) in every thread order; asserts the results agree bit for bit and returns them."""
    results = [run(kernels(order, seed)) for order, seed in ORDERS]
    for (order, _), result in zip(ORDERS[1:], results[1:]):
        for a, b in zip(results[0], result):
            np.testing.assert_array_equal(a, b, err_msg=f"forward and {order} thread orders disagree")
    return results[0]


# Cases are drawn in float64 and rounded to the dtype under test, so float64 data
# really has float64's digits (a float32 round trip would change them).

@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(conv_cases(np.float64))
@example(case(1, 1, 7, 5, 3, 3, 2, 2, 1, 1, dtype=np.float64))   # batch 1, odd sizes, stride 2, padding 1
@example(case(2, 3, 8, 8, 4, 4, 2, 2, 1, 1, dtype=np.float64))   # the DCGAN layer shape
@example(case(1, 2, 3, 3, 1, 1, 1, 1, 2, 2, dtype=np.float64))   # padding wider than the kernel: zero columns
@example(case(2, 1, 9, 6, 2, 3, 3, 1, 0, 2, dtype=np.float64))
def test_im2col_copies_every_window_exactly(dtype, args):
    x, kh, kw, sh, sw, ph, pw = args
    x = x.astype(dtype)
    (cols,) = in_every_order(lambda k: (k.im2col(x, kh, kw, sh, sw, ph, pw),))
    assert cols.dtype == dtype
    np.testing.assert_array_equal(cols, ref.im2col(x, kh, kw, sh, sw, ph, pw))


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(conv_cases(np.float64), st.integers(0, 2**32 - 1))
@example(case(1, 1, 7, 5, 3, 3, 2, 2, 1, 1, dtype=np.float64), 0)
@example(case(2, 3, 8, 8, 4, 4, 2, 2, 1, 1, dtype=np.float64), 1)
@example(case(1, 2, 5, 5, 3, 3, 1, 1, 1, 1, dtype=np.float64), 2)   # stride 1: up to 9 terms per pixel
def test_col2im_sums_overlapping_windows_within_its_precision_bound(dtype, args, seed):
    x, kh, kw, sh, sw, ph, pw = args
    N, C, H, W = x.shape
    L = conv_output_size(H, kh, sh, ph) * conv_output_size(W, kw, sw, pw)
    cols = np.random.default_rng(seed).standard_normal((N, C * kh * kw, L)).astype(dtype)
    (got,) = in_every_order(lambda k: (k.col2im(cols, x.shape, kh, kw, sh, sw, ph, pw),))
    want = ref.col2im(cols, x.shape, kh, kw, sh, sw, ph, pw)
    assert got.shape == x.shape and got.dtype == dtype
    assert (np.abs(got - want) <= ref.col2im_tolerance(cols, x.shape, kh, kw, sh, sw, ph, pw)).all()


@settings(max_examples=30, deadline=None)
@given(conv_cases(), st.integers(0, 2**32 - 1))
def test_reference_col2im_is_the_adjoint_of_reference_im2col(args, seed):
    """<im2col(x), y> = <x, col2im(y)>: the two references check each other (float64, no kernels)."""
    x, kh, kw, sh, sw, ph, pw = args
    cols = ref.im2col(x, kh, kw, sh, sw, ph, pw)
    y = np.random.default_rng(seed).standard_normal(cols.shape)
    lhs = np.sum(cols * y)
    rhs = np.sum(x * ref.col2im(y, x.shape, kh, kw, sh, sw, ph, pw))
    assert abs(lhs - rhs) <= 1e-12 * (1 + np.sum(np.abs(cols * y)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("grid, block", [(1, 32), (3, 64), (1, 1)])
def test_grid_stride_loops_cover_everything_with_few_threads(grid, block, dtype):
    """Fewer threads than items: each thread loops, and the result is the same."""
    x, kh, kw, sh, sw, ph, pw = case(2, 3, 7, 6, 3, 2, 2, 1, 1, 0, seed=5, dtype=dtype)
    N, C, H, W = x.shape
    Ho, Wo = conv_output_size(H, kh, sh, ph), conv_output_size(W, kw, sw, pw)
    ints = tuple(np.int32(v) for v in (N, C, H, W, kh, kw, sh, sw, ph, pw))
    cols = np.zeros((N, C * kh * kw, Ho * Wo), dtype)
    emulator.load("conv2d.cu", kernel_name("im2col", dtype))(grid, block, (x, cols) + ints)
    np.testing.assert_array_equal(cols, ref.im2col(x, kh, kw, sh, sw, ph, pw))
    back = np.zeros_like(x)
    emulator.load("conv2d.cu", kernel_name("col2im", dtype))(grid, block, (cols, back) + ints, order="reverse")
    want = ref.col2im(cols, x.shape, kh, kw, sh, sw, ph, pw)
    assert back.dtype == dtype
    assert (np.abs(back - want) <= ref.col2im_tolerance(cols, x.shape, kh, kw, sh, sw, ph, pw)).all()


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 5), o=st.integers(1, 40), r=st.integers(1, 40), l=st.integers(1, 70),
       seed=st.integers(0, 2**32 - 1))
@example(n=1, o=16, r=16, l=16, seed=0)    # exactly one tile
@example(n=3, o=17, r=33, l=17, seed=1)    # one past the tile edges
def test_conv2d_grad_weight_tiled_kernel(dtype, n, o, r, l, seed):
    rng = np.random.default_rng(seed)
    dy = rng.standard_normal((n, o, l)).astype(dtype)
    cols = rng.standard_normal((n, r, l)).astype(dtype)
    (dw,) = in_every_order(lambda k: (k.conv2d_grad_weight(dy, cols),))
    want, bound = ref.grad_weight(dy, cols)
    assert dw.shape == (o, r) and dw.dtype == dtype
    assert (np.abs(dw - want) <= bound).all()


# --- the LSTM cell --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=15, deadline=None)
@given(N=st.integers(1, 5), H=st.integers(1, 70), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([0.1, 3.0, 30.0]))
@example(N=1, H=1, seed=0, scale=3.0)
@example(N=3, H=257, seed=1, scale=30.0)  # more units than one block; saturated gates
def test_lstm_cell_forward_and_backward_match_float64(dtype, N, H, seed, scale):
    pre, c_prev, dh, dc = lstm_inputs(N, H, seed, scale, dtype)
    tol = cell_tolerance(dtype)
    h, c, gates = in_every_order(lambda k: k.lstm_cell_forward(pre, c_prev))
    h_ref, c_ref, gates_ref = ref.lstm_cell_forward(pre, c_prev)
    for name, got, want in (("h", h, h_ref), ("c", c, c_ref), ("gates", gates, gates_ref)):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **tol, err_msg=name)
    # Backward from the kernel's own gates and cell, as the scan uses it.
    dpre, dc_prev = in_every_order(lambda k: k.lstm_cell_backward(gates, c_prev, c, dh, dc))
    dpre_ref, dc_prev_ref = ref.lstm_cell_backward(gates, c_prev, c, dh, dc)
    for name, got, want in (("dpre", dpre, dpre_ref), ("dc_prev", dc_prev, dc_prev_ref)):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **tol, err_msg=name)


def test_float64_bounds_fail_a_float32_computation():
    """The float64 tests mean something: the float32 kernels, widened, miss float64's bounds."""
    k = kernels()
    pre, c_prev, _, _ = lstm_inputs(3, 20, seed=4, dtype=np.float64)
    h32, _, _ = k.lstm_cell_forward(pre.astype(np.float32), c_prev.astype(np.float32))
    h_ref = ref.lstm_cell_forward(pre, c_prev)[0]
    assert not np.allclose(h32, h_ref, **cell_tolerance(np.float64))
    np.testing.assert_allclose(k.lstm_cell_forward(pre, c_prev)[0], h_ref, **cell_tolerance(np.float64))
    x, *geometry = case(2, 2, 6, 5, 3, 3, 1, 1, 1, 1, dtype=np.float64)
    cols = k.im2col(x, *geometry)
    widened = k.col2im(cols.astype(np.float32), x.shape, *geometry)
    want = ref.col2im(cols, x.shape, *geometry)
    assert not (np.abs(widened - want) <= ref.col2im_tolerance(cols, x.shape, *geometry)).all()
    dy = np.random.default_rng(0).standard_normal((2, 3, cols.shape[2]))
    want, bound = ref.grad_weight(dy, cols)
    assert not (np.abs(k.conv2d_grad_weight(dy.astype(np.float32), cols.astype(np.float32)) - want) <= bound).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_backward_without_incoming_gradients_is_zero(dtype):
    pre, c_prev, _, _ = lstm_inputs(2, 5, seed=3, dtype=dtype)
    k = kernels()
    h, c, gates = k.lstm_cell_forward(pre, c_prev)
    dpre, dc_prev = k.lstm_cell_backward(gates, c_prev, c, None, None)
    assert dpre.dtype == dc_prev.dtype == dtype
    assert not dpre.any() and not dc_prev.any()


def test_reference_lstm_backward_is_the_gradient_of_reference_forward():
    """Central differences of L = <dh, h> + <dc, c> in float64 confirm the backward formulas."""
    rng = np.random.default_rng(0)
    N, H = 2, 3
    pre, c_prev = rng.standard_normal((N, 4 * H)), rng.standard_normal((N, H))
    dh, dc = rng.standard_normal((N, H)), rng.standard_normal((N, H))

    def loss(pre, c_prev):
        h, c, _ = ref.lstm_cell_forward(pre, c_prev)
        return np.sum(dh * h) + np.sum(dc * c)

    _, c, gates = ref.lstm_cell_forward(pre, c_prev)
    dpre, dc_prev = ref.lstm_cell_backward(gates, c_prev, c, dh, dc)
    eps = 1e-6
    for array, grad in ((pre, dpre), (c_prev, dc_prev)):
        numeric = np.zeros_like(array)
        for idx in np.ndindex(array.shape):
            old = array[idx]
            array[idx] = old + eps
            up = loss(pre, c_prev)
            array[idx] = old - eps
            down = loss(pre, c_prev)
            array[idx] = old
            numeric[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-8)


def test_host_code_rejects_bad_shapes_with_the_shapes_in_the_message():
    k = kernels()
    with pytest.raises(ValueError, match=r"does not fit the input \(1, 1, 2, 2\)"):
        k.im2col(np.zeros((1, 1, 2, 2), np.float32), 3, 3, 1, 1, 0, 0)
    with pytest.raises(ValueError, match=r"cols has shape \(1, 9, 4\).*needs \(1, 9, 9\)"):
        k.col2im(np.zeros((1, 9, 4), np.float32), (1, 1, 5, 5), 3, 3, 1, 1, 0, 0)
    with pytest.raises(ValueError, match=r"pre \(N, 4H\) and c_prev \(N, H\), got pre \(2, 6\)"):
        k.lstm_cell_forward(np.zeros((2, 6), np.float32), np.zeros((2, 1), np.float32))


def test_kernel_sources_are_found():
    """(Which names each file defines: test_launchers.py.)"""
    for name in ("conv2d.cu", "lstm.cu"):
        assert resources.kernel_path(name).is_file()
        for kernel in emulator.kernels_in(resources.kernel_source(name)):
            assert f"void {kernel}(" in resources.kernel_path(name).read_text()


def test_without_cupy_asking_for_a_kernel_says_how_to_install_it(monkeypatch):
    """Importing tinygen.cuda needs no CuPy; launching a kernel without it is a clear error."""
    monkeypatch.setitem(sys.modules, "cupy", None)   # makes `import cupy` raise ImportError
    monkeypatch.setattr(cuda, "_gpu", None)
    with pytest.raises(RuntimeError, match=r"need CuPy.*pip install 'tinygen\[cuda\]'"):
        cuda.im2col(np.zeros((1, 1, 3, 3), np.float32), 2, 2, 1, 1, 0, 0)
