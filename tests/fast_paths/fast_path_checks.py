"""What the fast-path tests share: a function run with the fast paths on and then off, an op's
value and gradients, rectangular shapes drawn by hypothesis."""
import os

import numpy as np
from hypothesis import strategies as st

from tinygen import fast_paths
from tinygen.autograd.tensor import Tensor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def both(fn):
    """fn() with the fast paths on, then with the reference paths."""
    assert fast_paths.enabled()
    fast = fn()
    with fast_paths.reference_paths():
        assert not fast_paths.enabled()
        reference = fn()
    assert fast_paths.enabled()
    return fast, reference


def value_and_grads(op, *arrays):
    """op's output and the gradients of <output, a fixed random cotangent> w.r.t. every input."""
    inputs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    y = op(*inputs)
    cotangent = np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype)
    (y * Tensor(cotangent)).sum().backward()
    return [y.numpy()] + [t.grad.numpy() for t in inputs]


def rectangle(draw, dims):
    return tuple(draw(st.integers(1, 5)) for _ in range(dims))
