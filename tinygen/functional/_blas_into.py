"""A matrix product added into an array in place, ``out += a @ b``, without the product's temporary.

NumPy's ``matmul`` writes a product into ``out`` but cannot add to what is there: ``out +=
a @ b`` makes the product in a temporary and then passes over both arrays again. BLAS's
GEMM has the addition built in,

    C <- alpha A B + beta C          (here alpha = 1, beta = 1)

added as each block of A B is finished, while it is still in the registers. SciPy exposes
that GEMM (``scipy.linalg.blas``, imported at the first call: it takes 0.1 s). It is
written for column-major matrices, so a row-major out (m, n) = a (m, k) b (k, n) goes in
as its transpose, out^T = b^T a^T, whose three matrices are then column-major without a
copy. Anything else (another dtype, memory that is not contiguous, CuPy) takes the plain
``out += a @ b``. A fast path's plumbing (``_conv_frames.correlate``): the sum is the same,
rounded once per block of k instead of once per product (rounding only).
"""
import numpy as np

_GEMM = {}


def _gemm(dtype):
    if not _GEMM:
        from scipy.linalg import blas
        _GEMM.update({np.dtype(np.float32): blas.sgemm, np.dtype(np.float64): blas.dgemm})
    return _GEMM.get(dtype)


def add_product(out, a, b):
    """out += a @ b, in place; out (m, n) C-contiguous, a (m, k), b (k, n)."""
    gemm = None
    if (type(out) is np.ndarray and type(a) is np.ndarray and type(b) is np.ndarray
            and out.dtype == a.dtype == b.dtype and out.flags.c_contiguous):
        gemm = _gemm(out.dtype)
    if gemm is None or not (a.flags.c_contiguous or a.flags.f_contiguous) \
            or not (b.flags.c_contiguous or b.flags.f_contiguous):
        out += a @ b
        return out
    # out^T = b^T a^T + out^T: GEMM's first operand is b^T, its second a^T, each handed over as
    # a column-major matrix: the transpose of a row-major one, or the array itself, transposed by BLAS
    first, first_flag = (b.T, 0) if b.flags.c_contiguous else (b, 1)
    second, second_flag = (a.T, 0) if a.flags.c_contiguous else (a, 1)
    result = gemm(1.0, first, second, beta=1.0, c=out.T, trans_a=first_flag, trans_b=second_flag,
                  overwrite_c=1)
    if not np.shares_memory(result, out):      # SciPy copied (it should not): keep the sum anyway
        out[...] = result.T
    return out
