"""Second derivatives (gradgradcheck) for the ops a gradient penalty passes through.

WGAN-GP differentiates ||dD/dx|| with respect to D's weights, so D's ops need
backward formulas that are themselves differentiable. matmul, linear, var, the
softmax family, BCE, the activations and the shape ops are checked twice in their
own files; here are the elementwise ops (with broadcasting) and a whole penalty.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen.functional as F
from tinygen.autograd import grad, gradcheck
from tinygen.testing import arrays, broadcastable_shapes, shapes

from strategies import check, fast, leaves

SMALL = dict(max_dims=2, max_side=3)

BINARY = {
    "add": (F.add, "real", "real"),
    "sub": (F.sub, "real", "real"),
    "mul": (F.mul, "real", "real"),
    "div": (F.div, "real", "nonzero"),
    "pow": (F.pow, "positive", "real"),
}


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_second_derivative_with_broadcasting(name):
    op, da, db = BINARY[name]

    @fast(15)
    @given(broadcastable_shapes(**SMALL).flatmap(
        lambda s: st.tuples(arrays(s[0], domain=da), arrays(s[1], domain=db))))
    def run(ab):
        check(op, *ab, second=True)
        # nonlinear in the gradient too: the square makes every first derivative depend on x
        check(lambda a, b: op(a, b) * op(a, b), *ab, second=True)
    run()


UNARY = {
    "exp": (F.exp, "real"),
    "log": (F.log, "positive"),
    "sqrt": (F.sqrt, "positive"),
    "neg": (F.neg, "real"),
    "abs": (F.abs, "away_from_zero_kinks"),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_second_derivative(name):
    op, domain = UNARY[name]

    @fast(15)
    @given(arrays(shapes(max_dims=2, max_side=3), domain=domain))
    def run(x):
        check(op, x, second=True)
    run()


@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1)])
@pytest.mark.parametrize("op", [F.sum, F.mean], ids=["sum", "mean"])
def test_sum_mean_second_derivative(op, axis):
    @fast(10)
    @given(arrays(shapes(min_dims=2, max_dims=2, max_side=3)))
    def run(x):
        check(lambda t: op(t * t, axis), x, second=True)
    run()


def test_third_derivative_of_exp_through_grad():
    # grad with create_graph nests: d^3/dx^3 e^(2x) = 8 e^(2x)
    x = leaves(np.array([0.1, -0.4]))[0]
    (g1,) = grad(F.exp(2.0 * x).sum(), x, create_graph=True)
    (g2,) = grad(g1.sum(), x, create_graph=True)
    (g3,) = grad(g2.sum(), x)
    np.testing.assert_allclose(g3.numpy(), 8 * np.exp(2 * x.numpy()))


@fast(10)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2 ** 31))
def test_wgan_gp_penalty_is_differentiable(n, d, h, seed):
    """The penalty (||dD/dx||_2 - 1)^2 of a small critic D, differentiated w.r.t. x and its weights.

    The values are continuous random draws, so a pre-activation lies within the
    difference step (1e-6) of leaky_relu's kink with probability about 1e-6.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    w1, b1, w2 = rng.standard_normal((h, d)), rng.standard_normal(h), rng.standard_normal((1, h))

    def penalty(x_, w1_, b1_, w2_):
        out = F.linear(F.leaky_relu(F.linear(x_, w1_, b1_), 0.2), w2_)
        out = out + F.tanh(out) + F.sigmoid(F.softplus(out))
        (gx,) = grad(out.sum(), x_, create_graph=True)
        norm = F.sqrt((gx * gx).sum(axis=1) + 1e-12)
        return F.mean((norm - 1.0) ** 2)

    assert gradcheck(penalty, leaves(x, w1, b1, w2))
