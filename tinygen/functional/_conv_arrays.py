"""The array side of the convolutions: im2col, col2im and the GEMMs, on NumPy or CuPy arrays.

``conv.py`` holds the ops and their equations; this file is what makes them fast.

Speed. Each product is one GEMM over all images at once (the batch sits in the
long side of the matrix), and the copies around it move long contiguous runs:

  - channels first, the contract above: cols stored K-major, y produced as
    channel-major (C, N, H, W) memory. Always used on a GPU, where im2col and
    col2im are tinygen's CUDA kernels (``tinygen.cuda``) and the GEMMs CuPy's.
  - channels last, NumPy from ``CHANNELS_LAST_MIN`` input channels on: the same
    products with K ordered (i, j, c) and images in NHWC memory, so a patch row
    is kw C contiguous numbers (see ``_im2col_last``, ``_col2im_last``).

Outputs are views in whatever memory order their GEMM produced; every step
accepts any strides, so the next layer usually reads them without a copy.
conv2d keeps its patches for its weight gradient (K/C times the input's size,
held until backward), so im2col runs once per input per training step.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import backend


# --- the two data movements: im2col and col2im ------------------------------

def _out_size(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def _im2col(x, kh, kw, sh, sw, ph, pw):
    """Patches of x (N, C, H, W) as columns: (N, C kh kw, Ho Wo), entry
    [n, c kh kw + i kw + j, oh Wo + ow] = xp[n, c, oh sh + i, ow sw + j] (xp: x zero-padded).

    The result is a view of a K-major (C kh kw, N, Ho Wo) array, so that
    ``_patches`` hands it to the GEMM as one (K, N P) matrix without a copy.
    """
    n, c, h, w = x.shape
    ho, wo = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    if ph or pw:
        # channel-major padded copy: the patch copy below then reads each channel's block in order
        xp = np.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
        xp[:, :, ph:ph + h, pw:pw + w] = x.transpose(1, 0, 2, 3)
    else:
        xp = x.transpose(1, 0, 2, 3)
    # windows[c, n, oh, ow, i, j] = xp[c, n, oh sh + i, ow sw + j]  (a view: no copy yet)
    windows = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    cols = np.empty((c, kh, kw, n, ho, wo), dtype=x.dtype)
    cols[...] = windows.transpose(0, 4, 5, 1, 2, 3)  # the one copy: K = (c, i, j) outermost
    return cols.reshape(c * kh * kw, n, ho * wo).transpose(1, 0, 2)


def _col2im(cols, x_shape, kh, kw, sh, sw, ph, pw):
    """The adjoint of ``_im2col``: cols (N, C kh kw, Ho Wo) -> (N, C, H, W), each entry
    added back onto the pixel it was copied from; padding pixels are dropped.

    One strided slice-add per kernel offset (i, j): all images and channels at once.
    """
    n, c, h, w = x_shape
    ho, wo = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    # c6[c, i, j, n, oh, ow]; a view whatever cols' memory order
    c6 = cols.reshape(n, c, kh, kw, ho, wo).transpose(1, 2, 3, 0, 4, 5)
    xp = np.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += c6[:, i, j]
    return xp[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3)


def _copy_channels_last(dst, src):
    """dst (N, H, W, C) = src (N, C, H, W).

    When src's channels lie a multiple of 1 KiB apart (NCHW with 16x16 or 32x32
    images), the C values of one pixel crowd into a few cache sets and one
    whole-array copy runs up to 4x slower than copying 8 channels at a time
    (measured); otherwise one copy is fastest.
    """
    if src.strides[1] % 1024:
        dst[...] = src.transpose(0, 2, 3, 1)
        return
    for c0 in range(0, src.shape[1], 8):
        dst[..., c0:c0 + 8] = src[:, c0:c0 + 8].transpose(0, 2, 3, 1)


def _im2col_last(x, kh, kw, sh, sw, ph, pw):
    """Channels-last im2col (NumPy, many channels): the (N Ho Wo, kh kw C) matrix with entry
    [n Ho Wo + oh Wo + ow, (i kw + j) C + c] = xp[n, c, oh sh + i, ow sw + j].

    The same patches with K ordered (i, j, c): in an (N, Hp, Wp, C) image one
    patch row (j, c) is kw C contiguous numbers, so the copy moves long runs.
    """
    n, c, h, w = x.shape
    ho, wo = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    if ph or pw or not _in_layout(x, True):
        xp = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)
        _copy_channels_last(xp[:, ph:ph + h, pw:pw + w], x)
    else:
        xp = x.transpose(0, 2, 3, 1)                                    # (N, H, W, C), a view
    windows = sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]   # (N, Ho, Wo, C, kh, kw)
    cols = np.empty((n, ho, wo, kh, kw, c), dtype=x.dtype)
    cols[...] = windows.transpose(0, 1, 2, 4, 5, 3)
    return cols.reshape(n * ho * wo, kh * kw * c)


def _col2im_last(cols, x_shape, kh, kw, sh, sw, ph, pw):
    """Channels-last col2im (NumPy, many channels): cols (kh kw, N Ho Wo, C), one block per
    kernel offset, [i kw + j, n Ho Wo + oh Wo + ow, c] added onto xp[n, c, oh sh + i, ow sw + j].

    Offset-major, so each slice-add reads one contiguous block (and, at stride 1,
    writes runs of Wo C numbers). Returns an (N, C, H, W) view of channels-last memory.
    """
    n, c, h, w = x_shape
    ho, wo = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    c6 = cols.reshape(kh, kw, n, ho, wo, c)
    xp = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += c6[i, j]
    return xp[:, ph:ph + h, pw:pw + w].transpose(0, 3, 1, 2)


def im2col(x, kh, kw, sh, sw, ph, pw):
    """im2col on x's device (NumPy above, or tinygen's CUDA kernel); arrays in and out."""
    xp = backend.get_array_module(x)
    if xp is np:
        return _im2col(x, kh, kw, sh, sw, ph, pw)
    from .. import cuda
    return cuda.im2col(x, kh, kw, sh, sw, ph, pw)   # the kernel instantiated for x's dtype


def col2im(cols, x_shape, kh, kw, sh, sw, ph, pw):
    """col2im on cols' device (NumPy above, or tinygen's CUDA kernel); arrays in and out."""
    xp = backend.get_array_module(cols)
    if xp is np:
        return _col2im(cols, x_shape, kh, kw, sh, sw, ph, pw)
    from .. import cuda
    return cuda.col2im(cols, tuple(x_shape), kh, kw, sh, sw, ph, pw)


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
#   channels last (NumPy with C >= CHANNELS_LAST_MIN, K = (i, j, c)): matrices stored
#     row-major, so images are NHWC memory. Its copies move runs of C or more numbers
#     where channels-first moves runs of Wo, and its GEMMs have the long side first,
#     which OpenBLAS runs faster (measured: benchmarks/conv.py).
# NumPy's matmul reads either memory order without a copy; every step accepts
# any strides, and an image already in the right memory order is not copied.

CHANNELS_LAST_MIN = 8


def _channels_last(a, channels):
    return channels >= CHANNELS_LAST_MIN and backend.get_array_module(a) is np


def _rows(a, last):
    """(N, C, H, W) -> the (N H W, C) matrix of its pixels; a view when a's memory fits."""
    n, c, h, w = a.shape
    if last:
        return a.transpose(0, 2, 3, 1).reshape(n * h * w, c)
    return a.transpose(1, 0, 2, 3).reshape(c, n * h * w).T


def _image(m, shape):
    """The (N H W, C) matrix m -> its (N, C, H, W) view."""
    n, c, h, w = shape
    return m.reshape(n, h, w, c).transpose(0, 3, 1, 2)


def _in_layout(a, last):
    """True when a's memory is already channels-last (NHWC, ``last``) or channel-major (CNHW)."""
    order = (0, 2, 3, 1) if last else (1, 0, 2, 3)
    return a.transpose(order).flags.c_contiguous


def _patches(x, kh, kw, sh, sw, ph, pw, last):
    """im2col as the (N Ho Wo, K) matrix, K ordered as the layout says."""
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
    last = _channels_last(x, c)
    if cols is None:
        cols = _patches(x, kh, kw, sh, sw, ph, pw, last)
    if last:
        y = cols @ w.transpose(0, 2, 3, 1).reshape(o, -1).T            # (N Ho Wo, O), row-major
    else:
        y = (w.reshape(o, -1) @ cols.T).T                               # stored as (O, N Ho Wo)
    return _image(y, (n, o, _out_size(h, kh, sh, ph), _out_size(wd, kw, sw, pw))), cols


def _conv_input_grad(g, w, x_shape, stride, padding):
    """col2im(w2^T g): conv2d's gradient w.r.t. its input (= conv_transpose2d(g, w)) on arrays."""
    (sh, sw), (ph, pw) = stride, padding
    n, c = x_shape[:2]
    o, _, kh, kw = w.shape
    if _channels_last(g, c):
        # one product per kernel offset (a batched matmul): each offset's columns come out as
        # one contiguous (N Ho Wo, C) block, which col2im adds in long runs
        w3 = w.transpose(2, 3, 0, 1).reshape(kh * kw, o, c)
        return _col2im_last(np.matmul(_rows(g, True), w3), x_shape, kh, kw, sh, sw, ph, pw)
    cols = w.reshape(o, -1).T @ _rows(g, False).T                      # (K, N Ho Wo)
    return col2im(cols.reshape(cols.shape[0], n, -1).transpose(1, 0, 2), x_shape, kh, kw, sh, sw, ph, pw)


def _conv_weight_grad(x, g, kernel_size, stride, padding, cols=None):
    """sum_n g[n] cols[n]^T: conv2d's gradient w.r.t. its weight, on arrays."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    c, o = x.shape[1], g.shape[1]
    last = _channels_last(x, c)
    if cols is None:
        cols = _patches(x, kh, kw, sh, sw, ph, pw, last)
    gw = _rows(g, last).T @ cols                                        # (O, K)
    if last:
        return gw.reshape(o, kh, kw, c).transpose(0, 3, 1, 2)
    return gw.reshape(o, c, kh, kw)
