"""Strided convolutions by Winograd's minimal filtering over s x s blocks of pixels (NumPy).

A fast path of ``_conv_arrays.py`` (``tinygen.fast_paths``), beside the stride-1 one of
``_conv_winograd.py``, whose transforms it uses. A k-tap kernel at stride s is a kernel of
r = k / s taps at stride 1 over the image's s x s blocks of pixels, where s divides k.

With xp the padded input cut into s x s blocks (rows past its end read as zeros),

    X[n, (a, b, c), u, v] = xp[n, c, s u + a, s v + b],    w'[o, (a, b, c), i, j] = w[o, c, s i + a, s j + b]

(a, b < s; i, j < r), the stride-s convolution is the stride-1 one of X with w':

    y[n, o, p, q] = sum_{c, i, j, a, b} w[o, c, s i + a, s j + b] xp[n, c, s (p + i) + a, s (q + j) + b]
                  = conv2d(X, w')[n, o, p, q]

so DCGAN's 4x4 kernels at stride 2 are 2x2 kernels over four times the channels, which
F(4, 2) computes in 25 GEMMs: 25 / 16 x 4 C multiply-adds per output pixel and output
channel, where im2col takes 16 C (2.56x fewer). X has Ho + r - 1 rows of blocks, all that
the outputs read. The input gradient is X's
(``input_grad`` with w'), put back out of the blocks (zeros on the rows no output read);
the weight gradient is w''s (``weight_grad``), its taps put back. Measured (1 thread, Zen 4,
forward + both gradients through the ops, on benchmarks/conv.py's arrays, in alternating
rounds): conv2d of 64 images at 14 x 14, 64 -> 128 channels, 33.5 -> 25.8 ms;
conv_transpose2d at 7 x 7, 128 -> 64, 32.2 -> 25.6; DCGAN's and InfoGAN's steps at 28 x 28
0.88 and 0.89 of their time by im2col. Outputs of few tiles (4 x 4 tiles for a 2 x 2
output: ``_conv_winograd.MAX_WASTE``) stay with im2col, and so do kernels the stride does not
divide: a 3x3 kernel at stride 2 as a 4x4 one with zero taps (1.44x fewer multiplications)
ran 1.21x slower (128 images of 8 x 8, 32 -> 64 channels).
"""
import numpy as np

from ._conv_winograd import (Tiles, correlate, fits_geometry, input_grad, kernel_taps, no_zero_weight, transform_and_tiles,
                             transformed, weight_grad)


class BlockTiles:
    """Tiles of X (above), the stride s and the input's shape and padding."""

    def __init__(self, tiles, stride, x_shape, padding):
        self.tiles, self.stride, self.x_shape, self.padding = tiles, stride, x_shape, padding


def block_window(x_shape, k, s, ph, pw):
    """The rows and columns of x (a padded range: from -ph on) that X's blocks hold."""
    n, c, h, w = x_shape
    r = k // s
    hb, wb = (h + 2 * ph - k) // s + r, (w + 2 * pw - k) // s + r      # Ho + r - 1 blocks
    return (-ph, s * hb - ph), (-pw, s * wb - pw)


def block_fits(x_shape, kh, kw, sh, sw, ph, pw, w=None, itemsize=4):
    """True for a square kernel of s r taps at a stride s > 1 (r a kernel of ``CHOICES``), no zero
    weight in w, and X's stride-1 convolution passing ``fits``'s other rules."""
    n, c, h, wd = x_shape
    s = sh
    if s == 1 or sw != s or kh != kw or kh % s or h + 2 * ph < kh or wd + 2 * pw < kw:
        return False
    (r0, r1), (c0, c1) = block_window(x_shape, kh, s, ph, pw)
    o = c if w is None else w.shape[0]
    return (fits_geometry((n, s * s * c, (r1 - r0) // s, (c1 - c0) // s), kh // s, 0, 0, o, itemsize)
            and (w is None or no_zero_weight(w)))


def block_input_grad_fits(g_shape, w, x_shape, sh, sw, ph, pw):
    """True when ``block_input_grad`` applies: the same conditions, read from w and the input's shape."""
    if not block_fits(x_shape, *w.shape[2:], sh, sw, ph, pw, w, w.itemsize):
        return False
    r = w.shape[2] // sh
    return fits_geometry(g_shape, r, r - 1, r - 1, sh * sh * x_shape[1], w.itemsize)


def block_weight(w, s):
    """w' (O, s s C, r, r) of w (O, C, s r, s r): w'[o, (a, b, c), i, j] = w[o, c, s i + a, s j + b],
    a view of its contiguous taps (r, r, s s C, O), the order the kernel transform reads (w's taps
    [s i + a, s j + b, c, o] regrouped in runs of C O numbers: 0.10 ms for 128 x 64 x 4 x 4, where
    regrouping w itself took 0.26 and its taps were copied out of that again, 0.37)."""
    o, c, k = w.shape[:3]
    r = k // s
    taps = kernel_taps(w).reshape(r, s, r, s, c, o)                                 # [i, a, j, b, c, o]
    return np.ascontiguousarray(taps.transpose(0, 2, 1, 3, 4, 5)).reshape(r, r, s * s * c, o).transpose(3, 2, 0, 1)


def block_tiles(xp, kernel, stride, x_shape, padding):
    """X's tiles from xp (N, s Hb, s Wb, C), x's ``block_window`` channels-last: one copy into the
    blocks, laid out as ``tiles`` transforms them ((Wb, Hb, N, (a, b, c))), then the transforms."""
    n, hp, wp, c = xp.shape
    s, r = stride, kernel // stride
    hb, wb = hp // s, wp // s
    f, (th, tw) = transform_and_tiles(n, hb - r + 1, wb - r + 1, r)
    blocks = np.zeros((f.m * tw + r - 1, f.m * th + r - 1, n, s, s, c), dtype=xp.dtype)
    blocks[:wb, :hb] = xp.reshape(n, hb, s, wb, s, c).transpose(3, 1, 0, 2, 4, 5)
    v = transformed(blocks.reshape(blocks.shape[:3] + (s * s * c,)), f, th, tw)
    return BlockTiles(Tiles(v, (n, s * s * c, hb, wb), (0, 0), (th, tw), f), s, x_shape, padding)


def block_correlate(bt, w):
    """conv2d(x, w) at stride s from x's ``BlockTiles``."""
    return correlate(bt.tiles, block_weight(w, bt.stride))


def block_input_grad(g, w, x_shape, stride, padding):
    """conv2d's input gradient at stride s (= conv_transpose2d(g, w)): X's gradient, back out of its blocks."""
    n, c, h, wd = x_shape
    s, (ph, pw) = stride, padding
    gx = input_grad(g, block_weight(w, s), (0, 0))                       # (N, s s C, Hb, Wb)
    hb, wb = gx.shape[2:]
    out = np.empty((n, hb, s, wb, s, c), dtype=gx.dtype)
    out[...] = gx.transpose(0, 2, 3, 1).reshape(n, hb, wb, s, s, c).transpose(0, 1, 3, 2, 4, 5)
    out = out.reshape(n, hb * s, wb * s, c)[:, ph:ph + h, pw:pw + wd]
    if out.shape[1:3] != (h, wd):                                        # rows no output read: zeros
        whole = np.zeros((n, h, wd, c), dtype=gx.dtype)
        whole[:, :out.shape[1], :out.shape[2]] = out
        out = whole
    return out.transpose(0, 3, 1, 2)


def block_weight_grad(bt, g):
    """dL/dw (O, C, s r, s r) from x's ``BlockTiles`` and g: w''s gradient with its taps put back."""
    gw = weight_grad(bt.tiles, g)                                         # (O, s s C, r, r)
    o, _, r = gw.shape[:3]
    s, c = bt.stride, bt.x_shape[1]
    return gw.reshape(o, s, s, c, r, r).transpose(0, 3, 4, 1, 5, 2).reshape(o, c, r * s, r * s)
