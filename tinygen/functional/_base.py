"""Small pieces every op file uses: turning constants into Tensors, and clear errors."""
import numpy as np

from ..autograd.tensor import Tensor
from .. import backend


# The dtype rule (PyTorch's). Kinds are ordered bool < integer < float < complex.
#   A constant (Python number, list, NumPy array) beside a Tensor is "weak": of the
#   Tensor's kind or lower, it takes the Tensor's dtype (a float32 graph stays float32,
#   x * np.array(2.0) included); of a higher kind it takes that kind's default dtype
#   (float32 for floats, int64 for integers): tensor([1, 2]) * 0.5 is float32.
#   Two Tensors of one kind promote as NumPy does (float32 with float64 is float64);
#   of different kinds, the higher kind's dtype wins (int64 with float32 is float32).
_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
_DEFAULT_OF_KIND = {1: np.dtype(np.int64), 2: np.dtype(np.float32), 3: np.dtype(np.complex64)}


def kind_rank(dtype):
    return _KIND_RANK.get(np.dtype(dtype).kind, 4)


def constant_dtype(const_dtype, like_dtype):
    """The dtype a constant of ``const_dtype`` takes beside a Tensor of ``like_dtype``."""
    rank = kind_rank(const_dtype)
    if rank <= kind_rank(like_dtype):
        return np.dtype(like_dtype)
    return _DEFAULT_OF_KIND.get(rank, np.dtype(const_dtype))


def result_dtype(a_dtype, b_dtype):
    """The dtype of an elementwise op on two Tensors of these dtypes."""
    ra, rb = kind_rank(a_dtype), kind_rank(b_dtype)
    if ra == rb:
        return np.promote_types(a_dtype, b_dtype)
    return np.dtype(a_dtype if ra > rb else b_dtype)


def as_tensor(x, like=None):
    """``x`` as a Tensor; a constant beside ``like`` takes its device and, by the rule above, its dtype."""
    if isinstance(x, Tensor):
        return x
    if like is None:
        return Tensor(x)
    xp = backend.get_array_module(like.data)
    if like.data.dtype.kind == "f" and (type(x) is float or (type(x) is int and -2 ** 63 <= x < 2 ** 63)):
        return Tensor._make(xp.asarray(x, dtype=like.data.dtype))   # a Python number: the rule's answer at once
    arr = xp.asarray(x.data if isinstance(x, Tensor) else x)
    if arr.dtype == object or arr.dtype.kind not in _KIND_RANK:
        raise TypeError(f"cannot use a {type(x).__name__} of dtype {arr.dtype} as a number beside a "
                        f"{like.dtype} tensor")
    dtype = constant_dtype(arr.dtype, like.dtype)
    return Tensor._make(arr if arr.dtype == dtype else arr.astype(dtype))


def promote(a, b):
    """Tensors ``a`` and ``b`` cast (differentiably) to their common dtype."""
    if a.dtype == b.dtype:
        return a, b
    from .conversion import cast
    dtype = result_dtype(a.dtype, b.dtype)
    return cast(a, dtype), cast(b, dtype)


def array_tensor(a):
    """A Tensor around an array a backward computed directly (its fast path when no graph is
    recorded); a NumPy scalar, which a 0-d product gives, becomes a 0-d array."""
    return Tensor._make(np.asarray(a) if isinstance(a, np.generic) else a)


def as_float(x):
    """A bool or integer Tensor as float32 (maths such as exp, mean or true division needs floats)."""
    if kind_rank(x.dtype) < 2:
        from .conversion import cast
        return cast(x, np.float32)
    return x


def check_same_dtype(op, **tensors):
    """Products (matmul, linear, the convolutions, the LSTM scans) need one dtype: no silent promotion."""
    dtypes = {t.dtype for t in tensors.values() if t is not None}
    if len(dtypes) > 1:
        shown = ", ".join(f"{k} {t.dtype}" for k, t in tensors.items() if t is not None)
        raise TypeError(f"{op}: inputs must share one dtype, got {shown} (convert one with "
                        f".float() or .double())")


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
