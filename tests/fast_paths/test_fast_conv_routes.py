"""The products' and the convolutions' fast routes (outer products, pointwise and channels-last
convolutions, products in place and by runs of columns, patch blocks, frames), each against its
reference path: the same numbers with ``tinygen.fast_paths`` on and off, bit for bit where only
the route differs, to rounding where the order of summation does."""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinygen import fast_paths, functional as F
from tinygen.autograd.tensor import Tensor

from fast_path_checks import both, rectangle, value_and_grads


def test_an_outer_product_is_the_gemm_bit_for_bit():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((3, 7, 1)).astype(np.float32), rng.standard_normal((3, 1, 5)).astype(np.float32)
    fast, reference = both(lambda: value_and_grads(F.matmul, a, b))
    for x, y in zip(fast, reference):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_one_channel_pointwise_convolution_is_its_gemm_bit_for_bit(dtype):
    """A 1x1 convolution from one channel (ProGAN's fromRGB) and its adjoint into one channel's
    gradient (toRGB's input gradient) are outer products: the broadcast product on the fast path."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((3, 1, 5, 4)).astype(dtype), rng.standard_normal((6, 1, 1, 1)).astype(dtype)
    x6, w_to_one = rng.standard_normal((3, 6, 5, 4)).astype(dtype), rng.standard_normal((1, 6, 1, 1)).astype(dtype)

    def convs():
        return (value_and_grads(F.conv2d, x, w)                     # forward: (N H W, 1) x (1, 6)
                + value_and_grads(F.conv2d, x6, w_to_one)           # its input gradient: (N H W, 1) x (1, 6)
                + value_and_grads(F.conv_transpose2d, x, w_to_one))  # the same product as an op
    fast, reference = both(convs)
    for a, b in zip(fast, reference):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("channels", [3, 9])
@pytest.mark.parametrize("stride, kernel, padding", [((2, 1), (4, 3), (1, 0)), ((1, 2), (3, 4), (1, 2)),
                                                     ((2, 2), (3, 3), (1, 1)), ((1, 1), (1, 1), (0, 0))])
def test_both_conv_layouts_and_the_phase_input_gradient_equal_the_reference(stride, kernel, padding, channels):
    """From CHANNELS_LAST_MIN channels the fast path is channels-last (and the input gradient by
    stride phases where the stride divides the kernel), a 1x1 convolution has no im2col; off,
    the channels-first im2col/col2im."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, channels, 7, 6))
    w = rng.standard_normal((5, channels) + kernel)
    wt = rng.standard_normal((channels, 4) + kernel)

    def convs():
        conv = value_and_grads(lambda a, b: F.conv2d(a, b, stride=stride, padding=padding), x, w)
        transposed = value_and_grads(lambda a, b: F.conv_transpose2d(a, b, stride=stride, padding=padding),
                                      x, wt)
        return conv + transposed
    fast, reference = both(convs)
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.data(), st.sampled_from([np.float32, np.float64, np.float16]))
def test_a_product_added_in_place_is_out_plus_the_product(data, dtype):
    """``_numpy_blas.add_product`` (the framed convolution's sums): out + a @ b in out's own memory,
    through NumPy's own BLAS (beta = 1) for row- or column-major operands with any leading
    dimension, and the plain sum for memory BLAS cannot read or float16; a and b unchanged."""
    from tinygen.functional._numpy_blas import add_product
    m, k, n = rectangle(data.draw, 3)
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a, b = (rng.standard_normal(s).astype(dtype) for s in ((m, 2 * k), (k, n)))
    a = data.draw(st.sampled_from([a[:, ::2], a[:, :k], np.asfortranarray(a[:, :k]), a[:, :k].T.copy().T]))
    b = np.asfortranarray(b) if data.draw(st.booleans()) else b
    whole = rng.standard_normal((m, n + data.draw(st.integers(0, 3)))).astype(dtype)
    out = whole[:, :n]                                                     # rows may lie apart
    expected = out + a @ b
    a0, b0, memory = a.copy(), b.copy(), out.__array_interface__["data"][0]
    result = add_product(out, a, b)
    assert result is out and out.__array_interface__["data"][0] == memory
    tol = {np.float16: 1e-2, np.float32: 1e-5, np.float64: 1e-13}[dtype]
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)
    with pytest.raises(ValueError):                                      # shapes that do not chain: NumPy's error
        add_product(out, a, np.ones((k + 1, n), dtype))


def test_the_in_place_product_uses_numpys_own_blas_where_its_wheel_ships_one():
    """NumPy's OpenBLAS (not a second copy, whose threads would wait on NumPy's) where the
    wheel ships it; elsewhere the plain sum."""
    import glob
    from tinygen.functional import _numpy_blas
    shipped = glob.glob(os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs",
                                     "libscipy_openblas64_*.so*"))
    found = _numpy_blas._BLAS.gemm(np.dtype(np.float32))
    assert (found is not None) == bool(shipped)
    if shipped:
        assert _numpy_blas._NumpyBlas._library() in shipped
    assert _numpy_blas._BLAS.gemm(np.dtype(np.float16)) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_wide_product_by_runs_of_columns_is_the_whole_product_bit_for_bit(monkeypatch, dtype):
    """``_numpy_blas.wide_matmul``: a small matrix times a wide (batched, strided) one by runs of
    columns, the last run short, into a transposed ``out`` view or a new array, equals NumPy's
    matmul bit for bit; at most ``WIDE_MIN`` columns, or with the fast paths off, one matmul."""
    from tinygen.functional import _numpy_blas
    monkeypatch.setattr(_numpy_blas, "WIDE_MIN", 40)
    monkeypatch.setattr(_numpy_blas, "WIDE_RUN", 16)
    rng = np.random.default_rng(11)
    a = rng.standard_normal((5, 6)).astype(dtype)
    b = rng.standard_normal((3, 6, 2 * 101)).astype(dtype)[:, :, ::2]          # 101 columns, strided
    out = np.empty((5, 3, 101), dtype)
    calls = []
    monkeypatch.setattr(_numpy_blas.np, "matmul", lambda *x, _m=np.matmul, **k: calls.append(1) or _m(*x, **k))
    assert _numpy_blas.wide_matmul(a, b, out=out.transpose(1, 0, 2)) is not None
    assert len(calls) == 7                                                     # 6 runs of 16 and one of 5
    np.testing.assert_array_equal(out.transpose(1, 0, 2), np.matmul(a, b))
    np.testing.assert_array_equal(_numpy_blas.wide_matmul(a, b[0]), a @ b[0])
    calls.clear()
    _numpy_blas.wide_matmul(a, b[..., :40])
    with fast_paths.reference_paths():
        _numpy_blas.wide_matmul(a, b)
    assert len(calls) == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_large_images_go_channels_last_by_blas_transpose_bit_for_bit(dtype):
    """``_numpy_blas.transpose_images``: NCHW -> NHWC image by image, the same numbers as NumPy's
    copy, into contiguous memory or a frame's interior (the border untouched); declined (nothing
    written) for a small image, a strided source, float16, or with the fast paths off."""
    from tinygen.functional._numpy_blas import MIN_IMAGE, _BLAS, transpose_images
    rng = np.random.default_rng(10)
    side = int(np.ceil(np.sqrt(MIN_IMAGE / 3)))
    x = rng.standard_normal((2, 3, side, side + 1)).astype(dtype)
    expected = x.transpose(0, 2, 3, 1)
    supported = _BLAS.omatcopy(np.dtype(dtype)) is not None
    dst = np.zeros(expected.shape, dtype)
    assert transpose_images(dst, x) == supported
    if supported:
        np.testing.assert_array_equal(dst, expected)
        framed = np.full((2, side + 2, side + 3, 3), 7, dtype)
        assert transpose_images(framed[:, 1:-1, 1:-1], x)
        np.testing.assert_array_equal(framed[:, 1:-1, 1:-1], expected)
        assert (framed[:, 0] == 7).all() and (framed[:, :, -1] == 7).all()
    untouched = np.zeros((2, 4, 4, 3), dtype)
    assert not transpose_images(untouched, x[:, :, :4, :4].copy())             # small: NumPy's copy
    assert not transpose_images(dst, x[:, :, ::-1])                            # strided source
    with fast_paths.reference_paths():
        assert not transpose_images(dst, x)
    assert not untouched.any()


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_patch_blocks_multiply_as_the_whole_patch_matrix(data):
    """``_conv_blocks.PatchBlocks``: P @ v and a @ P equal the whole im2col matrix's products to
    rounding (BLAS's kernel for a block's size may order a row's sum differently; a @ P adds the
    blocks' sums), over
    rectangular images, kernels, strides and block sizes from one output row to several images;
    a strided a (g's pixel matrix read transposed) too; mismatched shapes named in the error."""
    from tinygen.functional import _conv_blocks
    from tinygen.functional._conv_im2col import _patches_last
    n, hp, wp, c = (data.draw(st.integers(1, k)) for k in (4, 9, 8, 5))
    kh, kw = data.draw(st.integers(1, hp)), data.draw(st.integers(1, wp))
    sh, sw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    xp = rng.standard_normal((n, wp, hp, c)).astype(dtype).transpose(0, 2, 1, 3)   # any strides
    whole = _patches_last(xp, kh, kw, sh, sw)
    row_bytes = whole.shape[0] // n // ((hp - kh) // sh + 1) * whole.shape[1] * whole.itemsize
    blocks = _conv_blocks.PatchBlocks(xp, kh, kw, sh, sw)
    old = _conv_blocks.BLOCK_BYTES
    try:
        _conv_blocks.BLOCK_BYTES = row_bytes * data.draw(st.integers(1, 2 * whole.shape[0]))
        spans = [blocks._span(b) for b in blocks.blocks()]
        assert spans[0][0] == 0 and spans[-1][1] == whole.shape[0]
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))           # contiguous, in order
        assert blocks.shape == whole.shape
        v = rng.standard_normal((whole.shape[1], data.draw(st.integers(1, 6)))).astype(dtype)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(blocks @ v, whole @ v, rtol=tol, atol=tol * np.abs(whole @ v).max())
        a = rng.standard_normal((whole.shape[0], data.draw(st.integers(1, 6)))).astype(dtype).T
        np.testing.assert_allclose(a @ blocks, a @ whole, rtol=tol, atol=tol * np.abs(a @ whole).max())
    finally:
        _conv_blocks.BLOCK_BYTES = old
    m, k = whole.shape
    with pytest.raises(ValueError, match=rf"patch matrix \({m}, {k}\) @ \({k + 1}, 1\)"):
        blocks @ np.ones((k + 1, 1), dtype)
    with pytest.raises(ValueError, match=rf"\(1, {m + 1}\) @ patch matrix"):
        np.ones((1, m + 1), dtype) @ blocks


@pytest.mark.parametrize("kernel, stride, padding", [((3, 3), (1, 1), (1, 1)), ((4, 4), (2, 2), (1, 1)),
                                                     ((3, 2), (2, 1), (0, 1))])
def test_convolutions_by_patch_blocks_equal_the_reference(kernel, stride, padding, monkeypatch):
    """conv2d, conv_transpose2d and every gradient with the patches made by blocks (forced: every
    patch matrix by blocks of 2 output rows, the frames off) equal the reference im2col paths;
    conv2d keeps the padded input for its weight gradient, not the patches."""
    from tinygen.functional import _conv_blocks, _conv_frames
    monkeypatch.setattr(_conv_blocks, "WHOLE_MAX", 0)
    monkeypatch.setattr(_conv_frames, "MIN_PIXELS", 10 ** 9)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 9, 10, 7))
    w, wt = rng.standard_normal((5, 9) + kernel), rng.standard_normal((9, 8) + kernel)
    monkeypatch.setattr(_conv_blocks, "BLOCK_BYTES", 2 * 7 * 9 * kernel[0] * kernel[1] * 8)
    made = []
    monkeypatch.setattr(_conv_blocks.PatchBlocks, "_fill",
                        lambda self, b, buf, _f=_conv_blocks.PatchBlocks._fill: made.append(b) or _f(self, b, buf))
    y = F.conv2d(Tensor(x, requires_grad=True), Tensor(w, requires_grad=True), stride=stride, padding=padding)
    assert isinstance(y.creator.cols, _conv_blocks.PatchBlocks)

    def convs():
        conv = value_and_grads(lambda a, b: F.conv2d(a, b, stride=stride, padding=padding), x, w)
        transposed = value_and_grads(lambda a, b: F.conv_transpose2d(a, b, stride=stride, padding=padding), x, wt)
        return conv + transposed
    fast, reference = both(convs)
    assert len(set(made)) > 3, "the patches were not made by blocks"
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("masked", [False, "rows", "taps"])
@pytest.mark.parametrize("kernel, padding", [((3, 3), (1, 1)), ((5, 3), (2, 0)), ((2, 4), (1, 3)), ((1, 3), (0, 1))])
def test_stride_one_frames_equal_the_reference(kernel, padding, masked, monkeypatch):
    """The implicit GEMM over the framed image (``_conv_frames``, forced here whatever its size):
    conv2d, conv_transpose2d and every gradient; a masked kernel (lower rows zero, as
    MaskedConv2d's W * M; or also the taps right of the centre, mask B, and a row's first tap)
    skips those rows and taps and still gives the full weight gradient."""
    from tinygen.functional import _conv_frames
    monkeypatch.setattr(_conv_frames, "MAX_WASTE", 10 ** 9)
    monkeypatch.setattr(_conv_frames, "MIN_PIXELS", 0)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 9, 7, 6))
    w, wt = rng.standard_normal((5, 9) + kernel), rng.standard_normal((9, 8) + kernel)
    if masked:
        w[:, :, kernel[0] // 2 + 1:] = 0
        wt[:, :, kernel[0] // 2 + 1:] = 0
    if masked == "taps":
        for a in (w, wt):
            a[:, :, kernel[0] // 2, kernel[1] // 2 + 1:] = 0        # mask B's centre row
            a[:, :, 0, :1] = 0                                       # a row that starts late
        from tinygen.functional._conv_frames import live_taps
        assert live_taps(w)[0][0] == 1 and live_taps(w)[kernel[0] // 2][1] == kernel[1] // 2 + 1
    calls = []
    monkeypatch.setattr(_conv_frames, "correlate", lambda *a, _f=_conv_frames.correlate: calls.append(1) or _f(*a))

    def convs():
        conv = value_and_grads(lambda a, b: F.conv2d(a, b, padding=padding), x, w)
        transposed = value_and_grads(lambda a, b: F.conv_transpose2d(a, b, padding=padding), x, wt)
        return conv + transposed
    fast, reference = both(convs)
    assert calls, "the frames were not used"
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_a_large_dense_kernel_goes_by_patch_blocks_and_a_masked_one_by_frames(monkeypatch):
    """The route of a stride-1 convolution with a large patch matrix: a dense kernel's patches by
    blocks (``_conv_blocks``), a masked kernel's (rows or taps skipped) the frame; below the
    size both take the frame; the input gradient is routed the same way, from g's shape."""
    from tinygen.functional import _conv_blocks, _conv_frames
    monkeypatch.setattr(_conv_frames, "MIN_PIXELS", 0)
    rng = np.random.default_rng(2)
    dense = rng.standard_normal((4, 6, 3, 3)).astype(np.float32)
    masked = dense.copy()
    masked[:, :, 2] = 0
    shape = (2, 6, 16, 16)                                   # P: 2 * 16 * 16 rows of 54 float32
    size = 2 * 16 * 16 * 54 * 4
    for whole_max, dense_framed in ((size, True), (size - 1, False)):
        monkeypatch.setattr(_conv_blocks, "WHOLE_MAX", whole_max)
        assert _conv_frames.fits(shape, 3, 3, 1, 1, 1, 1, dense, 4) is dense_framed
        assert _conv_frames.fits(shape, 3, 3, 1, 1, 1, 1, None, 4) is dense_framed
        assert _conv_frames.fits(shape, 3, 3, 1, 1, 1, 1, masked, 4)
    g_shape = (2, 4, 16, 16)                                 # the input gradient: g's 4 channels
    monkeypatch.setattr(_conv_blocks, "WHOLE_MAX", 2 * 16 * 16 * 36 * 4 - 1)
    assert not _conv_frames.input_grad_fits(g_shape, dense, 1, 1, 1, 1)
    assert _conv_frames.input_grad_fits(g_shape, masked, 1, 1, 1, 1)
