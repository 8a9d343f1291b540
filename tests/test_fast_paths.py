"""Every fast path against its reference (``tinygen.fast_paths``): the same numbers with the
switch on and off, bit for bit where only the route differs, to rounding where the order of
summation does; the one setting that turns them all off; host-memory reuse changes nothing."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygen
from tinygen import fast_paths, functional as F
from tinygen.autograd.tensor import Tensor
from tinygen.optim import Adam

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _both(fn):
    """fn() with the fast paths on, then with the reference paths."""
    assert fast_paths.enabled()
    fast = fn()
    with fast_paths.reference_paths():
        assert not fast_paths.enabled()
        reference = fn()
    assert fast_paths.enabled()
    return fast, reference


def _value_and_grads(op, *arrays):
    """op's output and the gradients of <output, a fixed random cotangent> w.r.t. every input."""
    inputs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    y = op(*inputs)
    cotangent = np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype)
    (y * Tensor(cotangent)).sum().backward()
    return [y.numpy()] + [t.grad.numpy() for t in inputs]


def _rectangle(draw, dims):
    return tuple(draw(st.integers(1, 5)) for _ in range(dims))


@settings(max_examples=15, deadline=None)
@given(st.data(), st.sampled_from(["relu", "leaky_relu", "sigmoid", "tanh"]),
       st.sampled_from([np.float32, np.float64]))
def test_the_one_pass_activation_backwards_equal_their_formulas_bit_for_bit(data, name, dtype):
    x = np.random.default_rng(0).standard_normal(_rectangle(data.draw, data.draw(st.integers(1, 4)))).astype(dtype)
    op = {"relu": F.relu, "leaky_relu": lambda t: F.leaky_relu(t, 0.2), "sigmoid": F.sigmoid,
          "tanh": F.tanh}[name]
    fast, reference = _both(lambda: _value_and_grads(op, x))
    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=20, deadline=None)
@given(st.data(), st.sampled_from(["mul", "div", "sub", "neg", "matmul", "linear", "scalar", "sum", "mean"]),
       st.sampled_from([np.float32, np.float64]))
def test_the_array_backwards_of_arithmetic_and_products_equal_their_formulas_bit_for_bit(data, name, dtype):
    """Mul, Div, Sub, Neg, MatMul, Linear and Sum compute their gradient on arrays when no graph
    is recorded: the numbers of the Tensor-op formulas bit for bit, broadcasting (sum_to) and
    the sum's expand (a view, or a filled array when small) included."""
    shape = _rectangle(data.draw, data.draw(st.integers(1, 3)))
    other = tuple(1 if data.draw(st.booleans()) else n for n in shape)[data.draw(st.integers(0, len(shape) - 1)):]
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(shape).astype(dtype), (rng.random(other) + 0.5).astype(dtype)
    k, m = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    axes = data.draw(st.none() | st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True).map(tuple))
    keepdims = data.draw(st.booleans())
    ops = {"mul": (lambda x, y: x * y, a, b), "div": (lambda x, y: x / y, a, b), "sub": (lambda x, y: y - x, a, b),
           "neg": (lambda x: -x, a), "scalar": (lambda x: 2.0 / (x * 3.0 + 10.0), a),
           "sum": (lambda x: F.sum(x, axes, keepdims), a), "mean": (lambda x: F.mean(x, axes, keepdims), a),
           "matmul": (F.matmul, rng.standard_normal((2, 1, 3, k)).astype(dtype),
                      rng.standard_normal((4, k, m)).astype(dtype)),
           "linear": (F.linear, rng.standard_normal((2, 3, k)).astype(dtype), rng.standard_normal((m, k)).astype(dtype),
                      rng.standard_normal(m).astype(dtype))}
    op, *arrays = ops[name]
    fast, reference = _both(lambda: _value_and_grads(op, *arrays))
    for x, y in zip(fast, reference):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("shape, axes, keepdims", [((3, 5), (0,), False), ((2, 64, 64), (1, 2), True),
                                                   ((70, 64), None, False)])
def test_a_sums_gradient_is_its_broadcast_filled_when_small_and_a_view_when_large(shape, axes, keepdims):
    """Sum's array backward: the broadcast of dL/dy, a fresh array up to FILL_MAX numbers and a
    read-only view of dL/dy past it (no copy of a large gradient)."""
    from tinygen.functional import _array_grads
    reduced = tuple(range(len(shape))) if axes is None else axes
    g = np.random.default_rng(0).standard_normal(
        [1 if i in reduced and keepdims else n for i, n in enumerate(shape) if keepdims or i not in reduced]
    ).astype(np.float32)
    kept = g.reshape([1 if i in reduced else n for i, n in enumerate(shape)])
    out = _array_grads.expand(kept, shape)
    expected = np.broadcast_to(kept, shape)
    np.testing.assert_array_equal(out, expected)
    if np.prod(shape) <= _array_grads.FILL_MAX:
        assert out.flags.writeable and not np.shares_memory(out, g)
    else:
        assert not out.flags.writeable and np.shares_memory(out, g)


@settings(max_examples=10, deadline=None)
@given(st.data(), st.sampled_from(["batch", "instance", "layer"]))
def test_the_fused_normalization_backward_equals_the_tensor_op_formula(data, kind):
    n, c, h, w = data.draw(st.integers(2, 4)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5)), \
        data.draw(st.integers(2, 5))
    rng = np.random.default_rng(2)
    x, gamma, beta = rng.standard_normal((n, c, h, w)), rng.standard_normal(c), rng.standard_normal(c)
    ops = {"batch": lambda t, g, b: F.batch_norm(t, None, None, g, b, training=True),
           "instance": lambda t, g, b: F.instance_norm(t, g, b),
           "layer": lambda t, g, b: F.layer_norm(t, (c, h, w)) * F.reshape(g, (c, 1, 1)) + F.reshape(b, (c, 1, 1))}
    fast, reference = _both(lambda: _value_and_grads(ops[kind], x, gamma, beta))
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_running_sums_by_blocks_equal_numpys_cumsum(data):
    """Forward from the start, and backward from the end (cumsum's gradient is the reverse sum)."""
    shape = _rectangle(data.draw, data.draw(st.integers(1, 3)))
    axis = data.draw(st.integers(0, len(shape) - 1))
    shape = shape[:axis] + (data.draw(st.integers(1, 40)),) + shape[axis + 1:]   # several blocks
    x = np.random.default_rng(8).standard_normal(shape)
    fast, reference = _both(lambda: _value_and_grads(lambda t: F.cumsum(t, axis), x))
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.data(), st.sampled_from([np.float32, np.float64]))
def test_sums_over_the_outer_axes_by_blocks_equal_numpys_sum(data, dtype):
    """A sum over the axes outside the kept ones in memory (a channels-last bias gradient, a
    Linear bias) goes by blocks of rows: the value of NumPy's sum to rounding, no farther from
    the exact sum, for sum and for the sum_to of a broadcast gradient; with and without keepdims;
    with a partial last block; the layouts it does not take fall through to NumPy."""
    from tinygen.functional import _sum_arrays
    n = data.draw(st.integers(1, 400))                     # rows: below the threshold, whole blocks, ragged
    c, h = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 3))
    base = np.random.default_rng(n).standard_normal((n, h, c)).astype(dtype)
    x = base.transpose(0, 2, 1) if data.draw(st.booleans()) else base   # (n, c, h): kept c innermost?
    keep = data.draw(st.booleans())
    axes = (0, 2) if x is not base else (0, 1)
    fast, reference = _both(lambda: F.sum(Tensor(x), axis=axes, keepdims=keep).numpy())
    exact = x.astype(np.float64).sum(axis=axes, keepdims=keep)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fast, reference, rtol=tol, atol=tol * np.sqrt(n * h))
    assert np.abs(fast - exact).max() <= np.abs(reference - exact).max() + tol * np.sqrt(n * h)
    assert fast.dtype == dtype and fast.shape == reference.shape
    used = _sum_arrays.plan(x, axes) is not None
    assert used == (n * h >= _sum_arrays.MIN_ROWS), (x.strides, axes)
    g = base.reshape(n * h, c)                            # sum_to: a Linear bias's gradient
    fast, reference = _both(lambda: F.sum_to(Tensor(g), (c,)).numpy())
    np.testing.assert_allclose(fast, reference, rtol=tol, atol=tol * np.sqrt(n * h))
    assert _sum_arrays.plan(x.transpose(2, 1, 0) if x is base else x, (1,)) is None   # kept outside


@pytest.mark.parametrize("kernel", [(2, 2), (3, 2), (1, 4)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_the_tiling_average_pool_equals_its_reshape_and_mean(kernel, channels_last):
    """avg_pool2d with stride = kernel as one op (``_block_pool``): the reshape-and-mean's value
    to rounding, its gradient bit for bit, laid out as the incoming gradient; and differentiable
    again (its backward is its adjoint op, whose backward is the pool)."""
    from strategies import check
    rng = np.random.default_rng(4)
    shape = (2, 3, 3 * kernel[0], 2 * kernel[1])
    x = rng.standard_normal(shape)
    if channels_last:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    fast, reference = _both(lambda: _value_and_grads(lambda t: F.avg_pool2d(t, kernel), x))
    np.testing.assert_allclose(fast[0], reference[0], rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(fast[1], reference[1])
    g = rng.standard_normal((2, 3, 3, 2))
    g = np.ascontiguousarray(g.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) if channels_last else g
    from tinygen.functional._block_pool import BlockSpread
    spread = BlockSpread.apply(Tensor(g), kernel=kernel, scale=0.5).numpy()
    assert spread.transpose(0, 2, 3, 1).flags.c_contiguous == channels_last
    check(lambda u: F.avg_pool2d(u, kernel), x, second=True)


@pytest.mark.parametrize("factors", [(2, 2), (3, 1), (1, 4)])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nearest_upsampling_by_whole_factors_is_a_block_copy(factors, channels_last, dtype):
    """upsample_nearest and interpolate by whole factors copy each pixel into its block
    (``_block_pool.BlockSpread``): the 0/1 GEMMs' value bit for bit, laid out as x; the gradient
    (the block sums) to rounding; differentiable again. Other factors keep the GEMMs."""
    from strategies import check
    from tinygen.functional import _block_pool
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 4, 3)).astype(dtype)
    if channels_last:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)

    def ops():
        size = (factors[0] * 4, factors[1] * 3)
        return (_value_and_grads(lambda t: F.interpolate(t, size=size), x)
                + (_value_and_grads(lambda t: F.upsample_nearest(t, factors[0]), x) if factors[0] == factors[1] else []))
    fast, reference = _both(ops)
    for i, (a, b) in enumerate(zip(fast, reference)):
        if i % 2 == 0:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-6 if dtype == np.float32 else 1e-14)
    calls = []
    original = _block_pool.block_copy
    try:
        _block_pool.block_copy = lambda *a: calls.append(a[1]) or original(*a)
        F.interpolate(Tensor(x), size=(factors[0] * 4, factors[1] * 3))
        F.interpolate(Tensor(x), size=(5, 3))                                 # 4 -> 5: not whole, the GEMMs
    finally:
        _block_pool.block_copy = original
    assert calls == [factors]
    y = F.interpolate(Tensor(x), size=(factors[0] * 4, factors[1] * 3)).data
    assert y.transpose(0, 2, 3, 1).flags.c_contiguous == channels_last
    check(lambda u: F.upsample_nearest(u, 2), x.astype(np.float64), second=True)


@pytest.mark.parametrize("shape, channels_last", [((5, 7), False), ((4, 6, 3), False), ((3, 5, 4, 2), False),
                                                   ((3, 5, 4, 2), True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pixel_norm_as_one_op_equals_its_five_ops(shape, channels_last, dtype):
    """nn.PixelNorm as one op (``_pixel_norm``): the five ops' value and gradient to rounding,
    on a latent (N, C), a line and an image in either layout; differentiable again."""
    from strategies import check
    from tinygen import nn
    x = np.random.default_rng(8).standard_normal(shape).astype(dtype)
    if channels_last:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    layer = nn.PixelNorm()
    fast, reference = _both(lambda: _value_and_grads(layer, x))
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a, b, rtol=2e-6 if dtype == np.float32 else 1e-13, atol=1e-7)
    assert type(layer(Tensor(x, requires_grad=True)).creator).__name__ == "PixelNormalize"
    check(layer, x.astype(np.float64), second=True)


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mmd_kernels_summed_over_scales_as_one_op_equal_the_loop(kernel, dtype):
    """MMD's multi-scale kernel as one op (``metrics/_kernel_sums.py``): the loop of Tensor ops'
    value bit for bit, its gradients (into both samples) to rounding; differentiable again."""
    from strategies import check
    from tinygen.metrics import WAE_SCALES, mmd
    from tinygen.metrics._kernel_sums import kernel_sum
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((6, 3)).astype(dtype), rng.standard_normal((5, 3)).astype(dtype)
    fast, reference = _both(lambda: _value_and_grads(lambda a, b: mmd(a, b, kernel=kernel, scales=WAE_SCALES), x, y))
    np.testing.assert_array_equal(fast[0], reference[0])
    for a, b in zip(fast[1:], reference[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)
    r2 = np.abs(rng.standard_normal((4, 3)))
    params = (0.5, 2.0) if kernel == "imq" else (-0.5, -2.0)
    check(lambda t: kernel_sum(t, kernel, params), r2, second=True)


def test_an_outer_product_is_the_gemm_bit_for_bit():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((3, 7, 1)).astype(np.float32), rng.standard_normal((3, 1, 5)).astype(np.float32)
    fast, reference = _both(lambda: _value_and_grads(F.matmul, a, b))
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
        return (_value_and_grads(F.conv2d, x, w)                     # forward: (N H W, 1) x (1, 6)
                + _value_and_grads(F.conv2d, x6, w_to_one)           # its input gradient: (N H W, 1) x (1, 6)
                + _value_and_grads(F.conv_transpose2d, x, w_to_one))  # the same product as an op
    fast, reference = _both(convs)
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
        conv = _value_and_grads(lambda a, b: F.conv2d(a, b, stride=stride, padding=padding), x, w)
        transposed = _value_and_grads(lambda a, b: F.conv_transpose2d(a, b, stride=stride, padding=padding),
                                      x, wt)
        return conv + transposed
    fast, reference = _both(convs)
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.data(), st.sampled_from([np.float32, np.float64, np.float16]))
def test_a_product_added_in_place_is_out_plus_the_product(data, dtype):
    """``_numpy_blas.add_product`` (the framed convolution's sums): out + a @ b in out's own memory,
    through NumPy's own BLAS (beta = 1) for row- or column-major operands with any leading
    dimension, and the plain sum for memory BLAS cannot read or float16; a and b unchanged."""
    from tinygen.functional._numpy_blas import add_product
    m, k, n = _rectangle(data.draw, 3)
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
    from tinygen.functional._conv_arrays import _patches_last
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
        conv = _value_and_grads(lambda a, b: F.conv2d(a, b, stride=stride, padding=padding), x, w)
        transposed = _value_and_grads(lambda a, b: F.conv_transpose2d(a, b, stride=stride, padding=padding), x, wt)
        return conv + transposed
    fast, reference = _both(convs)
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
        conv = _value_and_grads(lambda a, b: F.conv2d(a, b, padding=padding), x, w)
        transposed = _value_and_grads(lambda a, b: F.conv_transpose2d(a, b, padding=padding), x, wt)
        return conv + transposed
    fast, reference = _both(convs)
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
            conv = _value_and_grads(lambda a, k, bias: F.conv2d(a, k, bias, padding=(ph, pw)), x, wc, b)
            pt = (min(ph, (h + r - 2) // 2), min(pw, (w + r - 2) // 2))      # an output of one pixel at least
            transposed = _value_and_grads(lambda a, k: F.conv_transpose2d(a, k, padding=pt), x, wt)
            return conv + transposed
        fast, reference = _both(convs)
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
            conv = _value_and_grads(lambda a, q: F.conv2d(a, q, stride=s, padding=(ph, pw)), x, wc)
            return conv + _value_and_grads(
                lambda a, q: F.conv_transpose2d(a, q, stride=s, padding=pt, output_padding=extra), x2, wt)
        fast, reference = _both(convs)
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


def test_switching_between_forward_and_backward_keeps_the_gradient_right():
    """Patches laid out by a fast forward are not reused by a reference backward."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 8, 6, 5)), rng.standard_normal((3, 8, 3, 2))
    expected = _value_and_grads(lambda a, b: F.conv2d(a, b, padding=(1, 0)), x, w)
    xt, wt = Tensor(x.copy(), requires_grad=True), Tensor(w.copy(), requires_grad=True)
    y = F.conv2d(xt, wt, padding=(1, 0))
    cotangent = np.random.default_rng(1).standard_normal(y.shape)
    with fast_paths.reference_paths():
        (y * Tensor(cotangent)).sum().backward()
    np.testing.assert_allclose(wt.grad.numpy(), expected[2], rtol=1e-12)
    np.testing.assert_allclose(xt.grad.numpy(), expected[1], rtol=1e-12)


@pytest.mark.parametrize("decay", [0.0, 0.1])
def test_adam_in_place_equals_its_formulas(decay):
    rng = np.random.default_rng(6)
    start, grads = rng.standard_normal((4, 3)), rng.standard_normal((5, 4, 3))

    def steps():
        p = tinygen.nn.Parameter(start.copy())
        opt = Adam([p], lr=0.01, weight_decay=decay)
        for g in grads:
            p.grad = Tensor(g.copy())
            opt.step()
        state = opt.state_dict()["state"][0]
        return p.numpy(), state["exp_avg"], state["exp_avg_sq"]
    fast, reference = _both(steps)
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13)


def test_a_dcgan_step_runs_the_same_with_the_reference_paths():
    from tinygen import models

    def run():
        tinygen.manual_seed(0)
        model = models.build("dcgan", image_shape=(1, 8, 8))
        x = Tensor(np.random.default_rng(7).random((16, 1, 8, 8)).astype(np.float32))
        losses = [model.train_step(x) for _ in range(4)]
        return [l[k] for l in losses for k in sorted(l)] + [p.numpy() for p in model.parameters()]
    fast, reference = _both(run)
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5)


_STEPS = """
import json, numpy as np, resource, tinygen
from tinygen import backend, fast_paths, models
from tinygen.autograd.tensor import Tensor
tinygen.manual_seed(0)
model = models.build("pixelcnn", image_shape=(1, 8, 8))
x = Tensor((np.random.default_rng(0).random((32, 1, 8, 8)) > 0.5).astype(np.float32))
model.train_step(x)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
losses = [float(v) for _ in range(3) for v in model.train_step(x).values()]
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3
print(json.dumps({"losses": losses, "params": float(sum(np.abs(p.numpy()).sum() for p in model.parameters())),
                  "reuse": backend.REUSING_FREED_MEMORY, "fast": fast_paths.enabled(), "faults": faults}))
"""


def _run_steps(**env):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "TINYGEN_"))}
    full.update(env, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", _STEPS], env=full, cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=300).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_keeping_freed_memory_changes_no_number_and_can_be_turned_off():
    kept, returned = _run_steps(), _run_steps(TINYGEN_REUSE_MEMORY="0")
    assert kept["reuse"] and not returned["reuse"]
    assert kept["losses"] == returned["losses"] and kept["params"] == returned["params"]   # bit for bit


def test_one_setting_turns_every_fast_path_off():
    off = _run_steps(TINYGEN_FAST_PATHS="0")
    on = _run_steps()
    assert on["fast"] and not off["fast"]
    np.testing.assert_allclose(on["losses"], off["losses"], rtol=1e-5)
