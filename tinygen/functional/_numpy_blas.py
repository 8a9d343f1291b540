"""NumPy's own BLAS, called for what NumPy has no function for: a product added into an array in
place, and a blocked transpose of images; and a small matrix times a wide one, by runs of columns.

A product added in place, ``out += a @ b`` without the product's temporary. NumPy's
``matmul`` writes a product into ``out`` but cannot add to what is there: ``out += a @ b``
makes the product in a temporary and then passes over both arrays again. BLAS's GEMM has
the addition built in,

    C <- alpha A B + beta C          (here alpha = 1, beta = 1)

added as each block of A B is finished, while it is still in the registers, and it reads
and writes strided matrices (a leading dimension per matrix) where NumPy would copy.

Images from channels-first to channels-last, (N, C, H, W) -> (N, H, W, C): per image the
transpose of a (C, H W) matrix. NumPy copies it one number at a time along C, each read
H W numbers from the last (channels 4 KiB apart at 32 x 32 fall into the same cache sets:
8 MiB took 4.5 ms, measured); OpenBLAS's ``omatcopy`` transposes in blocks (0.7 ms). Used
from ``MIN_IMAGE`` numbers per image (below, NumPy's copy is as fast: 64 x 32 x 8 x 8
took 0.05 against 0.12 ms).

A small matrix times a wide one, ``a @ b`` for a (p, q) of a few rows and columns and b (q, N) of
N in the hundreds of thousands (Winograd's transforms, ``_conv_winograd``): OpenBLAS packs and
streams the whole width at once, and the product runs from main memory; cut into runs of
``WIDE_RUN`` columns, each run's operands stay in the cache (measured, float32: (5, 5) @ (5, 131072)
0.24 -> 0.16 ms, (4, 6) @ (6, 524288) 0.83 -> 0.46, (6, 6) @ (6, 65536) 0.13 -> 0.09; at 32768
columns and below, one product is as fast). Each output number is the same dot product of q
terms either way: bit for bit.

The first two call the BLAS NumPy itself runs (the OpenBLAS its wheels ship,
``numpy.libs/libscipy_openblas64_*``) through ``ctypes``: the same library, so the same
kernels and the same thread pool as every other product of the process. (SciPy's GEMM
would be the same function in a second copy of OpenBLAS, whose threads and NumPy's then
wait for each other: with two threads a PixelCNN step ran 13x slower, measured.) Where
that library is not found (another NumPy build), or for other dtypes, CuPy arrays or
memory BLAS cannot address, the plain NumPy expressions run instead. Fast paths' plumbing
(``_conv_frames``, ``_conv_arrays``): the transpose is a copy (bit for bit); the sum is the
same, rounded once per block of k instead of once per product (rounding only).
"""
import ctypes
import fnmatch
import glob
import os

import numpy as np

from .. import fast_paths

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
MIN_IMAGE = 8192


class _NumpyBlas:
    """NumPy's own OpenBLAS functions (64-bit integers), found at the first call; None where not."""

    def __init__(self):
        self.found = None

    def gemm(self, dtype):
        return self._functions().get(("gemm", dtype))

    def omatcopy(self, dtype):
        return self._functions().get(("omatcopy", dtype))

    def _functions(self):
        if self.found is None:
            self.found = self._load()
        return self.found

    @staticmethod
    def _library():
        """The path of NumPy's OpenBLAS: the one this process has mapped (Linux), else the one
        its wheel ships; None where there is none."""
        libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
        pattern = os.path.join(libs, "libscipy_openblas64_*.so*")
        try:
            with open("/proc/self/maps") as maps:
                mapped = {line.split(None, 5)[-1].strip() for line in maps if "libscipy_openblas64_" in line}
            loaded = sorted(p for p in mapped if fnmatch.fnmatch(p, pattern))
        except OSError:
            loaded = []
        found = loaded or sorted(glob.glob(pattern))
        return found[0] if found else None

    @classmethod
    def _load(cls):
        path = cls._library()
        if path is None:
            return {}
        try:
            lib = ctypes.CDLL(path)          # already loaded by NumPy: the same library
        except OSError:
            return {}
        i64, ptr, enum = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
        functions = {}
        for dtype, letter, real in ((np.float32, "s", ctypes.c_float), (np.float64, "d", ctypes.c_double)):
            for kind, argtypes in (("gemm", [enum, enum, enum, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64]),
                                   ("omatcopy", [enum, enum, i64, i64, real, ptr, i64, ptr, i64])):
                fn = getattr(lib, f"scipy_cblas_{letter}{kind}64_", None)
                if fn is not None:
                    fn.argtypes, fn.restype = argtypes, None
                    functions[(kind, np.dtype(dtype))] = fn
        return functions


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
            and out.shape == (a.shape[0], b.shape[1]) and a.shape[1] == b.shape[0]
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


def transpose_images(dst, src):
    """dst (N, H, W, C) = src (N, C, H, W) for a C-contiguous src, by BLAS's blocked transpose;
    False (nothing written) where that does not apply. A dst that is not contiguous (a
    padded frame's interior) is filled from a contiguous copy."""
    if not (fast_paths.enabled() and type(src) is np.ndarray and type(dst) is np.ndarray and src.ndim == 4
            and src.dtype == dst.dtype and src.flags.c_contiguous and src.flags.aligned
            and dst.shape == (src.shape[0],) + src.shape[2:] + (src.shape[1],)
            and src[0].size >= MIN_IMAGE and dst.flags.writeable):
        return False
    omatcopy = _BLAS.omatcopy(src.dtype)
    if omatcopy is None:
        return False
    if not dst.flags.c_contiguous:
        whole = np.empty(dst.shape, dtype=dst.dtype)
        transpose_images(whole, src)
        dst[...] = whole                   # runs of W C numbers: a fast copy
        return True
    n, c, h, w = src.shape
    step = src[0].nbytes
    for i in range(n):                     # one (C, H W) -> (H W, C) transpose per image
        omatcopy(_ROW_MAJOR, _TRANS, c, h * w, 1.0, src.ctypes.data + i * step, h * w,
                 dst.ctypes.data + i * step, c)
    return True


WIDE_MIN = 1 << 15      # products with more columns than this go by runs (above)
WIDE_RUN = 1 << 14


def wide_matmul(a, b, out=None):
    """a @ b (NumPy's ``matmul``, into ``out`` if given) for a 2-D a and b (..., q, N), b's columns
    taken ``WIDE_RUN`` at a time when there are more than ``WIDE_MIN`` (above)."""
    n = b.shape[-1]
    if n <= WIDE_MIN or not fast_paths.enabled() or type(b) is not np.ndarray:
        return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty(b.shape[:-2] + (a.shape[0], n), dtype=np.result_type(a, b))
    for start in range(0, n, WIDE_RUN):
        np.matmul(a, b[..., start:start + WIDE_RUN], out=out[..., start:start + WIDE_RUN])
    return out
