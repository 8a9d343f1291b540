"""Patches by blocks: the channels-last im2col matrix made a cache-sized block of rows at a time (NumPy).

A fast path of ``_conv_arrays.py`` (``tinygen.fast_paths``). The patch matrix of a padded
channels-last image xp (N, Hp, Wp, C), K ordered (i, j, c),

    P[n Ho Wo + oh Wo + ow, (i kw + j) C + c] = xp[n, oh sh + i, ow sw + j, c],

holds each pixel kh kw / (sh sw) times (9 times for a 3x3 kernel at stride 1). Made
whole, it goes out to main memory and the GEMM reads it back from there: 75 MB for a
3x3, 64-channel convolution of 32 images of 32 x 32. Made a block of rows at a time,
about ``BLOCK_BYTES`` (a core's L2 cache), each block is multiplied while it is still
in the cache, and the next block is copied into the same buffer:

    y[rows of b] = P_b @ v                  (conv2d: v = w2^T; the input gradient by phases)
    a @ P = sum_b a[:, rows of b] @ P_b     (the weight gradient: a = g's pixel matrix, transposed)

The first is the whole product row by row, each row of y from that row of P and all of
v; the second adds the blocks' products inside the GEMM (``add_product``) in block
order. Both are the same sums as the whole matrix's, to rounding: BLAS may order a
row's sum differently for a block of another size (one row of P goes to its
matrix-vector kernel), and the blocks of the second are summed in their own order
(about 1e-7 relative in float32). A block is whole output rows, of several images when
one image's rows fit in it, else of one image, so it is one contiguous run of P's rows
and of y's.

conv2d keeps xp, the input's size, for its weight gradient instead of P, kh kw times
that: the patches are made twice per step (forward and weight gradient), each time into
the cache, where keeping P made them once into memory.

Measured (1 thread, NumPy 2.4's OpenBLAS, AMD Zen 4; im2col + GEMM, whole P against blocks):
a 3x3, 64-channel convolution of 32 images at 32 x 32 46 -> 29 ms, at 16 x 16 9.6 -> 7.2 ms;
the weight gradient at 32 x 32 40 -> 29 ms (31 with P kept from the forward). Below
``WHOLE_MAX`` P is made whole and kept: it stays in the cache anyway, and by blocks the
8 x 8 models' steps (DCGAN, StarGAN) ran 3-7% slower.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._numpy_blas import add_product

BLOCK_BYTES = 1 << 20       # rows per block: as many whole output rows as fit in this
WHOLE_MAX = 4 << 20         # a smaller P is made whole (see above)


def by_blocks(xp_shape, kh, kw, sh, sw, itemsize):
    """True when the patch matrix of an xp of this shape is worth making by blocks."""
    n, hp, wp, c = xp_shape
    rows = n * ((hp - kh) // sh + 1) * ((wp - kw) // sw + 1)
    return rows * kh * kw * c * itemsize > WHOLE_MAX


class PatchBlocks:
    """The patch matrix P of xp (above), never made whole: ``P @ v`` and ``a @ P`` as for the
    (M, K) array it stands for, M = N Ho Wo, K = kh kw C."""

    __array_ufunc__ = None       # ``a @ P`` with a NumPy array a: NumPy hands it to __rmatmul__

    def __init__(self, xp, kh, kw, sh, sw):
        n, hp, wp, c = xp.shape
        self.xp, self.kernel, self.stride = xp, (kh, kw), (sh, sw)
        self.out = ((hp - kh) // sh + 1, (wp - kw) // sw + 1)
        self.shape = (n * self.out[0] * self.out[1], kh * kw * c)
        self.dtype = xp.dtype

    def blocks(self):
        """(n0, n1, r0, r1): the output rows r0 .. r1 of images n0 .. n1 (whole images, or rows of one)."""
        n = self.xp.shape[0]
        ho, wo = self.out
        rows = max(1, BLOCK_BYTES // (wo * self.shape[1] * self.dtype.itemsize))
        if rows >= ho:
            per = min(n, rows // ho)
            return [(n0, min(n, n0 + per), 0, ho) for n0 in range(0, n, per)]
        return [(i, i + 1, r0, min(ho, r0 + rows)) for i in range(n) for r0 in range(0, ho, rows)]

    def _span(self, block):
        """The block's rows of P (and of y): one contiguous range."""
        n0, n1, r0, r1 = block
        ho, wo = self.out
        start = (n0 * ho + r0) * wo
        return start, start + (n1 - n0) * (r1 - r0) * wo

    def _buffer(self, blocks):
        rows = max(e - s for s, e in map(self._span, blocks))
        return np.empty(rows * self.shape[1], dtype=self.dtype)

    def _fill(self, block, buffer):
        """P_b, copied into the front of buffer: an (rows, K) view."""
        (n0, n1, r0, r1), (kh, kw), (sh, sw) = block, self.kernel, self.stride
        s0, s1, s2, s3 = self.xp.strides
        shape = (n1 - n0, r1 - r0, self.out[1], kh, kw, self.xp.shape[3])
        # windows[n, oh, ow, i, j, c] = xp[n0 + n, (r0 + oh) sh + i, ow sw + j, c]: a view
        windows = as_strided(self.xp[n0:, r0 * sh:], shape, (s0, s1 * sh, s2 * sw, s1, s2, s3), writeable=False)
        block_matrix = buffer[:np.prod(shape)].reshape(shape)
        block_matrix[...] = windows
        return block_matrix.reshape(-1, self.shape[1])

    def _filled(self):
        """(start, end, P_b) for each block in order, P_b copied into the one buffer (so each is
        used before the next is made)."""
        blocks = self.blocks()
        buffer = self._buffer(blocks)
        for b in blocks:
            start, end = self._span(b)
            yield start, end, self._fill(b, buffer)

    def __matmul__(self, v):
        """P @ v for v (K, O): (M, O), row-major."""
        if v.ndim != 2 or v.shape[0] != self.shape[1]:
            raise ValueError(f"patch matrix {self.shape} @ {v.shape}: the inner sizes differ")
        y = np.empty((self.shape[0], v.shape[1]), dtype=self.dtype)
        for start, end, block in self._filled():
            np.matmul(block, v, out=y[start:end])
        return y

    def __rmatmul__(self, a):
        """a @ P for a (O, M): (O, K), the blocks' products added inside the GEMM."""
        if a.ndim != 2 or a.shape[1] != self.shape[0]:
            raise ValueError(f"{a.shape} @ patch matrix {self.shape}: the inner sizes differ")
        out = np.empty((a.shape[0], self.shape[1]), dtype=self.dtype)
        for start, end, block in self._filled():
            if start == 0:
                np.matmul(a[:, start:end], block, out=out)
            else:
                add_product(out, a[:, start:end], block)
        return out
