"""Casts, device moves and comparisons: the ops that change what a tensor is, not its values.

    cast       z = x in another dtype       dz/dx: the gradient cast back to x's dtype
                                            (to an integer dtype: a copy without gradient)
    to_device  z = x on another device      dz/dx: the gradient moved back

Comparisons (<, <=, >, >=, ==, !=) return boolean tensors that carry no gradient.
"""
import operator

import numpy as np

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from .. import backend


# --- dtype and device ----------------------------------------------------

class Cast(Function):
    saves_inputs = ()

    def forward(self, x, dtype):
        self.in_dtype = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return cast(g, self.in_dtype)


class ToDevice(Function):
    saves_inputs = ()

    def forward(self, x, device):
        self.src = backend.device_of(x)
        return backend.to_device(x, device)

    def backward(self, g):
        return to_device(g, self.src)


def cast(x, dtype):
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    if x.requires_grad and dtype.kind not in "fc":
        return Tensor._make(x.data.astype(dtype))  # an integer copy carries no gradient
    return Cast.apply(x, dtype=dtype)


def to_device(x, device):
    return ToDevice.apply(x, device=backend.normalize_device(device))


# --- comparisons (no gradient) -------------------------------------------

def _compare(op, a, b):
    a_arr = a.data if isinstance(a, Tensor) else a
    b_arr = b.data if isinstance(b, Tensor) else b
    try:
        return Tensor._make(op(a_arr, b_arr))
    except ValueError:
        sa = getattr(a_arr, "shape", ())
        sb = getattr(b_arr, "shape", ())
        raise ValueError(f"comparison: shapes {tuple(sa)} and {tuple(sb)} cannot be broadcast "
                         f"together") from None


def less(a, b): return _compare(operator.lt, a, b)
def less_equal(a, b): return _compare(operator.le, a, b)
def greater(a, b): return _compare(operator.gt, a, b)
def greater_equal(a, b): return _compare(operator.ge, a, b)
def equal(a, b): return _compare(operator.eq, a, b)
def not_equal(a, b): return _compare(operator.ne, a, b)
