"""Tensor construction, dtypes, comparisons, and the errors users meet first."""
import numpy as np
import pytest

import tinygen
import tinygen.functional as F
from tinygen.autograd import Tensor


def test_python_lists_and_floats_become_float32():
    assert tinygen.tensor([1.0, 2.0]).dtype == np.float32
    assert tinygen.tensor([[1, 2.5]]).dtype == np.float32
    assert tinygen.tensor(3.0).dtype == np.float32
    assert tinygen.tensor([1, 2]).dtype.kind == "i"      # integers stay integers


def test_numpy_float64_is_preserved():
    x = tinygen.tensor(np.ones(3), requires_grad=True)
    assert x.dtype == np.float64
    y = F.log_softmax(F.tanh(x * 2.0 + 1.0) @ x.reshape(3, 1).expand(3, 2), axis=0).sum()
    assert y.dtype == np.float64
    y.backward()
    assert x.grad.dtype == np.float64


SCALARS = [2.0, 2, np.float64(2.0), np.float32(2.0), np.int64(2)]


@pytest.mark.parametrize("s", SCALARS, ids=lambda s: type(s).__name__)
def test_float32_preserved_with_scalars(s):
    x = tinygen.tensor([0.5, 1.5], requires_grad=True)
    outs = [x + s, s + x, x - s, s - x, x * s, s * x, x / s, s / x, x ** s, s ** x,
            F.maximum(x, s), F.minimum(x, s), F.clip(x, s - 3, s), F.where(x > 1, x, s),
            F.leaky_relu(x, 0.1), F.elu(x), x.mean(), x.var()]
    for y in outs:
        assert y.dtype == np.float32, (s, y)
    sum(y.sum() for y in outs).backward()
    assert x.grad.dtype == np.float32


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        tinygen.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="int64"):
        Tensor(np.arange(3)).requires_grad_()
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(np.array([True, False]), requires_grad=True)


def test_cast_to_integer_carries_no_gradient():
    x = tinygen.tensor([1.5, 2.5], requires_grad=True)
    i = F.cast(x, np.int64)
    assert i.dtype == np.int64 and not i.requires_grad


@pytest.mark.parametrize("op", ["__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"])
def test_comparisons_are_boolean_without_grad(op):
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = Tensor(np.array([3.0, 2.0, 1.0]), requires_grad=True)
    for other in (y, 2.0, np.array([2.0, 2.0, 2.0])):
        r = getattr(x, op)(other)
        assert isinstance(r, Tensor)
        assert r.dtype == np.bool_ and not r.requires_grad and r.creator is None
        expected = getattr(x.numpy(), op)(other.numpy() if isinstance(other, Tensor) else other)
        np.testing.assert_array_equal(r.numpy(), expected)


def test_comparison_shape_error_names_shapes():
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        Tensor(np.ones(2)) < Tensor(np.ones(3))


def test_requires_grad_off_only_on_leaves():
    x = tinygen.tensor([1.0], requires_grad=True)
    y = x * 2.0
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)
    x.requires_grad_(False)
    assert not (x * 2.0).requires_grad


def test_tensor_copies_its_data():
    a = np.ones(3)
    x = tinygen.tensor(a)
    a[0] = 5.0
    assert x.numpy()[0] == 1.0


def test_item_and_bool_errors_name_the_shape():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        x.item()
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        bool(x)


def test_ragged_lists_are_rejected():
    with pytest.raises((TypeError, ValueError)):
        tinygen.tensor([[1.0], [1.0, 2.0]])


def test_operator_methods_match_functional():
    x = Tensor(np.arange(6.0).reshape(2, 3) + 1, requires_grad=True)
    np.testing.assert_allclose((x @ x.T).numpy(), x.numpy() @ x.numpy().T)
    np.testing.assert_allclose((-x).numpy(), -x.numpy())
    np.testing.assert_allclose(abs(x - 3).numpy(), np.abs(x.numpy() - 3))
    np.testing.assert_allclose((2.0 ** x).numpy(), 2.0 ** x.numpy())
    np.testing.assert_allclose(x.permute(1, 0).numpy(), x.numpy().T)
    np.testing.assert_allclose(x.reshape(3, 2).numpy(), x.numpy().reshape(3, 2))
    np.testing.assert_allclose(x.var(axis=1, unbiased=True).numpy(), x.numpy().var(axis=1, ddof=1))
    np.testing.assert_array_equal(x.argmax(axis=1).numpy(), x.numpy().argmax(axis=1))
    v = Tensor(np.arange(3.0))
    np.testing.assert_array_equal(v.permute(0).numpy(), v.numpy())       # one axis, given as an int
    np.testing.assert_array_equal(Tensor(np.ones(1)).expand(3).numpy(), np.ones(3))
