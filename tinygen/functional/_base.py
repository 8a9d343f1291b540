"""Small pieces every op file uses: turning constants into Tensors, and clear errors."""
import numpy as np

from ..autograd.tensor import Tensor
from .. import backend


def as_tensor(x, like=None):
    """``x`` as a Tensor; Python numbers and arrays take the dtype and device of ``like``."""
    if isinstance(x, Tensor):
        return x
    if like is not None:
        xp = backend.get_array_module(like.data)
        if isinstance(x, (int, float, bool, np.number)) and like.dtype.kind == "f":
            return Tensor._make(xp.asarray(x, dtype=like.dtype))
        arr = xp.asarray(x)
        if arr.dtype == np.float64 and isinstance(x, (list, tuple, float)):
            arr = arr.astype(like.dtype)
        return Tensor._make(arr)
    return Tensor(x)


def shapes_of(*tensors):
    return " and ".join(str(tuple(t.shape)) for t in tensors)


def normalize_axis(axis, ndim, op):
    """An int or tuple of ints, checked against ``ndim``; returns a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(out))
