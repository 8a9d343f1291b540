"""Float64 NumPy references for the CUDA kernels, their rounding-error bounds, and test cases.

Each kernel is compiled for float32 and for float64 and computes in that
precision; each comparison is against these float64 references with a
tolerance derived from the rounding error of the computation in the kernel's
precision (u = 2^-24 is float32's unit roundoff, 2^-53 float64's), not a
tolerance tuned until the test passes:

- im2col copies values: it must be exact.
- col2im adds at most m = ceil(kh/sh) * ceil(kw/sw) entries per pixel; a sum of
  m float32 numbers is within (m - 1) u sum|terms| of the exact sum.
- conv2d_grad_weight adds N*L products (each rounded once) in a few partial
  sums: within (N*L + 2) u sum|dy * cols|.
- The LSTM cell is a short chain of roundings and a few exp/tanh calls
  (glibc: < 1 ulp, CUDA: <= 2 ulp) on values of order one.

The float64 bounds are some 10^8 times tighter than the float32 ones, so a
float64 launch that computed in float32 anywhere (a cast, an expf) fails them;
test cases in float64 are drawn in float64, not widened from float32.
"""
import numpy as np
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

U32 = 2.0 ** -24   # float32 unit roundoff
U64 = 2.0 ** -53   # float64 unit roundoff
DTYPES = (np.float32, np.float64)   # what the kernels are compiled for


def unit_roundoff(dtype):
    return {np.dtype(np.float32): U32, np.dtype(np.float64): U64}[np.dtype(dtype)]


def out_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def im2col(x, kh, kw, sh, sw, ph, pw):
    """cols[n, c*kh*kw + i*kw + j, oh*Wo + ow] = xpad[n, c, oh*sh + i, ow*sw + j], by sliding windows."""
    xpad = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = sliding_window_view(xpad, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]   # (N, C, Ho, Wo, kh, kw)
    N, C, Ho, Wo = windows.shape[:4]
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(N, C * kh * kw, Ho * Wo)


def col2im(cols, x_shape, kh, kw, sh, sw, ph, pw):
    """The adjoint of im2col: add each kernel offset's columns back at the pixels they came from."""
    N, C, H, W = x_shape
    Ho, Wo = out_size(H, kh, sh, ph), out_size(W, kw, sw, pw)
    cols = np.asarray(cols, np.float64).reshape(N, C, kh, kw, Ho, Wo)
    xpad = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    for i in range(kh):
        for j in range(kw):
            xpad[:, :, i:i + sh * Ho:sh, j:j + sw * Wo:sw] += cols[:, :, i, j]
    return xpad[:, :, ph:ph + H, pw:pw + W]


def col2im_tolerance(cols, x_shape, kh, kw, sh, sw, ph, pw):
    """Per-pixel bound on |col2im in cols' precision - this reference|: (m - 1) u col2im(|cols|) for
    m terms per pixel, twice that for float64, whose reference sums in float64 too (its own error
    is as large)."""
    m = -(-kh // sh) * -(-kw // sw)
    both = 2 if np.dtype(cols.dtype) == np.float64 else 1
    return both * max(m - 1, 0) * unit_roundoff(cols.dtype) * col2im(np.abs(cols), x_shape, kh, kw, sh, sw, ph, pw)


def grad_weight(dy, cols):
    """dw[o, r] = sum_n sum_l dy[n, o, l] cols[n, r, l] in float64, and its error bound in dy's precision."""
    u = unit_roundoff(dy.dtype)
    dy, cols = np.asarray(dy, np.float64), np.asarray(cols, np.float64)
    dw = np.einsum("nol,nrl->or", dy, cols)
    bound = (dy.shape[0] * dy.shape[2] + 2) * u * np.einsum("nol,nrl->or", np.abs(dy), np.abs(cols))
    return dw, bound


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def lstm_cell_forward(pre, c_prev):
    """(h, c, gates) of one LSTM step in float64; pre = [i|f|g|o] pre-activations (N, 4H)."""
    pre, c_prev = np.asarray(pre, np.float64), np.asarray(c_prev, np.float64)
    a_i, a_f, a_g, a_o = np.split(pre, 4, axis=1)
    i, f, g, o = _sigmoid(a_i), _sigmoid(a_f), np.tanh(a_g), _sigmoid(a_o)
    c = f * c_prev + i * g
    return o * np.tanh(c), c, np.concatenate([i, f, g, o], axis=1)


def lstm_cell_backward(gates, c_prev, c, dh, dc):
    """(dpre, dc_prev) of one LSTM step in float64, from the stored gates and cell."""
    gates, c_prev, c, dh, dc = (np.asarray(a, np.float64) for a in (gates, c_prev, c, dh, dc))
    i, f, g, o = np.split(gates, 4, axis=1)
    tc = np.tanh(c)
    dc_total = dc + dh * o * (1 - tc ** 2)
    dpre = np.concatenate([dc_total * g * i * (1 - i), dc_total * c_prev * f * (1 - f),
                           dc_total * i * (1 - g ** 2), dh * tc * o * (1 - o)], axis=1)
    return dpre, dc_total * f


# --- test cases, shared by the emulated and the GPU tests -----------------------------

@st.composite
def conv_cases(draw, dtype=np.float32):
    """(x, kh, kw, sh, sw, ph, pw): odd and even sizes, strides 1-3, padding 0-2 (even past the kernel).

    Strides and paddings are drawn per axis, as the kernels take them
    (as tinygen.testing.conv_params does too).
    """
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    H = draw(st.integers(max(1, kh - 2 * ph), 9))   # at least one window fits
    W = draw(st.integers(max(1, kw - 2 * pw), 9))
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).standard_normal((N, C, H, W)).astype(dtype)
    return x, kh, kw, sh, sw, ph, pw


def case(N, C, H, W, kh, kw, sh, sw, ph, pw, seed=0, dtype=np.float32):
    """One conv_cases draw, chosen by hand."""
    return np.random.default_rng(seed).standard_normal((N, C, H, W)).astype(dtype), kh, kw, sh, sw, ph, pw


def lstm_inputs(N, H, seed, scale=3.0, dtype=np.float32):
    """pre (N, 4H) of size ~scale (30: saturated gates), and c_prev, dh, dc (N, H) of size ~1, in dtype."""
    rng = np.random.default_rng(seed)
    pre = (scale * rng.standard_normal((N, 4 * H))).astype(dtype)
    c_prev = rng.standard_normal((N, H)).astype(dtype)
    dh = rng.standard_normal((N, H)).astype(dtype)
    dc = rng.standard_normal((N, H)).astype(dtype)
    return pre, c_prev, dh, dc


# Each output is a few roundings and at most two exp/tanh calls on values of
# order one (|c| <= |c_prev| + 1): a few ulp (float32: ~1e-7, float64: ~1e-16),
# far inside these bounds; float32's error is 10^5 times float64's bound.
RTOL, ATOL = 1e-5, 1e-6            # float32
RTOL64, ATOL64 = 1e-12, 1e-13      # float64


def cell_tolerance(dtype):
    """{rtol, atol} for comparing an LSTM cell kernel's dtype results with the float64 reference."""
    return dict(rtol=RTOL, atol=ATOL) if np.dtype(dtype) == np.float32 else dict(rtol=RTOL64, atol=ATOL64)
