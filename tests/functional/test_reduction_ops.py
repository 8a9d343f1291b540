"""Reductions over None / one axis / several axes (negative too), with and without keepdims."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen.functional as F
from tinygen.autograd import Tensor
from tinygen.testing import arrays, shapes

from strategies import axis_specs, check, fast, leaves


def array_axis_keepdims(domain="real", min_dims=0):
    return shapes(min_dims=min_dims, max_dims=3, max_side=4).flatmap(
        lambda s: st.tuples(arrays(s, domain=domain), axis_specs(len(s)), st.booleans()))


def _np_logsumexp(x, axis, keepdims):
    m = x.max(axis=axis, keepdims=True)
    y = np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m
    return y if keepdims else np.squeeze(y, axis=axis) if axis is not None else y.reshape(())


REDUCTIONS = {
    "sum": (F.sum, lambda x, a, k: x.sum(axis=a, keepdims=k), "real"),
    "mean": (F.mean, lambda x, a, k: x.mean(axis=a, keepdims=k), "real"),
    "max": (F.max, lambda x, a, k: x.max(axis=a, keepdims=k), "distinct"),
    "min": (F.min, lambda x, a, k: x.min(axis=a, keepdims=k), "distinct"),
    "logsumexp": (F.logsumexp, _np_logsumexp, "real"),
}


@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reduction(name):
    op, ref, domain = REDUCTIONS[name]

    @fast(30)
    @given(array_axis_keepdims(domain))
    def run(xak):
        x, axis, keepdims = xak
        y = op(Tensor(x), axis, keepdims)
        np.testing.assert_allclose(y.numpy(), ref(x, axis, keepdims), rtol=1e-12, atol=1e-12)
        check(lambda t: op(t, axis, keepdims), x)
    run()


@pytest.mark.parametrize("unbiased", [False, True])
def test_var(unbiased):
    @fast(30)
    @given(shapes(min_dims=1, max_dims=3, min_side=2, max_side=4).flatmap(
        lambda s: st.tuples(arrays(s), axis_specs(len(s)), st.booleans())))
    def run(xak):
        x, axis, keepdims = xak
        y = F.var(Tensor(x), axis, keepdims, unbiased=unbiased)
        np.testing.assert_allclose(y.numpy(), x.var(axis=axis, keepdims=keepdims, ddof=int(unbiased)),
                                   rtol=1e-10, atol=1e-12)
        check(lambda t: F.var(t, axis, keepdims, unbiased=unbiased), x, second=True)
    run()


def test_var_needs_enough_values():
    with pytest.raises(ValueError, match=r"\(1, 3\)"):
        F.var(Tensor(np.ones((1, 3))), axis=0, unbiased=True)


@pytest.mark.parametrize("op", [F.sum, F.mean, F.logsumexp])
def test_smooth_reductions_second_derivative(op):
    @fast(10)
    @given(array_axis_keepdims())
    def run(xak):
        x, axis, keepdims = xak
        check(lambda t: op(t, axis, keepdims) ** 2, x, second=True)
    run()


def test_max_ties_share_the_gradient():
    x = leaves(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]))[0]
    F.max(x, axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    y = leaves(np.array([4.0, -1.0, -1.0]))[0]
    F.min(y).backward()
    np.testing.assert_allclose(y.grad.numpy(), [0, 0.5, 0.5])


def test_logsumexp_is_stable():
    x = Tensor(np.array([1000.0, 1000.0, -np.inf]))
    np.testing.assert_allclose(F.logsumexp(x).item(), 1000.0 + np.log(2.0))
    with np.errstate(divide="ignore"):   # log(0) = -inf, on purpose
        assert F.logsumexp(Tensor(np.full(3, -np.inf))).item() == -np.inf
    x = leaves(np.array([800.0, 0.0]))[0]
    F.logsumexp(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 0.0], atol=1e-300)


def test_reduction_axis_errors():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        F.sum(x, axis=2)
    with pytest.raises(ValueError, match="repeated axis"):
        F.mean(x, axis=(0, -2))
    with pytest.raises(ValueError, match=r"\(0, 3\)"):
        F.max(Tensor(np.ones((0, 3))), axis=0)


def test_argmax_has_no_gradient():
    x = leaves(np.array([[1.0, 5.0], [7.0, 2.0]]))[0]
    i = F.argmax(x, axis=1)
    assert i.dtype.kind == "i" and not i.requires_grad
    np.testing.assert_array_equal(i.numpy(), [1, 0])
