"""Padding: ``pad`` and its adjoint, a value-moving op of its own (``shape.py`` holds the rest).

    pad        y = x surrounded by a constant        dL/dx = the inner part of dL/dy
               or by x's own values (y indexed from x's first pixel, i = 1, 2, ...):
               reflect    y[-i] = x[i]            dL/dx = the inner part, plus each border
                                                  gradient folded back onto the pixel it mirrors
               replicate  y[-i] = x[0]            dL/dx = the inner part, plus the border's
                                                  gradients summed onto the edge pixel

Reflect and replicate read every padded position k of an axis from one input position
s(k) (``source_index``), so the forward pass is a gather along each padded axis; the
adjoint folds one axis at a time, each border's gradient added where it was read.
"""
import functools

import numpy as np

from ..autograd.function import Function
from .. import backend


class Pad(Function):
    saves_inputs = ()

    def forward(self, x, widths, mode, value):
        xp = backend.get_array_module(x)
        self.widths, self.mode = widths, mode
        if mode == "constant":
            y = xp.full(tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, widths)), value, dtype=x.dtype)
            y[tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape, widths))] = x
            return y
        if not any(lo or hi for lo, hi in widths):
            return x.copy(order="K")
        return _gather_padded(xp, x, [source_index(n, lo, hi, mode) if lo or hi else None
                                      for n, (lo, hi) in zip(x.shape, widths)])

    def backward(self, g):
        return PadAdjoint.apply(g, widths=self.widths, mode=self.mode)


def _gather_padded(xp, x, index):
    """y[k_0, k_1, ...] = x[s_0(k_0), s_1(k_1), ...], index[a] = s_a (None: the identity; one at least):
    one take per axis, visited in x's memory order (outermost first) so that each take
    copies long runs and y keeps x's layout (a channels-last image stays channels-last).
    Two innermost axes that are both gathered are taken at once over their flattened
    plane: a take along an innermost axis of 8 moves one number at a time (4x slower)."""
    order = sorted(range(x.ndim), key=lambda a: -abs(x.strides[a]) if x.shape[a] > 1 else -np.inf)
    y, index = x.transpose(order), [index[a] for a in order]
    if len(index) >= 2 and index[-1] is not None and index[-2] is not None:
        (a, b), (sa, sb) = y.shape[-2:], index[-2:]
        plane = (sa[:, None] * b + sb[None, :]).reshape(-1)
        y = xp.take(y.reshape(y.shape[:-2] + (a * b,)), xp.asarray(plane), axis=-1)
        y, index = y.reshape(y.shape[:-1] + (sa.size, sb.size)), index[:-2] + [None, None]
    for k, s in enumerate(index):
        if s is not None:
            y = xp.take(y, xp.asarray(s), axis=k)
    back = [0] * x.ndim
    for k, a in enumerate(order):
        back[a] = k
    return y.transpose(back)


class PadAdjoint(Function):
    """The adjoint of pad: each padded value's gradient goes back to the pixel it copied.

    pad is separable (one axis after another), so its adjoint folds one axis at a
    time; the padded constant of ``mode="constant"`` is no pixel and gets nothing.
    Linear in g, so its own backward is pad again.
    """
    saves_inputs = ()

    def forward(self, g, widths, mode):
        self.widths, self.mode = widths, mode
        for axis, (lo, hi) in enumerate(widths):
            if lo or hi:
                g = _fold_axis(g, axis, lo, hi, mode)
        return g

    def backward(self, gg):
        return pad(gg, self.widths, mode=self.mode)


def _fold_axis(g, axis, lo, hi, mode):
    """g cropped by (lo, hi) along ``axis``, with the cropped borders added where they came from."""
    xp = backend.get_array_module(g)
    n = g.shape[axis] - lo - hi

    def part(start, stop):
        return g[(slice(None),) * axis + (slice(start, stop),)]

    inner = part(lo, lo + n)
    if mode == "constant":
        return inner
    out = inner.copy(order="K")                # in g's layout: a channels-last copy runs 6x faster
    view = (slice(None),) * axis
    before, after = part(0, lo), part(lo + n, lo + n + hi)
    if mode == "reflect":      # y[lo - 1 - i] = x[1 + i] and y[lo + n + j] = x[n - 2 - j]
        out[view + (slice(1, lo + 1),)] += xp.flip(before, axis)
        out[view + (slice(n - 1 - hi, n - 1),)] += xp.flip(after, axis)
    else:                      # replicate: every border value is a copy of the edge pixel
        out[view + (slice(0, 1),)] += before.sum(axis=axis, keepdims=True)
        out[view + (slice(n - 1, n),)] += after.sum(axis=axis, keepdims=True)
    return out


PAD_MODES = ("constant", "reflect", "replicate")


@functools.lru_cache(maxsize=256)
def source_index(n, lo, hi, mode):
    """For each of the n + lo + hi positions of an axis padded by (lo, hi), the position of
    the n inputs it copies (reflect: -i -> i and n - 1 + i -> n - 1 - i; replicate: the
    nearest end). Kept per geometry, read-only."""
    i = np.arange(-lo, n + hi)
    if mode == "replicate":
        i = np.clip(i, 0, n - 1)
    else:
        i = np.abs(i)                                   # reflect about position 0 ...
        i = np.where(i > n - 1, 2 * (n - 1) - i, i)     # ... and about position n - 1
    i.flags.writeable = False
    return i


def pad(x, widths, value=0.0, mode="constant"):
    """Pad ``x``. ``widths``: one (before, after) pair per axis, or a single int / pair
    applied to every axis (NumPy's ``pad_width``; first axis first, unlike PyTorch's
    last-axis-first flat tuple).

    ``mode``: "constant" (fill with ``value``), "reflect" (mirror about the edge pixel,
    which is not repeated: each width must be smaller than its axis) or "replicate"
    (repeat the edge pixel).
    """
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(PAD_MODES)}, got {mode!r}")
    if mode != "constant" and value != 0:
        raise ValueError(f"pad: mode {mode!r} takes no fill value, got value={value}")
    widths = _pad_widths(widths, x)
    for axis, ((lo, hi), size) in enumerate(zip(widths, x.shape)):
        if mode == "reflect" and (lo or hi) and max(lo, hi) >= size:
            raise ValueError(f"pad: reflect padding ({lo}, {hi}) of axis {axis} must be smaller than "
                             f"its size {size} (input shape {tuple(x.shape)})")
        if mode == "replicate" and (lo or hi) and size == 0:
            raise ValueError(f"pad: replicate padding of axis {axis} needs at least one value to "
                             f"copy, input shape {tuple(x.shape)}")
    return Pad.apply(x, widths=widths, mode=mode, value=value)


def _is_width(p):
    return type(p) is tuple and len(p) == 2 and type(p[0]) is int and type(p[1]) is int and min(p) >= 0


def _pad_widths(widths, x):
    """widths as one (before, after) pair of non-negative Python ints per axis of x."""
    if type(widths) is tuple and len(widths) == x.ndim and all(_is_width(p) for p in widths):
        return widths                                   # the common case, checked at once
    w = np.asarray(widths)
    if w.dtype.kind not in "iu":
        raise TypeError(f"pad: widths must be integers, got {widths!r}")
    try:
        w = np.broadcast_to(w.astype(np.int64), (x.ndim, 2))
    except ValueError:
        raise ValueError(f"pad: widths {widths} do not fit a tensor with {x.ndim} dimensions; give "
                         f"one (before, after) pair per axis") from None
    if (w < 0).any():
        raise ValueError(f"pad: widths must be non-negative, got {widths}")
    return tuple((int(a), int(b)) for a, b in w)
