"""Reductions over axes.

    sum        y = sum_A x                 dL/dx = expand(dL/dy, x.shape)
    mean       y = sum_A x / n             dL/dx = expand(dL/dy, x.shape) / n
    var        y = mean_A (x - mean_A x)^2 (biased; unbiased divides by n - 1)
    max, min   y = max_A x                 dL/dx = dL/dy * [x == y] / #ties
    logsumexp  y = log sum_A e^x           dL/dx = dL/dy * e^(x - y)   (the softmax)
    cumsum     y_i = sum_{j <= i} x_j      dL/dx_j = sum_{i >= j} dL/dy_i  (a cumsum run backwards)

A is the set of reduced axes (all of them when ``axis`` is None). Every backward
first puts the reduced axes back as size-1 axes (``keepdims``) so it broadcasts
against x. logsumexp subtracts the max before exponentiating, so it never
overflows.
"""
import numpy as np

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from .. import backend, fast_paths
from . import _array_grads, _cumsum_arrays, _sum_arrays
from ._base import array_tensor, as_float, normalize_axis
from .elementwise import expand, exp
from .shape import reshape


def _keepdims_shape(shape, axes):
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _restore(g, x_shape, axes, keepdims):
    """dL/dy reshaped with the reduced axes kept, ready to broadcast against x."""
    if not keepdims and g.ndim:  # a 0-d g (a full reduction) broadcasts as it is
        g = reshape(g, _keepdims_shape(x_shape, axes))
    return g


class Sum(Function):
    saves_inputs = ()

    def forward(self, x, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims
        return _sum_arrays.summed(x, axes, keepdims)   # x.sum (a bias gradient's: by blocks)

    def backward(self, g):
        x, = self.inputs
        if fast_paths.array_backward():
            a = g.data
            if not self.keepdims and a.ndim:
                a = a.reshape(_keepdims_shape(x.shape, self.axes))
            return array_tensor(_array_grads.expand(a, x.shape))
        return expand(_restore(g, x.shape, self.axes, self.keepdims), x.shape)


class Max(Function):
    """max (or min, with ``which='min'``) over axes; ties share the gradient equally."""
    def forward(self, x, axes, keepdims, which):
        self.axes, self.keepdims = axes, keepdims
        y = x.max(axis=axes, keepdims=True) if which == "max" else x.min(axis=axes, keepdims=True)
        mask = (x == y)
        self.share = mask / mask.sum(axis=axes, keepdims=True)
        return y if keepdims else y.reshape(tuple(s for i, s in enumerate(x.shape) if i not in axes))

    def backward(self, g):
        x, = self.inputs
        return _restore(g, x.shape, self.axes, self.keepdims) * Tensor._make(self.share.astype(g.dtype))


class LogSumExp(Function):
    def forward(self, x, axes, keepdims):
        xp = backend.get_array_module(x)
        self.axes, self.keepdims = axes, keepdims
        m = x.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)  # all -inf stays -inf, not nan
        y = xp.log(xp.exp(x - m).sum(axis=axes, keepdims=True)) + m
        return y if keepdims else y.reshape(tuple(s for i, s in enumerate(x.shape) if i not in axes))

    def backward(self, g):
        x, = self.inputs
        y = _restore(self.output, x.shape, self.axes, self.keepdims)
        return _restore(g, x.shape, self.axes, self.keepdims) * exp(x - y)


def _check(x, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")


def sum(x, axis=None, keepdims=False):
    _check(x, "sum")
    return Sum.apply(x, axes=normalize_axis(axis, x.ndim, "sum"), keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    _check(x, "mean")
    x = as_float(x)  # the mean of booleans is a fraction (F.mean(pred == y) is the accuracy)
    axes = normalize_axis(axis, x.ndim, "mean")
    n = 1
    for a in axes:
        n *= x.shape[a]
    if n == 0:
        raise ValueError(f"mean: reducing an empty axis of a tensor of shape {tuple(x.shape)}")
    return Sum.apply(x, axes=axes, keepdims=keepdims) * (1.0 / n)


def var(x, axis=None, keepdims=False, unbiased=False):
    """Variance over ``axis``: biased (divide by n) unless ``unbiased``."""
    _check(x, "var")
    x = as_float(x)
    axes = normalize_axis(axis, x.ndim, "var")
    n = 1
    for a in axes:
        n *= x.shape[a]
    if n - int(unbiased) <= 0:
        raise ValueError(f"var: needs at least {1 + int(unbiased)} values along axis {axis}, "
                         f"tensor has shape {tuple(x.shape)}")
    d = x - mean(x, axes, keepdims=True)
    return Sum.apply(d * d, axes=axes, keepdims=keepdims) * (1.0 / (n - int(unbiased)))


def _extreme(x, axis, keepdims, which):
    _check(x, which)
    axes = normalize_axis(axis, x.ndim, which)
    if any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"{which}: reducing an empty axis of a tensor of shape {tuple(x.shape)}")
    return Max.apply(x, axes=axes, keepdims=keepdims, which=which)


def max(x, axis=None, keepdims=False):
    return _extreme(x, axis, keepdims, "max")


def min(x, axis=None, keepdims=False):
    return _extreme(x, axis, keepdims, "min")


def logsumexp(x, axis=None, keepdims=False):
    _check(x, "logsumexp")
    return LogSumExp.apply(x, axes=normalize_axis(axis, x.ndim, "logsumexp"), keepdims=keepdims)


def argmax(x, axis=None):
    """Index of the largest value (an integer tensor, no gradient)."""
    return Tensor._make(x.data.argmax(axis=axis))


class CumSum(Function):
    """Running sums along one axis, from the start (or, with ``reverse``, from the end).

    The two directions are each other's adjoint, so each is the other's backward."""
    saves_inputs = ()

    def forward(self, x, axis, reverse):
        xp = backend.get_array_module(x)
        self.axis, self.reverse = axis, reverse
        if fast_paths.enabled() and _cumsum_arrays.applies(x):
            return _cumsum_arrays.cumsum(x, axis, reverse)
        if reverse:
            return xp.flip(xp.flip(x, axis).cumsum(axis=axis), axis)
        return x.cumsum(axis=axis)

    def backward(self, g):
        return CumSum.apply(g, axis=self.axis, reverse=not self.reverse)


def cumsum(x, axis):
    """y[..., i, ...] = x[..., 0, ...] + ... + x[..., i, ...] along ``axis``."""
    _check(x, "cumsum")
    if x.ndim == 0:
        raise ValueError("cumsum: needs a tensor with at least one axis, got a scalar")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"cumsum: axis must be one integer, got {axis!r}")
    return CumSum.apply(x, axis=normalize_axis(axis, x.ndim, "cumsum")[0], reverse=False)
