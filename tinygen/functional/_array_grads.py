"""The backward formulas of the arithmetic ops and the products, on plain arrays: the fast
path of their backward when no graph is being recorded (``fast_paths.array_backward``).

Each function here is its op's formula from ``elementwise.py`` or ``linalg.py``, the same
array operations in the same order, so the gradients are those of the Tensor-op formula
bit for bit. What it saves is the bookkeeping of each step of the formula as an op of its
own (a Function, a Tensor, their checks: about 3 us a step, two to five steps a formula),
which in a small model's step (an MLP on 8x8 images, an MMD over a batch) is a fifth of
the backward pass. Under ``create_graph`` the Tensor-op formulas run, as they must.

    sum_to    y = x summed over the axes broadcasting added        (SumTo's forward)
    expand    dL/dx = dL/dy broadcast back over the axes a sum reduced   (Sum's backward)
    mul       dL/da = sum_to(g b),  dL/db = sum_to(g a)
    div       dL/da = sum_to(g / b),  dL/db = sum_to(-(g / b) z)           z = a / b
    matmul    dL/dA = sum_to(g B^T),  dL/dB = sum_to(A^T g)
    linear    dL/dx = g W,  dL/dW = g^T x (rows flattened),  dL/db = sum_to(g)
    sigmoid   dL/dx = g (s - s s)                                  s = sigmoid(x)
    tanh      dL/dx = g (1 - t t)                                  t = tanh(x)

The last two write every step after the first into the array the first made (NumPy's
expression would allocate three: a NADE hidden layer's sigmoid 76 -> 61 us).
"""
import math

import numpy as np

from .. import backend
from . import _sum_arrays

FILL_MAX = 4096


def sum_to(x, shape):
    """x summed down to ``shape`` over the axes that broadcasting added (or a view of x)."""
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1)
    if not axes:
        return x.reshape(shape) if lead else x
    y = _sum_arrays.summed(x, axes, True)
    return y.reshape(shape) if lead else y


def expand(g, shape):
    """g broadcast to ``shape`` (g's reduced axes already put back as size 1): a read-only
    view, or up to ``FILL_MAX`` numbers a filled array (NumPy's broadcast view costs 2 us
    to set up, a fill of a few numbers a third of that)."""
    if type(g) is not np.ndarray or math.prod(shape) > FILL_MAX:
        return backend.get_array_module(g).broadcast_to(g, shape)
    out = np.empty(shape, g.dtype)
    out[...] = g
    return out


def sigmoid(g, s):
    xp = backend.get_array_module(s)
    t = xp.multiply(s, s, out=xp.empty_like(s))     # an array even when s is 0-d
    xp.subtract(s, t, out=t)
    return xp.multiply(g, t, out=t)


def tanh(g, t):
    xp = backend.get_array_module(t)
    u = xp.multiply(t, t, out=xp.empty_like(t))
    xp.subtract(1, u, out=u)
    return xp.multiply(g, u, out=u)


def _fit(x, shape):
    return x if x.shape == shape else sum_to(x, shape)


def mul(g, a, b, need):
    return (_fit(g * b, a.shape) if need[0] else None,
            _fit(g * a, b.shape) if need[1] else None)


def div(g, a, b, z, need):
    ga = g / b
    gb = _fit(-ga * z, b.shape) if need[1] else None
    return _fit(ga, a.shape), gb


def matmul(g, a, b, need, product):
    """``product``: the op's own a @ b (linalg's, with its outer-product route)."""
    return (_fit(product(g, b.swapaxes(-1, -2)), a.shape) if need[0] else None,
            _fit(product(a.swapaxes(-1, -2), g), b.shape) if need[1] else None)


def linear(g, x, w, bias_shape, need, product):
    gx = product(g, w) if need[0] else None
    gw = product(g.reshape(-1, g.shape[-1]).swapaxes(0, 1), x.reshape(-1, x.shape[-1])) if need[1] else None
    if bias_shape is None:
        return gx, gw
    return gx, gw, (_fit(g, bias_shape) if need[2] else None)
