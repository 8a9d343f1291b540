"""gradcheck and gradgradcheck catch wrong backward formulas (and pass right ones)."""
import numpy as np
import pytest

import tinygen.functional as F
from tinygen.autograd import Function, Tensor, gradcheck, gradgradcheck
from tinygen.autograd.gradcheck import GradcheckError


class Square(Function):
    """y = x^2, dy/dx = 2x: correct."""
    def forward(self, x):
        return x * x

    def backward(self, g):
        return g * (2 * self.inputs[0])


class WrongSquare(Function):
    """y = x^2 with a wrong backward: 3x instead of 2x."""
    def forward(self, x):
        return x * x

    def backward(self, g):
        return g * (3 * self.inputs[0])


class CubeWithConstantDerivative(Function):
    """y = x^3 whose backward uses 3x^2 as a constant: first derivative right, second wrong (0)."""
    def forward(self, x):
        self.d = 3 * x * x
        return x * x * x

    def backward(self, g):
        return g * Tensor._make(self.d)


def x64(shape, seed=0):
    rng = np.random.default_rng(seed)
    return Tensor(rng.uniform(0.5, 2.0, size=shape), requires_grad=True)


def test_correct_backward_passes():
    assert gradcheck(Square.apply, [x64((3,))])
    assert gradgradcheck(Square.apply, [x64((3,))])


def test_wrong_backward_is_caught_with_values_in_message():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(WrongSquare.apply, [x])
    msg = str(info.value)
    assert "numerical" in msg and "analytic" in msg
    # numerical Jacobian diag(2x) = [2, 4]; analytic diag(3x) = [3, 6]
    numerical = msg.split("numerical:")[1].split("analytic:")[0]
    analytic = msg.split("analytic:")[1]
    assert "4." in numerical and "6." in analytic
    assert isinstance(info.value, AssertionError)


def test_wrong_backward_is_caught_in_random_direction_mode():
    x = x64((20, 20))                         # 400 x 400 Jacobian: checked along random directions
    with pytest.raises(GradcheckError, match="random direction"):
        gradcheck(WrongSquare.apply, [x])
    assert gradcheck(Square.apply, [x64((20, 20))])


def test_raise_exception_false_returns_false():
    assert gradcheck(WrongSquare.apply, [x64((2,))], raise_exception=False) is False


def test_gradgradcheck_catches_a_non_differentiable_backward():
    x = x64((3,))
    assert gradcheck(CubeWithConstantDerivative.apply, [x])           # first derivative fine
    with pytest.raises(GradcheckError):
        gradgradcheck(CubeWithConstantDerivative.apply, [x64((3,))])  # second derivative is not


def test_gradcheck_requires_float64():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(Square.apply, [Tensor(np.ones(2, dtype=np.float32), requires_grad=True)])


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="no input requires"):
        gradcheck(Square.apply, [Tensor(np.ones(2))])


def test_gradcheck_accepts_arrays_and_non_tensor_arguments():
    assert gradcheck(lambda x, k: F.sum(x ** k), [np.array([0.5, 1.5]), 3])


def test_gradcheck_catches_a_wrong_broadcast_reduction():
    class BadAdd(Function):
        """a + b with b's gradient not summed over the broadcast axis (a classic bug)."""
        def forward(self, a, b):
            return a + b

        def backward(self, g):
            return g, F.getitem(g, 0)       # should be g.sum(0)
    a = Tensor(np.ones((3, 2)), requires_grad=True)
    b = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(GradcheckError):
        gradcheck(BadAdd.apply, [a, b])


def test_engine_rejects_a_gradient_of_the_wrong_shape():
    class BadShape(Function):
        def forward(self, x):
            return x.sum()

        def backward(self, g):
            return g                        # should be expanded to x's shape
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(\).*\(3,\)"):
        BadShape.apply(x).backward()
