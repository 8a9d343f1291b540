"""Winograd's minimal filtering (at stride 1 and by blocks of pixels), its transforms and what it
picks and declines, each against its reference path: the same numbers with
``tinygen.fast_paths`` on and off, bit for bit where only the route differs, to rounding where
the order of summation does."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinygen import functional as F
from tinygen.autograd.tensor import Tensor

from fast_path_checks import both, value_and_grads


def _winograd_forced(monkeypatch, transform="F4", transform2="F42"):
    """Every 3x3 stride-1 convolution by ``_conv_winograd`` with ``transform`` (F2 or F4), every
    2x2 one with ``transform2`` (F42 or F52), whatever its size; a spy on its products' calls."""
    from tinygen.functional import _conv_winograd
    monkeypatch.setattr(_conv_winograd, "CHOICES", {3: ((getattr(_conv_winograd, transform), 0),),
                                                    2: ((getattr(_conv_winograd, transform2), 0),)})
    monkeypatch.setattr(_conv_winograd, "MIN_WORK", 0)
    monkeypatch.setattr(_conv_winograd, "MIN_CHANNELS", 0)
    monkeypatch.setattr(_conv_winograd, "MAX_WASTE", float("inf"))
    from tinygen.functional import _conv_strided
    calls = []
    for module, names in ((_conv_winograd, ("correlate", "weight_grad")),
                          (_conv_strided, ("block_correlate", "block_input_grad", "block_weight_grad"))):
        for name in names:
            monkeypatch.setattr(module, name, lambda *a, _f=getattr(module, name), _n=name: calls.append(_n) or _f(*a))
    return calls


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_winograd_convolutions_equal_the_reference(data):
    """F(4x4, 3x3), F(2x2, 3x3), F(4x4, 2x2) and F(5x5, 2x2) (``_conv_winograd``, forced): conv2d,
    conv_transpose2d and every gradient equal the reference im2col paths, over drawn rectangular
    images (odd sizes: a row or column of tiles cut off), channels, batch and paddings 0 to
    r - 1, in float64 to 1e-12 and in float32 to 2e-5 (F(4x4)'s rounding, about 2e-6 of the
    largest value; F(5x5, 2x2)'s about 5e-6)."""
    monkeypatch = pytest.MonkeyPatch()
    try:
        r = data.draw(st.sampled_from([3, 2]))
        transform = data.draw(st.sampled_from(["F4", "F2"] if r == 3 else ["F42", "F52"]))
        calls = _winograd_forced(monkeypatch, *((transform,) if r == 3 else ("F4", transform)))
        # channels from CHANNELS_LAST_MIN on: the layout the fast paths run in
        n, c, o = data.draw(st.integers(1, 3)), data.draw(st.integers(8, 11)), data.draw(st.integers(8, 11))
        h, w = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
        ph = data.draw(st.integers(max(0, (r - h + 1) // 2), r - 1))
        pw = data.draw(st.integers(max(0, (r - w + 1) // 2), r - 1))
        dtype = data.draw(st.sampled_from([np.float64, np.float32]))
        rng = np.random.default_rng(data.draw(st.integers(0, 99)))
        x = rng.standard_normal((n, c, h, w)).astype(dtype)
        wc, wt = rng.standard_normal((o, c, r, r)).astype(dtype), rng.standard_normal((c, o, r, r)).astype(dtype)
        b = rng.standard_normal(o).astype(dtype)

        def convs():
            conv = value_and_grads(lambda a, k, bias: F.conv2d(a, k, bias, padding=(ph, pw)), x, wc, b)
            pt = (min(ph, (h + r - 2) // 2), min(pw, (w + r - 2) // 2))      # an output of one pixel at least
            transposed = value_and_grads(lambda a, k: F.conv_transpose2d(a, k, padding=pt), x, wt)
            return conv + transposed
        fast, reference = both(convs)
        assert "correlate" in calls and "weight_grad" in calls
        tol = 1e-12 if dtype == np.float64 else 2e-5
        for a, r in zip(fast, reference):
            np.testing.assert_allclose(a, r, rtol=tol, atol=tol * max(1.0, np.abs(r).max()))
    finally:
        monkeypatch.undo()


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_winograd_by_blocks_equals_the_reference(data):
    """Kernels of s r taps at stride s (4x4 / 2, 6x6 / 2, 6x6 / 3, 9x9 / 3) as r-tap kernels over
    s x s blocks (``_conv_strided``, forced):
    conv2d, conv_transpose2d and every gradient equal the reference paths, over drawn rectangular
    images (padded sides that are multiples of s or not), channels, batch, paddings and output
    paddings, in float64 to 1e-12 and in float32 to 2e-5."""
    monkeypatch = pytest.MonkeyPatch()
    try:
        calls = _winograd_forced(monkeypatch, data.draw(st.sampled_from(["F4", "F2"])),
                                 data.draw(st.sampled_from(["F42", "F52"])))
        s = data.draw(st.sampled_from([2, 3]))
        k = s * data.draw(st.sampled_from([2, 3]))
        n, c, o = data.draw(st.integers(1, 2)), data.draw(st.integers(8, 10)), data.draw(st.integers(8, 10))
        ph, pw = data.draw(st.integers(0, k - 1)), data.draw(st.integers(0, k - 1))
        h = data.draw(st.integers(max(1, k - 2 * ph), k - 2 * ph + 3 * s + 1))      # one output row at least
        w = data.draw(st.integers(max(1, k - 2 * pw), k - 2 * pw + 3 * s + 1))
        h2, w2 = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))          # conv_transpose2d's input
        pt = (min(ph, ((h2 - 1) * s + k - 1) // 2), min(pw, ((w2 - 1) * s + k - 1) // 2))
        extra = (data.draw(st.integers(0, s - 1)), data.draw(st.integers(0, s - 1)))   # output_padding: rows no output reads
        dtype = data.draw(st.sampled_from([np.float64, np.float32]))
        rng = np.random.default_rng(data.draw(st.integers(0, 99)))
        x, x2 = rng.standard_normal((n, c, h, w)).astype(dtype), rng.standard_normal((n, c, h2, w2)).astype(dtype)
        wc, wt = rng.standard_normal((o, c, k, k)).astype(dtype), rng.standard_normal((c, o, k, k)).astype(dtype)

        def convs():
            conv = value_and_grads(lambda a, q: F.conv2d(a, q, stride=s, padding=(ph, pw)), x, wc)
            return conv + value_and_grads(
                lambda a, q: F.conv_transpose2d(a, q, stride=s, padding=pt, output_padding=extra), x2, wt)
        fast, reference = both(convs)
        assert {"block_correlate", "block_input_grad", "block_weight_grad"} <= set(calls)
        tol = 1e-12 if dtype == np.float64 else 2e-5
        for a, ref in zip(fast, reference):
            np.testing.assert_allclose(a, ref, rtol=tol, atol=tol * max(1.0, np.abs(ref).max()))
    finally:
        monkeypatch.undo()


def test_kernel_taps_and_transform_equal_their_definitions():
    """``kernel_taps`` is w.transpose(2, 3, 1, 0), contiguous, whether w is C-contiguous (BLAS's
    transpose: large enough, float32 and float64), small, float16, a strided view or already
    taps-ordered (then not copied); U and dL/dw by the two products with G equal the Kronecker
    product's G x G (float64, 1e-12)."""
    from tinygen.functional import _conv_winograd
    rng = np.random.default_rng(4)
    for shape, dtype in (((128, 96, 3, 3), np.float32), ((64, 256, 2, 2), np.float64), ((4, 3, 3, 3), np.float32),
                         ((40, 30, 2, 2), np.float16)):
        w = rng.standard_normal(shape).astype(dtype)
        for v in (w, w[:, ::2], w.transpose(1, 0, 2, 3)[:, :, ::-1]):
            taps = _conv_winograd.kernel_taps(v)
            assert taps.flags.c_contiguous and taps.dtype == dtype
            np.testing.assert_array_equal(taps, v.transpose(2, 3, 1, 0))
    ordered = np.ascontiguousarray(rng.standard_normal((3, 3, 5, 7)))
    assert np.shares_memory(_conv_winograd.kernel_taps(ordered.transpose(3, 2, 0, 1)), ordered)
    for f in (_conv_winograd.F4, _conv_winograd.F2, _conv_winograd.F42, _conv_winograd.F52):
        w = rng.standard_normal((6, 5, f.r, f.r))
        kron = np.einsum("kq,ocq->kco", f.gg, w.reshape(6, 5, -1))
        np.testing.assert_allclose(_conv_winograd._kernel_transform(w, f), kron, rtol=1e-12, atol=1e-12)
        du = rng.standard_normal((f.a ** 2, 5, 6))
        adjoint = np.einsum("kq,kco->ocq", f.gg, du).reshape(6, 5, f.r, f.r)
        np.testing.assert_allclose(_conv_winograd._kernel_adjoint(du, f), adjoint, rtol=1e-12, atol=1e-12)


def test_block_weight_is_the_taps_regrouped_and_what_blocks_decline(monkeypatch):
    """w'[o, (a, b, c), i, j] = w[o, c, s i + a, s j + b] entry for entry, and the weight
    gradient's regrouping is its inverse; X holds Ho + r - 1 rows of blocks; the blocks decline
    stride 1, unequal strides, a stride that does not divide the kernel, a zero weight and a
    2 x 2 output (4x4 tiles)."""
    from tinygen.functional import _conv_strided
    rng = np.random.default_rng(2)
    for k, s in ((6, 2), (6, 3), (4, 2)):
        w = rng.standard_normal((3, 5, k, k))
        blocked = _conv_strided.block_weight(w, s)
        r = k // s
        assert blocked.shape == (3, s * s * 5, r, r)
        o, a, b, c, i, j = np.meshgrid(*map(np.arange, (3, s, s, 5, r, r)), indexing="ij")
        np.testing.assert_array_equal(blocked[o, (a * s + b) * 5 + c, i, j], w[o, c, s * i + a, s * j + b])
        back = _conv_strided.BlockTiles(None, s, (1, 5, 9, 9), (0, 0))
        monkeypatch.setattr(_conv_strided, "weight_grad", lambda tiles, g, _b=blocked: _b)
        np.testing.assert_array_equal(_conv_strided.block_weight_grad(back, None), w)
    monkeypatch.undo()
    assert _conv_strided.block_window((64, 32, 14, 14), 4, 2, 1, 1) == ((-1, 15), (-1, 15))    # 7 + 1 blocks
    assert _conv_strided.block_window((64, 32, 13, 8), 4, 2, 1, 2) == ((-1, 13), (-2, 10))     # row 13 unread
    dense = rng.standard_normal((32, 32, 4, 4))
    assert _conv_strided.block_fits((64, 32, 14, 14), 4, 4, 2, 2, 1, 1, dense)
    assert _conv_strided.block_fits((64, 32, 15, 14), 4, 4, 2, 2, 1, 1, dense)      # 17 rows padded
    assert not _conv_strided.block_fits((128, 32, 8, 8), 3, 3, 2, 2, 1, 1, dense[:, :, :3, :3])   # 2 does not divide 3
    assert not _conv_strided.block_fits((64, 32, 14, 14), 4, 4, 1, 1, 1, 1, dense)  # stride 1
    assert not _conv_strided.block_fits((64, 32, 14, 14), 4, 4, 2, 1, 1, 1, dense)
    assert not _conv_strided.block_fits((64, 32, 4, 4), 4, 4, 2, 2, 1, 1, dense)    # a 2 x 2 output
    masked = dense.copy()
    masked[0, 0, 3, 3] = 0
    assert not _conv_strided.block_fits((64, 32, 14, 14), 4, 4, 2, 2, 1, 1, masked)
    assert _conv_strided.block_input_grad_fits((64, 32, 7, 7), dense, (64, 32, 14, 14), 2, 2, 1, 1)
    assert not _conv_strided.block_input_grad_fits((64, 32, 7, 7), masked, (64, 32, 14, 14), 2, 2, 1, 1)


@pytest.mark.parametrize("transform, transform2", [("F4", "F42"), ("F2", "F52")])
def test_winograd_second_derivatives(monkeypatch, transform, transform2):
    """Through F(4x4, 3x3) and F(2x2, 3x3), and F(4x4, 2x2) and F(5x5, 2x2) by blocks, forced, conv2d
    and conv_transpose2d pass gradcheck and gradgradcheck (the gradient penalty's path) in float64."""
    from tinygen.autograd import gradcheck, gradgradcheck
    calls = _winograd_forced(monkeypatch, transform, transform2)
    rng = np.random.default_rng(5)
    inputs = [Tensor(rng.standard_normal(s), requires_grad=True) for s in ((2, 8, 5, 4), (8, 8, 3, 3))]
    bias = Tensor(rng.standard_normal(8), requires_grad=True)
    assert gradcheck(lambda a, k, b: F.conv2d(a, k, b, padding=1), inputs + [bias])
    assert gradcheck(lambda a, k: F.conv_transpose2d(a, k, padding=(1, 2)), inputs)
    assert gradgradcheck(lambda a, k: F.conv2d(a, k, padding=1), inputs)
    assert gradgradcheck(lambda a, k: F.conv_transpose2d(a, k, padding=(2, 0)), inputs)
    assert "correlate" in calls and "weight_grad" in calls
    # by blocks: a 4x4 kernel at stride 2 (padded sides of 8 and 6)
    strided = [Tensor(rng.standard_normal(s), requires_grad=True) for s in ((2, 8, 6, 4), (8, 8, 4, 4))]
    assert gradcheck(lambda a, k: F.conv2d(a, k, stride=2, padding=1), strided)
    assert gradgradcheck(lambda a, k: F.conv2d(a, k, stride=2, padding=1), strided)
    assert gradgradcheck(lambda a, k: F.conv_transpose2d(a, k, stride=2, padding=1), strided)
    assert {"block_correlate", "block_input_grad", "block_weight_grad"} <= set(calls)


def test_winograd_picks_its_transform_and_what_it_declines(monkeypatch):
    """F(4x4, 3x3) from 64 of its tiles on, F(2x2, 3x3) from 64 of its own, im2col below, each
    where its tiles cut off little of what they compute; for 2x2 kernels, of F(5x5) and F(4x4)
    the one that computes fewer products; the fast path declines a zero
    weight (a masked kernel: its zeros would cancel only to rounding), another kernel size, a
    stride (taken by blocks instead, below), a padding of r or more, few channels, too little
    work and too large tiles."""
    from tinygen.functional import _conv_winograd
    f2, f4, f42, f52 = _conv_winograd.F2, _conv_winograd.F4, _conv_winograd.F42, _conv_winograd.F52
    for name, value in (("MIN_WORK", 1 << 19), ("MIN_CHANNELS", 16), ("CHOICES", {3: ((f4, 64), (f2, 64)),
                                                                                   2: ((f52, 64), (f42, 64))}),
                        ("MAX_BYTES", 64 << 20), ("MAX_WASTE", 1.35)):
        monkeypatch.setattr(_conv_winograd, name, value)
    assert _conv_winograd.transform_for(16, 8, 8) is f4              # 16 x 2 x 2 tiles
    assert _conv_winograd.transform_for(15, 8, 8) is f2              # 15 x 4 x 4 of F(2x2)'s
    assert _conv_winograd.transform_for(4, 13, 16) is f4             # 4 x 4 x 4, one row cut off
    assert _conv_winograd.transform_for(5, 13, 11) is f2             # 5 x 4 x 3; 5 x 7 x 6 of F(2x2)'s
    assert _conv_winograd.transform_for(16, 4, 4) is f2              # 16 x 1 x 1; 16 x 2 x 2
    assert _conv_winograd.transform_for(15, 4, 4) is None            # 15 x 2 x 2
    assert _conv_winograd.transform_for(16, 7, 7) is f4              # 8 x 8 computed for 7 x 7: 1.31
    assert _conv_winograd.transform_for(8, 10, 10) is f2             # 72 tiles, but 12 x 12 for 10 x 10
    assert _conv_winograd.transform_for(64, 7, 7, 2) is f42          # 2x2 kernels: 10 x 10 of F(5x5)'s
    assert _conv_winograd.transform_for(64, 5, 5, 2) is f52          # one tile: 36 products, F(4x4) 100
    assert _conv_winograd.transform_for(16, 10, 10, 2) is f52        # 64 tiles; 12 x 12 of F(4x4)'s
    assert _conv_winograd.transform_for(15, 10, 10, 2) is None       # 60 tiles
    assert _conv_winograd.transform_for(64, 14, 14, 2) is f52        # 9 x 36 products against 16 x 25
    assert _conv_winograd.transform_for(64, 28, 28, 2) is f42        # 49 x 25 against 36 x 36
    assert _conv_winograd.transform_for(64, 2, 2, 2) is None         # 4 x 4 computed for 2 x 2
    assert _conv_winograd.transform_for(64, 8, 8, 5) is None         # no transform for 5x5
    assert not _conv_winograd.fits((15, 64, 4, 4), 3, 3, 1, 1, 1, 1)    # 0.98 M of work, 60 tiles
    rng = np.random.default_rng(5)
    w = rng.standard_normal((32, 32, 3, 3))
    assert _conv_winograd.fits((8, 32, 8, 8), 3, 3, 1, 1, 1, 1, w)             # 512 pixels x 32 x 32
    masked = w.copy()
    masked[:, :, 2] = 0
    assert not _conv_winograd.fits((32, 32, 8, 8), 3, 3, 1, 1, 1, 1, masked)
    assert not _conv_winograd.fits((32, 32, 8, 8), 5, 5, 1, 1, 2, 2)
    assert not _conv_winograd.fits((32, 32, 8, 8), 3, 3, 2, 2, 1, 1)
    assert not _conv_winograd.fits((32, 32, 8, 8), 3, 3, 1, 1, 3, 3)
    assert not _conv_winograd.fits((8, 16, 8, 8), 3, 3, 1, 1, 1, 1, w[:16, :16])   # 512 pixels x 16 x 16
    assert not _conv_winograd.fits((64, 8, 8, 8), 3, 3, 1, 1, 1, 1)              # 8 channels in
    assert not _conv_winograd.fits((64, 32, 8, 8), 3, 3, 1, 1, 1, 1, w[:8])      # 8 channels out
    assert not _conv_winograd.fits((64, 128, 32, 32), 3, 3, 1, 1, 1, 1)          # V by F(4x4): 75.5 MB
    assert _conv_winograd.fits((32, 128, 32, 32), 3, 3, 1, 1, 1, 1)              # 37.7 MB
    # the input gradient correlates g (O channels in) with w's transpose (C channels out)
    assert _conv_winograd.input_grad_fits((32, 32, 8, 8), w, 1, 1, 1, 1)
    assert not _conv_winograd.input_grad_fits((32, 32, 8, 8), w[:, :8], 1, 1, 1, 1)   # 8 channels out


@pytest.mark.parametrize("points, r", [((0, 1, -1), 3), ((0, 1, -1, 0.5, -2), 3), ((0, 1, -1, 2, -2), 3),
                                       ((0, 2, -3, 0.25, 5, -0.5, 1), 3), ((1, -1, 0.5, -0.5), 2),
                                       ((0, 1, -1, 0.5, -2), 2), ((0, 1), 2)])
def test_toom_cook_matrices_compute_the_correlation(points, r):
    """For every set of points, ``toom_cook``'s F(m, r) maps each run d of a = m + r - 1 numbers and
    each r-tap kernel g to the m correlations sum_i g[i] d[e + i] (float64, 1e-12); F(2, 3) is Lavin
    and Gray's matrices up to signs that cancel; repeated points are refused by name."""
    from tinygen.functional._conv_winograd import F2, toom_cook
    m = len(points) + 2 - r
    a = m + r - 1
    f = toom_cook(points, m, r)
    assert (f.bt.shape, f.g.shape, f.at.shape) == ((a, a), (a, r), (m, a))
    rng = np.random.default_rng(len(points))
    d, g = rng.standard_normal((a, 50)), rng.standard_normal((r, 50))
    direct = np.stack([(g * d[e:e + r]).sum(axis=0) for e in range(m)])
    np.testing.assert_allclose(f.at @ ((f.g @ g) * (f.bt @ d)), direct, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.abs(F2.bt), np.abs([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]))
    np.testing.assert_array_equal(np.abs(F2.g), [[1, 0, 0], [.5, .5, .5], [.5, .5, .5], [0, 0, 1]])
    np.testing.assert_array_equal(np.abs(F2.at), np.abs([[1, 1, 1, 0], [0, 1, -1, -1]]))
    with pytest.raises(ValueError, match=r"F\(2, 3\) takes 3 distinct points, got \(0, 1, 1\)"):
        toom_cook((0, 1, 1), 2)


def test_live_taps_span_each_rows_nonzero_weights():
    """The frame skips a kernel row exactly when every weight in it is zero (-0.0 too), and the
    taps at either end of a row whose weights are all zero; a dense kernel is told by one count."""
    from tinygen.functional._conv_frames import live_taps
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 3, 5, 2)).astype(np.float32)
    assert live_taps(w) == [(0, 2)] * 5
    w[:, :, 3:] = 0                                   # a mask's lower rows
    w[:, :, 1] = -0.0
    w[1, 2, 0, 1] = 0                                 # one zero in a live tap: the tap stays
    w[2, 0, 4, 0] = np.nan                            # nan is not zero: the row stays
    w[:, :, 4, 1] = 0                                 # ... with its second tap dead
    w[:, :, 2, 0] = 0                                 # a row that starts late
    assert live_taps(w) == [(0, 2), (0, 0), (1, 2), (0, 0), (0, 1)]
    rows = [j0 < j1 for j0, j1 in live_taps(w)]
    np.testing.assert_array_equal(rows, w.any(axis=(0, 1, 3)))
    assert live_taps(np.zeros((2, 2, 3, 3))) == [(0, 0)] * 3
