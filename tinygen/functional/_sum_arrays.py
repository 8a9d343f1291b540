"""Sums over the outer axes of memory, by blocks of rows: the fast path of ``reduction.sum``.

A sum whose kept axes are the innermost ones in memory (a convolution's bias gradient,
a channels-last image summed over N, H and W; a bias of ``Linear``, (N, F) summed over
N) is, with x read as the (R, K) matrix of its memory (R rows reduced, K numbers kept),

    y[k] = sum_r x[r, k]

which NumPy adds one row at a time, an inner loop of K numbers per row (K = 32 channels,
R = 50,176 pixels: 0.93 ms). The same numbers cut into blocks of B consecutive rows are
an (R / B, B K) matrix, whose rows are added in one product with a vector of ones (BLAS's
matrix-vector kernel; NumPy's own loop over these rows took 1.3-1.7x as long, measured):

    partial[b, k] = sum_q x[q B + b, k]        (ones(R / B) @ x.reshape(R / B, B K))
    y[k] = sum_b partial[b, k]

the same sum in another order: each of the B lanes runs over R / B rows, then B partials
are added, which rounds nearer the exact sum than row after row (0.07 ms for the case
above; (4096, 32), a ProGAN bias gradient: 11 against 53 us). Rows past the last whole
block are added plainly. ``tinygen.fast_paths`` switches it off.
"""
import numpy as np

from .. import fast_paths

BLOCK_ROWS = 64
# Below MIN_ROWS rows NumPy's own loop is done before the blocks are set up (measured: (256, 128)
# 7 against 12 us, (512, 16) 12 against 10); from MAX_KEPT numbers kept on, a row is long enough.
MIN_ROWS = 512
MAX_KEPT = 256


def plan(x, axes):
    """(memory order of x's axes, R, K) when the fast path applies to x summed over ``axes``,
    else None: a float32/64 NumPy array whose memory is, in some order of its axes, one
    C-contiguous block with the reduced axes outside the kept ones."""
    if type(x) is not np.ndarray or x.size < MIN_ROWS or x.dtype.char not in "fd":
        return None                                        # the common small sum: rejected at once
    r = 1
    for a in axes:
        r *= x.shape[a]
    k = x.size // r
    if r < MIN_ROWS or k > MAX_KEPT or len(axes) == x.ndim:
        return None
    reduced = set(axes)
    # outermost first; an axis of size 1 has no stride that counts: outside if reduced, else inside
    order = sorted(range(x.ndim), key=lambda a: -x.strides[a] if x.shape[a] > 1 else
                   (-np.inf if a in reduced else np.inf))
    if any(a in reduced for a in order[len(axes):]) or not x.transpose(order).flags.c_contiguous:
        return None                                        # a kept axis lies outside a reduced one
    return order, r, k


def sum_outer(x, axes, keepdims, layout):
    """x summed over ``axes`` (NumPy's ``sum``) by blocks of rows; layout = plan(x, axes)."""
    order, r, k = layout
    rows = x.transpose(order).reshape(r, k)
    whole = r - r % BLOCK_ROWS
    blocks = rows[:whole].reshape(whole // BLOCK_ROWS, BLOCK_ROWS * k)
    y = (np.ones(len(blocks), dtype=x.dtype) @ blocks).reshape(BLOCK_ROWS, k).sum(axis=0)
    if whole < r:
        y += rows[whole:].sum(axis=0)
    kept = order[len(axes):]                               # the kept axes, in memory order
    if len(kept) > 1:                                      # back to the kept axes' own order
        y = y.reshape([x.shape[a] for a in kept]).transpose(sorted(range(len(kept)), key=kept.__getitem__))
    if keepdims:
        y = y.reshape([1 if a in axes else n for a, n in enumerate(x.shape)])
    return y


def summed(x, axes, keepdims):
    """x.sum(axis=axes, keepdims=keepdims), by blocks of rows where that applies and the fast
    paths are on."""
    layout = plan(x, axes) if fast_paths.enabled() else None
    if layout is None:
        return x.sum(axis=axes, keepdims=keepdims)
    return sum_outer(x, axes, keepdims, layout)
