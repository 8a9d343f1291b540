"""Running sums on plain arrays by blocks: the fast path of ``reduction.cumsum``.

NumPy's ``cumsum`` along an axis adds one element at a time (about 3 ns each, 48 ms
for 784 steps over 4096 columns), and PyTorch's takes 19 ms there. Here the D positions
along the axis are cut into blocks of B = ceil(sqrt(D)), and every block is scanned at once:

    within the blocks    y[b, i] = y[b, i - 1] + x[b, i]      (B - 1 additions, each over all blocks
                                                              and all the other axes: one NumPy call)
    between the blocks   y[b] += t[b - 1],   t = the running sums of the block totals y[:, B - 1]
                                                              (the same scan again, on D / B rows)

about 2 sqrt(D) NumPy calls over long contiguous runs: the same sums in another order
(rounding in the last bits only), 3.2 ms for the case above (a scan of 8-row blocks by
triangular GEMMs took 4.0). The reverse sum (cumsum's gradient) reads x from the end in
the one copy the scan starts with. ``tinygen.fast_paths`` switches it off.
"""
from math import isqrt

import numpy as np


def _running_sums(x, reverse=False):
    """The running sums along axis 0 of x (D, ...), from the end with ``reverse``: a new array
    (a view of one, reversed, with ``reverse``)."""
    d = x.shape[0]
    b = isqrt(d - 1) + 1 if d > 1 else 1                  # the block length, ceil(sqrt(D))
    blocks = -(-d // b)
    out = np.empty((blocks * b,) + x.shape[1:], dtype=x.dtype)
    out[:d] = x[::-1] if reverse else x                   # the one copy, in order of summation
    out[d:] = 0
    v = out.reshape((blocks, b) + x.shape[1:])
    for i in range(1, b):                                 # within every block at once
        np.add(v[:, i], v[:, i - 1], out=v[:, i])
    if blocks > 1:                                        # then the earlier blocks' totals
        v[1:] += _running_sums(v[:-1, -1])[:, None]
    return out[:d][::-1] if reverse else out[:d]


def cumsum(x, axis, reverse=False):
    """x's running sums along ``axis`` (from the end with ``reverse``), for NumPy float arrays."""
    return np.moveaxis(_running_sums(np.moveaxis(x, axis, 0), reverse), 0, axis)


def applies(x):
    """True for the arrays this path serves: NumPy floats with something to sum."""
    return isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.size > 0 and x.ndim > 0
