"""conv2d, conv_transpose2d and conv2d_grad_weight.

Checked against plain nested-loop references (float64, written for clarity, not
speed) over hypothesis-drawn settings: odd sizes, strides 1-3, padding, batch 1,
non-square kernels. Every property runs on both memory layouts of the NumPy path
(channels first, the im2col contract; channels last, used from
``CHANNELS_LAST_MIN`` channels on) and on the stride-1 frames of channels last
(``_conv_frames``), forced by the ``layout`` fixture, so the small drawn shapes
exercise all three. Then: the adjoint identity, gradients and
second derivatives by central differences, the output-shape formulas, every
bad-input error, and (where PyTorch is installed) agreement with PyTorch.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen.functional as F
import tinygen.functional._conv_arrays as arrays_module
import tinygen.functional._conv_im2col as im2col_module
import tinygen.functional._conv_frames as frames_module
import tinygen.functional.conv as conv_module
from tinygen import backend
from tinygen.autograd import Tensor, grad, gradcheck, gradgradcheck
from tinygen.testing import conv_params

from strategies import fast, leaves


# --- references: the definitions, loop by loop ----------------------------------

def reference_conv2d(x, w, b=None, stride=(1, 1), padding=(0, 0)):
    """y[n, o, oh, ow] = b[o] + sum_{c, i, j} w[o, c, i, j] xp[n, c, oh sh + i, ow sw + j]."""
    (sh, sw), (ph, pw) = stride, padding
    n_, c_, h, wd = x.shape
    o_, _, kh, kw = w.shape
    xp = np.zeros((n_, c_, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    y = np.zeros((n_, o_, ho, wo))
    for n in range(n_):
        for o in range(o_):
            for oh in range(ho):
                for ow in range(wo):
                    total = 0.0 if b is None else b[o]
                    for c in range(c_):
                        for i in range(kh):
                            for j in range(kw):
                                total += w[o, c, i, j] * xp[n, c, oh * sh + i, ow * sw + j]
                    y[n, o, oh, ow] = total
    return y


def reference_conv_transpose2d(x, w, b=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0)):
    """Every input pixel x[n, ci, h, w] scatters x * w[ci, co, i, j] onto yp[n, co, h sh + i, w sw + j];
    y is yp without its padding border (plus b)."""
    (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
    n_, ci_, h_, w_ = x.shape
    _, co_, kh, kw = w.shape
    ho, wo = (h_ - 1) * sh - 2 * ph + kh + oph, (w_ - 1) * sw - 2 * pw + kw + opw
    yp = np.zeros((n_, co_, ho + 2 * ph, wo + 2 * pw))
    for n in range(n_):
        for ci in range(ci_):
            for h in range(h_):
                for wi in range(w_):
                    for co in range(co_):
                        for i in range(kh):
                            for j in range(kw):
                                yp[n, co, h * sh + i, wi * sw + j] += x[n, ci, h, wi] * w[ci, co, i, j]
    y = yp[:, :, ph:ph + ho, pw:pw + wo]
    return y if b is None else y + b[None, :, None, None]


def reference_grad_weight(x, gy, kernel_size, stride=(1, 1), padding=(0, 0)):
    """gw[o, c, i, j] = sum_{n, oh, ow} gy[n, o, oh, ow] xp[n, c, oh sh + i, ow sw + j]."""
    (sh, sw), (ph, pw), (kh, kw) = stride, padding, kernel_size
    n_, c_, h, wd = x.shape
    xp = np.zeros((n_, c_, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    gw = np.zeros((gy.shape[1], c_, kh, kw))
    for o in range(gy.shape[1]):
        for c in range(c_):
            for i in range(kh):
                for j in range(kw):
                    for n in range(n_):
                        for oh in range(gy.shape[2]):
                            for ow in range(gy.shape[3]):
                                gw[o, c, i, j] += gy[n, o, oh, ow] * xp[n, c, oh * sh + i, ow * sw + j]
    return gw


# --- drawing settings and values --------------------------------------------------

@pytest.fixture(params=["channels_first", "channels_last", "framed"])
def layout(request, monkeypatch):
    """Force one memory layout of the NumPy path for the whole test ("framed": channels last,
    and every stride-1 convolution by the implicit GEMM of ``_conv_frames``, whatever its size)."""
    monkeypatch.setattr(arrays_module, "CHANNELS_LAST_MIN", 10 ** 9 if request.param == "channels_first" else 1)
    monkeypatch.setattr(frames_module, "MAX_WASTE", 10 ** 9 if request.param == "framed" else 0)
    monkeypatch.setattr(frames_module, "MIN_PIXELS", 0)
    return request.param


def restoring_output_padding(p):
    """conv_transpose2d's output_padding that maps conv2d's output shape back to p.input_shape."""
    return p.output_padding


@st.composite
def conv_case(draw, max_side=7, **limits):
    """(ConvParams, x, w, b, gy) in float64 with values in [-3, 3]: conv2d's input, weight,
    bias and an output-shaped array; conv_transpose2d takes gy, w and a bias of C_in values."""
    p = draw(conv_params(max_side=max_side, **limits))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, p.input_shape)
    w = rng.uniform(-3, 3, p.weight_shape)
    b = rng.uniform(-3, 3, max(p.C_out, p.C_in))  # the first C_out or C_in values
    gy = rng.uniform(-3, 3, p.output_shape)
    return p, x, w, b, gy


def T(a, requires_grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


# --- the array-level steps: im2col's contract and its adjoint -----------------------

@fast(30)
@given(conv_case())
def test_im2col_layout_is_the_contract(case):
    """cols[n, c kh kw + i kw + j, oh Wo + ow] = xp[n, c, oh sh + i, ow sw + j] (the CUDA kernels' contract)."""
    p, x, *_ = case
    (sh, sw), (ph, pw) = p.stride, p.padding
    cols = im2col_module._im2col(x, p.kh, p.kw, sh, sw, ph, pw)
    ho, wo = p.output_shape[2:]
    assert cols.shape == (p.N, p.C_in * p.kh * p.kw, ho * wo)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    for n in range(p.N):
        for c in range(p.C_in):
            for i in range(p.kh):
                for j in range(p.kw):
                    for oh in range(ho):
                        for ow in range(wo):
                            assert cols[n, c * p.kh * p.kw + i * p.kw + j, oh * wo + ow] == \
                                xp[n, c, oh * sh + i, ow * sw + j]


@fast(30)
@given(conv_case(), st.integers(0, 2 ** 32 - 1))
def test_col2im_is_the_adjoint_of_im2col(case, seed):
    """<im2col(x), c> = <x, col2im(c)> for both layouts' pairs of steps."""
    p, x, *_ = case
    k, s, pad = (p.kh, p.kw), p.stride, p.padding
    rng = np.random.default_rng(seed)
    cols = im2col_module._im2col(x, *k, *s, *pad)
    c = rng.standard_normal(cols.shape)
    back = im2col_module._col2im(c, x.shape, *k, *s, *pad)
    assert back.shape == x.shape
    np.testing.assert_allclose((cols * c).sum(), (x * back).sum(), rtol=1e-10, atol=1e-10)
    # channels last: im2col gives (N P, kh kw C), col2im takes one (N P, C) block per kernel offset
    cols = im2col_module._im2col_last(x, *k, *s, *pad)
    c = rng.standard_normal(cols.shape)
    blocks = c.reshape(-1, p.kh * p.kw, p.C_in).transpose(1, 0, 2)
    back = im2col_module._col2im_last(blocks, x.shape, *k, *s, *pad)
    np.testing.assert_allclose((cols * c).sum(), (x * back).sum(), rtol=1e-10, atol=1e-10)


# --- forward values against the references ----------------------------------------

def test_conv2d_matches_reference(layout):
    @fast(40)
    @given(conv_case(), st.booleans())
    def run(case, with_bias):
        p, x, w, b, _ = case
        b = b[:p.C_out] if with_bias else None
        y = F.conv2d(T(x), T(w), None if b is None else T(b), stride=p.stride, padding=p.padding)
        assert y.shape == p.output_shape
        np.testing.assert_allclose(y.numpy(), reference_conv2d(x, w, b, p.stride, p.padding),
                                   rtol=1e-10, atol=1e-10)
    run()


def test_conv_transpose2d_matches_reference(layout):
    @fast(40)
    @given(conv_case(), st.integers(0, 2), st.integers(0, 2), st.booleans())
    def run(case, oph, opw, with_bias):
        # conv_transpose2d maps conv2d's output shape back; its weight (C_in, C_out) is conv2d's (O, C)
        p, _, w, b, gy = case
        s, pad = p.stride, p.padding
        op = (oph % s[0], opw % s[1])
        bias = b[:p.C_in] if with_bias else None
        out = [(d - 1) * si - 2 * pi + k + o for d, si, pi, k, o in zip(gy.shape[2:], s, pad, (p.kh, p.kw), op)]
        if min(out) < 1:
            with pytest.raises(ValueError, match="conv_transpose2d: the output would have size"):
                F.conv_transpose2d(T(gy), T(w), stride=p.stride, padding=p.padding, output_padding=op)
            return
        y = F.conv_transpose2d(T(gy), T(w), None if bias is None else T(bias), stride=p.stride,
                               padding=p.padding, output_padding=op)
        expected = reference_conv_transpose2d(gy, w, bias, s, pad, op)
        assert y.shape == expected.shape == (p.N, p.C_in, *out)
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-10)
    run()


def test_conv2d_grad_weight_matches_reference(layout):
    @fast(30)
    @given(conv_case())
    def run(case):
        p, x, _, _, gy = case
        gw = F.conv2d_grad_weight(T(x), T(gy), (p.kh, p.kw), stride=p.stride, padding=p.padding)
        assert gw.shape == p.weight_shape
        expected = reference_grad_weight(x, gy, (p.kh, p.kw), p.stride, p.padding)
        np.testing.assert_allclose(gw.numpy(), expected, rtol=1e-10, atol=1e-10)
    run()


def test_rectangular_stride_and_padding_pairs(layout):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    y = F.conv2d(T(x), T(w), stride=(2, 1), padding=(1, 0))
    np.testing.assert_allclose(y.numpy(), reference_conv2d(x, w, None, (2, 1), (1, 0)), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(y.shape)
    z = F.conv_transpose2d(T(g), T(w), stride=(2, 1), padding=(1, 0))   # w read as (C_in, C_out, kh, kw)
    assert z.shape == x.shape
    np.testing.assert_allclose(z.numpy(), reference_conv_transpose2d(g, w, None, (2, 1), (1, 0)),
                               rtol=1e-10, atol=1e-10)


@fast(30)
@given(conv_case())
def test_adjoint_identity(case):
    """<conv2d(x, w), y> = <x, conv_transpose2d(y, w)>: conv_transpose2d is conv2d's adjoint in x."""
    p, x, w, _, gy = case
    lhs = (F.conv2d(T(x), T(w), stride=p.stride, padding=p.padding).numpy() * gy).sum()
    back = F.conv_transpose2d(T(gy), T(w), stride=p.stride, padding=p.padding,
                              output_padding=restoring_output_padding(p))
    assert back.shape == p.input_shape
    np.testing.assert_allclose(lhs, (x * back.numpy()).sum(), rtol=1e-10, atol=1e-9)


def test_output_shape_formulas(layout):
    x = T(np.zeros((2, 3, 11, 8)))
    for k, s, pad in [(3, 1, 0), (3, 2, 1), (4, 2, 1), (5, 3, 2), ((3, 1), (1, 2), (0, 1))]:
        kh, kw = (k, k) if isinstance(k, int) else k
        sh, sw = (s, s) if isinstance(s, int) else s
        ph, pw = (pad, pad) if isinstance(pad, int) else pad
        y = F.conv2d(x, T(np.zeros((5, 3, kh, kw))), stride=s, padding=pad)
        assert y.shape == (2, 5, (11 + 2 * ph - kh) // sh + 1, (8 + 2 * pw - kw) // sw + 1)
        for oph in range(sh):
            for opw in range(sw):
                z = F.conv_transpose2d(x, T(np.zeros((3, 5, kh, kw))), stride=s, padding=pad,
                                       output_padding=(oph, opw))
                assert z.shape == (2, 5, 10 * sh - 2 * ph + kh + oph, 7 * sw - 2 * pw + kw + opw)
    # the DCGAN generator's shapes: 7 -> 14 -> 28 with kernel 4, stride 2, padding 1
    z = F.conv_transpose2d(T(np.zeros((1, 8, 7, 7))), T(np.zeros((8, 4, 4, 4))), stride=2, padding=1)
    assert z.shape == (1, 4, 14, 14)


# --- gradients -------------------------------------------------------------------

def small_case():
    return conv_case(max_side=5, max_channels=2, max_kernel=3, max_batch=2)


def test_gradcheck_conv2d(layout):
    @fast(12)
    @given(small_case(), st.booleans())
    def run(case, with_bias):
        p, x, w, b, _ = case
        inputs = leaves(x, w, b[:p.C_out]) if with_bias else leaves(x, w)
        assert gradcheck(lambda *a: F.conv2d(*a, stride=p.stride, padding=p.padding), inputs)
    run()


def test_gradcheck_conv_transpose2d(layout):
    @fast(12)
    @given(small_case(), st.booleans())
    def run(case, with_bias):
        p, _, w, b, gy = case
        op = restoring_output_padding(p)
        inputs = leaves(gy, w, b[:p.C_in]) if with_bias else leaves(gy, w)
        assert gradcheck(lambda *a: F.conv_transpose2d(*a, stride=p.stride, padding=p.padding,
                                                       output_padding=op), inputs)
    run()


def test_gradcheck_conv2d_grad_weight(layout):
    @fast(12)
    @given(small_case())
    def run(case):
        p, x, _, _, gy = case
        assert gradcheck(lambda a, g: F.conv2d_grad_weight(a, g, (p.kh, p.kw), stride=p.stride,
                                                           padding=p.padding), leaves(x, gy))
    run()


def test_gradgradcheck_conv2d(layout):
    @fast(6)
    @given(small_case(), st.booleans())
    def run(case, with_bias):
        p, x, w, b, _ = case
        inputs = leaves(x, w, b[:p.C_out]) if with_bias else leaves(x, w)
        assert gradgradcheck(lambda *a: F.conv2d(*a, stride=p.stride, padding=p.padding), inputs)
    run()


def test_gradgradcheck_conv_transpose2d(layout):
    @fast(6)
    @given(small_case(), st.booleans())
    def run(case, with_bias):
        p, _, w, b, gy = case
        op = restoring_output_padding(p)
        inputs = leaves(gy, w, b[:p.C_in]) if with_bias else leaves(gy, w)
        assert gradgradcheck(lambda *a: F.conv_transpose2d(*a, stride=p.stride, padding=p.padding,
                                                           output_padding=op), inputs)
    run()


def test_gradgradcheck_conv2d_grad_weight(layout):
    @fast(4)
    @given(small_case())
    def run(case):
        p, x, _, _, gy = case
        assert gradgradcheck(lambda a, g: F.conv2d_grad_weight(a, g, (p.kh, p.kw), stride=p.stride,
                                                               padding=p.padding), leaves(x, gy))
    run()


def test_gradients_are_the_partner_ops(layout):
    """dL/dx = conv_transpose2d(g, w), dL/dw = conv2d_grad_weight(x, g), dL/db = sum of g; also
    when only one input wants a gradient."""
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    y_shape = (2, 4, 5, 4)
    g = rng.standard_normal(y_shape)
    for wanted in [(0,), (1,), (2,), (0, 1, 2)]:
        ts = [T(a, requires_grad=i in wanted) for i, a in enumerate((x, w, b))]
        y = F.conv2d(*ts, stride=2, padding=(1, 0))
        assert y.shape == y_shape
        grads = grad((y * T(g)).sum(), [ts[i] for i in wanted])
        expected = {0: F.conv_transpose2d(T(g), T(w), stride=2, padding=(1, 0), output_padding=(0, 1)).numpy(),
                    1: reference_grad_weight(x, g, (3, 2), (2, 2), (1, 0)),
                    2: g.sum(axis=(0, 2, 3))}
        for i, gi in zip(wanted, grads):
            np.testing.assert_allclose(gi.numpy(), expected[i], rtol=1e-10, atol=1e-10)


def test_any_memory_order_in_and_out(layout):
    """Inputs given as transposed or sliced views, and outputs fed back in, give the same values."""
    rng = np.random.default_rng(2)
    base = rng.standard_normal((3, 2, 9, 10))                       # stored (C, N, H, W)
    x = base.transpose(1, 0, 2, 3)[:, :, :, 1:]                    # (2, 3, 9, 9), non-contiguous
    w1, w2 = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal((5, 4, 2, 2))
    h = F.conv2d(T(x), T(w1), padding=1)
    y = F.conv2d(h, T(w2), stride=2)
    expected = reference_conv2d(reference_conv2d(x, w1, None, (1, 1), (1, 1)), w2, None, (2, 2), (0, 0))
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-10)


def test_float32_stays_float32():
    rng = np.random.default_rng(3)
    for c in (2, 16):  # both layouts at the default threshold
        x = Tensor(rng.standard_normal((2, c, 6, 6), dtype=np.float32), requires_grad=True)
        w = Tensor(rng.standard_normal((3, c, 3, 3), dtype=np.float32), requires_grad=True)
        b = Tensor(np.zeros(3, np.float32), requires_grad=True)
        y = F.conv2d(x, w, b, padding=1)
        assert y.dtype == np.float32
        y.sum().backward()
        assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32
        z = F.conv_transpose2d(y, Tensor(rng.standard_normal((3, c, 4, 4), dtype=np.float32)), stride=2,
                               padding=1)
        assert z.dtype == np.float32 and z.shape == (2, c, 12, 12)


# --- bad input --------------------------------------------------------------------

def zeros(*shape):
    return T(np.zeros(shape))


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.conv2d(zeros(3, 8, 8), zeros(2, 3, 3, 3)), ValueError,
     r"conv2d: input must be 4-D \(N, C, H, W\), got shape \(3, 8, 8\)"),
    (lambda: F.conv2d(zeros(1, 3, 8, 8), zeros(3, 3, 3)), ValueError,
     r"conv2d: weight must be 4-D \(C_out, C_in, kh, kw\), got shape \(3, 3, 3\)"),
    (lambda: F.conv2d(zeros(64, 3, 8, 8), zeros(32, 1, 3, 3)), ValueError,
     r"conv2d: input has 3 channels but weight expects 1 \(input \(64, 3, 8, 8\), weight \(32, 1, 3, 3\)\)"),
    (lambda: F.conv2d(zeros(1, 1, 4, 4), zeros(1, 1, 7, 3), padding=1), ValueError,
     r"conv2d: kernel \(7, 3\) is larger than the padded input \(6, 6\) "
     r"\(input \(1, 1, 4, 4\), padding \(1, 1\)\)"),
    (lambda: F.conv2d(zeros(1, 1, 4, 4), zeros(1, 1, 3, 3), stride=0), ValueError,
     r"conv2d: stride must be positive, got 0"),
    (lambda: F.conv2d(zeros(1, 1, 4, 4), zeros(1, 1, 3, 3), stride=(1, -2)), ValueError,
     r"conv2d: stride must be positive, got \(1, -2\)"),
    (lambda: F.conv2d(zeros(1, 1, 4, 4), zeros(1, 1, 3, 3), padding=-1), ValueError,
     r"conv2d: padding must be non-negative, got -1"),
    (lambda: F.conv2d(zeros(1, 1, 4, 4), zeros(1, 1, 3, 3), stride=1.5), TypeError,
     r"conv2d: stride must be an int or a pair of ints, got 1.5"),
    (lambda: F.conv2d(zeros(1, 1, 4, 4), zeros(1, 1, 3, 3), padding=(1, 1, 1)), TypeError,
     r"conv2d: padding must be an int or a pair of ints, got \(1, 1, 1\)"),
    (lambda: F.conv2d(zeros(1, 1, 4, 4), zeros(2, 1, 3, 3), zeros(3)), ValueError,
     r"conv2d: bias has shape \(3,\), expected \(2,\)"),
    (lambda: F.conv2d(Tensor(np.zeros((1, 1, 4, 4), np.float32)), zeros(2, 1, 3, 3)), TypeError,
     r"conv2d: inputs must share one dtype, got input float32, weight float64"),
    (lambda: F.conv_transpose2d(zeros(4, 4, 4), zeros(4, 2, 3, 3)), ValueError,
     r"conv_transpose2d: input must be 4-D \(N, C, H, W\), got shape \(4, 4, 4\)"),
    (lambda: F.conv_transpose2d(zeros(1, 4, 4, 4), zeros(2, 4, 3)), ValueError,
     r"conv_transpose2d: weight must be 4-D \(C_in, C_out, kh, kw\), got shape \(2, 4, 3\)"),
    (lambda: F.conv_transpose2d(zeros(1, 4, 4, 4), zeros(2, 4, 3, 3)), ValueError,
     r"conv_transpose2d: input has 4 channels but weight expects 2 \(input \(1, 4, 4, 4\), "
     r"weight \(2, 4, 3, 3\)\)"),
    (lambda: F.conv_transpose2d(zeros(1, 4, 4, 4), zeros(4, 2, 3, 3), stride=2, output_padding=2), ValueError,
     r"conv_transpose2d: output_padding \(2, 2\) must be smaller than stride \(2, 2\) in each direction"),
    (lambda: F.conv_transpose2d(zeros(1, 4, 4, 4), zeros(4, 2, 3, 3), output_padding=(0, 1)), ValueError,
     r"conv_transpose2d: output_padding \(0, 1\) must be smaller than stride \(1, 1\)"),
    (lambda: F.conv_transpose2d(zeros(1, 4, 1, 1), zeros(4, 2, 1, 1), padding=1), ValueError,
     r"conv_transpose2d: the output would have size \(-1, -1\): padding \(1, 1\) is too large for "
     r"input \(1, 4, 1, 1\) and weight \(4, 2, 1, 1\)"),
    (lambda: F.conv_transpose2d(zeros(1, 4, 4, 4), zeros(4, 2, 3, 3), stride=0), ValueError,
     r"conv_transpose2d: stride must be positive, got 0"),
    (lambda: F.conv_transpose2d(zeros(1, 4, 4, 4), zeros(4, 2, 3, 3), padding=(0, -1)), ValueError,
     r"conv_transpose2d: padding must be non-negative, got \(0, -1\)"),
    (lambda: F.conv_transpose2d(zeros(1, 4, 4, 4), zeros(4, 2, 3, 3), zeros(4)), ValueError,
     r"conv_transpose2d: bias has shape \(4,\), expected \(2,\)"),
    (lambda: F.conv2d_grad_weight(zeros(1, 2, 5, 5), zeros(1, 3, 4, 4), 3), ValueError,
     r"conv2d_grad_weight: grad_output has shape \(1, 3, 4, 4\) but conv2d of input \(1, 2, 5, 5\) with "
     r"kernel \(3, 3\), stride \(1, 1\), padding \(0, 0\) gives \(1, 3, 3, 3\)"),
    (lambda: F.conv2d_grad_weight(zeros(1, 2, 5, 5), zeros(1, 3, 3), 3), ValueError,
     r"conv2d_grad_weight: grad_output must be 4-D \(N, C, H, W\), got shape \(1, 3, 3\)"),
    (lambda: F.conv2d_grad_weight(zeros(1, 2, 5, 5), zeros(1, 3, 3, 3), 0), ValueError,
     r"conv2d_grad_weight: kernel_size must be positive, got 0"),
    (lambda: F.conv2d_grad_weight(zeros(1, 2, 2, 2), zeros(1, 3, 1, 1), 3), ValueError,
     r"conv2d_grad_weight: kernel \(3, 3\) is larger than the padded input \(2, 2\)"),
])
def test_bad_input_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- PyTorch, where installed -------------------------------------------------------

TORCH_CASES = [  # (N, C_in, H, W, C_out, kh, kw, stride, padding)
    (2, 3, 9, 7, 4, 3, 2, (2, 1), (1, 0)),
    (1, 1, 8, 8, 2, 5, 5, 1, 2),
    (3, 16, 7, 7, 8, 4, 4, 2, 1),     # channels last at the default threshold
    (2, 32, 6, 5, 16, 3, 3, 3, 2),
]


@pytest.mark.parametrize("case", TORCH_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_pytorch(case, dtype):
    torch = pytest.importorskip("torch")
    n, ci, h, wd, co, kh, kw, stride, padding = case
    rng = np.random.default_rng(4)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((n, ci, h, wd), (co, ci, kh, kw), (co,)))
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)

    ours = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*ours, stride=stride, padding=padding)
    yt = torch.nn.functional.conv2d(*theirs, stride=stride, padding=padding)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), **tol)
    g = rng.standard_normal(y.shape).astype(dtype)
    (y * Tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    for a, at in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), at.grad.numpy(), **tol)

    # conv_transpose2d with conv2d's weight read as (C_in, C_out): maps y's shape back to x's
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    op = ((h + 2 * ph - kh) % sh, (wd + 2 * pw - kw) % sw)
    bt_ = rng.standard_normal(ci).astype(dtype)
    ours = [Tensor(a, requires_grad=True) for a in (g, w, bt_)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (g, w, bt_)]
    z = F.conv_transpose2d(*ours, stride=stride, padding=padding, output_padding=op)
    zt = torch.nn.functional.conv_transpose2d(*theirs, stride=stride, padding=padding, output_padding=op)
    assert z.shape == x.shape
    np.testing.assert_allclose(z.numpy(), zt.detach().numpy(), **tol)
    gz = rng.standard_normal(z.shape).astype(dtype)
    (z * Tensor(gz)).sum().backward()
    (zt * torch.tensor(gz)).sum().backward()
    for a, at in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), at.grad.numpy(), **tol)


def test_second_derivatives_match_pytorch():
    """The gradient penalty of WGAN-GP: d/dw of |dL/dx|^2 through a two-layer conv net."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 8, 8))
    w1, w2 = rng.standard_normal((16, 3, 4, 4)), rng.standard_normal((1, 16, 4, 4))

    xs, w1s, w2s = T(x, True), T(w1, True), T(w2, True)
    h = F.conv2d(xs, w1s, stride=2, padding=1)
    out = F.conv2d(h * h, w2s, stride=2, padding=1).sum()
    gx, = grad(out, [xs], create_graph=True)
    penalty = (gx * gx).sum()
    g1, g2 = grad(penalty, [w1s, w2s])

    xt, w1t, w2t = (torch.tensor(a, requires_grad=True) for a in (x, w1, w2))
    ht = torch.nn.functional.conv2d(xt, w1t, stride=2, padding=1)
    outt = torch.nn.functional.conv2d(ht * ht, w2t, stride=2, padding=1).sum()
    gxt, = torch.autograd.grad(outt, [xt], create_graph=True)
    g1t, g2t = torch.autograd.grad((gxt * gxt).sum(), [w1t, w2t])
    np.testing.assert_allclose(g1.numpy(), g1t.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(g2.numpy(), g2t.numpy(), rtol=1e-9, atol=1e-9)


# --- the GPU path (im2col / col2im are tinygen's CUDA kernels), where there is one ---------

@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("case", TORCH_CASES)
def test_gpu_matches_numpy(case):
    n, ci, h, wd, co, kh, kw, stride, padding = case
    rng = np.random.default_rng(6)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((n, ci, h, wd), (co, ci, kh, kw), (co,)))
    (sh, sw), (ph, pw) = (conv_module._pair(v, "", "", 0) for v in (stride, padding))
    op = ((h + 2 * ph - kh) % sh, (wd + 2 * pw - kw) % sw)   # conv_transpose2d gives x's shape back
    results = {}
    for device in ("cpu", "cuda"):
        ts = [Tensor(a, requires_grad=True, device=device) for a in (x, w, b)]
        y = F.conv2d(*ts, stride=stride, padding=padding)
        z = F.conv_transpose2d(y, ts[1], stride=stride, padding=padding, output_padding=op)
        (z * z).sum().backward()
        results[device] = [y.cpu().numpy(), z.cpu().numpy()] + [t.grad.cpu().numpy() for t in ts]
    for ours, gpu in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(gpu, ours, rtol=1e-4, atol=1e-4)


def test_ops_do_not_mutate_inputs_or_the_gradient(layout):
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    g = rng.standard_normal((2, 4, 3, 3))
    saved = [a.copy() for a in (x, w, b, g)]
    for op in (lambda *t: F.conv2d(*t, stride=2, padding=1),
               lambda *t: F.conv_transpose2d(F.conv2d(*t, stride=2, padding=1), t[1], stride=2, padding=1)):
        ts = [T(a, requires_grad=True) for a in (x, w, b)]
        y = op(*ts)
        seed = T(g) if y.shape == g.shape else T(rng.standard_normal(y.shape))
        before = seed.numpy().copy()
        grad(y, ts, seed, create_graph=True)
        np.testing.assert_array_equal(seed.numpy(), before)
    for a, s in zip((x, w, b, g), saved):
        np.testing.assert_array_equal(a, s)
