"""Maximum mean discrepancy: a kernel two-sample statistic (Gretton et al., 2012).

For a kernel k, the squared MMD between distributions P and Q is

    MMD^2 = E k(x, x') + E k(y, y') - 2 E k(x, y)      x, x' ~ P,  y, y' ~ Q independent

which is 0 when P = Q (and, for the kernels below, only then). From samples
x_1..x_n ~ P and y_1..y_m ~ Q, the *unbiased* estimate (a U-statistic) leaves
out the pairs of a sample with itself, whose k(x_i, x_i) is a constant that
would bias the first two terms upwards:

    MMD_u^2 = 1/(n(n-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(y_i, y_j)
              - 2/(n m) sum_{i, j} k(x_i, y_j)

Its mean over repeated draws is exactly MMD^2, so for P = Q it averages 0 and
a single value may be slightly negative; ``mmd`` returns MMD_u^2 itself, not
its square root.

Kernels, with r^2 = ||x - y||^2, summed over the length scales s in ``scales``:

    "imq"  inverse multiquadratic  k = sum_s C_s / (C_s + r^2),  C_s = 2 D s^2
    "rbf"  Gaussian                k = sum_s exp(-r^2 / (2 s^2))

D is the width of the rows. The IMQ kernel is WAE's choice (Tolstikhin et al.,
2018): its heavy tails keep a gradient for far-apart samples where the RBF
kernel's vanish, and C = 2 D sigma^2 is the expected r^2 between two draws of
a D-dimensional N(0, sigma^2 I) prior. WAE sums C over the multiples
0.1, 0.2, 0.5, 1, 2, 5, 10 of 2 D sigma^2; ``WAE_SCALES`` are those as length
scales for sigma = 1.

Arrays or Tensors: NumPy (or CuPy) arrays give a float, computed in float64.
Tensors give a 0-d Tensor built from tinygen ops, so MMD can be a training
loss (WAE-MMD) and its gradient flows into both samples.
"""
import math
import numbers

from .. import backend, fast_paths
from .. import functional as F
from ..autograd.tensor import Tensor, tensor
from ._checks import float_matrix, positive_number
from ._kernel_sums import kernel_sum

KERNELS = ("imq", "rbf")
WAE_SCALES = tuple(math.sqrt(c) for c in (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0))
"""Length scales s with C_s = 2 D s^2 equal to WAE's multiples of 2 D (a unit-variance prior)."""


def _squared_distances(a, b):
    """r^2[i, j] = ||a_i||^2 + ||b_j||^2 - 2 a_i . b_j, clipped at 0 against rounding."""
    aa = (a * a).sum(axis=1, keepdims=True)
    bb = (b * b).sum(axis=1, keepdims=True)
    return F.clip(aa + bb.T - 2.0 * (a @ b.T), 0.0, None)


def _kernel(a, b, kernel, scales):
    r2 = _squared_distances(a, b)
    # imq: C_s = 2 D s^2; rbf: the exponent's factor -1 / (2 s^2)
    params = [2.0 * a.shape[1] * s * s if kernel == "imq" else -1.0 / (2.0 * s * s) for s in scales]
    if fast_paths.enabled():      # the same numbers as the loop below, as one op (_kernel_sums.py)
        return kernel_sum(r2, kernel, params)
    total = 0.0
    for p in params:
        total = total + (p / (p + r2) if kernel == "imq" else F.exp(r2 * p))
    return total


def _diagonal(k):
    xp = backend.get_array_module(k.data)
    n = k.shape[0]
    return k[xp.arange(n), xp.arange(n)]


def _off_diagonal_mean(k):
    """Mean of k[i, j] over i != j (the U-statistic's pairs), for a square k."""
    # Subtracting the computed diagonal removes exactly the i = j terms, rounding included.
    n = k.shape[0]
    return (k.sum() - _diagonal(k).sum()) / (n * (n - 1))


def _as_rows(x, op, name, like):
    """A 2-D Tensor with >= 2 finite rows: Tensors pass (differentiable); an array becomes
    float64, or the dtype and device of ``like``, the Tensor it is compared with."""
    if not isinstance(x, Tensor):
        rows = float_matrix(x, op, name, min_rows=2)
        if like is None:
            return tensor(rows)
        return tensor(rows.astype(like.dtype), device=like.device)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"{op}: {name} must be 2-D with at least 2 rows, got shape {tuple(x.shape)}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be a floating-point Tensor, got {x.dtype}")
    if not bool(backend.get_array_module(x.data).isfinite(x.data).all()):
        raise ValueError(f"{op}: {name} (shape {tuple(x.shape)}) has non-finite values")
    return x


def _scales(scales, op):
    if isinstance(scales, numbers.Real):
        scales = (scales,)
    scales = tuple(scales)
    if not scales:
        raise ValueError(f"{op}: scales is empty; give at least one length scale")
    return tuple(positive_number(s, op, "every scale") for s in scales)


def mmd(x, y, kernel="imq", scales=(1.0,)):
    """The unbiased estimate MMD_u^2 between samples ``x`` (n, D) and ``y`` (m, D), n, m >= 2.

    ``kernel``: "imq" or "rbf"; ``scales``: one length scale or a sequence of them.
    Returns a float for arrays, a 0-d Tensor (differentiable) when either is a Tensor.
    """
    op = "mmd"
    if kernel not in KERNELS:
        raise ValueError(f"{op}: unknown kernel {kernel!r}; known: {', '.join(KERNELS)}")
    scales = _scales(scales, op)
    like = x if isinstance(x, Tensor) else y if isinstance(y, Tensor) else None
    a, b = _as_rows(x, op, "x", like), _as_rows(y, op, "y", like)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{op}: x and y must have the same number of columns, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    value = (_off_diagonal_mean(_kernel(a, a, kernel, scales))
             + _off_diagonal_mean(_kernel(b, b, kernel, scales))
             - 2.0 * _kernel(a, b, kernel, scales).mean())
    return value if like is not None else value.item()
