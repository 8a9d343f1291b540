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

Speed: the im2col, col2im and GEMMs on plain arrays, and the two memory layouts
they pick between, live in ``_conv_arrays.py`` (stride-1 convolutions without
im2col in ``_conv_frames.py``); this file holds the ops and the checks a user meets.
"""
import numpy as np

from ..autograd.function import Function
from .. import backend
from .reduction import sum as _sum
from ._base import check_same_dtype
from ._conv_arrays import _channels_last, _conv, _conv_input_grad, _conv_weight_grad, _framed, _patches
from ._conv_im2col import _copy_channels_last, _in_layout, _out_size


# --- the three ops ----------------------------------------------------------
#
# The patches of an input are computed once per step: conv2d keeps them for its
# weight gradient (memory: K / C times the input, held until backward; a stride-1
# frame of ``_conv_frames`` about 1 times; large patches by ``_conv_blocks``, the
# padded input only, made again as blocks; Winograd's tiles of ``_conv_winograd``
# about 2.25 times), and conv_transpose2d's backward shares those of g between its
# two gradients.

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
        self.last = _channels_last(x, x.shape[1], kw, y.shape[2] * y.shape[3])
        return y

    def backward(self, g):
        x, w = self.inputs[:2]
        need = self.needs_input_grad
        if need[0] and need[1] and not _framed(self.cols):
            g = _relayout(g, self.last)  # both gradients read g's pixel matrix: lay it out once
        gx = conv_transpose2d(g, w, stride=self.stride, padding=self.padding,
                              output_padding=self.output_padding) if need[0] else None
        # patches laid out for the other layout (fast paths switched since forward) are not reused
        same = _channels_last(x.data, x.shape[1], w.shape[3], g.shape[2] * g.shape[3]) == self.last
        cols = self.cols if same else None
        gw = Conv2dGradWeight.apply(x, g, kernel_size=w.shape[2:], stride=self.stride,
                                    padding=self.padding, cols=cols) if need[1] else None
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
        last = _channels_last(g.data, g.shape[1], kernel[1], x.shape[2] * x.shape[3])
        cols = _patches(g.data, *kernel, *self.stride, *self.padding, last, w.data) if need[0] and need[1] else None
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
    """t, copied to the layout ``last`` names unless its memory is already one the GEMMs read."""
    if _in_layout(t.data, True) or _in_layout(t.data, False):
        return t
    return Relayout.apply(t, last=last)


# --- argument checks and the public functions -------------------------------

def _pair(value, name, op, minimum):
    """An int or a pair of ints, each >= minimum, as a tuple of two Python ints."""
    if type(value) is int and value >= minimum:                     # the common cases, checked at once
        return value, value
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int \
            and value[0] >= minimum and value[1] >= minimum:        # a backward's own (int, int)
        return value
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
