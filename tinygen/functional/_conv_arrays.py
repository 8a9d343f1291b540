"""The array side of the convolutions: the GEMMs around im2col and col2im, on NumPy or CuPy arrays.

``conv.py`` holds the ops and their equations; this file is what makes them fast, with
``_conv_im2col.py`` for the patch copies themselves.

Speed. Each product is one GEMM over all images at once (the batch sits in the
long side of the matrix), and the copies around it move long contiguous runs:

  - channels first, the contract above: cols stored K-major, y produced as
    channel-major (C, N, H, W) memory. Always used on a GPU, where im2col and
    col2im are tinygen's CUDA kernels (``tinygen.cuda``) and the GEMMs CuPy's.
  - channels last, NumPy from ``CHANNELS_LAST_MIN`` input channels on (and below it
    where the output is small and a patch row is that long): the same products with K
    ordered (i, j, c) and images in NHWC memory, so a patch row is kw C contiguous
    numbers (see ``_im2col_last``, ``_col2im_last``).

A 1x1 convolution with stride 1 and no padding skips im2col and col2im: its patch
matrix is the pixel matrix itself (``_pointwise``). Other stride-1 convolutions in the
channels-last layout skip them too where the image is not small: ``_conv_frames.py``
multiplies shifted slices of the zero-framed image (an implicit GEMM), and keeps the
frame (about the input's size) for the weight gradient instead of the patches.

3x3 convolutions at stride 1 in the channels-last layout, dense and not too small, go by
Winograd's F(4x4, 3x3) instead (``_conv_winograd.py``; F(2x2, 3x3) on small images):
4x fewer multiplications in 36 GEMMs over transformed 6x6 tiles, the tiles kept for the
weight gradient. So do kernels of s r taps at stride s (DCGAN's 4x4 / 2), as r x r kernels
over s x s blocks of pixels (``_conv_strided.py``, F(4x4, 2x2)).

In the channels-last layout the input gradient (and so conv_transpose2d) skips col2im
when the stride divides the kernel (DCGAN's 4 / 2, every stride 1): the output's
stride phases are then one im2col of the gradient and one GEMM (``_input_grad_by_phases``),
unless the phases' whole rows would compute more than twice the output (small images).

Outputs are views in whatever memory order their GEMM produced; every step
accepts any strides, so the next layer usually reads them without a copy.
conv2d keeps its patches for its weight gradient (K/C times the input's size,
held until backward), so im2col runs once per input per training step. A large
channels-last patch matrix is never made whole (``_conv_blocks``): it is made a
cache-sized block of rows at a time as each product reads it, and conv2d keeps the
padded input instead, so its weight gradient makes the blocks again.
"""
import numpy as np

from .. import backend, fast_paths
from . import _conv_frames, _conv_strided, _conv_winograd
from ._conv_im2col import (_as_channels_last, _col2im_last, _im2col_last, _in_layout, _out_size, _patch_matrix,
                           _window_last, col2im, im2col)
from .linalg import _product


# --- the products on arrays: every image in one GEMM ----------------------------
#
# Pixels are rows: an image batch (N, C, H, W) is used as the (N H W, C) matrix of
# its pixels, and cols as the (N Ho Wo, K) matrix of its patches. Then
#
#     conv2d                y  (N Ho Wo, O) = cols @ w2^T
#     its input gradient    cols            = g_rows @ w2, then col2im
#     its weight gradient   gw (O, K)       = g_rows^T @ cols
#
# Two layouts, picked by the channel count C of the conv's input side:
#   channels first (the im2col contract, K = (c, i, j); on the GPU always): matrices
#     stored transposed, so conv2d's output is channel-major (C, N, H, W) memory;
#   channels last (NumPy with C >= CHANNELS_LAST_MIN, or small outputs with kw C >= it; K = (i, j, c)):
#     matrices stored row-major, so images are NHWC memory. Its copies move runs of C or more numbers
#     where channels-first moves runs of Wo, and its GEMMs have the long side first,
#     which OpenBLAS runs faster (measured: benchmarks/conv.py).
# NumPy's matmul reads either memory order without a copy; every step accepts
# any strides, and an image already in the right memory order is not copied.

CHANNELS_LAST_MIN = 8
# ... and where the output is small (8x8) and a patch row of kw C numbers is as long: StarGAN's 7x7 over
# 5 channels, 1.63 -> 1.40 ms forward and both gradients (from 14x14 on it was up to 1.4x slower there)
SMALL_OUTPUT = 64


def _channels_last(a, channels, kw=1, out_pixels=None):
    """The layout rule above, for a kernel kw wide whose output has out_pixels pixels an image."""
    if backend.get_array_module(a) is not np or not fast_paths.enabled():
        return False
    small = out_pixels is not None and out_pixels <= SMALL_OUTPUT
    return channels >= CHANNELS_LAST_MIN or (small and kw * channels >= CHANNELS_LAST_MIN)


def _rows(a, last):
    """(N, C, H, W) -> the (N H W, C) matrix of its pixels: a view when a's memory is either
    layout (a GEMM reads both), else a copy in the layout ``last`` names."""
    n, c, h, w = a.shape
    if _in_layout(a, not last):
        last = not last
    if last:
        return a.transpose(0, 2, 3, 1).reshape(n * h * w, c)
    return a.transpose(1, 0, 2, 3).reshape(c, n * h * w).T


def _image(m, shape):
    """The (N H W, C) matrix m -> its (N, C, H, W) view."""
    n, c, h, w = shape
    return m.reshape(n, h, w, c).transpose(0, 3, 1, 2)



def _pointwise(a, kh, kw, sh, sw, ph, pw):
    """A 1x1 convolution with stride 1 and no padding (on NumPy): its patches are the pixels."""
    return (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0) and backend.get_array_module(a) is np \
        and fast_paths.enabled()


def _framed(cols):
    """True when ``cols`` is a stride-1 frame (``_conv_frames``), which reads g in any memory order
    (Winograd's tiles read g channels-last: ``_as_channels_last`` copies it there when it is not)."""
    return isinstance(cols, _conv_frames.Frame)


def _patches(x, kh, kw, sh, sw, ph, pw, last, w=None):
    """im2col as the (N Ho Wo, K) matrix, K ordered as the layout says; at stride 1 in the
    channels-last layout, the framed image instead (``_conv_frames``: no patches copied)."""
    if _pointwise(x, kh, kw, sh, sw, ph, pw):
        return _rows(x, last)                 # K = C in either layout: no im2col, often no copy
    if last and _conv_winograd.fits(x.shape, kh, kw, sh, sw, ph, pw, w, x.itemsize):
        return _conv_winograd.tiles(_as_channels_last(x), ph, pw, kh)   # 3x3 at stride 1: the tiles' transform
    if last and _conv_strided.block_fits(x.shape, kh, kw, sh, sw, ph, pw, w, x.itemsize):
        window = _conv_strided.block_window(x.shape, kh, sh, ph, pw)     # 4x4 at stride 2: by blocks of pixels
        return _conv_strided.block_tiles(_window_last(x, *window), kh, sh, x.shape, (ph, pw))
    if last and _conv_frames.fits(x.shape, kh, kw, sh, sw, ph, pw, w, x.itemsize):
        return _conv_frames.frame(x, kh, kw, ph, pw)   # stride 1: no patches, the framed image
    if last:
        return _im2col_last(x, kh, kw, sh, sw, ph, pw)
    cols = im2col(x, kh, kw, sh, sw, ph, pw)                           # (N, K, P)
    n, k, p = cols.shape
    return cols.transpose(1, 0, 2).reshape(k, n * p).T                  # free for the NumPy layout


def _conv(x, w, stride, padding, cols=None):
    """y = conv2d(x, w) on arrays; returns y and the patches it used."""
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    last = _channels_last(x, c, kw, _out_size(h, kh, sh, ph) * _out_size(wd, kw, sw, pw))
    if cols is None:
        cols = _patches(x, kh, kw, sh, sw, ph, pw, last, w)
    if isinstance(cols, _conv_winograd.Tiles):
        return _conv_winograd.correlate(cols, w), cols
    if isinstance(cols, _conv_strided.BlockTiles):
        return _conv_strided.block_correlate(cols, w), cols
    if _framed(cols):
        return _conv_frames.correlate(cols, w), cols
    if last:
        # w2^T as a row-major (K, O) copy: a product by blocks packs it once per block, faster
        # untransposed (P @ w2^T by blocks for a 4x4 / 2 layer at 14 x 14: 10.1 -> 9.4 ms)
        y = cols @ w.transpose(2, 3, 1, 0).reshape(-1, o)               # (N Ho Wo, O), row-major
    elif fast_paths.enabled() and backend.get_array_module(x) is np:
        # few input channels (an image): the same product stored (N Ho Wo, O), channels-last like
        # the convolutions after it (1.4-1.9x faster than (O, N Ho Wo) for K = 9 to 49, measured)
        y = _product(cols, w.reshape(o, -1).T)    # a 1x1 kernel on one channel: an outer product
    else:
        y = (w.reshape(o, -1) @ cols.T).T                               # stored as (O, N Ho Wo)
    return _image(y, (n, o, _out_size(h, kh, sh, ph), _out_size(wd, kw, sw, pw))), cols


def _conv_input_grad(g, w, x_shape, stride, padding):
    """col2im(w2^T g): conv2d's gradient w.r.t. its input (= conv_transpose2d(g, w)) on arrays."""
    (sh, sw), (ph, pw) = stride, padding
    n, c = x_shape[:2]
    o, _, kh, kw = w.shape
    if _pointwise(g, kh, kw, sh, sw, ph, pw):   # cols = g_rows @ w2 is the gradient itself (O = 1: outer)
        return _image(_product(_rows(g, _channels_last(g, c)), w.reshape(o, c)), x_shape)
    if _channels_last(g, c, kw, g.shape[2] * g.shape[3]):
        if _conv_winograd.input_grad_fits(g.shape, w, sh, sw, ph, pw):
            return _conv_winograd.input_grad(_as_channels_last(g), w, padding)
        if _conv_strided.block_input_grad_fits(g.shape, w, x_shape, sh, sw, ph, pw):
            return _conv_strided.block_input_grad(_as_channels_last(g), w, x_shape, sh, padding)
        if _conv_frames.input_grad_fits(g.shape, w, sh, sw, ph, pw):
            return _conv_frames.input_grad(g, w, x_shape, padding)
        if kh % sh == 0 and kw % sw == 0 and _phases_waste(x_shape, stride, padding) <= PHASES_MAX_WASTE:
            return _input_grad_by_phases(g, w, x_shape, stride, padding)
        # one product per kernel offset (a batched matmul): each offset's columns come out as
        # one contiguous (N Ho Wo, C) block, which col2im adds in long runs
        w3 = w.transpose(2, 3, 0, 1).reshape(kh * kw, o, c)
        return _col2im_last(np.matmul(_rows(g, True), w3), x_shape, kh, kw, sh, sw, ph, pw)
    cols = w.reshape(o, -1).T @ _rows(g, False).T                      # (K, N Ho Wo)
    return col2im(cols.reshape(cols.shape[0], n, -1).transpose(1, 0, 2), x_shape, kh, kw, sh, sw, ph, pw)


# The input gradient without col2im, when the stride divides the kernel (DCGAN's 4 / 2, every
# stride 1). Output row y = q sh + r (phase r < sh) receives g's row h from the taps
# i = r + sh t (t < ka = kh / sh) with h = q - t, so each phase is a stride-1 correlation
# of g with a ka x kb kernel, and all sh sw phases read the same ka x kb windows of g:
#
#     prod[(n, q, q'), (r, r', c)] = sum_{a, b, o} gwin[(n, q, q'), (a, b, o)] wph[(a, b, o), (r, r', c)]
#     gwin = the ka x kb windows of g, rows q - ka + 1 .. q     (t = ka - 1 - a)
#     wph[(a, b, o), (r, r', c)] = w[o, c, r + sh (ka - 1 - a), r' + sw (kb - 1 - b)]
#
# one im2col of g and one GEMM; the phases are then interleaved by one copy. Only the q
# whose rows reach the output [ph, ph + H) are computed.

def _phase_weight(w, sh, sw):
    """wph above, (ka kb O, sh sw C), for w (O, C, kh, kw) with sh | kh and sw | kw."""
    o, c, kh, kw = w.shape
    ka, kb = kh // sh, kw // sw
    w6 = w.reshape(o, c, ka, sh, kb, sw)[:, :, ::-1, :, ::-1, :]     # [o, c, a, r, b, r']
    return w6.transpose(2, 4, 0, 3, 5, 1).reshape(ka * kb * o, sh * sw * c)


def _phase_rows(size, s, p):
    """(q0, q1): the phases' rows q0 s .. q1 s that cover the output rows p .. p + size (padded numbering)."""
    return p // s, -(-(p + size) // s)


# The phases compute whole rows q0 .. q1 of every phase, s (q1 - q0) output rows for H (and so for
# the columns). On small images that is much more than the output (2 x 2 -> 4 x 4 at stride 2,
# padding 1: 6 x 6 for 4 x 4, 2.25 times), and there one product per kernel offset with col2im,
# which compute only what is used, are faster (64 images, 64 -> 32 channels: 0.29-0.32 ms against
# 0.45-0.50; PyTorch 0.34. 4 x 4 -> 8 x 8, 1.56 times: 2.21-2.24 ms against 2.31-2.33, a tie).
PHASES_MAX_WASTE = 2.0


def _phases_waste(x_shape, stride, padding):
    """Output pixels the phases compute per pixel of the (N, C, H, W) output."""
    (sh, sw), (ph, pw), (h, wd) = stride, padding, x_shape[2:]
    (q0, q1), (p0, p1) = _phase_rows(h, sh, ph), _phase_rows(wd, sw, pw)
    return sh * (q1 - q0) * sw * (p1 - p0) / (h * wd)


def _input_grad_by_phases(g, w, x_shape, stride, padding):
    """conv2d's input gradient (N, C, H, W) for sh | kh and sw | kw: a view of channels-last memory."""
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, wd = x_shape
    kh, kw = w.shape[2:]
    ka, kb = kh // sh, kw // sw
    (q0, q1), (p0, p1) = _phase_rows(h, sh, ph), _phase_rows(wd, sw, pw)   # the rows that cover the output
    windows = _window_last(g, (q0 - ka + 1, q1), (p0 - kb + 1, p1))
    prod = _patch_matrix(windows, ka, kb, 1, 1) @ _phase_weight(w, sh, sw)
    if (sh, sw) == (1, 1):                                   # one phase: prod is the image already
        return prod.reshape(n, h, wd, c).transpose(0, 3, 1, 2)
    out = np.empty((n, q1 - q0, sh, p1 - p0, sw, c), dtype=prod.dtype)
    out[...] = prod.reshape(n, q1 - q0, p1 - p0, sh, sw, c).transpose(0, 1, 3, 2, 4, 5)
    y0, x0 = ph - q0 * sh, pw - p0 * sw
    out = out.reshape(n, (q1 - q0) * sh, (p1 - p0) * sw, c)[:, y0:y0 + h, x0:x0 + wd]
    return out.transpose(0, 3, 1, 2)


def _conv_weight_grad(x, g, kernel_size, stride, padding, cols=None):
    """sum_n g[n] cols[n]^T: conv2d's gradient w.r.t. its weight, on arrays."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    c, o = x.shape[1], g.shape[1]
    last = _channels_last(x, c, kw, g.shape[2] * g.shape[3])
    if cols is None:
        cols = _patches(x, kh, kw, sh, sw, ph, pw, last)
    if isinstance(cols, _conv_winograd.Tiles):
        return _conv_winograd.weight_grad(cols, _as_channels_last(g))
    if isinstance(cols, _conv_strided.BlockTiles):
        return _conv_strided.block_weight_grad(cols, _as_channels_last(g))
    if _framed(cols):
        return _conv_frames.weight_grad(cols, g)
    gw = _rows(g, last).T @ cols                                        # (O, K)
    if last:
        return gw.reshape(o, kh, kw, c).transpose(0, 3, 1, 2)
    return gw.reshape(o, c, kh, kw)
