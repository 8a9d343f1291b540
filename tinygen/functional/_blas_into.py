"""A matrix product added into an array in place, ``out += a @ b``, without the product's temporary.

NumPy's ``matmul`` writes a product into ``out`` but cannot add to what is there: ``out +=
a @ b`` makes the product in a temporary and then passes over both arrays again. BLAS's
GEMM has the addition built in,

    C <- alpha A B + beta C          (here alpha = 1, beta = 1)

added as each block of A B is finished, while it is still in the registers, and it reads
and writes strided matrices (a leading dimension per matrix) where NumPy would copy.

This module calls that GEMM in the BLAS NumPy itself runs (the OpenBLAS its wheels ship,
``numpy.libs/libscipy_openblas64_*``), through ``ctypes``: the same library, so the same
kernels and the same thread pool as every other product of the process. (SciPy's GEMM
would be the same function in a second copy of OpenBLAS, whose threads and NumPy's then
wait for each other: with two threads a PixelCNN step ran 13x slower, measured.) Where
that library is not found (another NumPy build), or for other dtypes, CuPy arrays or
memory BLAS cannot address, it is the plain ``out += a @ b``. A fast path's plumbing
(``_conv_frames.correlate``): the sum is the same, rounded once per block of k instead of
once per product (rounding only).
"""
import ctypes
import glob
import os

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


class _NumpyBlas:
    """NumPy's own OpenBLAS GEMMs (64-bit integers), found at the first call; None where not."""

    def __init__(self):
        self.gemms = None

    def gemm(self, dtype):
        if self.gemms is None:
            self.gemms = self._load()
        return self.gemms.get(dtype)

    @staticmethod
    def _load():
        libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
        found = sorted(glob.glob(os.path.join(libs, "libscipy_openblas64_*.so*")))
        if not found:
            return {}
        try:
            lib = ctypes.CDLL(found[0])      # already loaded by NumPy: the same library
        except OSError:
            return {}
        gemms = {}
        for dtype, name, real in ((np.float32, "scipy_cblas_sgemm64_", ctypes.c_float),
                                  (np.float64, "scipy_cblas_dgemm64_", ctypes.c_double)):
            fn = getattr(lib, name, None)
            if fn is not None:
                i64, ptr, enum = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
                fn.argtypes = [enum, enum, enum, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64]
                fn.restype = None
                gemms[np.dtype(dtype)] = fn
        return gemms


_BLAS = _NumpyBlas()


def _operand(m):
    """(transpose flag, leading dimension) of a 2-D array for a row-major GEMM, or None when BLAS
    cannot read it where it lies (no unit stride on either axis, or overlapping rows)."""
    rows, cols = m.shape
    size = m.itemsize
    s0, s1 = m.strides
    if (s1 == size or cols == 1) and s0 % size == 0:
        ld = s0 // size if rows > 1 else cols
        if ld >= cols:
            return _NO_TRANS, ld
    if (s0 == size or rows == 1) and s1 % size == 0:
        ld = s1 // size if cols > 1 else rows
        if ld >= rows:
            return _TRANS, ld
    return None


def add_product(out, a, b):
    """out += a @ b, in place; out (m, n), a (m, k), b (k, n)."""
    gemm = None
    if (type(out) is np.ndarray and type(a) is np.ndarray and type(b) is np.ndarray
            and out.dtype == a.dtype == b.dtype and out.ndim == a.ndim == b.ndim == 2
            and min(out.size, a.size, b.size) > 0 and out.flags.writeable
            and out.flags.aligned and a.flags.aligned and b.flags.aligned):
        gemm = _BLAS.gemm(out.dtype)
    layouts = (_operand(out), _operand(a), _operand(b)) if gemm is not None else (None,)
    if None in layouts or layouts[0][0] != _NO_TRANS or np.may_share_memory(out, a) or np.may_share_memory(out, b):
        out += a @ b
        return out
    (_, ldc), (trans_a, lda), (trans_b, ldb) = layouts
    (m, n), k = out.shape, a.shape[1]
    gemm(_ROW_MAJOR, trans_a, trans_b, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb,
         1.0, out.ctypes.data, ldc)
    return out
