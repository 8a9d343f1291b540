"""Masked convolution and the two PixelRNN layers (section 3 of the notes).

An autoregressive image model orders the pixels in raster order (row by row, left to
right) and predicts pixel (r, c) from the pixels before it only. Every layer must keep
that promise: its output at (r, c) may depend on its input at (r', c') only where
(r', c') comes before (r, c) (mask A, the first layer: the input is the image itself)
or where (r', c') is (r, c) or before it (mask B, every later layer: its input at
(r, c) already only holds information from pixels before (r, c)).

MaskedConv2d. A kh x kw kernel (both odd) centred on (r, c), with weight W (O, C, kh, kw),
is multiplied by a fixed 0/1 mask M of the same size,

    y = conv2d(x, W * M) + b,        ch = kh // 2,  cw = kw // 2  (the centre)
    M[i, j] = 1   if i < ch                      (rows above the centre)
              1   if i = ch and j < cw           (left of the centre, on its row)
              1   if i = ch and j = cw, mask B   (the centre itself: B only)
              0   otherwise                      (right of the centre, rows below)

so for a 5x5 kernel (A left, B right):

    1 1 1 1 1      1 1 1 1 1
    1 1 1 1 1      1 1 1 1 1
    1 1 0 0 0      1 1 1 0 0
    0 0 0 0 0      0 0 0 0 0
    0 0 0 0 0      0 0 0 0 0

A 1 x k kernel keeps only the centre row: the Row LSTM's input-to-state convolution. A
1x1 mask B is all ones: for one-channel images there are no colour groups to hide, so a
1x1 convolution of a mask-B layer's input needs no mask (a 1x1 mask A would be all zeros).
The product W * M is taken inside the graph, not by zeroing W in place once: then
dL/dW = dL/d(W*M) * M is exactly 0 where M is 0, and no optimiser step (Adam's
momentum included) can ever bring a masked weight back.

RowLSTM(in_channels, hidden). Processes the image one row at a time; with h hidden
channels and x the layer input (N, in_channels, R, W):

    x_proj = MaskedConv2d(x, 1x3, mask B)     (N, 4h, R, W): K^is * x_r for every row at once
    [i f g o]_r = x_proj_r + K^ss * h_{r-1}   K^ss = w_ss (4h, h, 3): a 1-D conv along the
                                              previous row, unmasked (that row is all past)
    i, f, o = sigmoid, g = tanh;  c_r = f c_{r-1} + i g;  h_r = o tanh(c_r);  h_{-1} = c_{-1} = 0

(``F.row_lstm`` scans over the rows.) h_r at column c sees x_r at columns c-1, c (mask B)
and h_{r-1} at columns c-1, c, c+1: a triangle widening upwards, so part of the past
(far right of the rows above) is out of reach by design.

DiagonalBiLSTM(in_channels, hidden). Scans along diagonals, so that each state sees
both its left neighbour and the one above. Skewing the map (row r shifted right by r,
width W + R - 1) turns the diagonals into columns:

    x_proj = skew(conv1x1(x))                 (N, 4h, R, W+R-1), input-to-state K^is 1x1
    [i f g o]_{:, s} = x_proj_{:, s} + K^ss * h_{:, s-1}
                                              K^ss = w_ss (4h, h, 2) down the column: skewed
                                              row r reads h_{s-1}[r-1] (k=0) and h_{s-1}[r] (k=1),
                                              zero padding at the TOP (padding at the bottom
                                              would read row r+1: the future)
    h = unskew(diagonal_lstm(...))            (N, h, R, W)

In image coordinates skewed (r-1, s-1) is (r-1, c) and skewed (r, s-1) is (r, c-1), so
the state at (r, c) follows from the states above and to the left. That is one
direction. The other runs right to left: flip the map's WIDTH, run the same layer
(its own weights), flip back; now (r, c) follows from the states above and to the
RIGHT, and (r, c+1) is the future. Shifting that map down one row (top row zero) makes
the output at (r, c) the backward state at (r-1, c), which only saw rows up to r-1:

    y = h_forward + shift_down(flip_w(h_backward(flip_w(x))))

Without the shift, pixel (r, c) would see (r, c+1..W-1) through its own row: the
normalisation test finds the leak at once (the notes' table, "backward map not shifted").
"""
import math

import numpy as np

from .. import functional as F
from ..functional.conv import _pair
from . import init
from .conv import Conv2d
from .linear import _positive_int
from .module import Module, Parameter


def causal_mask(kernel_size, mask_type):
    """The 0/1 mask (kh, kw) of a masked convolution (see the module docstring)."""
    kh, kw = kernel_size
    if mask_type not in ("A", "B"):
        raise ValueError(f"masked convolution: mask_type must be 'A' (first layer: the centre is "
                         f"hidden) or 'B' (later layers: the centre is seen), got {mask_type!r}")
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"masked convolution: kernel_size must be odd in both directions so that "
                         f"it has a centre pixel, got {kernel_size}")
    ch, cw = kh // 2, kw // 2
    m = np.zeros((kh, kw), dtype=np.float32)
    m[:ch, :] = 1                        # rows above the centre
    m[ch, :cw] = 1                       # left of the centre, on its row
    m[ch, cw] = 1 if mask_type == "B" else 0
    return m


class MaskedConv2d(Conv2d):
    """conv2d(x, W * M) + b: a convolution that sees only the past in raster order.

    ``kernel_size`` an odd int or an odd pair (kh, kw), e.g. (1, 3) for a row; ``padding``
    defaults to (kh // 2, kw // 2), which keeps the image size.
    """

    def __init__(self, in_channels, out_channels, kernel_size, mask_type, padding=None, bias=True):
        kernel = _pair(kernel_size, "kernel_size", "MaskedConv2d", 1)
        mask = causal_mask(kernel, mask_type)          # checks mask_type and odd sizes first
        if padding is None:
            padding = (kernel[0] // 2, kernel[1] // 2)
        super().__init__(in_channels, out_channels, kernel, stride=1, padding=padding, bias=bias)
        self.mask_type = mask_type
        # (1, 1, kh, kw): broadcasts over (out, in); a constant, rebuilt from the arguments, not saved
        self.register_buffer("mask", mask[None, None], persistent=False)

    def forward(self, x):
        self._check_input(x)
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)   # W * M in the graph

    def extra_repr(self):
        return super().extra_repr() + f", mask_type={self.mask_type!r}"


def _state_weight(hidden, k):
    """w_ss (4h, h, k) ~ U(-1/sqrt(h k), 1/sqrt(h k)), as a conv over h channels and k taps."""
    w = Parameter(np.empty((4 * hidden, hidden, k), dtype=np.float32))
    bound = 1.0 / math.sqrt(hidden * k)
    init.uniform_(w, -bound, bound)
    return w


def _check_map(layer, x, in_channels):
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ValueError(f"{layer}: input has shape {tuple(x.shape)}, expected (N, {in_channels}, H, W)")


class RowLSTM(Module):
    """Row LSTM layer: (N, in_channels, R, W) -> (N, hidden, R, W), scanned over rows."""

    def __init__(self, in_channels, hidden):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels", "RowLSTM")
        self.hidden = _positive_int(hidden, "hidden", "RowLSTM")
        # K^is: 1x3 along the row, mask B (columns c-1 and c of the same row)
        self.input_to_state = MaskedConv2d(self.in_channels, 4 * self.hidden, (1, 3), "B")
        self.w_ss = _state_weight(self.hidden, 3)      # K^ss: unmasked, over the previous row

    def forward(self, x):
        _check_map(repr(self), x, self.in_channels)
        return F.row_lstm(self.input_to_state(x), self.w_ss)

    def extra_repr(self):
        return f"{self.in_channels}, {self.hidden}"


class _DiagonalLSTM(Module):
    """One direction of the Diagonal BiLSTM (left to right), in image coordinates."""

    def __init__(self, in_channels, hidden):
        super().__init__()
        # K^is is 1x1 (mask B for 1x1 is all ones: see the module docstring)
        self.input_to_state = Conv2d(in_channels, 4 * hidden, 1)
        self.w_ss = _state_weight(hidden, 2)           # K^ss: 2x1 down the column, top padding

    def forward(self, x):
        # A 1x1 conv acts on each position alone, so it commutes with the skew; doing it
        # first costs W columns instead of W + R - 1 and leaves the skew's padding at an
        # exact zero pre-activation, where the LSTM state stays exactly zero (c = h = 0).
        x_proj = F.skew(self.input_to_state(x))        # (N, 4h, R, W + R - 1)
        return F.unskew(F.diagonal_lstm(x_proj, self.w_ss), x.shape[3])


def _flip_width(x):
    return F.getitem(x, (slice(None), slice(None), slice(None), slice(None, None, -1)))


def _shift_down(x):
    """Row r of the result is row r - 1 of x; row 0 is zero."""
    return F.pad(F.getitem(x, (slice(None), slice(None), slice(None, -1))), ((0, 0), (0, 0), (1, 0), (0, 0)))


class DiagonalBiLSTM(Module):
    """Diagonal BiLSTM layer: (N, in_channels, R, W) -> (N, hidden, R, W), two directions."""

    def __init__(self, in_channels, hidden):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels", "DiagonalBiLSTM")
        self.hidden = _positive_int(hidden, "hidden", "DiagonalBiLSTM")
        self.forward_dir = _DiagonalLSTM(self.in_channels, self.hidden)    # left to right
        self.backward_dir = _DiagonalLSTM(self.in_channels, self.hidden)   # right to left

    def forward(self, x):
        _check_map(repr(self), x, self.in_channels)
        h_fwd = self.forward_dir(x)
        # mirror the WIDTH (not the height: rows must still run top to bottom), run, mirror
        # back, then shift down one row so that (r, c) never sees (r, c+1..W-1)
        h_bwd = _flip_width(self.backward_dir(_flip_width(x)))
        return h_fwd + _shift_down(h_bwd)

    def extra_repr(self):
        return f"{self.in_channels}, {self.hidden}"
