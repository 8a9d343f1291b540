"""Pooling and resampling of images x (N, C, H, W).

Windows. A kh x kw kernel moved with stride (sh, sw) over x padded by (ph, pw) on
each side has

    Ho = (H + 2 ph - kh) // sh + 1          Wo = (W + 2 pw - kw) // sw + 1

outputs. The window of output (i, j) starts at padded pixel (i sh, j sw), so the
values at kernel offset (a, b) of all windows form one strided view of the padded
input,

    view_ab = x_pad[:, :, a : a + sh (Ho - 1) + 1 : sh,  b : b + sw (Wo - 1) + 1 : sw]

and a pooling is a loop over the kh kw offsets, never over pixels:

    avg_pool2d   y = (1 / (kh kw)) sum_ab view_ab      (x padded with 0; the zeros count,
                                                        PyTorch's count_include_pad)
                 dL/dx: each view's gradient added back where the view was taken
    max_pool2d   y = view_{a* b*}, the offset with the largest value (the first on ties)
                 dL/dx = dL/dy sent to each window's winning pixel

The winners are found on the values, then y = x[winners] is a gather with a
constant index, linear in x: its gradient is a scatter-add (getitem's backward),
linear in dL/dy, so it is differentiable again, and its derivative in x is 0 (the
max is locally linear), as a gradient penalty through a max-pooling critic needs.

Resampling is linear in x and separable: each output row is a fixed combination
of input rows, and each output column one of input columns. With matrices
A_h (Ho, H) and A_w (Wo, W),

    y = A_h x A_w^T                     dL/dx = A_h^T dL/dy A_w      (matmuls both ways)

    nearest     A[o, i(o)] = 1,   i(o) = min(floor(o s), in - 1)      in float32, and
                                  i(o) = o when out = in, o // 2 when out = 2 in
                                  (PyTorch's CPU rule, special cases included)
    bilinear    A[o, i0] += 1 - t,  A[o, i1] += t,    i0 = floor(c), i1 = min(i0 + 1, in - 1),
                                                      t = c - i0, for the source coordinate
                c = (o + 1/2) s - 1/2  (clamped at 0)  align_corners=False: pixel centres line up
                c = o (in - 1) / (out - 1)             align_corners=True:  corner pixels line up

with s = in / out, or 1 / scale_factor when a scale_factor is given (PyTorch's
rule). ``upsample_nearest`` by an integer k copies each pixel into a k x k block:
i(o) = o // k exactly. (The matrices are mostly zeros, but two small GEMMs beat a
gather and its scatter-add on the CPU at the sizes these models use.)
"""
import math

import numpy as np

from .. import backend, fast_paths
from . import _block_pool
from ..autograd.tensor import Tensor
from ._base import as_float
from .conv import _pair
from .linalg import matmul
from .reduction import mean
from .padding import pad
from .shape import getitem, reshape


# --- window geometry -------------------------------------------------------------

def _check_image(x, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D (N, C, H, W) input, got shape {tuple(x.shape)}")
    if min(x.shape[2:]) < 1:
        raise ValueError(f"{op}: the input has no pixels, shape {tuple(x.shape)}")


def _windows(op, x, kernel_size, stride, padding):
    """Checked (kh, kw), (sh, sw), (ph, pw) and the output size (Ho, Wo) for pooling ``x``."""
    _check_image(x, op)
    k = _pair(kernel_size, "kernel_size", op, 1)
    s = k if stride is None else _pair(stride, "stride", op, 1)
    p = _pair(padding, "padding", op, 0)
    size = tuple(x.shape[2:])
    out = []
    for name, n, kk, ss, pp in zip(("height", "width"), size, k, s, p):
        if 2 * pp > kk:
            raise ValueError(f"{op}: padding {p} must be at most half of kernel_size {k}")
        if kk > n + 2 * pp:
            raise ValueError(f"{op}: kernel_size {k} is larger than the input's {name} {n} plus "
                             f"padding {p} (input shape {tuple(x.shape)})")
        m = (n + 2 * pp - kk) // ss + 1
        skipped = pp + n - ((m - 1) * ss + kk)   # real pixels past the last window
        if skipped > 0:
            if ss == kk and pp == 0:
                raise ValueError(f"{op}: height {size[0]} and width {size[1]} must be multiples of "
                                 f"kernel_size {kk} (non-overlapping windows would drop the rest)")
            raise ValueError(f"{op}: kernel_size {k}, stride {s} and padding {p} leave the last "
                             f"{skipped} pixel(s) of the input's {name} {n} in no window (input "
                             f"shape {tuple(x.shape)})")
        out.append(m)
    return k, s, p, tuple(out)


def _offset_views(kernel, stride, out_size):
    """The index of view_ab for each kernel offset (a, b), in the order a kw + b."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_size
    return [(slice(None), slice(None), slice(a, a + sh * (ho - 1) + 1, sh),
             slice(b, b + sw * (wo - 1) + 1, sw)) for a in range(kh) for b in range(kw)]


# --- pooling -----------------------------------------------------------------------

def avg_pool2d(x, kernel_size=2, stride=None, padding=0):
    """Average over kh x kw windows: (N, C, H, W) -> (N, C, Ho, Wo); stride defaults to the kernel."""
    k, s, p, out = _windows("avg_pool2d", x, kernel_size, stride, padding)
    n, c = x.shape[:2]
    if s == k and p == (0, 0):  # non-overlapping blocks that tile x: one reshape
        if fast_paths.enabled():
            return _block_pool.block_mean(as_float(x), k)
        return mean(reshape(x, (n, c, out[0], k[0], out[1], k[1])), axis=(3, 5))
    padded = pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    total = None
    for view in _offset_views(k, s, out):
        v = getitem(padded, view)
        total = v if total is None else total + v
    return total * (1.0 / (k[0] * k[1]))


def _winners(x, kernel, stride, padding, out_size):
    """Flat indices into x (N, C, H, W) of each window's largest value (the first on ties)."""
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    (ph, pw), (sh, sw), (ho, wo) = padding, stride, out_size
    lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    padded = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=lowest)
    best, arg = None, None
    for o, view in enumerate(_offset_views(kernel, stride, out_size)):
        v = padded[view]
        if best is None:
            best, arg = v, xp.zeros(v.shape, dtype=np.int64)
        else:
            better = v > best
            best, arg = xp.where(better, v, best), xp.where(better, o, arg)
    a, b = arg // kernel[1], arg % kernel[1]
    rows = xp.arange(ho).reshape(ho, 1) * sh + a - ph  # never a padded row: padding <= kernel / 2
    cols = xp.arange(wo) * sw + b - pw
    planes = xp.arange(n * c).reshape(n, c, 1, 1)
    return (planes * h + rows) * w + cols


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Maximum over kh x kw windows: (N, C, H, W) -> (N, C, Ho, Wo); stride defaults to the kernel."""
    k, s, p, out = _windows("max_pool2d", x, kernel_size, stride, padding)
    return getitem(reshape(x, (-1,)), _winners(x.data, k, s, p, out))


# --- resampling ----------------------------------------------------------------------

def _copy_matrix(source, n_in):
    """A (len(source), n_in) with A[o, source[o]] = 1: output pixel o copies input pixel source[o]."""
    a = np.zeros((len(source), n_in))
    a[np.arange(len(source)), source] = 1.0
    return a


def _nearest_source(n_in, n_out, scale_factor):
    """i(o) for o = 0 .. n_out - 1: the input pixel nearest resampling copies."""
    o = np.arange(n_out)
    if n_out == n_in:
        return o
    if n_out == 2 * n_in:
        return o // 2
    s = np.float32(1.0 / scale_factor if scale_factor is not None else n_in / n_out)
    return np.minimum(np.floor(o.astype(np.float32) * s).astype(np.int64), n_in - 1)


def _bilinear_matrix(n_in, n_out, align_corners, scale_factor):
    """A (n_out, n_in): output pixel o = (1 - t) input i0 + t input i1 along one axis."""
    o = np.arange(n_out)
    if align_corners:
        c = o * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:
        s = 1.0 / scale_factor if scale_factor is not None else n_in / n_out
        c = np.maximum((o + 0.5) * s - 0.5, 0.0)
    i0 = np.minimum(np.floor(c).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    t = c - i0
    a = np.zeros((n_out, n_in))
    np.add.at(a, (o, i0), 1.0 - t)   # add: i0 == i1 at the last pixel
    np.add.at(a, (o, i1), t)
    return a


def _resample(x, a_h, a_w):
    """y = A_h x A_w^T, skipping an axis whose matrix is the identity."""
    xp = backend.get_array_module(x.data)
    y = x
    if not _is_identity(a_w):   # columns: y A_w^T
        y = matmul(y, Tensor._make(xp.asarray(a_w.T, dtype=x.dtype)))
    if not _is_identity(a_h):   # rows: A_h y
        y = matmul(Tensor._make(xp.asarray(a_h, dtype=x.dtype)), y)
    return y


def _nearest(x, source_h, source_w):
    """Nearest resampling: output row o copies input row source_h[o], column o' column source_w[o']."""
    h, w = x.shape[2:]
    factors = (_whole_factor(source_h, h), _whole_factor(source_w, w))
    if None not in factors and fast_paths.enabled():    # each pixel into a block: a copy, no GEMM
        return _block_pool.block_copy(x, factors)
    return _resample(x, _copy_matrix(source_h, h), _copy_matrix(source_w, w))


def _whole_factor(source, n_in):
    """k when source is 0, .., 0, 1, .., 1, ... (each of the n_in pixels k times), else None."""
    k = len(source) // n_in
    return k if len(source) == k * n_in and np.array_equal(source, np.arange(len(source)) // k) else None


def _is_identity(a):
    return a.shape[0] == a.shape[1] and np.array_equal(a, np.eye(a.shape[0]))


def upsample_nearest(x, scale=2):
    """(N, C, H, W) -> (N, C, H*scale, W*scale), each pixel copied into a scale x scale block."""
    _check_image(x, "upsample_nearest")
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"upsample_nearest: scale must be a positive integer, got {scale!r}")
    h, w = x.shape[2:]
    return _nearest(x, np.arange(h * scale) // scale, np.arange(w * scale) // scale)


def _output_size(x, scale_factor, size):
    """The checked (Ho, Wo) and per-axis scale factors (None when ``size`` is given)."""
    if (scale_factor is None) == (size is None):
        raise ValueError("interpolate: give exactly one of scale_factor and size, got "
                         f"scale_factor={scale_factor!r}, size={size!r}")
    h, w = x.shape[2:]
    if size is not None:
        return _pair(size, "size", "interpolate", 1), (None, None)
    factors = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * 2
    if len(factors) != 2 or not all(isinstance(f, (int, float, np.number)) and not isinstance(f, bool)
                                    and math.isfinite(f) and f > 0 for f in factors):
        raise ValueError(f"interpolate: scale_factor must be a positive number or a pair of them, "
                         f"got {scale_factor!r}")
    out = (int(math.floor(h * factors[0])), int(math.floor(w * factors[1])))
    if min(out) < 1:
        raise ValueError(f"interpolate: scale_factor {scale_factor!r} makes an empty output "
                         f"{out} from input shape {tuple(x.shape)}")
    return out, tuple(float(f) for f in factors)


MODES = ("nearest", "bilinear")


def interpolate(x, *, scale_factor=None, size=None, mode="nearest", align_corners=False):
    """Resize images (N, C, H, W) to ``size`` (Ho, Wo) or by ``scale_factor`` (PyTorch's semantics).

    ``mode``: "nearest" or "bilinear"; ``align_corners`` (bilinear only) maps the
    corner pixels onto each other instead of the pixel centres' grid.
    """
    _check_image(x, "interpolate")
    if mode not in MODES:
        raise ValueError(f"interpolate: mode must be one of {', '.join(MODES)}, got {mode!r}")
    if align_corners and mode == "nearest":
        raise ValueError("interpolate: align_corners applies to mode='bilinear' only, not 'nearest'")
    if mode == "bilinear" and x.dtype.kind != "f":
        raise TypeError(f"interpolate: bilinear needs a floating tensor, got {x.dtype}")
    (ho, wo), factors = _output_size(x, scale_factor, size)
    h, w = x.shape[2:]
    if mode == "nearest":
        return _nearest(x, _nearest_source(h, ho, factors[0]), _nearest_source(w, wo, factors[1]))
    return _resample(x, _bilinear_matrix(h, ho, align_corners, factors[0]),
                     _bilinear_matrix(w, wo, align_corners, factors[1]))
