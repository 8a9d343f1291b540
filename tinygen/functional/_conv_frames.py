"""Stride-1 convolutions without im2col: the implicit GEMM over a zero-framed image (NumPy).

A fast path of ``_conv_arrays.py`` (``tinygen.fast_paths``): the same sums as
im2col + GEMM, ordered differently, with no copy of the K = C kh kw patches.

The frame. x (N, C, H, W) is copied once, channels last, into a flat matrix F of
pixel rows (R, C): each image row is followed by pw zero pixels and each image by
ph zero rows, so with Wf = W + pw and Hf = H + ph, and L = ph Wf + pw leading zeros,

    F[L + n Hf Wf + h Wf + w] = x[n, :, h, w],   every other row of F zero.

The zeros after one row are the left padding of the next (and after one image the
top padding of the next), so padding costs ph + pw, not 2 ph + 2 pw. Then, with
m = n Hf Wf + oh Wf + ow an output pixel in the same frame,

    y[m] = sum_{i, j} F[m + i Wf + j] @ w[:, :, i, j]^T                (ph <= kh - 1, pw <= kw - 1)

a shifted slice of F per kernel tap: no patch is copied. Rows m with oh >= Ho or
ow >= Wo are computed and never read (y is a view of the valid ones); ``fits``
turns the path down where they would be too many (small images), or where the
whole product is so small that its kh kw GEMM calls cost more than im2col's copy.

Taps of one kernel row i, read as one matrix. Output rows m = kw m' + r (phase r < kw)
need F[kw m' + r + i Wf + j] for j < kw: the kw consecutive rows starting at
kw m' + r + i Wf, which in F's memory are one run of kw C numbers. So

    Y_r = sum_i F_{r, i} @ w_i,      F_{r, i} = F[r + i Wf:].reshape(M', kw C)   (a view),
    w_i[(j, c), o] = w[o, c, i, j],   Y_r = rows r, r + kw, ... of y

kw kh GEMMs with K = kw C and no copy (measured, 1 thread: the 3x3, 64-channel step
at 32 x 32 ran 1.7x faster than im2col, whose (32768, 576) x (576, 64) GEMM ran at
83 GFLOP/s where these run at about 120). The kernel rows' products are summed into
Y_r inside the GEMM: the first one written, the others added (``_numpy_blas.add_product``,
BLAS's C <- A B + C, with no temporary and no second pass; the forward of that 32 x 32
convolution 1.2-1.4x faster than adding each product after it, measured). A kernel row
of all-zero weights (the lower rows of a masked convolution, W * M) is skipped: its
products are exact zeros (for finite inputs; an inf or nan under a zero weight gives nan
on the reference path).
So are the zero taps at either end of a row (mask B's taps right of the centre, or
left of it in the flipped kernel of the input gradient): with j0 <= j < j1 the live
ones, the product reads F_{r, i} from tap j0 on, K = (j1 - j0) C numbers of each
run (a view still: the rows stay kw C apart), against w_i's rows j0 C .. j1 C. A Row
LSTM's 1 x 3 input-to-state kernel has two live taps: two thirds of the GEMM.

The input gradient at stride 1 is the correlation of g with the flipped kernel,

    dL/dx = conv2d(g, w~, padding (kh - 1 - ph, kw - 1 - pw)),   w~[c, o, i, j] = w[o, c, kh-1-i, kw-1-j]

(conv_transpose2d at stride 1 is the same map). The weight gradient reads the
frame kept from the forward pass: with G the incoming gradient in the output frame
(zeros at the rows that were never read),

    dL/dw[o, c, i, j] = sum_m G[m, o] F[m + i Wf + j, c],
    dL/dw_i = sum_r G_r^T @ F_{r, i}                  (the same views; K = the pixels of a phase)
"""
import numpy as np

from . import _conv_blocks
from ._conv_winograd import no_zero_weight
from ._numpy_blas import add_product, transpose_images

# computed rows per valid output row above which im2col is cheaper (small images; measured:
# 8 x 8 images with 3x3 kernels and padding 1 (1.27) go faster by im2col, ProGAN's step by
# 8-10%, the other models' within 2%; 16 x 16 (1.13) by the frame), and the output pixels
# below which the kh kw small GEMMs cost more than im2col's one copy saves
MAX_WASTE = 1.2
MIN_PIXELS = 2048


class Frame:
    """x framed as above: ``rows`` (R, C), and the geometry the products need."""

    def __init__(self, rows, x_shape, kernel, padding):
        n, _, h, w = x_shape
        (kh, kw), (ph, pw) = kernel, padding
        self.rows, self.x_shape, self.kernel, self.padding = rows, x_shape, kernel, padding
        self.hf, self.wf = h + ph, w + pw
        self.out = (h + 2 * ph - kh + 1, w + 2 * pw - kw + 1)
        self.m = n * self.hf * self.wf                       # output rows in the frame
        self.mp = -(-self.m // kw)                           # rows per phase


def fits(x_shape, kh, kw, sh, sw, ph, pw, w=None, itemsize=4):
    """True when the framed product applies (stride 1, padding < kernel), wastes little and is
    not tiny; a kernel w with all-zero rows (masked) counts only the rows it computes. A dense
    kernel whose patch matrix is large goes by blocks of patches instead (``_conv_blocks``;
    measured, 1 thread, Zen 4: the 3x3, 64-channel convolution of 32 images at 32 x 32, forward
    and both gradients, 123 ms framed against 99 by blocks; masked PixelCNN at 28 x 28 14% faster
    framed, its skipped rows never computed)."""
    n, c, h, wd = x_shape
    ho, wo = h + 2 * ph - kh + 1, wd + 2 * pw - kw + 1
    if (sh, sw) != (1, 1) or ph >= kh or pw >= kw or ho < 1 or wo < 1 or n * ho * wo < MIN_PIXELS:
        return False
    taps = [(0, kw)] * kh if w is None else live_taps(w)
    if taps == [(0, kw)] * kh and _conv_blocks.by_blocks((n, h + 2 * ph, wd + 2 * pw, c), kh, kw, 1, 1, itemsize):
        return False
    live = sum(j0 < j1 for j0, j1 in taps)
    return (h + ph) * (wd + pw) * live <= MAX_WASTE * ho * wo * kh


def live_taps(w):
    """For each kernel row i of w (O, C, kh, kw), the range (j0, j1) of its taps from the first
    to the last with a nonzero weight; (0, 0) for a row of zeros (a masked convolution's lower
    rows). A weight without a single zero (every trained dense kernel) is told by one pass over
    its memory (``no_zero_weight``): NumPy's reduction over the axes (0, 1, 3) alone took 0.1 ms
    for a 32 x 32 x 3 x 3 kernel, a twentieth of its conv."""
    kh, kw = w.shape[2:]
    if no_zero_weight(w):
        return [(0, kw)] * kh
    taps = np.count_nonzero(w.reshape(-1, kh * kw), axis=0).reshape(kh, kw) > 0
    ranges = []
    for row in taps:
        live = np.flatnonzero(row)
        ranges.append((int(live[0]), int(live[-1]) + 1) if live.size else (0, 0))
    return ranges


def frame(x, kh, kw, ph, pw):
    """The frame F of x (N, C, H, W), any memory order: one copy."""
    n, c, h, w = x.shape
    hf, wf = h + ph, w + pw
    lead = ph * wf + pw
    total = -(-n * hf * wf // kw) * kw + (kh - 1) * wf + 2 * kw   # the last phase's view stays inside
    rows = np.zeros((total, c), dtype=x.dtype)
    body = rows[lead:lead + n * hf * wf].reshape(n, hf, wf, c)
    if not transpose_images(body[:, :h, :w], x):                     # channels-first x: in blocks
        body[:, :h, :w] = x.transpose(0, 2, 3, 1)
    return Frame(rows, x.shape, (kh, kw), (ph, pw))


def correlate(f, w):
    """conv2d(x, w) at stride 1 from x's frame f; w (O, C, kh, kw). Returns an (N, O, Ho, Wo) view."""
    o, c, kh, kw = w.shape
    n = f.x_shape[0]
    taps = w.transpose(2, 3, 1, 0).reshape(kh, kw * c, o)              # w_i[(j, c), o]
    rows = [(i, j0, j1) for i, (j0, j1) in enumerate(live_taps(w)) if j0 < j1]   # masked rows left out
    y = np.empty((f.mp, kw, o), dtype=f.rows.dtype)                     # y[m', r] = Y_r[m']
    if rows:
        _products_by_phase(f, taps, rows, y.transpose(1, 0, 2))
    else:
        y[...] = 0                                                      # every weight zero
    y = y.reshape(f.mp * kw, o)
    return y[:f.m].reshape(n, f.hf, f.wf, o)[:, :f.out[0], :f.out[1]].transpose(0, 3, 1, 2)


def _products_by_phase(f, taps, rows, phases):
    """phases[r] = Y_r = sum over the kernel rows (i, j0, j1) of F_{r, i} (taps j0 .. j1) @ w_i: the
    first row's product written, the others added inside the GEMM (strided views all)."""
    c = f.rows.shape[1]
    kw = phases.shape[0]
    flat = f.rows.reshape(-1)
    for k, (i, j0, j1) in enumerate(rows):
        for r in range(kw):
            start = (r + i * f.wf + j0) * c
            view = flat[start:start + f.mp * kw * c].reshape(f.mp, kw * c)[:, :(j1 - j0) * c]
            if k == 0:
                np.matmul(view, taps[i, j0 * c:j1 * c], out=phases[r])
            else:
                add_product(phases[r], view, taps[i, j0 * c:j1 * c])


def input_grad(g, w, x_shape, padding):
    """conv2d's input gradient at stride 1 (= conv_transpose2d(g, w)): g (N, O, Ho, Wo)."""
    kh, kw = w.shape[2:]
    flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)                  # w~ (C, O, kh, kw)
    f = frame(g, kh, kw, kh - 1 - padding[0], kw - 1 - padding[1])
    return correlate(f, flipped)


def input_grad_fits(g_shape, w, sh, sw, ph, pw):
    """True when ``input_grad`` applies: the correlation of g with w it computes ``fits``."""
    kh, kw = w.shape[2:]
    return ph < kh and pw < kw and fits(g_shape, kh, kw, sh, sw, kh - 1 - ph, kw - 1 - pw, w, w.itemsize)


def weight_grad(f, g):
    """dL/dw (O, C, kh, kw) from x's frame f and g (N, O, Ho, Wo)."""
    n, o, ho, wo = g.shape
    c = f.rows.shape[1]
    kh, kw = f.kernel
    framed = np.zeros((f.mp * kw, o), dtype=g.dtype)                    # G: zeros off the valid rows
    framed[:f.m].reshape(n, f.hf, f.wf, o)[:, :ho, :wo] = g.transpose(0, 2, 3, 1)
    phases = framed.reshape(f.mp, kw, o)
    flat = f.rows.reshape(-1)
    gw = np.empty((o, kh, kw * c), dtype=g.dtype)                       # gw[o, i, (j, c)]
    for i in range(kh):
        for r in range(kw):                                             # the phases' sums, added
            start = (r + i * f.wf) * c
            view = flat[start:start + f.mp * kw * c].reshape(f.mp, kw * c)
            if r == 0:
                np.matmul(phases[:, r].T, view, out=gw[:, i])
            else:
                add_product(gw[:, i], phases[:, r].T, view)
    return gw.reshape(o, kh, kw, c).transpose(0, 3, 1, 2)
