"""Elementwise arithmetic and maths, with broadcasting.

For z = f(a, b) broadcast to a common shape, the chain rule gives the gradient
at the broadcast shape; each input then receives it summed back to its own
shape:

    dL/da = sum_to(dL/dz * df/da, a.shape)          (sum over broadcast axes)

``sum_to`` and ``expand`` (broadcast_to) are each other's backward.

    add     z = a + b        dz/da = 1            dz/db = 1
    sub     z = a - b        dz/da = 1            dz/db = -1
    mul     z = a * b        dz/da = b            dz/db = a
    div     z = a / b        dz/da = 1 / b        dz/db = -a / b^2 = -z / b
    pow     z = a ** b       dz/da = b a^(b-1)    dz/db = z log a
    exp     z = e^x          dz/dx = z
    log     z = log x        dz/dx = 1 / x
    sqrt    z = x^(1/2)      dz/dx = 1 / (2 z)
    abs     z = |x|          dz/dx = sign x       (0 at x = 0)
    clip    z = min(max(x, lo), hi)      dz/dx = 1 inside [lo, hi], else 0
    maximum z = max(a, b)    the gradient goes to the larger (to a on ties)
    where   z = c ? a : b    the gradient goes where it came from

Casts, device moves and comparisons are in ``conversion.py``.
"""
import operator

import numpy as np

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from .. import backend, fast_paths
from . import _array_grads
from ._base import array_tensor, as_tensor, as_float, promote, shapes_of


# --- broadcasting --------------------------------------------------------

class SumTo(Function):
    saves_inputs = ()

    def forward(self, x, shape):
        self.in_shape = x.shape
        return _array_grads.sum_to(x, shape)       # x summed over the broadcast axes

    def backward(self, g):
        return expand(g, self.in_shape)


class Expand(Function):
    saves_inputs = ()

    def forward(self, x, shape):
        xp = backend.get_array_module(x)
        self.in_shape = x.shape
        return xp.broadcast_to(x, shape)

    def backward(self, g):
        return sum_to(g, self.in_shape)


def _arrays(grads):
    """Tensors around the gradients an array backward computed (None stays None)."""
    return tuple(None if a is None else array_tensor(a) for a in grads)


def sum_to(x, shape):
    """Sum ``x`` over the axes that broadcasting added, down to ``shape``."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    return SumTo.apply(x, shape=shape)


def expand(x, shape):
    """Broadcast ``x`` to ``shape`` (a read-only view on the forward pass)."""
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if x.shape == shape:
        return x
    try:
        return Expand.apply(x, shape=shape)
    except ValueError:
        raise ValueError(f"expand: cannot broadcast shape {tuple(x.shape)} to {shape}") from None


def _operands(a, b):
    """Two Tensors of one dtype from a binary op's operands (the dtype rule in ``_base.py``)."""
    if not isinstance(a, Tensor):
        a = as_tensor(a, like=b)
    elif not isinstance(b, Tensor):
        b = as_tensor(b, like=a)
    return promote(a, b)


def _binary(cls, name, a, b):
    if not (isinstance(a, Tensor) and isinstance(b, Tensor) and a.data.dtype == b.data.dtype):
        a, b = _operands(a, b)
    if cls is Div:  # true division: integers divide to floats
        a, b = as_float(a), as_float(b)
    try:
        return cls.apply(a, b)
    except ValueError as e:
        if a.shape != b.shape and "broadcast" in str(e):
            raise ValueError(f"{name}: shapes {shapes_of(a, b)} cannot be broadcast together") from None
        raise


# --- arithmetic ----------------------------------------------------------

class Add(Function):
    saves_inputs = ()

    def forward(self, a, b):
        return a + b

    def backward(self, g):
        a, b = self.inputs
        return sum_to(g, a.shape), sum_to(g, b.shape)


class Sub(Function):
    saves_inputs = ()

    def forward(self, a, b):
        return a - b

    def backward(self, g):
        a, b = self.inputs
        if fast_paths.array_backward() and self.needs_input_grad[1]:
            return sum_to(g, a.shape), array_tensor(_array_grads.sum_to(-g.data, b.shape))
        return sum_to(g, a.shape), (sum_to(-g, b.shape) if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs
        if fast_paths.array_backward():
            return _arrays(_array_grads.mul(g.data, a.data, b.data, self.needs_input_grad))
        ga = sum_to(g * b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(g * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        return a / b

    def backward(self, g):
        a, b = self.inputs
        if fast_paths.array_backward():
            return _arrays(_array_grads.div(g.data, a.data, b.data, self.output.data, self.needs_input_grad))
        ga = g / b
        gb = sum_to(-ga * self.output, b.shape) if self.needs_input_grad[1] else None
        return sum_to(ga, a.shape), gb


class Neg(Function):
    saves_inputs = ()

    def forward(self, x):
        return -x

    def backward(self, g):
        return array_tensor(-g.data) if fast_paths.array_backward() else -g


class Pow(Function):
    def forward(self, a, b):
        return a ** b

    def backward(self, g):
        a, b = self.inputs
        ga = sum_to(g * b * a ** (b - 1), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(g * self.output * log(a), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class PowScalar(Function):
    """x ** p for a constant exponent p (the common case: squares, square roots)."""
    def forward(self, x, p):
        self.p = p
        return x ** p

    def backward(self, g):
        x, = self.inputs
        if self.p == 2:
            return g * (2 * x)
        return g * (self.p * x ** (self.p - 1))


def add(a, b):
    return _binary(Add, "add", a, b)


def sub(a, b):
    return _binary(Sub, "sub", a, b)


def mul(a, b):
    return _binary(Mul, "mul", a, b)


def div(a, b):
    return _binary(Div, "div", a, b)


def neg(x):
    return Neg.apply(x)


def pow(a, b):
    """a ** b; b may be a Tensor or a constant number."""
    if isinstance(a, Tensor) and isinstance(b, (int, float, np.number)):
        b = b.item() if isinstance(b, np.number) else b  # a NumPy scalar would upcast float32
        if isinstance(b, float):
            a = as_float(a)  # tensor([1, 2]) ** 0.5 is float32, as the dtype rule says
        if b == 1:
            return a
        return PowScalar.apply(a, p=b)
    return _binary(Pow, "pow", a, b)


# --- unary maths ---------------------------------------------------------

class Exp(Function):
    def forward(self, x):
        return backend.get_array_module(x).exp(x)

    def backward(self, g):
        return g * self.output


class Log(Function):
    def forward(self, x):
        return backend.get_array_module(x).log(x)

    def backward(self, g):
        return g / self.inputs[0]


class Sqrt(Function):
    def forward(self, x):
        return backend.get_array_module(x).sqrt(x)

    def backward(self, g):
        return g / (2 * self.output)


class Abs(Function):
    def forward(self, x):
        return backend.get_array_module(x).abs(x)

    def backward(self, g):
        x = self.inputs[0].data
        return g * Tensor._make(backend.get_array_module(x).sign(x))


class Clip(Function):
    def forward(self, x, lo, hi):
        xp = backend.get_array_module(x)
        self.inside = ((x >= lo) if lo is not None else True) & ((x <= hi) if hi is not None else True)
        return xp.clip(x, lo, hi)

    def backward(self, g):
        return g * Tensor._make(self.inside.astype(g.dtype))


def exp(x):
    return Exp.apply(as_float(x))


def log(x):
    return Log.apply(as_float(x))


def sqrt(x):
    return Sqrt.apply(as_float(x))


def abs(x):
    return Abs.apply(x)


def clip(x, lo=None, hi=None):
    """Clamp to [lo, hi] (either may be None); the gradient is zero where x was clamped."""
    if lo is None and hi is None:
        raise ValueError("clip: give lo, hi or both")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"clip: lo={lo} is greater than hi={hi}")
    lo, hi = (v.item() if isinstance(v, np.number) else v for v in (lo, hi))  # keep float32 float32
    return Clip.apply(x, lo=lo, hi=hi)


def sigmoid_array(x):
    """1 / (1 + e^-x), in three passes over an array of its own:

        e = e^-x,   e += 1,   s = 1 / e

    Where e^-x overflows (x below -88.7 in float32, -709.8 in float64) e is +inf and s is 0,
    the limit: only the subnormal values of s in that last stretch are lost (e^88.7 is about
    float32's largest number). x = +inf gives 1, -inf 0, nan nan. float16 is computed in
    float32 (e^-x would overflow below x = -11 there) and rounded once. The relative error is
    at most 2.1e-7 in float32 (2.6e-7 for the former e^-|x| form, whose select of 1 or e cost
    a pass over a boolean array); NADE's 8x8 hidden layer (262,144 numbers) 0.19 against 0.27 ms."""
    xp = backend.get_array_module(x)
    x = xp.asarray(x)
    e = xp.empty(x.shape, dtype=np.promote_types(x.dtype, np.float32))   # ours, whatever x's memory
    xp.negative(x, out=e)
    with np.errstate(over="ignore"):
        xp.exp(e, out=e)                                     # e^-x, +inf past the range
    e += 1
    xp.divide(1, e, out=e)
    return e.astype(np.float16) if x.dtype == np.float16 else e


# --- selection -----------------------------------------------------------

class Where(Function):
    def forward(self, a, b, cond):
        self.cond = cond
        return backend.get_array_module(a).where(cond, a, b)

    def backward(self, g):
        a, b = self.inputs
        m = Tensor._make(self.cond.astype(g.dtype))
        ga = sum_to(g * m, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(g * (1 - m), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


def where(cond, a, b):
    """Elementwise ``cond ? a : b`` (cond a boolean Tensor or array, not differentiated)."""
    cond_arr = cond.data if isinstance(cond, Tensor) else cond
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = as_tensor(a)
    a, b = _operands(a, b)
    xp = backend.get_array_module(a.data)
    cond_arr = xp.asarray(cond_arr)
    if cond_arr.dtype != bool:
        raise TypeError(f"where: cond must be boolean, got {cond_arr.dtype}")
    try:
        return Where.apply(a, b, cond=cond_arr)
    except ValueError:
        raise ValueError(f"where: shapes cond {tuple(cond_arr.shape)}, a {tuple(a.shape)} and "
                         f"b {tuple(b.shape)} cannot be broadcast together") from None


def _select(a, b, keep_a, name):
    """where(keep_a(a, b), a, b): the common body of maximum and minimum."""
    a, b = _operands(a, b)
    try:
        cond = keep_a(a.data, b.data)
    except ValueError:
        raise ValueError(f"{name}: shapes {shapes_of(a, b)} cannot be broadcast together") from None
    return where(cond, a, b)


def maximum(a, b):
    """Elementwise max; on ties the gradient goes to ``a``."""
    return _select(a, b, operator.ge, "maximum")


def minimum(a, b):
    """Elementwise min; on ties the gradient goes to ``a``."""
    return _select(a, b, operator.le, "minimum")
