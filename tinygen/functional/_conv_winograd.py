"""3x3 and 2x2 convolutions at stride 1 by Winograd's minimal filtering F(4x4, 3x3), F(2x2, 3x3),
F(4x4, 2x2) and F(5x5, 2x2) (NumPy).

A fast path of ``_conv_arrays.py`` (``tinygen.fast_paths``); Lavin and Gray, "Fast
Algorithms for Convolutional Neural Networks" (2016). In one dimension, m outputs of a
3-tap correlation y[e] = sum_i g[i] d[e + i] (e < m) take a = m + 2 products of the
a inputs d instead of 3 m:

    y = A^T [(G g) * (B^T d)],      B^T (a, a),  G (a, 3),  A^T (m, a)

the matrices of polynomial interpolation at a - 1 points and infinity (Toom-Cook,
``toom_cook``). F(2, 3), from the points 0, 1, -1, is the smallest, with coefficients
0, +-1, +-1/2 (signs as Lavin and Gray write them):

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

F(4, 3) (``F4``) is made from the points 0, 1, -1, 1/2, -2. Nested over rows and columns,
an m x m tile of outputs comes from an a x a tile of the zero-padded input xp (tiles m
apart, overlapping by 2): for input channel c and output o,

    Y_tile[o] = A^T [ sum_c U[:, :, c, o] * V_tile[:, :, c] ] A,
    U[:, :, c, o] = G w[o, c] G^T,    V_tile[:, :, c] = B^T d_tile[:, :, c] B      (a x a each)

The sum over c at each of the a^2 positions (k, l) is one GEMM over every tile of every
image at once,

    M[k l] = V[k l] @ U[k l],     V[k l]: (Tw Th N, C),  U[k l]: (C, O),

a^2 / m^2 multiply-adds per output pixel, channel pair, where im2col takes 9: F(2, 3)
4 (2.25x fewer), F(4, 3) 2.25 (4x fewer), and its tiles V are 2.25 times the input where
F(2, 3)'s are 4 times. The price is rounding: F(4, 3)'s coefficients (up to 8, and 1/3
and 1/15, not exact in binary) make larger sums that cancel, so in float32 its output
differs from the direct sum by about 2e-6 of the largest value, where F(2, 3)'s, exact
in binary, differ by 3e-7 (in float64 by about 1e-14 and 1e-15). F(4, 3) runs where there
are enough tiles for its GEMMs (``transform_for``), F(2, 3) on small images. Odd output
sizes get one more row or column of tiles, cut off.

Other kernel sizes r are the same with a = m + r - 1 (tiles overlapping by r - 1): 2x2
kernels go by F(4x4, 2x2) (``F42``, points 1, -1, 1/2, -1/2), 25 products for 16 outputs
where the direct sum takes 64, or F(5x5, 2x2) (``F52``), 36 for 25 where it takes 100; of the
transforms whose tiles fit the output, the one that computes the fewest products runs. They
arise from the stride: ``_conv_strided.py``.

Gradients. The input gradient is the correlation of g with the flipped kernel at
padding r - 1 - p (``_conv_frames``'s note): the same three steps. The weight gradient
reads V kept from the forward: with dM = the adjoint of the output transform applied
to g (per tile, A gY_tile A^T),

    dU[k l] = V[k l]^T @ dM[k l],      dL/dw[o, c] = G^T dU[:, :, c, o] G.

Masked kernels (PixelCNN's) are not taken: their zero weights would cancel only to
rounding here, and a causal model's output must not depend on a later pixel at all.

Layout. The tiles are transformed in a (Wp, Hp, N, C) copy of the padded input, one
axis at a time, each as one batched GEMM of the (a, a) matrix B^T with the a overlapping
slices of a tile row or column (a strided view, no copy): along the columns every slice
is whole (Hp, N, C) blocks, along the rows whole (N, C) planes, so the GEMMs stream long
contiguous runs (channels-last images would give runs of only C numbers), a cache's worth
of columns at a time where they are many (``_numpy_blas.wide_matmul``). The tiles are
ordered (column, row, image): V[k l] is the (Tw Th N, C) matrix of them. The output
transform is the same pair of GEMMs with A^T, the weight gradient's with A.
"""
from fractions import Fraction

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._numpy_blas import transpose_images, wide_matmul


class Transform:
    """F(m, r): the matrices B^T (a, a), G (a, r), A^T (m, a) of the note above, a = m + r - 1."""

    def __init__(self, bt, g, at):
        self.bt, self.g, self.at = (np.array(t, dtype=np.float64) for t in (bt, g, at))
        self.m, self.a = self.at.shape
        self.r = self.g.shape[1]
        self.gg = np.kron(self.g, self.g)         # (a^2, r^2): U[k l] = sum_{i j} gg[k l, i j] w[i, j]


def _times(p, q):
    """The product of two polynomials, coefficients from the constant term up."""
    out = [Fraction(0)] * (len(p) + len(q) - 1)
    for i, u in enumerate(p):
        for j, v in enumerate(q):
            out[i + j] += u * v
    return out


def toom_cook(points, m, r=3):
    """F(m, r) from the a - 1 = m + r - 2 distinct points p_j and infinity (Toom-Cook), in exact
    fractions: with M(x) = prod_j (x - p_j) and f_j = prod_{l != j} (p_j - p_l),

        B^T[j] = the coefficients of M(x) / (x - p_j),   G[j, k] = p_j^k / f_j,   A^T[i, j] = p_j^i

    and for the point at infinity B^T[a - 1] = M's coefficients, G[a - 1] = (0, .., 0, 1),
    A^T[:, a - 1] = (0, .., 0, 1). Points 0, 1, -1 give the F(2, 3) above (up to signs that cancel)."""
    p = [Fraction(q) for q in points]
    a = m + r - 1
    if len(p) != a - 1 or len(set(p)) != len(p):
        raise ValueError(f"F({m}, {r}) takes {a - 1} distinct points, got {points}")
    bt, g, at = [], [], [[Fraction(0)] * a for _ in range(m)]
    for j, q in enumerate(p):
        others = [u for u in p if u != q]
        quotient, f = [Fraction(1)], Fraction(1)
        for u in others:
            quotient, f = _times(quotient, [-u, Fraction(1)]), f * (q - u)
        bt.append(quotient + [Fraction(0)])
        g.append([q ** k / f for k in range(r)])
        for i in range(m):
            at[i][j] = q ** i
    whole = [Fraction(1)]
    for u in p:
        whole = _times(whole, [-u, Fraction(1)])
    bt.append(whole)
    g.append([Fraction(0)] * (r - 1) + [Fraction(1)])
    at[m - 1][a - 1] = Fraction(1)
    return Transform(*([[float(v) for v in row] for row in t] for t in (bt, g, at)))


# Of the points tried for F(4, 3), these round least (Barabasz et al., "Error analysis and improving
# the accuracy of Winograd convolution", 2020; measured here, float32, 64 images of 8 x 8, 32
# channels, the largest error over the largest output: 0, +-1, +-2 (Lavin and Gray's) 5.0e-6;
# 0, +-1, +-1/2 4.4e-6; 0, +-1, 1/2, -2 1.7e-6; F(2, 3) 2.2e-7)
F2 = toom_cook((0, 1, -1), 2)
F4 = toom_cook((0, 1, -1, Fraction(1, 2), -2), 4)
# F(4, 2) (measured, float32, DCGAN's 4x4 / 2 layer of 64 images at 14 x 14, 64 -> 128 channels, by
# blocks: the output's largest error): 1, -1, 1/2, -1/2 2.3e-6; 0, 1, -1, 2 6.2e-6; 0, 1, -1, 1/2 8.1e-6
F42 = toom_cook((1, -1, Fraction(1, 2), Fraction(-1, 2)), 4, r=2)
# F(5, 2) (the same measure, 16 images of 6 x 6 and 15 x 15, 128 -> 64 channels): 0, 1, -1, 1/2, -2
# 4.7e-6; 1, -1, 1/2, -1/2, 2 5.2e-6; 0, 1, -1, 2, -2 1.1e-5; 0, 1, -1, 1/2, -1/2 1.5e-5. (F(7, 2),
# whose one tile would fit a 7 x 7 output, rounds to 1.7e-5 at best: not taken.)
F52 = toom_cook((0, 1, -1, Fraction(1, 2), -2), 5, r=2)

# Where it pays (measured, 1 thread, Zen 4, forward + both gradients of one layer, float32,
# against the im2col and frame paths):
#   64 images of 8 x 8, 32 channels:   im2col 4.0 ms, F(2, 3) 3.1, F(4, 3) 2.1 (PyTorch's oneDNN 2.3)
#   32 images of 16 x 16, 64 channels: 25.7, 19.5, 13.5
#   16 images of 8 x 8, 64 channels:   2.6, 1.9, 1.7
# Each of the a^2 GEMMs has one row per tile, and with few rows they run slowly: F(4, 3) from
# 64 tiles on (8 images of 8 x 8, 32 tiles: 64 channels 1.16 ms by F(2, 3) against 1.36, 128
# channels 4.6 against 5.4), F(2, 3) from 64 (16 images of 4 x 4, 64 channels, 64 tiles: im2col
# 0.71 ms, F(2, 3) 0.51-0.52, PyTorch 0.60), im2col below (``CHOICES``). In ProGAN's step, F(4, 3) everywhere
# against F(2, 3) everywhere: 0.83. Below MIN_WORK output pixels x C x O the transforms' calls
# cost more than they save (8 images of 8 x 8 at 32 channels, 0.52 M: 0.40 ms either way; CycleGAN's
# step, whose 3x3 layers are 0.52 M each, 0.97 of its time with 2^21). Large images gain as much
# (64 channels: 32 images of 32 x 32, 90 ms by blocks of patches, 56 by F(4, 3); 64 images, 183
# and 128 (V 38 MB); 32 images of 28 x 28, 72 and 46), but V, 2.25 times the input, is kept for
# the weight gradient where the blocks keep the input itself: MAX_BYTES bounds it.
# With two BLAS threads as well (they share the GEMMs; ProGAN's training, 400 steps through the
# command line, three rounds: 12.2-19.0 s with Winograd, 18.0-24.1 by im2col; an F(2, 3) with
# its transforms as NumPy sums, not GEMMs, had been slower there, 36.7 s against 26.5).
MIN_WORK = 1 << 19
MIN_CHANNELS = 16
MAX_BYTES = 64 << 20
MAX_WASTE = 1.35    # a 7 x 7 output in 4 x 4 tiles computes 64 pixels (1.31); 10 x 10, 144 (1.44); 2 x 2, 16
# F(5, 2) where its tiles fit (a conv_transpose2d of 128 images, 4 x 4 -> 8 x 8, 64 -> 32 channels,
# whose input gradient by blocks has 5 x 5 outputs: 4.8 -> 4.2 ms a step); F(2, 2) and F(3, 2), exact on
# the 2 x 2 and 3 x 3 outputs of the 8 x 8 models' layers, ran 1.2x slower than im2col there (64 tiles).
# for each kernel size r, (transform, the fewest of its tiles it takes)
CHOICES = {3: ((F4, 64), (F2, 64)), 2: ((F52, 64), (F42, 64))}


def transform_for(n, ho, wo, r=3):
    """Of ``CHOICES[r]`` with enough tiles of an (N, Ho, Wo) output and at most ``MAX_WASTE``
    computed pixels per kept one (tiles cut off), the one that computes the fewest products,
    a^2 per tile (the first on a tie); None if there is none (above)."""
    best, fewest_products = None, None
    for f, fewest in CHOICES.get(r, ()):
        th, tw = _tile_counts(ho, wo, f.m)
        products = th * tw * f.a ** 2
        if n * th * tw >= fewest and th * tw * f.m ** 2 <= MAX_WASTE * ho * wo \
                and (best is None or products < fewest_products):
            best, fewest_products = f, products
    return best


def _tile_counts(ho, wo, m):
    return -(-ho // m), -(-wo // m)


class Tiles:
    """V of an input x: ``v`` (a^2, Tw Th N, C), with the geometry the products need."""

    def __init__(self, v, x_shape, padding, tiles, transform):
        self.v, self.x_shape, self.padding, self.tiles, self.transform = v, x_shape, padding, tiles, transform
        n, _, h, w = x_shape
        self.out = (h + 2 * padding[0] - transform.r + 1, w + 2 * padding[1] - transform.r + 1)


def fits(x_shape, kh, kw, sh, sw, ph, pw, w=None, itemsize=4):
    """True for an r x r kernel of ``CHOICES`` (3x3, 2x2) at stride 1 with padding below r (so that
    the input gradient, at padding r - 1 - p, fits too), enough tiles, channels and work, tiles
    not too large and no zero weight in w (above)."""
    if kh != kw or (sh, sw) != (1, 1):
        return False
    return (fits_geometry(x_shape, kh, ph, pw, x_shape[1] if w is None else w.shape[0], itemsize)
            and (w is None or no_zero_weight(w)))


def no_zero_weight(w):
    """True when no weight of w is zero, read in w's own memory order (a transposed 64 x 64 x 3 x 3
    kernel counted element by element took 64 us, a third of a small layer's input gradient; 5 us so)."""
    return bool(w.ravel(order="K").all())


def fits_geometry(x_shape, r, ph, pw, o, itemsize):
    """``fits``'s rules of size for an r x r kernel at stride 1 and o output channels."""
    n, c, h, wd = x_shape
    ho, wo = h + 2 * ph - r + 1, wd + 2 * pw - r + 1
    if not (0 <= ph < r and 0 <= pw < r and ho >= 1 and wo >= 1):
        return False
    f = transform_for(n, ho, wo, r)
    if f is None or min(c, o) < MIN_CHANNELS or n * ho * wo * c * o < MIN_WORK:
        return False
    th, tw = _tile_counts(ho, wo, f.m)
    return f.a ** 2 * n * th * tw * c * itemsize <= MAX_BYTES


def input_grad_fits(g_shape, w, sh, sw, ph, pw):
    """True when ``input_grad`` applies to conv2d's input gradient (g: the output's gradient):
    its correlation of g with w's transpose (O in, C out) ``fits``."""
    kh, kw = w.shape[2:]
    return ph < kh and pw < kw and fits(g_shape, kh, kw, sh, sw, kh - 1 - ph, kw - 1 - pw,
                                        w.transpose(1, 0, 2, 3), w.itemsize)


# --- the transforms ------------------------------------------------------------------

def _runs(a, shape, steps):
    """A read-only view of the contiguous array a with the given shape, each step counted in a's
    elements (the overlapping runs of a tile row or column)."""
    return as_strided(a, shape, tuple(k * a.itemsize for k in steps), writeable=False)


def tiles(x, ph, pw, r=3):
    """V of x (N, C, H, W), any memory order, padded by (ph, pw), for an r x r kernel: V = B^T d B
    of every a x a tile, by the transform ``transform_for`` the output picks."""
    n, c, h, wd = x.shape
    f, (th, tw) = transform_and_tiles(n, h + 2 * ph - r + 1, wd + 2 * pw - r + 1, r)
    xp = np.zeros((f.m * tw + r - 1, f.m * th + r - 1, n, c), dtype=x.dtype)     # (Wp, Hp, N, C)
    xp[pw:pw + wd, ph:ph + h] = x.transpose(3, 2, 0, 1)
    return Tiles(transformed(xp, f, th, tw), x.shape, (ph, pw), (th, tw), f)


def transform_and_tiles(n, ho, wo, r):
    """(the transform for an (N, Ho, Wo) output, its tile counts (Th, Tw)); the callers asked
    ``fits`` first, and where they did not (a forced test) the last of ``CHOICES[r]``."""
    f = transform_for(n, ho, wo, r) or CHOICES[r][-1][0]
    return f, _tile_counts(ho, wo, f.m)


def transformed(xp, f, th, tw):
    """V (a^2, Tw Th N, C) of the padded input xp (Wp, Hp, N, C), contiguous."""
    _, hp, n, c = xp.shape
    bt = f.bt.astype(xp.dtype)
    plane, column = n * c, hp * n * c
    # B^T over the columns: cols[l, t] from xp's columns m t .. m t + a - 1 (whole (Hp, N, C) blocks)
    cols = np.empty((f.a, tw, hp, n, c), dtype=xp.dtype)
    wide_matmul(bt, _runs(xp, (tw, f.a, column), (f.m * column, column, 1)),
                out=cols.reshape(f.a, tw, column).transpose(1, 0, 2))
    # ... then over the rows: v[k, l, t, s] from cols[l, t]'s rows m s .. m s + a - 1 ((N, C) planes)
    rows = _runs(cols, (f.a, tw, th, f.a, plane), (tw * column, column, f.m * plane, plane, 1))
    v = np.empty((f.a, f.a, tw, th, n, c), dtype=xp.dtype)
    wide_matmul(bt, rows, out=v.reshape(f.a, f.a, tw, th, plane).transpose(1, 2, 3, 0, 4))
    return v.reshape(f.a ** 2, tw * th * n, c)


def kernel_taps(w):
    """w (O, C, r, r)'s taps (r, r, C, O), contiguous: the (C, O) matrix of each tap. A C-contiguous w
    is transposed as one (O, C r r) matrix by BLAS and then regrouped in runs of O numbers (0.07 ms
    for 128 x 256 x 2 x 2, where copying it element by element, O the last axis, took 0.37); a w
    whose taps are already contiguous (``_conv_strided.block_weight``'s) is taken as it is."""
    o, c, r = w.shape[:3]
    taps = w.transpose(2, 3, 1, 0)
    if taps.flags.c_contiguous:
        return taps
    if w.flags.c_contiguous:
        rows = np.empty((1, c, r * r, o), dtype=w.dtype)                          # [c, i j, o]
        if transpose_images(rows, w.reshape(1, o, c, r * r)):
            return np.ascontiguousarray(rows[0].transpose(1, 0, 2)).reshape(r, r, c, o)
    return np.ascontiguousarray(taps)


def _kernel_transform(w, f):
    """U (a^2, C, O), row-major: U[k l, c, o] = (G w[o, c] G^T)[k, l], G applied over the taps' rows
    and then their columns, each one product with every (C, O) matrix at once (row-major (C, O)
    matrices: F(4, 3)'s GEMMs of 256 tiles at 32 channels ran at 76 GFLOP/s with them transposed,
    110 without; the two products with G take 0.11 ms for 256 -> 128 channels of 2x2 taps, where one
    with the (a^2, r^2) Kronecker product G x G took 0.55, OpenBLAS being slow on an inner size of 4)."""
    o, c, r = w.shape[:3]
    dtype = np.promote_types(w.dtype, np.float32)                                  # float16: summed in float32
    taps = kernel_taps(w).astype(dtype, copy=False)                               # [i, j, c, o]
    g = f.g.astype(dtype)
    rows = wide_matmul(g, taps.reshape(r, r * c * o)).reshape(f.a, r, c * o)        # G over i: [k, j, c o]
    u = wide_matmul(g, rows)                                                        # ... then over j: [k, l, c o]
    return u.astype(w.dtype, copy=False).reshape(f.a ** 2, c, o)


def _kernel_adjoint(du, f):
    """dL/dw (O, C, r, r) from dU (a^2, C, O): G^T dU[:, :, c, o] G, the transpose of the map above."""
    c, o = du.shape[1:]
    dtype = np.promote_types(du.dtype, np.float32)
    gt = f.g.T.astype(dtype)
    rows = wide_matmul(gt, du.reshape(f.a, f.a * c * o).astype(dtype, copy=False)).reshape(f.r, f.a, c * o)
    taps = wide_matmul(gt, rows)                                                    # [i, j, c o]
    return taps.astype(du.dtype, copy=False).reshape(f.r, f.r, c, o).transpose(3, 2, 0, 1)


# --- the convolution and its gradients --------------------------------------------

def correlate(t, w):
    """conv2d(x, w) from x's tiles t, w (O, C, r, r): an (N, O, Ho, Wo) view of channels-last memory."""
    f, n, o = t.transform, t.x_shape[0], w.shape[0]
    (th, tw), (ho, wo) = t.tiles, t.out
    m = np.matmul(t.v, _kernel_transform(w, f))                          # the a^2 GEMMs: M[k l]
    at = f.at.astype(m.dtype)
    z = wide_matmul(at, m.reshape(f.a, -1))                                 # A^T over k: z[e, l]
    yf = wide_matmul(at, z.reshape(f.m, f.a, -1))                           # ... then l: yf[e, e']
    y = np.empty((n, th, f.m, tw, f.m, o), dtype=m.dtype)                 # interleaved: one copy
    y[...] = yf.reshape(f.m, f.m, tw, th, n, o).transpose(4, 3, 0, 2, 1, 5)
    return y.reshape(n, f.m * th, f.m * tw, o)[:, :ho, :wo].transpose(0, 3, 1, 2)


def input_grad(g, w, padding):
    """conv2d's input gradient (= conv_transpose2d(g, w)) at stride 1: g (N, O, Ho, Wo)."""
    r = w.shape[2]
    flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    return correlate(tiles(g, r - 1 - padding[0], r - 1 - padding[1], r), flipped)


def weight_grad(t, g):
    """dL/dw (O, C, r, r) from x's tiles t and g (N, O, Ho, Wo)."""
    f = t.transform
    n, o, ho, wo = g.shape
    th, tw = t.tiles
    padded = np.zeros((n, f.m * th, f.m * tw, o), dtype=g.dtype)         # zeros past the output
    padded[:, :ho, :wo] = g.transpose(0, 2, 3, 1)
    gy = np.empty((f.m, f.m, tw, th, n, o), dtype=g.dtype)               # gY[e, e'], the tiles' order
    gy[...] = padded.reshape(n, th, f.m, tw, f.m, o).transpose(2, 4, 3, 1, 0, 5)
    a = f.at.T.astype(g.dtype)
    z = wide_matmul(a, gy.reshape(f.m, f.m, -1))                            # A over e': z[e, l]
    dm = wide_matmul(a, z.reshape(f.m, -1))                                 # ... then e: dM[k, l]
    du = np.matmul(t.v.transpose(0, 2, 1), dm.reshape(f.a ** 2, tw * th * n, o))   # (a^2, C, O)
    return _kernel_adjoint(du, f)
