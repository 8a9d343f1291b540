"""The PixelRNN ops F.skew, F.unskew, F.row_lstm and F.diagonal_lstm.

The two fused scans are checked against per-step references built from Tensor ops
(F.conv2d for the state-to-state convolution, F.sigmoid, F.tanh), one graph node per
operation and step, so the ordinary graph walk gives reference gradients: outputs and
every gradient must agree to 1e-10 in float64. Then central differences, the refusal
to be differentiated twice, clear errors on bad shapes, and causality: in the Diagonal
LSTM, h[r, t] must not depend on any later column, nor on a lower row of its own column
(the autograd gradient is exactly zero there).
"""
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import tinygen
import tinygen.functional as F
from tinygen.autograd import Tensor, grad, gradcheck, gradgradcheck

from strategies import fast


# --- references, step by step from Tensor ops -----------------------------------------

def _cell(pre, c, H):
    i = F.sigmoid(pre[:, :H])
    f = F.sigmoid(pre[:, H:2 * H])
    g = F.tanh(pre[:, 2 * H:3 * H])
    o = F.sigmoid(pre[:, 3 * H:])
    c = f * c + i * g
    return o * F.tanh(c), c


def reference_row_lstm(x_proj, w_ss, b_ss=None):
    """Rows r = 0 .. R-1; the state-to-state term is F.conv2d with a 1 x 3 kernel, padding (0, 1)."""
    N, H4, R, W = x_proj.shape
    H = H4 // 4
    kernel = w_ss.reshape((H4, H, 1, 3))
    h = Tensor(np.zeros((N, H, W)))
    c = Tensor(np.zeros((N, H, W)))
    hs = []
    for r in range(R):
        pre = x_proj[:, :, r, :] + F.conv2d(h.reshape((N, H, 1, W)), kernel, padding=(0, 1)).reshape((N, H4, W))
        if b_ss is not None:
            pre = pre + b_ss.reshape((1, H4, 1))
        h, c = _cell(pre, c, H)
        hs.append(h)
    return F.stack(hs, axis=2)


def reference_diagonal_lstm(x_proj, w_ss, b_ss=None):
    """Columns t = 0 .. Ws-1; the state-to-state term is F.conv2d with a 2 x 1 kernel on the
    previous column padded with one zero row at the TOP."""
    N, H4, R, Ws = x_proj.shape
    H = H4 // 4
    kernel = w_ss.reshape((H4, H, 2, 1))
    h = Tensor(np.zeros((N, H, R)))
    c = Tensor(np.zeros((N, H, R)))
    hs = []
    for t in range(Ws):
        above = F.pad(h.reshape((N, H, R, 1)), ((0, 0), (0, 0), (1, 0), (0, 0)))   # row r - 1 and row r
        pre = x_proj[:, :, :, t] + F.conv2d(above, kernel).reshape((N, H4, R))
        if b_ss is not None:
            pre = pre + b_ss.reshape((1, H4, 1))
        h, c = _cell(pre, c, H)
        hs.append(h)
    return F.stack(hs, axis=3)


OPS = {"row": (F.row_lstm, reference_row_lstm, 3), "diagonal": (F.diagonal_lstm, reference_diagonal_lstm, 2)}


def make_inputs(N, H, R, W, K, seed=0, bias=True, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((N, 4 * H, R, W)).astype(dtype), requires_grad=True)
    w = Tensor((rng.standard_normal((4 * H, H, K)) / np.sqrt(H)).astype(dtype), requires_grad=True)
    b = Tensor((0.5 * rng.standard_normal(4 * H)).astype(dtype), requires_grad=True) if bias else None
    return [x, w, b]


def all_grads(fn, inputs, v):
    present = [t for t in inputs if t is not None]
    y = fn(*inputs)
    return y.numpy(), [g.numpy() for g in grad((y * Tensor(v)).sum(), present)]


sizes = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 5), st.integers(1, 5))


@pytest.mark.parametrize("kind", sorted(OPS))
@fast(15)
@given(size=sizes, bias=st.booleans(), seed=st.integers(0, 2 ** 16))
@example(size=(1, 1, 1, 1), bias=True, seed=0)      # N = R = W = h = 1
@example(size=(1, 2, 1, 4), bias=False, seed=1)     # one row
@example(size=(2, 1, 4, 1), bias=True, seed=2)      # one column
def test_matches_per_step_reference(kind, size, bias, seed):
    op, ref, K = OPS[kind]
    N, H, R, W = size
    inputs = make_inputs(N, H, R, W, K, seed, bias)
    v = np.random.default_rng(seed + 1).standard_normal((N, H, R, W))
    y, gs = all_grads(op, inputs, v)
    y_ref, gs_ref = all_grads(ref, inputs, v)
    assert y.shape == (N, H, R, W)
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-10)
    for name, a, b in zip(["x_proj", "w_ss", "b_ss"], gs, gs_ref):
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10, err_msg=f"gradient of {name}")


@pytest.mark.parametrize("kind", sorted(OPS))
@pytest.mark.parametrize("size, bias", [((1, 1, 1, 1), True), ((2, 2, 3, 4), True), ((1, 2, 4, 3), False)])
def test_gradcheck_all_inputs(kind, size, bias):
    op, _, K = OPS[kind]
    inputs = [t for t in make_inputs(*size, K, seed=sum(size), bias=bias) if t is not None]
    assert gradcheck(op, inputs)


@pytest.mark.parametrize("kind", sorted(OPS))
def test_gradient_of_some_inputs_only(kind):
    op, ref, K = OPS[kind]
    x, w, b = make_inputs(2, 2, 3, 3, K, seed=4)
    x_const = Tensor(x.numpy())
    op(x_const, w, b).sum().backward()
    assert x_const.grad is None
    want = grad(ref(x, w, b).sum(), [w, b])
    for t, r in zip([w, b], want):
        np.testing.assert_allclose(t.grad.numpy(), r.numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", sorted(OPS))
def test_second_derivatives_through_the_scan(kind):
    """Under create_graph the scan is replayed in Tensor ops: gradgradcheck passes (float64), its
    first derivatives equal the fused array backward's, and they carry a graph."""
    op, ref, K = OPS[kind]
    inputs = make_inputs(2, 2, 3, 2, K, seed=7)
    assert gradgradcheck(op, inputs)
    fused = grad((op(*inputs) ** 2).sum(), inputs)
    graphed = grad((op(*inputs) ** 2).sum(), inputs, create_graph=True)
    for a, b in zip(fused, graphed):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-10, atol=1e-12)
    assert all(g.requires_grad for g in graphed)


@pytest.mark.parametrize("kind", sorted(OPS))
def test_float32_stays_float32_and_is_close(kind):
    op, _, K = OPS[kind]
    inputs64 = make_inputs(2, 3, 4, 5, K, seed=6)
    inputs32 = [Tensor(t.numpy().astype(np.float32), requires_grad=True) for t in inputs64]
    y32 = op(*inputs32)
    assert y32.dtype == np.float32
    y64 = op(*inputs64)
    np.testing.assert_allclose(y32.numpy(), y64.numpy(), atol=1e-5)
    y32.sum().backward()
    for t32, g64 in zip(inputs32, grad(y64.sum(), inputs64)):
        assert t32.grad.dtype == np.float32
        np.testing.assert_allclose(t32.grad.numpy(), g64.numpy(), atol=1e-4)


@pytest.mark.parametrize("kind", sorted(OPS))
def test_retain_graph_and_interleaved_scans(kind):
    """Buffers recycled between scans never leak into live results."""
    op, ref, K = OPS[kind]
    a, b = make_inputs(2, 2, 3, 4, K, seed=8), make_inputs(2, 2, 3, 4, K, seed=9)
    ya, yb = op(*a), op(*b)
    before = ya.numpy().copy()
    g1 = grad(ya.sum(), a, retain_graph=True)
    g2 = grad(ya.sum(), a)
    yc = op(*a)
    gb = grad(yb.sum(), b)
    np.testing.assert_array_equal(ya.numpy(), before)
    np.testing.assert_array_equal(yc.numpy(), before)
    for u, v, r in zip(g1, g2, grad(ref(*a).sum(), a)):
        np.testing.assert_array_equal(u.numpy(), v.numpy())
        np.testing.assert_allclose(u.numpy(), r.numpy(), rtol=0, atol=1e-10)
    for u, r in zip(gb, grad(ref(*b).sum(), b)):
        np.testing.assert_allclose(u.numpy(), r.numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", sorted(OPS))
def test_never_mutates_its_inputs_or_the_incoming_gradient(kind):
    op, _, K = OPS[kind]
    inputs = make_inputs(2, 2, 3, 4, K, seed=12)
    before = [t.numpy().copy() for t in inputs]
    y = op(*inputs)
    v = Tensor(np.random.default_rng(0).standard_normal(y.shape))
    v_before = v.numpy().copy()
    grad(y, inputs, v)
    for t, b in zip(inputs, before):
        np.testing.assert_array_equal(t.numpy(), b)
    np.testing.assert_array_equal(v.numpy(), v_before)


def test_no_graph_without_grad():
    inputs = make_inputs(1, 2, 2, 2, 3)
    with tinygen.no_grad():
        y = F.row_lstm(*inputs)
    assert not y.requires_grad and y.creator is None


# --- causality ----------------------------------------------------------------------

def _dependencies(op, x, w, b, r, t):
    """|d h[:, :, r, t] / d x_proj| summed over batch and channels: (R, W)."""
    x = Tensor(x.numpy(), requires_grad=True)
    (g,) = grad(op(x, w, b)[:, :, r, t].sum(), [x])
    return np.abs(g.numpy()).sum(axis=(0, 1))


def test_diagonal_lstm_never_sees_a_later_column_or_a_lower_row_of_its_own():
    N, H, R, Ws = 2, 2, 4, 7
    x, w, b = make_inputs(N, H, R, Ws, 2, seed=10)
    for r in range(R):
        for t in range(Ws):
            dep = _dependencies(F.diagonal_lstm, x, w, b, r, t)
            assert not dep[:, t + 1:].any(), f"h[{r}, {t}] depends on a later column"
            assert not dep[r + 1:, t].any(), f"h[{r}, {t}] depends on a lower row of its own column"
            # and it does see what it should: itself, and (r - 1, t - 1), (r, t - 1) on the way
            assert dep[r, t] > 0
            if t > 0:
                assert dep[r, t - 1] > 0 and (r == 0 or dep[r - 1, t - 1] > 0)


def test_row_lstm_never_sees_a_later_row():
    N, H, R, W = 1, 2, 4, 5
    x, w, b = make_inputs(N, H, R, W, 3, seed=11)
    for r in range(R):
        for t in range(W):
            dep = _dependencies(F.row_lstm, x, w, b, r, t)
            assert not dep[r + 1:].any(), f"h[{r}, {t}] depends on a later row"
            assert not np.delete(dep[r], t).any(), "within its row, h[r, t] sees only x_proj[r, t]"
            assert dep[r, t] > 0 and (r == 0 or dep[r - 1, max(t - 1, 0):t + 2].all())


# --- skew / unskew ------------------------------------------------------------------

@fast(25)
@given(st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
       st.integers(0, 2 ** 16))
def test_skew_shifts_row_r_by_r_and_unskew_inverts_it(shape, seed):
    N, C, H, W = shape
    x = np.random.default_rng(seed).standard_normal(shape)
    y = F.skew(Tensor(x)).numpy()
    assert y.shape == (N, C, H, W + H - 1)
    want = np.zeros_like(y)
    for r in range(H):
        want[:, :, r, r:r + W] = x[:, :, r]
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(F.unskew(Tensor(y), W).numpy(), x)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 4, 2), (1, 2, 3, 5)])
def test_skew_and_unskew_gradients(shape):
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    N, C, H, W = shape
    y = Tensor(rng.standard_normal((N, C, H, W + H - 1)), requires_grad=True)
    assert gradcheck(F.skew, [x])
    assert gradcheck(lambda t: F.unskew(t, W), [y])
    assert gradgradcheck(lambda t: F.skew(t) ** 2, [x])      # each is the other's backward: differentiable
    assert gradgradcheck(lambda t: F.unskew(t, W) ** 2, [y])


@pytest.mark.parametrize("call, message", [
    (lambda: F.skew(np.zeros((2, 3, 4))), r"skew: input must be 4-D \(N, C, H, W\), got shape \(2, 3, 4\)"),
    (lambda: F.skew(np.zeros((1, 1, 0, 3))), r"at least one row and one column, got shape \(1, 1, 0, 3\)"),
    (lambda: F.unskew(np.zeros((1, 1, 3, 5)), 4),
     r"unskew: an input of shape \(1, 1, 3, 5\) does not come from skewing width 4: .* 6 columns"),
    (lambda: F.unskew(np.zeros((1, 3, 5)), 3), r"unskew: input must be 4-D"),
    (lambda: F.unskew(np.zeros((1, 1, 3, 5)), 0), r"width must be a positive integer, got 0"),
])
def test_skew_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- bad input to the scans -----------------------------------------------------------

@pytest.mark.parametrize("kind, shapes, message", [
    ("row", ((2, 12, 3), (12, 3, 3), None),
     r"row_lstm: x_proj must be 4-D \(N, 4h, R, W\), got shape \(2, 12, 3\)"),
    ("row", ((2, 8, 3, 3), (12, 3, 3), None),
     r"row_lstm: x_proj has 8 channels but w_ss \(12, 3, 3\) needs 4h = 12 \(x_proj \(2, 8, 3, 3\)\)"),
    ("row", ((2, 12, 3, 3), (12, 3, 2), None), r"row_lstm: the state-to-state kernel must have size 3 .*"
                                               r"got w_ss \(12, 3, 2\)"),
    ("row", ((2, 12, 3, 3), (12, 4, 3), None), r"row_lstm: w_ss must have shape \(4h, h, 3\), got \(12, 4, 3\)"),
    ("row", ((2, 12, 3, 3), (12, 3), None), r"w_ss must have shape \(4h, h, 3\), got \(12, 3\)"),
    ("row", ((2, 12, 3, 3), (12, 3, 3), (3,)), r"row_lstm: b_ss has shape \(3,\), expected \(4h,\) = \(12,\)"),
    ("diagonal", ((2, 12, 3, 5), (12, 3, 3), None), r"diagonal_lstm: the state-to-state kernel must have size 2"),
    ("diagonal", ((2, 4, 3, 5), (8, 2, 2), None), r"diagonal_lstm: x_proj has 4 channels but w_ss \(8, 2, 2\) "
                                                  r"needs 4h = 8"),
    ("diagonal", ((4, 3, 5), (8, 2, 2), None), r"diagonal_lstm: x_proj must be 4-D \(N, 4h, R, Ws\)"),
])
def test_bad_shapes_name_the_shapes(kind, shapes, message):
    op = OPS[kind][0]
    args = [None if s is None else Tensor(np.zeros(s)) for s in shapes]
    with pytest.raises(ValueError, match=message):
        op(*args)


# --- the GPU path (tinygen's pixelrnn.cu kernels), where there is a GPU ----------------

@pytest.mark.gpu
@pytest.mark.skipif(not tinygen.cuda_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("kind", sorted(OPS))
def test_cuda_matches_cpu(kind):
    op, _, K = OPS[kind]
    inputs = make_inputs(3, 5, 6, 7, K, seed=13, dtype=np.float32)
    gpu = [Tensor(t.numpy(), requires_grad=True, device="cuda") for t in inputs]
    v = np.random.default_rng(14).standard_normal((3, 5, 6, 7)).astype(np.float32)
    y, gs = all_grads(op, inputs, v)
    g_y = op(*gpu)
    g_gs = grad((g_y * Tensor(v, device="cuda")).sum(), gpu)
    for a, b in zip([y] + gs, [g_y.numpy()] + [g.numpy() for g in g_gs]):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
