"""Maps between an image and its tiling kh x kw blocks, as two ops: the fast path of the tiling
``avg_pool2d`` and of ``upsample_nearest`` / ``interpolate`` by whole factors.

With stride = kernel (kh, kw) and no padding, ``avg_pool2d`` is written in ``pooling.py``
as a reshape and a mean, and nearest upsampling by whole factors as two products with
0/1 matrices (``_resample``). Both are one of a pair of linear maps, each the other's
adjoint, for a number s:

    BlockSum      y[n, c, i, j] = s sum_{a < kh, b < kw} x[n, c, i kh + a, j kw + b]
                                  (kh kw strided views added; then scaled unless s = 1)
    BlockSpread   y[n, c, i kh + a, j kw + b] = s x[n, c, i, j]
                  (written in x's layout: a channels-last x gives runs of C numbers)

    avg_pool2d          = BlockSum with s = 1 / (kh kw)    its backward BlockSpread, same s
    upsample by (kh, kw) = BlockSpread with s = 1          its backward BlockSum, same s

so each gradient is differentiable again. The reference paths: the mean's gradient is a
broadcast view of g / (kh kw), which the reshape's backward copies into an image two
numbers at a time (the innermost axis of the broadcast has length kw), in row-major order
whatever g's layout; the upsampling's are two GEMMs over mostly zeros each way. The spread
numbers are the references' bit for bit (a copy, or g (1 / (kh kw))); the sums add the
kh kw values in another order than NumPy's mean or the GEMMs (rounding only). 8x8 to 4x4,
32 channels, batch 64, channels-last: forward 0.05 against 0.26 ms, forward and backward
0.1 against 0.8 (measured). ``tinygen.fast_paths`` switches them off.
"""
from ..autograd.function import Function
from .. import backend


class BlockSum(Function):
    saves_inputs = ()
    op_name = "block_sum"

    def forward(self, x, kernel, scale):
        (kh, kw), self.kernel, self.scale = kernel, kernel, scale
        total = x[:, :, ::kh, ::kw].copy(order="K")
        for a in range(kh):
            for b in range(kw):
                if a or b:
                    total += x[:, :, a::kh, b::kw]
        if scale != 1:
            total *= scale
        return total

    def backward(self, g):
        return BlockSpread.apply(g, kernel=self.kernel, scale=self.scale)


class BlockSpread(Function):
    saves_inputs = ()
    op_name = "block_spread"

    def forward(self, x, kernel, scale):
        xp = backend.get_array_module(x)
        (kh, kw), self.kernel, self.scale = kernel, kernel, scale
        n, c, h, w = x.shape
        spread = (x * scale if scale != 1 else x)[:, :, :, None, :, None]   # (N, C, H, 1, W, 1)
        if c > 1 and x.transpose(0, 2, 3, 1).flags.c_contiguous:            # channels-last x: so is y
            blocks = xp.empty((n, h, kh, w, kw, c), dtype=x.dtype)
            blocks.transpose(0, 5, 1, 2, 3, 4)[...] = spread
            return blocks.reshape(n, h * kh, w * kw, c).transpose(0, 3, 1, 2)
        blocks = xp.empty((n, c, h, kh, w, kw), dtype=x.dtype)
        blocks[...] = spread
        return blocks.reshape(n, c, h * kh, w * kw)

    def backward(self, g):
        return BlockSum.apply(g, kernel=self.kernel, scale=self.scale)


def block_mean(x, kernel):
    """avg_pool2d(x, kernel) for windows that tile x (x's sides multiples of the kernel's)."""
    return BlockSum.apply(x, kernel=kernel, scale=1.0 / (kernel[0] * kernel[1]))


def block_copy(x, factors):
    """Nearest upsampling of x (N, C, H, W) by whole factors (fh, fw): (N, C, fh H, fw W)."""
    return BlockSpread.apply(x, kernel=factors, scale=1.0)
