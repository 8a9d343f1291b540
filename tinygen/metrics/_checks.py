"""Input checks shared by the metrics: every metric names what it got wrong.

The metrics take NumPy arrays, tinygen Tensors (a model's samples) or CuPy
arrays, and compute on the CPU in float64: they run once per evaluation on a few
thousand rows, where exactness matters more than speed.
"""
import numbers

import numpy as np


def to_numpy(x):
    """A NumPy array for ``x``: a Tensor gives its values, a CuPy array is copied to the host."""
    import tinygen
    tensor_class = getattr(tinygen, "Tensor", None)
    if tensor_class is not None and isinstance(x, tensor_class):
        return x.numpy()
    if type(x).__module__.split(".")[0] == "cupy" and hasattr(x, "get"):
        return x.get()
    return np.asarray(x)


def float_matrix(x, op, name, min_rows=1):
    """``x`` as a finite float64 ``(N, D)`` array with ``N >= min_rows`` and ``D >= 1``."""
    a = to_numpy(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{op}: {name} must hold real numbers, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{op}: {name} must be 2-D (rows, features), got shape {a.shape}")
    if a.shape[0] < min_rows or a.shape[1] < 1:
        raise ValueError(f"{op}: {name} needs at least {min_rows} row(s) and 1 column, "
                         f"got shape {a.shape}")
    a = a.astype(np.float64)
    bad = ~np.isfinite(a)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"{op}: {name} (shape {a.shape}) has {int(bad.sum())} non-finite value(s), "
                         f"the first {a[row, col]} at row {row}, column {col}")
    return a


def same_width(a, b, op, names):
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{op}: {names[0]} and {names[1]} must have the same number of columns, "
                         f"got shapes {a.shape} and {b.shape}")


def positive_number(value, op, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{op}: {name} must be a finite number > 0, got {value!r}")
    return float(value)
