"""Elementwise ops: forward against NumPy, gradients against central differences.

Binary ops are checked over random mutually broadcastable shape pairs: each input's
gradient must come back with the input's own shape (summed over the broadcast axes)
and with the values gradcheck expects.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen.functional as F
from tinygen.autograd import Tensor, grad
from tinygen.testing import arrays, broadcastable_shapes, shapes

from strategies import avoiding, check, distinct_arrays, fast, leaves

SMALL = dict(max_dims=3, max_side=4)


def pair(domain_a="real", domain_b="real"):
    """Two float64 arrays of mutually broadcastable shapes."""
    return broadcastable_shapes(**SMALL).flatmap(
        lambda s: st.tuples(arrays(s[0], domain=domain_a), arrays(s[1], domain=domain_b)))


def check_broadcast_binary(op, ref, a, b):
    """Forward against NumPy, gradient shapes equal input shapes, gradcheck."""
    ta, tb = leaves(a, b)
    y = op(ta, tb)
    np.testing.assert_allclose(y.numpy(), ref(a, b), rtol=1e-12, atol=1e-12)
    ga, gb = grad(y.sum(), [ta, tb])
    assert ga.shape == a.shape and gb.shape == b.shape
    check(op, a, b)


BINARY = {
    "add": (F.add, np.add, "real", "real"),
    "sub": (F.sub, np.subtract, "real", "real"),
    "mul": (F.mul, np.multiply, "real", "real"),
    "div": (F.div, np.divide, "real", "nonzero"),
    "pow": (F.pow, np.power, "positive", "real"),
    "operator+": (lambda a, b: a + b, np.add, "real", "real"),
    "operator-": (lambda a, b: a - b, np.subtract, "real", "real"),
    "operator*": (lambda a, b: a * b, np.multiply, "real", "real"),
    "operator/": (lambda a, b: a / b, np.divide, "real", "nonzero"),
    "operator**": (lambda a, b: a ** b, np.power, "positive", "real"),
}


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_op_broadcasting(name):
    op, ref, da, db = BINARY[name]

    @fast(25)
    @given(pair(da, db))
    def run(ab):
        check_broadcast_binary(op, ref, *ab)
    run()


def test_broadcast_gradient_values_by_hand():
    # a (3, 1) + b (4,) -> (3, 4): da = 4 (row sums of ones), db = 3
    a, b = leaves(np.zeros((3, 1)), np.zeros(4))
    (a * 1.0 + b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.full((3, 1), 4.0))
    np.testing.assert_array_equal(b.grad.numpy(), np.full(4, 3.0))
    # mul: d/db sum(a * b) = sum of a over the broadcast axis
    a, b = leaves(np.arange(6.0).reshape(2, 3), np.ones((1, 3)))
    (a * b).sum().backward()
    np.testing.assert_array_equal(b.grad.numpy(), [[3.0, 5.0, 7.0]])


@pytest.mark.parametrize("name,op", [
    ("x+c", lambda x: x + 1.5), ("c+x", lambda x: 1.5 + x), ("x-c", lambda x: x - 2.0),
    ("c-x", lambda x: 2.0 - x), ("x*c", lambda x: x * -3.0), ("c*x", lambda x: -3.0 * x),
    ("x/c", lambda x: x / 4.0), ("array*x", lambda x: np.float64(2.0) * x),
])
def test_binary_with_constant(name, op):
    @fast(10)
    @given(arrays(shapes(max_dims=2, max_side=4)))
    def run(x):
        check(op, x, second=True)
    run()


@fast(15)
@given(arrays(shapes(max_dims=2, max_side=4), domain="nonzero"))
def test_constant_divided_by_tensor(x):
    check(lambda t: 3.0 / t, x, second=True)


@pytest.mark.parametrize("p", [2, 3, 0.5, -1, -2.5, 1.7, np.float64(2.0)])
def test_pow_scalar_exponent(p):
    @fast(10)
    @given(arrays(shapes(max_dims=2, max_side=4), domain="positive"))
    def run(x):
        np.testing.assert_allclose(F.pow(Tensor(x), p).numpy(), x ** p)
        check(lambda t: F.pow(t, p), x, second=True)
        check(lambda t: t ** p, x)
    run()


def test_pow_scalar_integer_exponent_on_negative_base():
    @fast(10)
    @given(arrays(shapes(max_dims=2, max_side=4), domain="real"))
    def run(x):
        check(lambda t: t ** 3, x, second=True)
        check(lambda t: t ** 2, x, second=True)
    run()


@fast(15)
@given(arrays(shapes(max_dims=2, max_side=4)))
def test_scalar_base_tensor_exponent(x):
    check(lambda t: 2.0 ** t, x, second=True)


UNARY = {
    "neg": (F.neg, np.negative, "real"),
    "exp": (F.exp, np.exp, "real"),
    "log": (F.log, np.log, "positive"),
    "sqrt": (F.sqrt, np.sqrt, "positive"),
    "abs": (F.abs, np.abs, "away_from_zero_kinks"),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary(name):
    op, ref, domain = UNARY[name]

    @fast(20)
    @given(arrays(shapes(max_dims=3, max_side=4), domain=domain))
    def run(x):
        np.testing.assert_allclose(op(Tensor(x)).numpy(), ref(x), rtol=1e-12)
        check(op, x)
    run()


def test_abs_gradient_at_zero_is_zero():
    x = leaves(np.array([0.0, -2.0, 3.0]))[0]
    F.abs(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, -1.0, 1.0])


@pytest.mark.parametrize("lo,hi", [(-1.0, 1.0), (0.5, None), (None, -0.5), (-2.0, 2.5)])
def test_clip(lo, hi):
    kinks = [k for k in (lo, hi) if k is not None]

    @fast(20)
    @given(avoiding(shapes(max_dims=3, max_side=4), kinks))
    def run(x):
        np.testing.assert_array_equal(F.clip(Tensor(x), lo, hi).numpy(), np.clip(x, lo, hi))
        check(lambda t: F.clip(t, lo, hi), x)
        t = leaves(x)[0]
        (g,) = grad(F.clip(t, lo, hi).sum(), t)   # exactly the indicator of the unclamped region
        inside = (x >= (-np.inf if lo is None else lo)) & (x <= (np.inf if hi is None else hi))
        np.testing.assert_array_equal(g.numpy(), inside.astype(np.float64))
    run()


def test_clip_gradient_mask():
    x = leaves(np.array([-3.0, -1.0, 0.0, 1.0, 3.0]))[0]
    F.clip(x, -1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 1.0, 1.0, 0.0])  # bounds count as inside
    with pytest.raises(ValueError, match="lo"):
        F.clip(x, 1.0, -1.0)


@pytest.mark.parametrize("op,ref", [(F.maximum, np.maximum), (F.minimum, np.minimum)])
def test_maximum_minimum(op, ref):
    @fast(25)
    @given(broadcastable_shapes(**SMALL).flatmap(distinct_arrays))
    def run(ab):
        check_broadcast_binary(op, ref, *ab)
    run()


@pytest.mark.parametrize("op", [F.maximum, F.minimum])
def test_maximum_minimum_with_constant(op):
    @fast(15)
    @given(arrays(shapes(max_dims=2, max_side=4), domain="away_from_zero_kinks"))
    def run(x):
        check(lambda t: op(t, 0.0), x)
        check(lambda t: op(0.0, t), x)
    run()


def test_maximum_ties_send_gradient_to_first():
    a, b = leaves(np.array([1.0, 2.0]), np.array([1.0, 3.0]))
    F.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 0.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.0, 1.0])


@fast(25)
@given(broadcastable_shapes(num_shapes=3, **SMALL).flatmap(
    lambda s: st.tuples(arrays(s[0]).map(lambda v: v > 0), arrays(s[1]), arrays(s[2]))))
def test_where(cab):
    cond, a, b = cab
    ta, tb = leaves(a, b)
    y = F.where(cond, ta, tb)
    np.testing.assert_array_equal(y.numpy(), np.where(cond, a, b))
    ga, gb = grad(y.sum(), [ta, tb], allow_unused=True)
    assert ga.shape == a.shape and gb.shape == b.shape
    check(lambda s, t: F.where(Tensor(cond), s, t), a, b, second=True)


def test_where_rejects_non_boolean_condition():
    with pytest.raises(TypeError, match="boolean"):
        F.where(np.array([1, 0]), Tensor(np.ones(2)), Tensor(np.zeros(2)))


@pytest.mark.parametrize("src,dst", [(np.float32, np.float64), (np.float64, np.float32)])
def test_cast_gradient(src, dst):
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3)).astype(src), requires_grad=True)
    c = rng.standard_normal((2, 3)).astype(dst)
    y = F.cast(x, dst)
    assert y.dtype == dst
    np.testing.assert_array_equal(y.numpy(), x.numpy().astype(dst))
    (y * Tensor(c)).sum().backward()
    assert x.grad.dtype == src                      # the gradient comes back in the input's dtype
    np.testing.assert_array_equal(x.grad.numpy(), c.astype(src))


@fast(10)
@given(arrays(shapes(max_dims=2, max_side=4)))
def test_cast_gradcheck(x):
    # float64 -> float64 through a float32 round trip would lose precision; a same-dtype
    # cast is the identity, and double() on float64 data must keep the graph intact.
    check(lambda t: F.cast(t, np.float64) * 2.0, x, second=True)
    check(lambda t: t.double().astype("float64") ** 2, x)


def test_sum_to_and_expand_are_adjoint():
    @fast(20)
    @given(broadcastable_shapes(**SMALL))
    def run(s):
        a_shape, b_shape = s
        out = np.broadcast_shapes(a_shape, b_shape)
        x = np.random.default_rng(0).standard_normal(a_shape)
        check(lambda t: F.expand(t, out), x, second=True)
        big = np.random.default_rng(1).standard_normal(out)
        check(lambda t: F.sum_to(t, a_shape), big, second=True)
        np.testing.assert_allclose(F.expand(Tensor(x), out).numpy(), np.broadcast_to(x, out))
    run()
