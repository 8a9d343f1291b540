"""Activations, softmax, dropout, upsampling and pooling."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen.functional as F
from tinygen.autograd import Tensor
from tinygen.testing import arrays, shapes

from strategies import check, fast, leaves

SHAPES = shapes(max_dims=3, max_side=4)
SHAPES1 = shapes(min_dims=1, max_dims=3, max_side=4)


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


ACTIVATIONS = {
    "sigmoid": (F.sigmoid, lambda x: 1 / (1 + np.exp(-x)), "real"),
    "tanh": (F.tanh, np.tanh, "real"),
    "relu": (F.relu, lambda x: np.maximum(x, 0), "away_from_zero_kinks"),
    "leaky_relu": (F.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x), "away_from_zero_kinks"),
    "leaky_relu_0.01": (lambda t: F.leaky_relu(t, 0.01), lambda x: np.where(x > 0, x, 0.01 * x),
                        "away_from_zero_kinks"),
    "elu": (F.elu, lambda x: np.where(x > 0, x, np.expm1(x)), "away_from_zero_kinks"),
    "elu_alpha": (lambda t: F.elu(t, 0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x)),
                  "away_from_zero_kinks"),
    "softplus": (F.softplus, lambda x: np.log1p(np.exp(x)), "real"),
}

# relu-like functions have a piecewise-constant derivative (second derivative 0 away from the
# kink), which gradgradcheck verifies too; all of these are cheap to check twice.
SECOND = {"sigmoid", "tanh", "leaky_relu", "leaky_relu_0.01", "softplus", "elu", "elu_alpha", "relu"}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation(name):
    op, ref, domain = ACTIVATIONS[name]

    @fast(20)
    @given(arrays(SHAPES, domain=domain))
    def run(x):
        np.testing.assert_allclose(op(Tensor(x)).numpy(), ref(x), rtol=1e-12, atol=1e-15)
        check(op, x, second=name in SECOND)
    run()


def test_activations_are_stable_at_large_inputs():
    x = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # no overflow, no nan
        s = F.sigmoid(Tensor(x)).numpy()
        sp = F.softplus(Tensor(x)).numpy()
        ls = F.log_softmax(Tensor(x)).numpy()
        sm = F.softmax(Tensor(x)).numpy()
    np.testing.assert_allclose(s, [0.0, np.exp(-40) / (1 + np.exp(-40)), 0.5, 1 / (1 + np.exp(-40)), 1.0])
    np.testing.assert_allclose(sp, [0.0, np.log1p(np.exp(-40)), np.log(2), 40.0, 1000.0], rtol=1e-12)
    assert np.isfinite(ls[-1]) and abs(ls[-1]) < 1e-12
    np.testing.assert_allclose(sm.sum(), 1.0)


def _sigmoid_as_written(x):
    wide = x.astype(np.promote_types(x.dtype, np.float32))     # float16 is computed in float32
    return (1 / (1 + np.exp(-wide))).astype(x.dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_the_in_place_sigmoid_is_its_formula_bit_for_bit(dtype):
    """sigmoid_array writes into its own temporaries: the numbers of the one-line formula, for
    any memory order (a transpose, a broadcast view, a 0-d array, the edge values), and never
    in the caller's array."""
    from tinygen.functional.elementwise import sigmoid_array
    rng = np.random.default_rng(0)
    wide = (rng.standard_normal((5, 7)) * 30).astype(dtype)
    cases = [wide, wide.T, wide[:, ::2], np.asarray(3.0, dtype), np.broadcast_to(np.arange(3, dtype=dtype), (4, 3)),
             np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 80.0, -80.0], dtype)]
    for x in cases:
        before = x.copy()
        with np.errstate(over="ignore"):
            expected, got = _sigmoid_as_written(x), sigmoid_array(x)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
        assert not np.shares_memory(got, x)
        np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("dtype,bound", [(np.float16, 5e-4), (np.float32, 2.5e-7), (np.float64, 5e-16)])
def test_the_sigmoid_is_right_to_its_last_bits_and_0_past_the_range(dtype, bound):
    """Relative error against the formula in long double over the whole range (where s is a normal
    number); past the range's end (where e^-x overflows) exactly 0."""
    from tinygen.functional.elementwise import sigmoid_array
    end = {np.float16: 11.0, np.float32: 88.0, np.float64: 700.0}[dtype]
    x = np.linspace(-end, end, 20001).astype(dtype)
    wide = np.longdouble(x)
    exact = 1 / (1 + np.exp(-wide))
    got = sigmoid_array(x)
    if dtype == np.float16:       # float16's subnormals: compare where s is a normal number
        keep = exact > np.finfo(np.float16).tiny
        x, got, exact = x[keep], got[keep], exact[keep]
    assert got.dtype == dtype
    assert np.max(np.abs(got - exact) / exact) <= bound
    past = {np.float16: -100.0, np.float32: -100.0, np.float64: -800.0}[dtype]   # float16 runs in float32
    assert sigmoid_array(np.array([past, -np.inf], dtype)).tolist() == [0.0, 0.0]


def test_relu_gradient_at_zero_is_zero():
    x = leaves(np.array([-1.0, 0.0, 2.0]))[0]
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 1.0])


@pytest.mark.parametrize("op,ref", [(F.softmax, _softmax),
                                    (F.log_softmax, lambda x, a: np.log(_softmax(x, a)))])
def test_softmax_family(op, ref):
    @fast(25)
    @given(SHAPES1.flatmap(lambda s: st.tuples(arrays(s), st.integers(-len(s), len(s) - 1))))
    def run(xa):
        x, axis = xa
        np.testing.assert_allclose(op(Tensor(x), axis).numpy(), ref(x, axis), rtol=1e-10, atol=1e-12)
        check(lambda t: op(t, axis), x, second=True)
    run()


def test_softmax_axis_error():
    with pytest.raises(ValueError, match=r"axis 2.*\(2, 3\)"):
        F.softmax(Tensor(np.ones((2, 3))), axis=2)


@st.composite
def images(draw, multiple=1):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    h, w = draw(st.integers(1, 3)) * multiple, draw(st.integers(1, 3)) * multiple
    return draw(arrays((n, c, h, w)))


@fast(20)
@given(images(), st.integers(1, 3))
def test_upsample_nearest(x, scale):
    expected = x.repeat(scale, axis=2).repeat(scale, axis=3)
    np.testing.assert_array_equal(F.upsample_nearest(Tensor(x), scale).numpy(), expected)
    check(lambda t: F.upsample_nearest(t, scale), x, second=True)
    # each input pixel receives the sum of its scale x scale block's gradients
    t = leaves(x)[0]
    F.upsample_nearest(t, scale).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), np.full(x.shape, scale * scale))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_avg_pool2d(k):
    @fast(15)
    @given(images(multiple=k))
    def run(x):
        n, c, h, w = x.shape
        expected = x.reshape(n, c, h // k, k, w // k, k).mean(axis=(3, 5))
        np.testing.assert_allclose(F.avg_pool2d(Tensor(x), k).numpy(), expected, rtol=1e-12)
        check(lambda t: F.avg_pool2d(t, k), x, second=True)
    run()


def test_pooling_shape_errors():
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        F.avg_pool2d(Tensor(np.ones((2, 3))))
    with pytest.raises(ValueError, match="multiples of kernel_size 2"):
        F.avg_pool2d(Tensor(np.ones((1, 1, 3, 4))), 2)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        F.upsample_nearest(Tensor(np.ones(3)))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_gradient_is_mask_over_keep_probability(p):
    @fast(10)
    @given(arrays(SHAPES1), st.integers(0, 2 ** 32 - 1))
    def run(x, seed):
        keep = np.random.default_rng(seed).random(x.shape) >= p   # the mask dropout will draw
        t = leaves(x)[0]
        y = F.dropout(t, p, generator=np.random.default_rng(seed))
        np.testing.assert_allclose(y.numpy(), x * keep / (1 - p), rtol=1e-12)
        y.sum().backward()
        np.testing.assert_allclose(t.grad.numpy(), keep / (1 - p), rtol=1e-12)
        # with a fixed mask dropout is linear: gradcheck with the same generator state each call
        check(lambda u: F.dropout(u, p, generator=np.random.default_rng(seed)), x, second=True)
    run()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dropout_draws_its_mask_in_row_major_order_whatever_the_layout(dtype):
    """The mask is laid out as x (a channels-last image gives a channels-last mask, so the product
    runs through matching memory), but u[i] still goes to element i in row-major order: the
    numbers are those of (u >= p) / (1 - p) bit for bit, for a channels-last, a transposed and a
    sliced x alike."""
    base = np.random.default_rng(1).standard_normal((3, 5, 4, 6)).astype(dtype)
    last = np.ascontiguousarray(base.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    for x in (base, last, base.transpose(3, 1, 2, 0), base[:, ::2]):
        u = np.random.default_rng(7).random(x.shape)
        expected = x * ((u >= 0.3).astype(dtype) / (1 - 0.3))
        y = F.dropout(Tensor(x), 0.3, generator=np.random.default_rng(7)).numpy()
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, expected)
    y = F.dropout(Tensor(last), 0.3, generator=np.random.default_rng(7)).numpy()
    assert y.transpose(0, 2, 3, 1).flags.c_contiguous


def test_dropout_identity_when_not_training_or_p_zero():
    x = leaves(np.ones(4))[0]
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    with pytest.raises(ValueError, match="p must lie"):
        F.dropout(x, 1.0)


def test_dropout_keeps_the_expected_fraction():
    y = F.dropout(Tensor(np.ones(20000)), 0.3, generator=np.random.default_rng(0)).numpy()
    assert abs((y > 0).mean() - 0.7) < 0.02
    assert abs(y.mean() - 1.0) < 0.03           # inverted dropout keeps the mean


def test_one_hot():
    y = F.one_hot(Tensor(np.array([[0, 2], [1, 1]])), 3)
    assert y.shape == (2, 2, 3) and y.dtype == np.float32 and not y.requires_grad
    np.testing.assert_array_equal(y.numpy()[0, 1], [0, 0, 1])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        F.one_hot(np.array([3]), 3)
    with pytest.raises(TypeError, match="integers"):
        F.one_hot(np.array([1.0]), 3)
