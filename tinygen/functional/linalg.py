"""Matrix product, batched and broadcasting (NumPy's ``matmul`` rules).

For C = A B over the last two axes (leading axes broadcast):

    dL/dA = sum_to(dL/dC B^T, A.shape)        dL/dB = sum_to(A^T dL/dC, B.shape)

where ^T swaps the last two axes. A 1-D operand is treated as a row (left) or a
column (right) and the added axis is removed from the result, as in NumPy.
"""
from .. import fast_paths
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ._base import as_tensor, check_same_dtype
from . import _array_grads
from .elementwise import _arrays, sum_to
from .shape import reshape, swapaxes


def _product(a, b):
    """a @ b on arrays; an inner size of 1 (an outer product, such as the gradient of a
    one-logit read-out) as a broadcast product, which NumPy runs ten times faster than its
    GEMM (measured) and which gives the same numbers (one product per entry)."""
    if a.ndim >= 2 and b.ndim >= 2 and a.shape[-1] == 1 and fast_paths.enabled():
        return a * b
    return a @ b


class MatMul(Function):
    def forward(self, a, b):
        return _product(a, b)

    def backward(self, g):
        a, b = self.inputs
        if fast_paths.array_backward():
            return _arrays(_array_grads.matmul(g.data, a.data, b.data, self.needs_input_grad, _product))
        ga = sum_to(matmul(g, swapaxes(b, -1, -2)), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(matmul(swapaxes(a, -1, -2), g), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


def matmul(a, b):
    if not isinstance(a, Tensor):
        a = as_tensor(a, like=b)
    if not isinstance(b, Tensor):
        b = as_tensor(b, like=a)
    check_same_dtype("matmul", a=a, b=b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least one dimension, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[-1] != b.shape[0 if b.ndim == 1 else -2]:
        raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not align "
                         f"({a.shape[-1]} != {b.shape[0 if b.ndim == 1 else -2]})")
    if a.ndim == 1:  # (k,) @ (k,) is a scalar; (k,) @ (..., k, m) is (..., m)
        out_shape = b.shape[:-2] + b.shape[-1:] if b.ndim > 1 else ()
        return reshape(matmul(reshape(a, (1, -1)), b), out_shape)
    if b.ndim == 1:
        return reshape(matmul(a, reshape(b, (-1, 1))), a.shape[:-1])
    try:
        return MatMul.apply(a, b)
    except ValueError:
        raise ValueError(f"matmul: batch shapes of {tuple(a.shape)} and {tuple(b.shape)} cannot be "
                         f"broadcast together") from None


class Linear(Function):
    """y = x W^T + b in one op (the MLP's hot path: one GEMM each way, no temporary transposes)."""
    input_names = ("input", "weight", "bias")

    def forward(self, x, w, b=None):
        y = _product(x, w.T)
        if b is not None:
            y += b
        return y

    def backward(self, g):
        x, w = self.inputs[:2]
        need = self.needs_input_grad
        if fast_paths.array_backward() and g.ndim >= 2:
            bias = self.inputs[2].shape if len(self.inputs) == 3 else None
            return _arrays(_array_grads.linear(g.data, x.data, w.data, bias, need, _product))
        gx = matmul(g, w) if need[0] else None
        gw = matmul(swapaxes(reshape(g, (-1, g.shape[-1])), 0, 1), reshape(x, (-1, x.shape[-1]))) \
            if need[1] else None
        if len(self.inputs) == 2:
            return gx, gw
        gb = sum_to(g, self.inputs[2].shape) if need[2] else None
        return gx, gw, gb


def linear(x, weight, bias=None):
    """x W^T + b: x (..., in), weight (out, in), bias (out,)."""
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input {tuple(x.shape)} does not fit weight {tuple(weight.shape)} "
                         f"(expected input (..., {weight.shape[1] if weight.ndim == 2 else '?'}))")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias has shape {tuple(bias.shape)}, expected ({weight.shape[0]},)")
    check_same_dtype("linear", input=x, weight=weight, bias=bias)
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)
