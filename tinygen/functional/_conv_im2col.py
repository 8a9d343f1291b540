"""The two data movements of the convolutions, on NumPy or CuPy arrays: im2col and col2im.

im2col copies every kh x kw patch of the zero-padded input xp into one row (or column) of a
matrix, so that a convolution is one GEMM with it; col2im is its adjoint, adding each entry
back onto the pixel it was copied from (the input gradient's last step). Two layouts, as
``_conv_arrays`` picks them:

  - channels first, the contract of tinygen's CUDA kernels (``tinygen.cuda``): the patch
    matrix stored K-major, K = (c, i, j), so each copy moves runs of Wo numbers;
  - channels last (NumPy), K = (i, j, c) and images in NHWC memory, so a patch row is kw C
    contiguous numbers; a large patch matrix is made by cache-sized blocks as its product
    reads it (``_conv_blocks``).

Also the copies between the layouts (``_copy_channels_last``, ``_window_last``) and the test
of which one an array's memory is in (``_in_layout``).
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from .. import backend
from . import _conv_blocks
from ._numpy_blas import transpose_images


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
    """dst (N, H, W, C) = src (N, C, H, W), as one copy (a large channels-first src: OpenBLAS's
    blocked transpose, ``_numpy_blas.transpose_images``, 2-6x faster from 28 x 28 on).

    (Copying 8 channels at a time in NumPy, against cache-set conflicts when the channels lie
    a multiple of 1 KiB apart, was measured slower here in every case tried, NumPy 2.4:
    2x for (64, 64, 16, 16) NCHW and for channel-major sources.)
    """
    if not transpose_images(dst, src):     # a large channels-first image: BLAS's blocked transpose
        dst[...] = src.transpose(0, 2, 3, 1)


def _window_last(x, rows, cols):
    """Rows [r0, r1) and columns [c0, c1) of x (N, C, H, W), channels last (N, r1 - r0, c1 - c0, C):
    zeros where they lie outside x (a border of padding), and a view when nothing is added or copied."""
    n, c, h, w = x.shape
    (r0, r1), (c0, c1) = rows, cols
    if (r0, r1, c0, c1) == (0, h, 0, w) and _in_layout(x, True):
        return x.transpose(0, 2, 3, 1)
    out = np.zeros((n, r1 - r0, c1 - c0, c), dtype=x.dtype)
    a0, a1, b0, b1 = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
    if a0 < a1 and b0 < b1:
        _copy_channels_last(out[:, a0 - r0:a1 - r0, b0 - c0:b1 - c0], x[:, :, a0:a1, b0:b1])
    return out


def _as_channels_last(x):
    """x (N, C, H, W) as a view of channels-last memory: x itself when it is one, else one copy
    (Winograd's transforms gather a channels-first image several times more slowly)."""
    n, c, h, w = x.shape
    return _window_last(x, (0, h), (0, w)).transpose(0, 3, 1, 2)


def _patches_last(xp, kh, kw, sh, sw):
    """The (N Ho Wo, kh kw C) matrix of the kh x kw patches of xp (N, Hp, Wp, C), K ordered (i, j, c)."""
    n, hp, wp, c = xp.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    # windows[n, oh, ow, i, j, c] = xp[n, oh sh + i, ow sw + j, c]: a view, its strides written out
    # (sliding_window_view's checks cost more than the copy for the many small calls of a model)
    s0, s1, s2, s3 = xp.strides
    windows = as_strided(xp, (n, ho, wo, kh, kw, c), (s0, s1 * sh, s2 * sw, s1, s2, s3), writeable=False)
    cols = np.empty((n, ho, wo, kh, kw, c), dtype=xp.dtype)
    cols[...] = windows
    return cols.reshape(n * ho * wo, kh * kw * c)


def _patch_matrix(xp, kh, kw, sh, sw):
    """The patch matrix of xp (N, Hp, Wp, C): whole when small, else made by cache-sized blocks
    as a product reads it (``_conv_blocks``: the same products, the large ones faster)."""
    if _conv_blocks.by_blocks(xp.shape, kh, kw, sh, sw, xp.itemsize):
        return _conv_blocks.PatchBlocks(xp, kh, kw, sh, sw)
    return _patches_last(xp, kh, kw, sh, sw)


def _im2col_last(x, kh, kw, sh, sw, ph, pw):
    """Channels-last im2col (NumPy, many channels): the (N Ho Wo, kh kw C) matrix with entry
    [n Ho Wo + oh Wo + ow, (i kw + j) C + c] = xp[n, c, oh sh + i, ow sw + j].

    The same patches with K ordered (i, j, c): in an (N, Hp, Wp, C) image one
    patch row (j, c) is kw C contiguous numbers, so the copy moves long runs. A large
    matrix is made by blocks as its products read it (``_patch_matrix``).
    """
    h, w = x.shape[2:]
    return _patch_matrix(_window_last(x, (-ph, h + ph), (-pw, w + pw)), kh, kw, sh, sw)


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


def _in_layout(a, last):
    """True when a's memory is already channels-last (NHWC, ``last``) or channel-major (CNHW)."""
    order = (0, 2, 3, 1) if last else (1, 0, 2, 3)
    return a.transpose(order).flags.c_contiguous
