"""Tensors hold numbers: text and objects are refused at once, and only real floats take gradients."""
import numpy as np
import pytest

import tinygen
from tinygen.autograd import Tensor


@pytest.mark.parametrize("data", ["abc", np.array(["a", "b"]), [b"x"], np.array([None, 1], dtype=object)])
def test_non_numeric_data_is_refused(data):
    with pytest.raises(TypeError, match="cannot make a tensor from .* of dtype"):
        tinygen.tensor(data)


def test_complex_tensors_cannot_require_gradients():
    t = tinygen.tensor(np.array([1 + 2j]))
    assert t.dtype.kind == "c"
    with pytest.raises(TypeError, match="only real floating-point tensors can require gradients; this one is complex128"):
        tinygen.tensor(np.array([1 + 2j]), requires_grad=True)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_setting_requires_grad_on_an_integer_tensor_is_refused(dtype):
    t = Tensor(np.array([1, 0], dtype=dtype))
    with pytest.raises(TypeError, match=f"this one is {np.dtype(dtype)}"):
        t.requires_grad = True
    assert t.requires_grad is False


def test_requires_grad_assignment_still_works_on_floats():
    t = Tensor(np.array([1.0]))
    t.requires_grad = True
    (t * 2).sum().backward()
    assert t.grad.item() == 2.0
