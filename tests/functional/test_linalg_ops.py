"""matmul (batched, broadcasting, 1-D operands) and linear, with second derivatives."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen.functional as F
from tinygen.autograd import Tensor, grad
from tinygen.testing import arrays, broadcastable_shapes

from strategies import check, fast, leaves

SIDE = st.integers(1, 4)


@st.composite
def matmul_shapes(draw):
    """Shapes (A, B) for A @ B: batch shapes broadcast, and either operand may be 1-D."""
    n, k, m = draw(SIDE), draw(SIDE), draw(SIDE)
    batch_a, batch_b = draw(broadcastable_shapes(max_dims=2, max_side=3))
    a_1d, b_1d = draw(st.booleans()), draw(st.booleans())
    a = (k,) if a_1d else batch_a + (n, k)
    b = (k,) if b_1d else batch_b + (k, m)
    return a, b


@fast(40)
@given(matmul_shapes().flatmap(lambda s: st.tuples(arrays(s[0]), arrays(s[1]))))
def test_matmul(ab):
    a, b = ab
    ta, tb = leaves(a, b)
    y = F.matmul(ta, tb)
    expected = np.matmul(a, b)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)
    ga, gb = grad(y.sum(), [ta, tb])
    assert ga.shape == a.shape and gb.shape == b.shape
    check(F.matmul, a, b)
    check(lambda s, t: s @ t, a, b)


@fast(15)
@given(matmul_shapes().flatmap(lambda s: st.tuples(arrays(s[0]), arrays(s[1]))))
def test_matmul_second_derivative(ab):
    check(F.matmul, *ab, second=True)


def test_matmul_vector_cases_by_hand():
    a, b = leaves(np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0]))
    y = F.matmul(a, b)
    assert y.shape == () and y.item() == 32.0
    y.backward()
    np.testing.assert_array_equal(a.grad.numpy(), [4.0, 5.0, 6.0])
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 2.0, 3.0])
    v = Tensor(np.ones(3))
    m = Tensor(np.ones((2, 3, 4)))
    assert F.matmul(v, m).shape == (2, 4)
    assert F.matmul(Tensor(np.ones((2, 4, 3))), v).shape == (2, 4)


def test_matmul_with_array_operand():
    a = leaves(np.arange(6.0).reshape(2, 3))[0]
    w = np.ones((3, 2))
    check(lambda t: F.matmul(t, w), a.numpy())
    check(lambda t: F.matmul(np.ones((4, 2)), t), a.numpy())


@pytest.mark.parametrize("a,b,pattern", [
    ((2, 3), (4, 5), r"\(2, 3\) and \(4, 5\)"),
    ((3,), (4,), r"\(3,\) and \(4,\)"),
    ((2, 2, 3), (3, 3, 4), r"\(2, 2, 3\) and \(3, 3, 4\)"),
    ((), (3,), r"\(\) and \(3,\)"),
])
def test_matmul_shape_errors_name_both_shapes(a, b, pattern):
    with pytest.raises(ValueError, match=pattern):
        F.matmul(Tensor(np.ones(a)), Tensor(np.ones(b)))


@st.composite
def linear_inputs(draw):
    lead = tuple(draw(st.lists(SIDE, max_size=2)))
    n_in, n_out = draw(SIDE), draw(SIDE)
    x = draw(arrays(lead + (n_in,)))
    w = draw(arrays((n_out, n_in)))
    b = draw(st.none() | arrays((n_out,)))
    return x, w, b


@fast(40)
@given(linear_inputs())
def test_linear(xwb):
    x, w, b = xwb
    expected = x @ w.T + (0 if b is None else b)
    args = (x, w) if b is None else (x, w, b)
    np.testing.assert_allclose(F.linear(*[Tensor(a) for a in args]).numpy(), expected,
                               rtol=1e-12, atol=1e-12)
    check(F.linear, *args)


@fast(15)
@given(linear_inputs())
def test_linear_second_derivative(xwb):
    x, w, b = xwb
    check(F.linear, *((x, w) if b is None else (x, w, b)), second=True)


def test_linear_with_constant_weight():
    x = np.random.default_rng(0).standard_normal((3, 2))
    w = Tensor(np.ones((4, 2)))
    check(lambda t: F.linear(t, w), x, second=True)


def test_linear_shape_errors():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        F.linear(Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5))))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        F.linear(Tensor(np.ones((2, 5))), Tensor(np.ones((4, 5))), Tensor(np.ones(3)))


def test_linear_float32_stays_float32():
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    w = Tensor(np.ones((4, 3), np.float32), requires_grad=True)
    b = Tensor(np.ones(4, np.float32), requires_grad=True)
    y = F.linear(x, w, b)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32


@fast(20)
@given(broadcastable_shapes(max_dims=2, max_side=3), SIDE, SIDE, st.integers(0, 100))
def test_an_inner_size_of_1_is_the_exact_outer_product(batches, n, m, seed):
    """K = 1 runs as a broadcast product (faster than NumPy's GEMM there): the same numbers, float32 too."""
    rng = np.random.default_rng(seed)
    for dtype in (np.float64, np.float32):
        a = rng.standard_normal(batches[0] + (n, 1)).astype(dtype)
        b = rng.standard_normal(batches[1] + (1, m)).astype(dtype)
        y = F.matmul(Tensor(a), Tensor(b))
        assert y.dtype == dtype
        np.testing.assert_array_equal(y.numpy(), np.matmul(a, b))
    w = rng.standard_normal((m, 1))
    x = rng.standard_normal((n, 1))
    np.testing.assert_array_equal(F.linear(Tensor(x), Tensor(w)).numpy(), x @ w.T)
    np.testing.assert_array_equal(F.linear(Tensor(x[0]), Tensor(w)).numpy(), x[0] @ w.T)
    check(F.matmul, a.astype(np.float64), b.astype(np.float64), second=True)
