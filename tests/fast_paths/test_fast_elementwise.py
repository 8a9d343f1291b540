"""The elementwise, reduction, normalization, pooling and resampling fast paths, each against its
reference path: the same numbers with ``tinygen.fast_paths`` on and off, bit for bit where only
the route differs, to rounding where the order of summation does."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinygen import functional as F
from tinygen.autograd.tensor import Tensor

from fast_path_checks import both, rectangle, value_and_grads


@settings(max_examples=15, deadline=None)
@given(st.data(), st.sampled_from(["relu", "leaky_relu", "sigmoid", "tanh"]),
       st.sampled_from([np.float32, np.float64]))
def test_the_one_pass_activation_backwards_equal_their_formulas_bit_for_bit(data, name, dtype):
    x = np.random.default_rng(0).standard_normal(rectangle(data.draw, data.draw(st.integers(1, 4)))).astype(dtype)
    op = {"relu": F.relu, "leaky_relu": lambda t: F.leaky_relu(t, 0.2), "sigmoid": F.sigmoid,
          "tanh": F.tanh}[name]
    fast, reference = both(lambda: value_and_grads(op, x))
    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=20, deadline=None)
@given(st.data(), st.sampled_from(["mul", "div", "sub", "neg", "matmul", "linear", "scalar", "sum", "mean"]),
       st.sampled_from([np.float32, np.float64]))
def test_the_array_backwards_of_arithmetic_and_products_equal_their_formulas_bit_for_bit(data, name, dtype):
    """Mul, Div, Sub, Neg, MatMul, Linear and Sum compute their gradient on arrays when no graph
    is recorded: the numbers of the Tensor-op formulas bit for bit, broadcasting (sum_to) and
    the sum's expand (a view, or a filled array when small) included."""
    shape = rectangle(data.draw, data.draw(st.integers(1, 3)))
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
    fast, reference = both(lambda: value_and_grads(op, *arrays))
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
    fast, reference = both(lambda: value_and_grads(ops[kind], x, gamma, beta))
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_running_sums_by_blocks_equal_numpys_cumsum(data):
    """Forward from the start, and backward from the end (cumsum's gradient is the reverse sum)."""
    shape = rectangle(data.draw, data.draw(st.integers(1, 3)))
    axis = data.draw(st.integers(0, len(shape) - 1))
    shape = shape[:axis] + (data.draw(st.integers(1, 40)),) + shape[axis + 1:]   # several blocks
    x = np.random.default_rng(8).standard_normal(shape)
    fast, reference = both(lambda: value_and_grads(lambda t: F.cumsum(t, axis), x))
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
    fast, reference = both(lambda: F.sum(Tensor(x), axis=axes, keepdims=keep).numpy())
    exact = x.astype(np.float64).sum(axis=axes, keepdims=keep)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fast, reference, rtol=tol, atol=tol * np.sqrt(n * h))
    assert np.abs(fast - exact).max() <= np.abs(reference - exact).max() + tol * np.sqrt(n * h)
    assert fast.dtype == dtype and fast.shape == reference.shape
    used = _sum_arrays.plan(x, axes) is not None
    assert used == (n * h >= _sum_arrays.MIN_ROWS), (x.strides, axes)
    g = base.reshape(n * h, c)                            # sum_to: a Linear bias's gradient
    fast, reference = both(lambda: F.sum_to(Tensor(g), (c,)).numpy())
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
    fast, reference = both(lambda: value_and_grads(lambda t: F.avg_pool2d(t, kernel), x))
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
        return (value_and_grads(lambda t: F.interpolate(t, size=size), x)
                + (value_and_grads(lambda t: F.upsample_nearest(t, factors[0]), x) if factors[0] == factors[1] else []))
    fast, reference = both(ops)
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
    fast, reference = both(lambda: value_and_grads(layer, x))
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
    fast, reference = both(lambda: value_and_grads(lambda a, b: mmd(a, b, kernel=kernel, scales=WAE_SCALES), x, y))
    np.testing.assert_array_equal(fast[0], reference[0])
    for a, b in zip(fast[1:], reference[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)
    r2 = np.abs(rng.standard_normal((4, 3)))
    params = (0.5, 2.0) if kernel == "imq" else (-0.5, -2.0)
    check(lambda t: kernel_sum(t, kernel, params), r2, second=True)
