"""Each autoregressive model's dependency set is exactly the one its architecture defines.

"Causal" (no logit sees its own pixel or the future) is not enough: a PixelCNN whose blocks
use mask A, a Row LSTM whose input-to-state convolution uses mask A, or a Diagonal BiLSTM
whose right-to-left direction is not mapped back are all still causal and still normalise.
So for every output pixel i the set of input pixels j with d l_i / d x_j != 0 (found by
autograd over random images) must equal the set the layers define, built here from the
architecture alone:

    mask-A conv k x k      D(p) = {p + o : o in A_k}          A_k: rows above, and left in p's row
    mask-B conv k x k      D'(p) = U_{o in B_k} D(p + o)     B_k = A_k + {(0, 0)}
    1x1 conv, ReLU         D'(p) = D(p)
    Row LSTM               H(r, c) = D(r, c-1) U D(r, c) U H(r-1, c-1) U H(r-1, c) U H(r-1, c+1)
    Diagonal LSTM (L->R)   H(r, c) = D(r, c) U H(r-1, c) U H(r, c-1)
    its R->L direction     the same on the mirrored width, shifted down one row
    residual z + f(z)      D'(p) = D(p) U F(p)
    NADE, FVSBN            the full past, {j < i}

(positions outside the image contribute nothing: zero padding). On several sizes,
rectangular ones included. A residual connection changes no dependency set (each layer's
set already holds its own input's), nor does mask A in PixelCNN's residual blocks, so the
networks are also recomputed from their raw weights by the documented equations and masks,
which a dropped residual or a wrong mask fails.
"""
import numpy as np
import pytest

import tinygen
from tinygen import functional as F
from tinygen import models
from tinygen.autograd.tensor import Tensor
from tinygen.nn.masked import causal_mask

SHAPES = [(1, 4, 5), (1, 5, 3), (1, 3, 6)]


def measured(model, shape, n=16, seed=0):
    """seen[i, j]: d l_i / d x_j != 0 for some of n random binary images (raster order)."""
    d = int(np.prod(shape))
    x = Tensor((np.random.default_rng(seed).random((n,) + shape) < 0.5).astype(np.float64), requires_grad=True)
    seen = np.zeros((d, d), dtype=bool)
    for i in range(d):
        x.grad = None
        F.sum(F.reshape(model.logits(x), (n, d))[:, i]).backward()
        seen[i] = (x.grad.numpy().reshape(n, d) != 0).any(axis=0)
    return seen


# --- the sets the architecture defines ---------------------------------------------------

def _offsets(k, mask):
    """(dr, dc) a k x k mask keeps: rows above the centre, and left of it in its row (B: and it)."""
    h = k // 2
    keep = [(dr, dc) for dr in range(-h, h + 1) for dc in range(-h, h + 1) if dr < 0 or (dr == 0 and dc < 0)]
    return keep + [(0, 0)] if mask == "B" else keep


class Sets:
    """D[r][c]: the set of input pixels (raster indices) a map's value at (r, c) depends on."""

    def __init__(self, H, W):
        self.H, self.W = H, W

    def empty(self):
        return [[set() for _ in range(self.W)] for _ in range(self.H)]

    def at(self, D, r, c):
        return D[r][c] if 0 <= r < self.H and 0 <= c < self.W else set()

    def masked_conv(self, D, k, mask):
        out = self.empty()
        for r in range(self.H):
            for c in range(self.W):
                for dr, dc in _offsets(k, mask):
                    out[r][c] |= self.at(D, r + dr, c + dc)
        return out

    def first(self, k):
        pixels = [[{r * self.W + c} for c in range(self.W)] for r in range(self.H)]
        return self.masked_conv(pixels, k, "A")

    def row_lstm(self, D):
        out = self.empty()
        for r in range(self.H):
            for c in range(self.W):
                out[r][c] = self.at(D, r, c - 1) | self.at(D, r, c) | self.at(out, r - 1, c - 1) \
                    | self.at(out, r - 1, c) | self.at(out, r - 1, c + 1)
        return out

    def diagonal_lstm(self, D):
        out = self.empty()
        for r in range(self.H):
            for c in range(self.W):
                out[r][c] = self.at(D, r, c) | self.at(out, r - 1, c) | self.at(out, r, c - 1)
        return out

    def diagonal_bilstm(self, D):
        fwd = self.diagonal_lstm(D)
        mirror = [row[::-1] for row in D]
        bwd = [row[::-1] for row in self.diagonal_lstm(mirror)]
        return [[fwd[r][c] | self.at(bwd, r - 1, c) for c in range(self.W)] for r in range(self.H)]

    def residual(self, D, branch):
        return [[D[r][c] | branch[r][c] for c in range(self.W)] for r in range(self.H)]

    def matrix(self, D):
        m = np.zeros((self.H * self.W, self.H * self.W), dtype=bool)
        for r in range(self.H):
            for c in range(self.W):
                m[r * self.W + c, sorted(D[r][c])] = True
        return m


def expected_pixelcnn(shape, first_kernel, blocks):
    s = Sets(*shape[1:])
    D = s.first(first_kernel)
    for _ in range(blocks):
        D = s.residual(D, s.masked_conv(D, 3, "B"))   # 1x1, 3x3 mask B, 1x1
    return s.matrix(D)


def expected_pixelrnn(shape, first_kernel, layers, variant):
    s = Sets(*shape[1:])
    D = s.first(first_kernel)
    for _ in range(layers):
        D = s.residual(D, s.row_lstm(D) if variant == "row_lstm" else s.diagonal_bilstm(D))
    return s.matrix(D)


def tiny(name, shape, seed=0, **options):
    tinygen.manual_seed(seed)
    m = models.build(name, image_shape=shape, **options).double()
    rng = np.random.default_rng(seed)
    for p in m.parameters():   # weights scaled up: no path is too weak to show in a float64 gradient
        p.data[...] = 2.0 * p.data + 0.1 * rng.standard_normal(p.shape)
    return m.eval()


# --- the tests -----------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("first_kernel, blocks", [(3, 2), (5, 1)])
def test_pixelcnn_sees_exactly_its_receptive_field_blind_spot_included(shape, first_kernel, blocks):
    m = tiny("pixelcnn", shape, hidden=3, blocks=blocks, first_kernel=first_kernel, head=4)
    want = expected_pixelcnn(shape, first_kernel, blocks)
    assert (measured(m, shape) == want).all()
    assert (~want & np.tril(np.ones_like(want), -1)).any()   # the blind spot: some past pixel unseen


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("variant", ["row_lstm", "diagonal_bilstm"])
def test_pixelrnn_sees_exactly_what_its_scans_define(shape, variant):
    layers = 2 if variant == "row_lstm" else 1
    m = tiny("pixelrnn", shape, variant=variant, hidden=3, layers=layers, first_kernel=3, head=4)
    assert (measured(m, shape) == expected_pixelrnn(shape, 3, layers, variant)).all()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name, options", [("fvsbn", {}), ("nade", {"hidden_size": 5})])
def test_fvsbn_and_nade_see_exactly_the_full_past(shape, name, options):
    m = tiny(name, shape, **options)
    d = int(np.prod(shape))
    assert (measured(m, shape, n=4) == np.tril(np.ones((d, d), dtype=bool), -1)).all()


def test_the_expected_sets_tell_the_broken_designs_apart():
    """Two planted bugs change the sets, so the tests above fail on them: mask A in the Row
    LSTM's row convolution, and the right-to-left direction never mirrored back."""
    s = Sets(4, 5)
    D = s.first(3)
    a_row = s.empty()   # the Row LSTM with K^is masked A: (r, c) loses its own column
    for r in range(4):
        for c in range(5):
            a_row[r][c] = s.at(D, r, c - 1) | s.at(a_row, r - 1, c - 1) | s.at(a_row, r - 1, c) \
                | s.at(a_row, r - 1, c + 1)
    assert (s.matrix(s.residual(D, a_row)) != s.matrix(s.residual(D, s.row_lstm(D)))).any()
    fwd = s.diagonal_lstm(D)
    unmirrored = s.diagonal_lstm([r[::-1] for r in D])   # right to left, never mapped back
    broken = [[fwd[r][c] | s.at(unmirrored, r - 1, c) for c in range(5)] for r in range(4)]
    assert (s.matrix(s.residual(D, broken)) != s.matrix(s.residual(D, s.diagonal_bilstm(D)))).any()


# --- what no dependency set shows, recomputed from the raw weights -----------------------
# A residual connection, and mask A instead of B in PixelCNN's blocks (each block's residual
# already holds what the centre tap adds), leave every set as it is. So the networks are
# recomputed by their documented equations from the raw weights and the documented masks.

def _images(shape, n=5, seed=3):
    return Tensor((np.random.default_rng(seed).random((n,) + shape) < 0.5).astype(np.float64))


def _masked(conv, x, mask):
    """The convolution with the documented mask applied to its raw weight (not its own mask)."""
    return F.conv2d(x, conv.weight * causal_mask(conv.kernel_size, mask), conv.bias, padding=conv.padding)


def _head(m, z):
    return m.head2(F.relu(m.head1(F.relu(z))))


def _flip(z):
    return F.getitem(z, (slice(None), slice(None), slice(None), slice(None, None, -1)))


def _down(z):
    return F.pad(F.getitem(z, (slice(None), slice(None), slice(None, -1))), ((0, 0), (0, 0), (1, 0), (0, 0)))


def test_pixelcnn_is_its_documented_residual_stack():
    shape = (1, 4, 5)
    m = tiny("pixelcnn", shape, hidden=3, blocks=2, first_kernel=3, head=4)
    x = _images(shape)
    z = _masked(m.first, x, "A")
    for b in m.blocks:   # z_b = z_{b-1} + C1(relu(M3_B(relu(C1(relu(z_{b-1}))))))
        z = z + b.expand(F.relu(_masked(b.masked, F.relu(b.reduce(F.relu(z))), "B")))
    np.testing.assert_allclose(m.logits(x).numpy(), _head(m, z).numpy(), rtol=1e-12, atol=1e-12)


def _row_lstm(layer, z):
    return F.row_lstm(_masked(layer.input_to_state, z, "B"), layer.w_ss)


def _diagonal_bilstm(layer, z):
    """h_fwd + (mirror, the left-to-right scan, mirror back), shifted down one row."""
    return layer.forward_dir(z) + _down(_flip(layer.backward_dir(_flip(z))))


@pytest.mark.parametrize("variant", ["row_lstm", "diagonal_bilstm"])
def test_pixelrnn_is_its_documented_residual_stack(variant):
    shape = (1, 4, 5)
    m = tiny("pixelrnn", shape, variant=variant, hidden=3, layers=2, first_kernel=3, head=4)
    x = _images(shape)
    z = _masked(m.first, x, "A")
    scan = _row_lstm if variant == "row_lstm" else _diagonal_bilstm
    for lstm, back in zip(m.lstms, m.residual):   # z_k = z_{k-1} + C1(LSTM_k(z_{k-1}))
        z = z + back(scan(lstm, z))
    np.testing.assert_allclose(m.logits(x).numpy(), _head(m, z).numpy(), rtol=1e-12, atol=1e-12)
