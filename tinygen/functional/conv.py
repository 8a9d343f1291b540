"""2-D convolution and transposed convolution, as im2col + one matrix product.

Shapes (PyTorch's conventions): x (N, C, H, W), weight w (O, C, kh, kw), stride
(sh, sw), padding (ph, pw). With xp = x padded by ph rows and pw columns of zeros,

    conv2d      y[n, o, oh, ow] = b[o] + sum_{c, i, j} w[o, c, i, j] xp[n, c, oh sh + i, ow sw + j]
                Ho = (H + 2 ph - kh) // sh + 1,   Wo = (W + 2 pw - kw) // sw + 1

im2col copies every patch into a column, so the sum becomes one matrix product:

    cols[n, c kh kw + i kw + j, oh Wo + ow] = xp[n, c, oh sh + i, ow sw + j]     (N, K, P)
    y[n] = w2 cols[n],     w2 = w.reshape(O, K),  K = C kh kw,  P = Ho Wo

col2im is its adjoint: it adds every column entry back onto the pixel it came
from (a pixel under several patches receives the sum), then drops the padding.

conv2d is linear in x and in w, so its gradients are two more convolutions:

    dL/dx = col2im(w2^T dL/dy[n])          = conv_transpose2d(dL/dy, w)
    dL/dw = sum_n dL/dy[n] cols[n]^T        = conv2d_grad_weight(x, dL/dy)
    dL/db = sum over n, oh, ow of dL/dy

conv_transpose2d(x, w) is conv2d's input gradient used as a layer (an
"upsampling" convolution): for x (N, C_in, H, W) and w (C_in, C_out, kh, kw)

    y = col2im(w2^T x[n]),   w2 = w.reshape(C_in, C_out kh kw)
    Ho = (H - 1) sh - 2 ph + kh + oph         (oph = output_padding, < sh)

``output_padding`` picks one of the sh sizes whose conv2d gives back H (a strided
conv2d drops up to sh - 1 rows at the edge, so its adjoint must be told how many).

Following Chainer, the three maps are three ops, each backward written with the
other two, so every gradient is differentiable again (WGAN-GP needs that):

    Conv2d            y = conv2d(x, w)            dx = conv_transpose2d(g, w)   dw = grad_weight(x, g)
    ConvTranspose2d   y = conv_transpose2d(x, w)  dx = conv2d(g, w)             dw = grad_weight(g, x)
    Conv2dGradWeight  gw = grad_weight(x, gy)     dx = conv_transpose2d(gy, gg) dgy = conv2d(x, gg)

(each one is bilinear, so the gradient w.r.t. one input is the op's partner
applied with the other input and the incoming gradient.)

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

from ..autograd.function import Function
from .. import backend
from .reduction import sum as _sum
from ._base import check_same_dtype


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


# --- the three ops ----------------------------------------------------------
#
# The patches of an input are computed once per step: conv2d keeps them for its
# weight gradient (memory: K / C times the input, held until backward), and
# conv_transpose2d's backward shares those of g between its two gradients.

class Conv2d(Function):
    input_names = ("input", "weight", "bias")

    def forward(self, x, w, b=None, stride=(1, 1), padding=(0, 0), cols=None):
        self.stride, self.padding = stride, padding
        y, cols = _conv(x, w, stride, padding, cols)
        # the patches serve only the weight gradient: a frozen weight (a GAN's D during
        # G's step) or no graph at all keeps none, and backward makes them again if asked
        self.cols = cols if self.needs_input_grad[1] else None
        if b is not None:
            y += b[:, None, None]                                       # in place: y is ours
        (h, wd), (kh, kw) = x.shape[2:], w.shape[2:]
        # rows a strided conv skipped at the bottom/right edge: its adjoint must restore them
        self.output_padding = ((h + 2 * padding[0] - kh) % stride[0], (wd + 2 * padding[1] - kw) % stride[1])
        self.last = _channels_last(x, x.shape[1])
        return y

    def backward(self, g):
        x, w = self.inputs[:2]
        need = self.needs_input_grad
        if need[0] and need[1]:
            g = _relayout(g, self.last)  # both gradients read g's pixel matrix: lay it out once
        gx = conv_transpose2d(g, w, stride=self.stride, padding=self.padding,
                              output_padding=self.output_padding) if need[0] else None
        gw = Conv2dGradWeight.apply(x, g, kernel_size=w.shape[2:], stride=self.stride,
                                    padding=self.padding, cols=self.cols) if need[1] else None
        if len(self.inputs) == 2:
            return gx, gw
        return gx, gw, (_sum(g, axis=(0, 2, 3)) if need[2] else None)


class ConvTranspose2d(Function):
    input_names = ("input", "weight", "bias")
    op_name = "conv_transpose2d"

    def forward(self, x, w, b=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0)):
        self.stride, self.padding = stride, padding
        n, _, h, wd = x.shape
        _, co, kh, kw = w.shape
        ho = (h - 1) * stride[0] - 2 * padding[0] + kh + output_padding[0]
        wo = (wd - 1) * stride[1] - 2 * padding[1] + kw + output_padding[1]
        y = _conv_input_grad(x, w, (n, co, ho, wo), stride, padding)
        if b is not None:
            y += b[:, None, None]
        return y

    def backward(self, g):
        x, w = self.inputs[:2]
        need = self.needs_input_grad
        kernel = w.shape[2:]
        # both gradients are convolutions of g with the same kernel: share its patches
        cols = _patches(g.data, *kernel, *self.stride, *self.padding, _channels_last(g.data, g.shape[1])) \
            if need[0] and need[1] else None
        gx = Conv2d.apply(g, w, stride=self.stride, padding=self.padding, cols=cols) if need[0] else None
        # y = conv2d's adjoint at w applied to x, so <y, g> = <x, conv2d(g, w)>: g plays the input
        gw = Conv2dGradWeight.apply(g, x, kernel_size=kernel, stride=self.stride, padding=self.padding,
                                    cols=cols) if need[1] else None
        if len(self.inputs) == 2:
            return gx, gw
        return gx, gw, (_sum(g, axis=(0, 2, 3)) if need[2] else None)


class Conv2dGradWeight(Function):
    """gw[o, c, i, j] = sum_{n, oh, ow} gy[n, o, oh, ow] xp[n, c, oh sh + i, ow sw + j]."""
    input_names = ("input", "grad_output")
    op_name = "conv2d_grad_weight"

    def forward(self, x, gy, kernel_size, stride=(1, 1), padding=(0, 0), cols=None):
        self.stride, self.padding = stride, padding
        (h, wd), (kh, kw) = x.shape[2:], kernel_size
        self.output_padding = ((h + 2 * padding[0] - kh) % stride[0], (wd + 2 * padding[1] - kw) % stride[1])
        return _conv_weight_grad(x, gy, kernel_size, stride, padding, cols)

    def backward(self, gg):
        x, gy = self.inputs
        need = self.needs_input_grad
        gx = conv_transpose2d(gy, gg, stride=self.stride, padding=self.padding,
                              output_padding=self.output_padding) if need[0] else None
        ggy = conv2d(x, gg, stride=self.stride, padding=self.padding) if need[1] else None
        return gx, ggy


class Relayout(Function):
    """y = x, stored channels-last (NHWC) or channel-major (CNHW) in memory: a copy, no arithmetic."""
    saves_inputs = ()

    def forward(self, x, last):
        xp = backend.get_array_module(x)
        if last:
            n, c, h, w = x.shape
            out = xp.empty((n, h, w, c), dtype=x.dtype)
            _copy_channels_last(out, x)
            return out.transpose(0, 3, 1, 2)
        return xp.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)

    def backward(self, g):
        return g


def _relayout(t, last):
    return t if _in_layout(t.data, last) else Relayout.apply(t, last=last)


# --- argument checks and the public functions -------------------------------

def _pair(value, name, op, minimum):
    """An int or a pair of ints, each >= minimum, as a tuple of two Python ints."""
    try:
        pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                 for v in pair):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in pair):
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{op}: {name} must be {what}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_4d(t, what, op):
    if t.ndim != 4:
        raise ValueError(f"{op}: {what} must be 4-D (N, C, H, W), got shape {tuple(t.shape)}")


def _check_weight(weight, op, layout):
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D {layout}, got shape {tuple(weight.shape)}")


def _check_bias(bias, channels, op):
    if bias is not None and tuple(bias.shape) != (channels,):
        raise ValueError(f"{op}: bias has shape {tuple(bias.shape)}, expected ({channels},)")


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """Cross-correlation of x (N, C_in, H, W) with weight (C_out, C_in, kh, kw), plus bias (C_out,).

    Returns (N, C_out, Ho, Wo), Ho = (H + 2 padding - kh) // stride + 1 (and the same for W).
    """
    op = "conv2d"
    _check_4d(x, "input", op)
    _check_weight(weight, op, "(C_out, C_in, kh, kw)")
    stride, padding = _pair(stride, "stride", op, 1), _pair(padding, "padding", op, 0)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"{op}: input has {x.shape[1]} channels but weight expects {weight.shape[1]} "
                         f"(input {tuple(x.shape)}, weight {tuple(weight.shape)})")
    hp, wp = x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1]
    if weight.shape[2] > hp or weight.shape[3] > wp:
        raise ValueError(f"{op}: kernel {tuple(weight.shape[2:])} is larger than the padded input "
                         f"({hp}, {wp}) (input {tuple(x.shape)}, padding {padding})")
    _check_bias(bias, weight.shape[0], op)
    check_same_dtype(op, input=x, weight=weight, bias=bias)
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return Conv2d.apply(*inputs, stride=stride, padding=padding)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    """The adjoint of conv2d: x (N, C_in, H, W), weight (C_in, C_out, kh, kw), bias (C_out,).

    Returns (N, C_out, Ho, Wo), Ho = (H - 1) stride - 2 padding + kh + output_padding,
    the shape whose conv2d with the same weight, stride and padding is H (output_padding < stride).
    """
    op = "conv_transpose2d"
    _check_4d(x, "input", op)
    _check_weight(weight, op, "(C_in, C_out, kh, kw)")
    stride, padding = _pair(stride, "stride", op, 1), _pair(padding, "padding", op, 0)
    output_padding = _pair(output_padding, "output_padding", op, 0)
    if x.shape[1] != weight.shape[0]:
        raise ValueError(f"{op}: input has {x.shape[1]} channels but weight expects {weight.shape[0]} "
                         f"(input {tuple(x.shape)}, weight {tuple(weight.shape)})")
    if output_padding[0] >= stride[0] or output_padding[1] >= stride[1]:
        raise ValueError(f"{op}: output_padding {output_padding} must be smaller than stride {stride} "
                         f"in each direction")
    out = tuple((s - 1) * st - 2 * p + k + op_
                for s, st, p, k, op_ in zip(x.shape[2:], stride, padding, weight.shape[2:], output_padding))
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"{op}: the output would have size {out}: padding {padding} is too large for "
                         f"input {tuple(x.shape)} and weight {tuple(weight.shape)}")
    _check_bias(bias, weight.shape[1], op)
    check_same_dtype(op, input=x, weight=weight, bias=bias)
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return ConvTranspose2d.apply(*inputs, stride=stride, padding=padding, output_padding=output_padding)


def conv2d_grad_weight(x, grad_output, kernel_size, stride=1, padding=0):
    """dL/dw of y = conv2d(x, w, stride, padding) given grad_output = dL/dy (N, C_out, Ho, Wo).

    Returns (C_out, C_in, kh, kw) for ``kernel_size`` (kh, kw) (an int means kh = kw).
    """
    op = "conv2d_grad_weight"
    _check_4d(x, "input", op)
    _check_4d(grad_output, "grad_output", op)
    kernel_size = _pair(kernel_size, "kernel_size", op, 1)
    stride, padding = _pair(stride, "stride", op, 1), _pair(padding, "padding", op, 0)
    hp, wp = x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1]
    if kernel_size[0] > hp or kernel_size[1] > wp:
        raise ValueError(f"{op}: kernel {kernel_size} is larger than the padded input ({hp}, {wp}) "
                         f"(input {tuple(x.shape)}, padding {padding})")
    expected = (x.shape[0], grad_output.shape[1],
                _out_size(x.shape[2], kernel_size[0], stride[0], padding[0]),
                _out_size(x.shape[3], kernel_size[1], stride[1], padding[1]))
    if tuple(grad_output.shape) != expected:
        raise ValueError(f"{op}: grad_output has shape {tuple(grad_output.shape)} but conv2d of input "
                         f"{tuple(x.shape)} with kernel {kernel_size}, stride {stride}, padding {padding} "
                         f"gives {expected}")
    check_same_dtype(op, input=x, grad_output=grad_output)
    return Conv2dGradWeight.apply(x, grad_output, kernel_size=kernel_size, stride=stride, padding=padding)
