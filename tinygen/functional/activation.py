"""Activations and the small layers built on elementwise ops.

    sigmoid(x)    s = 1 / (1 + e^-x)           ds/dx = s (1 - s)
    tanh(x)       t                            dt/dx = 1 - t^2
    relu(x)       max(x, 0)                    1 if x > 0 else 0
    leaky_relu    x if x > 0 else a x          1 if x > 0 else a
    elu           x if x > 0 else a (e^x - 1)  1 if x > 0 else y + a
    softplus      log(1 + e^x)                 sigmoid(x)
    softmax       p_k = e^(x_k) / sum_j e^(x_j)     dL/dx = p (g - sum_k g_k p_k)
    log_softmax   l = x - logsumexp(x)              dL/dx = g - p sum_k g_k

The forward passes are the numerically stable forms: sigmoid never exponentiates
a positive number, softplus(x) = max(x, 0) + log(1 + e^-|x|), and softmax
subtracts the max first. The derivative masks of relu-like functions are
constants, so their second derivatives are 0 (exactly, away from the kink).

leaky_relu for a <= 1 is max(x, a x) (min(x, a x) for a > 1), with its derivative
a + (1 - a) [x > 0]: products and maxima, not a select (which NumPy runs several
times slower). The backward passes of these four are array arithmetic on the
gradient when no graph is being recorded (an ordinary backward), and the same
formulas in Tensor ops under ``create_graph`` (so they can be differentiated again).
"""
import numpy as np

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from .. import backend
from .. import fast_paths
from . import _array_grads
from ._base import array_tensor, as_float
from .elementwise import exp, sigmoid_array
from .reduction import sum as _sum


def _times_constant(g, c):
    """g c for a constant array c (a derivative mask, maybe boolean): one array product when
    no graph is recorded, else a Tensor product, so that g's own graph goes on.

    c is cast to g's dtype first: NumPy multiplies a boolean array into a float one of
    another memory order (a conv's channels-last output against a reshaped gradient)
    ten times slower than it casts and multiplies (measured)."""
    c = c.astype(g.dtype, copy=False)
    if not fast_paths.array_backward():
        return g * Tensor._make(c)
    return array_tensor(g.data * c)


class Sigmoid(Function):
    def forward(self, x):
        return sigmoid_array(x)

    def backward(self, g):
        s = self.output
        if not fast_paths.array_backward():
            return g * (s - s * s)
        return array_tensor(_array_grads.sigmoid(g.data, s.data))


class Tanh(Function):
    def forward(self, x):
        return backend.get_array_module(x).tanh(x)

    def backward(self, g):
        t = self.output
        if not fast_paths.array_backward():
            return g * (1 - t * t)
        return array_tensor(_array_grads.tanh(g.data, t.data))


class Relu(Function):
    def forward(self, x):
        if self.needs_input_grad[0]:
            self.mask = x > 0
        return backend.get_array_module(x).maximum(x, 0)   # not x * mask: -inf * 0 is nan

    def backward(self, g):
        return _times_constant(g, self.mask)


class LeakyRelu(Function):
    def forward(self, x, slope):
        xp = backend.get_array_module(x)
        self.slope = x.dtype.type(slope)   # a scalar of x's dtype: the products stay in x's dtype
        if self.needs_input_grad[0]:
            self.mask = x > 0
        # fmax/fmin, not maximum: at x = inf with a = 0, a x is nan (quietly) and the answer is x;
        # into a x's own array (one temporary, not two)
        with np.errstate(invalid="ignore"):
            y = xp.multiply(x, self.slope, out=xp.empty_like(x))
            return (xp.fmax if slope <= 1 else xp.fmin)(x, y, out=y)

    def backward(self, g):
        factor = self.mask.astype(g.dtype)     # a + (1 - a) [x > 0]
        factor *= 1 - self.slope
        factor += self.slope
        return _times_constant(g, factor)


class Elu(Function):
    def forward(self, x, alpha):
        xp = backend.get_array_module(x)
        self.alpha = alpha
        self.mask = x > 0
        return xp.where(self.mask, x, alpha * xp.expm1(xp.minimum(x, 0)))

    def backward(self, g):
        m = Tensor._make(self.mask.astype(g.dtype))
        return g * (m + (1 - m) * (self.output + self.alpha))


class Softplus(Function):
    def forward(self, x):
        xp = backend.get_array_module(x)
        return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, g):
        return g * sigmoid(self.inputs[0])


class Softmax(Function):
    def forward(self, x, axis):
        xp = backend.get_array_module(x)
        self.axis = axis
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    def backward(self, g):
        p = self.output
        return p * (g - _sum(g * p, self.axis, keepdims=True))


class LogSoftmax(Function):
    def forward(self, x, axis):
        xp = backend.get_array_module(x)
        self.axis = axis
        z = x - x.max(axis=axis, keepdims=True)
        return z - xp.log(xp.exp(z).sum(axis=axis, keepdims=True))

    def backward(self, g):
        return g - exp(self.output) * _sum(g, self.axis, keepdims=True)


def sigmoid(x):
    return Sigmoid.apply(as_float(x))


def tanh(x):
    return Tanh.apply(as_float(x))


def relu(x):
    return Relu.apply(x)


def leaky_relu(x, negative_slope=0.2):
    return LeakyRelu.apply(as_float(x), slope=float(negative_slope))


def elu(x, alpha=1.0):
    return Elu.apply(as_float(x), alpha=float(alpha))


def softplus(x):
    return Softplus.apply(as_float(x))


def _axis(x, axis, op):
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor of shape {tuple(x.shape)}")
    return axis % x.ndim


def softmax(x, axis=-1):
    return Softmax.apply(as_float(x), axis=_axis(x, axis, "softmax"))


def log_softmax(x, axis=-1):
    return LogSoftmax.apply(as_float(x), axis=_axis(x, axis, "log_softmax"))


# --- layers made of the ops above ----------------------------------------

def one_hot(indices, num_classes, dtype=np.float32):
    """Integer labels (any shape) -> float one-hot vectors along a new last axis (no gradient)."""
    idx = indices.data if isinstance(indices, Tensor) else indices
    xp = backend.get_array_module(idx)
    idx = xp.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: labels must be integers, got {idx.dtype}")
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num_classes):
        raise ValueError(f"one_hot: labels must lie in [0, {num_classes}), got values from "
                         f"{int(idx.min())} to {int(idx.max())}")
    return Tensor._make((idx[..., None] == xp.arange(num_classes)).astype(dtype))


def _laid_out_as(a, values):
    """A copy of ``values`` in a's memory order."""
    out = backend.get_array_module(a).empty_like(a)
    out[...] = values
    return out


def dropout(x, p=0.5, training=True, generator=None):
    """Zero each value with probability p and scale the rest by 1/(1-p) (inverted dropout).

    Identity when not training or p = 0. The mask is a constant, drawn from the
    device's generator (``tinygen.manual_seed``) unless ``generator`` is given.
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must lie in [0, 1), got {p}")
    if not training or p == 0:
        return x
    gen = generator or backend.generator(x.device)
    u = gen.random(x.shape)                      # u[i] ~ U[0, 1) in row-major order, whatever x's layout
    xp = backend.get_array_module(u)
    if x.dtype.kind == "f" and xp is backend.get_array_module(x.data):
        keep = xp.greater_equal(u, p, out=xp.empty(u.shape, dtype=x.dtype))
        keep /= 1 - p
        if not x.data.flags.c_contiguous:
            # then laid out as x (a conv's channels-last output), so that x * keep runs through
            # matching memory (6x faster); comparing u into that layout took 3.7x this copy
            keep = _laid_out_as(x.data, keep)
    else:
        keep = (u >= p).astype(x.dtype) / (1 - p)
    return x * Tensor._make(keep if x.device == "cpu" else backend.to_device(keep, x.device))
