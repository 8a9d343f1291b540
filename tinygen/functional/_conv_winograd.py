"""3x3 convolutions at stride 1 by Winograd's minimal filtering F(2x2, 3x3) (NumPy).

A fast path of ``_conv_arrays.py`` (``tinygen.fast_paths``); Lavin and Gray, "Fast
Algorithms for Convolutional Neural Networks" (2016). In one dimension, two outputs of
a 3-tap correlation y[e] = sum_i g[i] d[e + i] (e = 0, 1) take four products of four
inputs instead of six:

    y = A^T [(G g) * (B^T d)],   B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
                                 G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
                                 A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

Nested over rows and columns, a 2 x 2 tile of outputs comes from a 4 x 4 tile of the
zero-padded input xp (tiles 2 apart, overlapping by 2): for input channel c, output o,

    Y_tile[o] = A^T [ sum_c U[:, :, c, o] * V_tile[:, :, c] ] A,
    U[:, :, c, o] = G w[o, c] G^T,    V_tile[:, :, c] = B^T d_tile[:, :, c] B      (4 x 4 each)

The sum over c at each of the 16 positions (k, l) is one GEMM over every tile of every
image at once,

    M[k l] = V[k l] @ U[k l],     V[k l]: (Tw Th N, C),  U[k l]: (C, O),

16 N Th Tw C O multiply-adds where im2col's GEMM takes 36 N Th Tw C O (2.25x fewer).
The transforms are sums of shifted slices with coefficients 0, +-1, +-1/2, exact in
binary: the result differs from the direct sum by rounding only (a few 1e-7 relative
in float32). Odd output sizes get one more row or column of tiles, cut off.

Gradients. The input gradient is the correlation of g with the flipped kernel at
padding 2 - p (``_conv_frames``'s note): the same three steps. The weight gradient
reads V kept from the forward: with dM = the adjoint of the output transform applied
to g (per tile, A gY_tile A^T),

    dU[k l] = V[k l]^T @ dM[k l],      dL/dw[o, c] = G^T dU[:, :, c, o] G.

Masked kernels (PixelCNN's) are not taken: their zero weights would cancel only to
rounding here, and a causal model's output must not depend on a later pixel at all.

Layout. The tiles are transformed in an (Wp, Hp, N, C) copy of the padded input:
every slice along a row or a column of tiles is then one block of whole (N, C) planes,
where channels-last images would give runs of only C numbers, which NumPy's loops take
several times more slowly (the transform of 64 images of 8 x 8, 32 channels: 0.27 ms
against 0.35 with banded GEMMs along the columns, 0.48 with strided slices). So the
tiles are ordered (column, row, image): V[k l] is the (Tw Th N, C) matrix of them.
"""
import numpy as np

from ._numpy_blas import blas_threads

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])

# Where it pays (measured, 1 thread, Zen 4, forward + both gradients against the im2col and
# frame paths): 64 images of 8 x 8, 32 channels, 3.44 -> 2.55 ms (PyTorch's oneDNN 2.26);
# 64 channels 11.7 -> 8.1 (PyTorch 7.9); at 16 x 16 24.0 -> 19.3. Below MIN_WORK output
# pixels x C x O the transforms' NumPy calls cost more than they save (8 images of 8 x 8
# at 32 channels, 0.52 M: 1.17x slower; 16 images, 1 M: 0.94x; 8 images at 64 channels, 2 M:
# 0.89x); V larger than MAX_BYTES (32 images of 32 x 32, 64 channels: 34 MB) runs from
# memory and only ties (96 -> 95 ms), at four times the input's size kept for the weight
# gradient.
# Only with one BLAS thread: with more, im2col's one GEMM runs on all of them and the
# transforms here on one (ProGAN's training, 528 steps with 2 threads: 26.5 s by im2col,
# 36.7 by Winograd; with one, 29.4 against 26.3).
MIN_WORK = 1 << 21
MIN_CHANNELS = 16
MAX_BYTES = 16 << 20


class Tiles:
    """V of an input x: ``v`` (16, Tw Th N, C), with the geometry the products need."""

    def __init__(self, v, x_shape, padding, tiles):
        self.v, self.x_shape, self.padding, self.tiles = v, x_shape, padding, tiles
        n, _, h, w = x_shape
        self.out = (h + 2 * padding[0] - 2, w + 2 * padding[1] - 2)


def fits(x_shape, kh, kw, sh, sw, ph, pw, w=None, itemsize=4):
    """True for a 3x3 kernel at stride 1 with padding at most 2 (so that the input gradient,
    at padding 2 - p, fits too), an image neither too small nor too large, no zero weight in
    w, and one BLAS thread (above)."""
    n, c, h, wd = x_shape
    ho, wo = h + 2 * ph - 2, wd + 2 * pw - 2
    tiles = n * -(-ho // 2) * -(-wo // 2)
    o = c if w is None else w.shape[0]
    return ((kh, kw, sh, sw) == (3, 3, 1, 1) and 0 <= ph <= 2 and 0 <= pw <= 2 and ho >= 1 and wo >= 1
            and min(c, o) >= MIN_CHANNELS and n * ho * wo * c * o >= MIN_WORK
            and 16 * tiles * c * itemsize <= MAX_BYTES and (w is None or np.count_nonzero(w) == w.size)
            and blas_threads() == 1)


def input_grad_fits(g_shape, w, sh, sw, ph, pw):
    """True when ``input_grad`` applies to conv2d's input gradient (g: the output's gradient):
    its correlation of g with w's transpose (O in, C out) ``fits``."""
    return ph <= 2 and pw <= 2 and fits(g_shape, *w.shape[2:], sh, sw, 2 - ph, 2 - pw,
                                        w.transpose(1, 0, 2, 3), w.itemsize)


# --- the transforms, one axis at a time ------------------------------------------

def _b_transpose(s, out):
    """out[0 .. 3] = B^T (s[0], s[1], s[2], s[3]): each row of B^T a sum of two."""
    np.subtract(s[0], s[2], out=out[0])
    np.add(s[1], s[2], out=out[1])
    np.subtract(s[2], s[1], out=out[2])
    np.subtract(s[1], s[3], out=out[3])


def _a_transpose(s, out):
    """out[0 .. 1] = A^T (s[0], .., s[3])."""
    np.add(s[0], s[1], out=out[0])
    out[0] += s[2]
    np.subtract(s[1], s[2], out=out[1])
    out[1] -= s[3]


def _a_adjoint(s, out):
    """out[0 .. 3] = A (s[0], s[1]): the adjoint of ``_a_transpose``."""
    np.copyto(out[0], s[0])
    np.add(s[0], s[1], out=out[1])
    np.subtract(s[0], s[1], out=out[2])
    np.negative(s[1], out=out[3])


def tiles(x, ph, pw):
    """V of x (N, C, H, W), any memory order, padded by (ph, pw): V = B^T d B of every 4x4 tile."""
    n, c, h, wd = x.shape
    th, tw = -(-(h + 2 * ph - 2) // 2), -(-(wd + 2 * pw - 2) // 2)
    xp = np.zeros((2 * tw + 2, 2 * th + 2, n, c), dtype=x.dtype)          # (Wp, Hp, N, C)
    xp[pw:pw + wd, ph:ph + h] = x.transpose(3, 2, 0, 1)
    cols = np.empty((4, tw, xp.shape[1], n, c), dtype=x.dtype)           # B^T over the columns
    _b_transpose([xp[j:j + 2 * tw:2] for j in range(4)], cols)
    v = np.empty((4, 4, tw, th, n, c), dtype=x.dtype)                      # ... then the rows: v[k, l]
    _b_transpose([cols[:, :, i:i + 2 * th:2] for i in range(4)], v)
    return Tiles(v.reshape(16, tw * th * n, c), x.shape, (ph, pw), (th, tw))


def _kernel_transform(w):
    """U (16, C, O): U[k l, c, o] = (G w[o, c] G^T)[k, l] = sum_{i j} (G x G)[k l, i j] w[o, c, i, j]."""
    o, c = w.shape[:2]
    gg = np.kron(G, G).astype(w.dtype)                                    # (16, 9)
    return (gg @ w.reshape(o * c, 9).T).reshape(16, o, c).transpose(0, 2, 1)


def _kernel_adjoint(du):
    """dL/dw (O, C, 3, 3) from dU (16, C, O): G^T dU[:, :, c, o] G, the transpose of the map above."""
    c, o = du.shape[1:]
    gg = np.kron(G, G).astype(du.dtype)
    return (du.transpose(0, 2, 1).reshape(16, o * c).T @ gg).reshape(o, c, 3, 3)


# --- the convolution and its gradients --------------------------------------------

def correlate(t, w):
    """conv2d(x, w) from x's tiles t, w (O, C, 3, 3): an (N, O, Ho, Wo) view of channels-last memory."""
    n = t.x_shape[0]
    o = w.shape[0]
    (th, tw), (ho, wo) = t.tiles, t.out
    m = np.matmul(t.v, _kernel_transform(w)).reshape(4, 4, tw, th, n, o)   # the 16 GEMMs
    z = np.empty((2,) + m.shape[1:], dtype=m.dtype)                        # A^T over the rows
    _a_transpose(m, z)
    yf = np.empty((2, 2) + m.shape[2:], dtype=m.dtype)                     # ... the columns: yf[f, e]
    _a_transpose(z.transpose(1, 0, 2, 3, 4, 5), yf)
    y = np.empty((n, th, 2, tw, 2, o), dtype=m.dtype)                      # interleaved: one copy
    y[...] = yf.transpose(4, 3, 1, 2, 0, 5)
    return y.reshape(n, 2 * th, 2 * tw, o)[:, :ho, :wo].transpose(0, 3, 1, 2)


def input_grad(g, w, padding):
    """conv2d's input gradient (= conv_transpose2d(g, w)) at stride 1: g (N, O, Ho, Wo)."""
    flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    return correlate(tiles(g, 2 - padding[0], 2 - padding[1]), flipped)


def weight_grad(t, g):
    """dL/dw (O, C, 3, 3) from x's tiles t and g (N, O, Ho, Wo)."""
    n, o, ho, wo = g.shape
    th, tw = t.tiles
    padded = np.zeros((n, 2 * th, 2 * tw, o), dtype=g.dtype)             # zeros past the output
    padded[:, :ho, :wo] = g.transpose(0, 2, 3, 1)
    gy = np.empty((2, 2, tw, th, n, o), dtype=g.dtype)                    # gY[e, f], the tiles' order
    gy[...] = padded.reshape(n, th, 2, tw, 2, o).transpose(2, 4, 3, 1, 0, 5)
    z = np.empty((4, 2, tw, th, n, o), dtype=g.dtype)                     # A over the rows: z[k, f]
    _a_adjoint(gy, z)
    dm = np.empty((4, 4, tw, th, n, o), dtype=g.dtype)                    # ... then the columns
    _a_adjoint(z.transpose(1, 0, 2, 3, 4, 5), dm.transpose(1, 0, 2, 3, 4, 5))
    du = np.matmul(t.v.transpose(0, 2, 1), dm.reshape(16, tw * th * n, o))   # (16, C, O)
    return _kernel_adjoint(du)
