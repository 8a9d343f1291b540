"""F.cumsum: running sums against NumPy, the backward as a reversed cumsum, gradients to second order."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen.functional as F
from tinygen.autograd import Tensor
from tinygen.testing import arrays, shapes

from strategies import check, fast, leaves


def reference_cumsum(x, axis):
    """y[..., i, ...] = sum_{j <= i} x[..., j, ...], one index at a time."""
    x = np.moveaxis(x, axis, 0)
    y = np.zeros_like(x)
    total = np.zeros(x.shape[1:])
    for i in range(x.shape[0]):
        total = total + x[i]
        y[i] = total
    return np.moveaxis(y, 0, axis)


@fast(25)
@given(shapes(min_dims=1, max_dims=3, max_side=4).flatmap(
    lambda s: st.tuples(arrays(s), st.integers(-len(s), len(s) - 1))))
def test_values_and_gradients(case):
    x, axis = case
    np.testing.assert_allclose(F.cumsum(Tensor(x), axis).numpy(), reference_cumsum(x, axis), rtol=1e-12)
    check(lambda t: F.cumsum(t, axis), x, second=True)
    # dL/dx_j = sum_{i >= j} dL/dy_i: the seed's running sums taken from the end
    g = np.random.default_rng(0).standard_normal(x.shape)
    t = leaves(x)[0]
    (F.cumsum(t, axis) * Tensor(g)).sum().backward()
    expected = np.flip(reference_cumsum(np.flip(g, axis), axis), axis)
    np.testing.assert_allclose(t.grad.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_float32_stays_float32():
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    y = F.cumsum(x, 1)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [[3, 2, 1], [3, 2, 1]])


def test_errors():
    with pytest.raises(ValueError, match="axis 2 is out of range for a tensor with 2 dimensions"):
        F.cumsum(Tensor(np.ones((2, 3))), 2)
    with pytest.raises(ValueError, match="at least one axis, got a scalar"):
        F.cumsum(Tensor(np.float64(1.0)), 0)
    with pytest.raises(TypeError, match=r"axis must be one integer, got \(0, 1\)"):
        F.cumsum(Tensor(np.ones((2, 3))), (0, 1))
    with pytest.raises(TypeError, match="expected a Tensor, got ndarray"):
        F.cumsum(np.ones(3), 0)
