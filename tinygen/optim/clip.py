"""Gradient clipping by the norm of all gradients taken together.

For the gradients g_1, ..., g_K of the parameters that have one, the total
q-norm treats them as one long vector:

    N = ( sum_k sum_j |g_kj|^q )^(1/q)  =  || (||g_1||_q, ..., ||g_K||_q) ||_q
    N = max_k max_j |g_kj|                                        for q = inf

When N is larger than max_norm every gradient is scaled by the same factor,
PyTorch's rule:

    c = max_norm / (N + 1e-6)        g_k <- c g_k   for every k, when c < 1

so the direction of the whole update is kept and its norm becomes max_norm
(a hair under it: the 1e-6 keeps c finite when N = 0). The norms are summed in
float64; the gradients are scaled in place in their own dtype, and each
gradient Tensor's version is bumped. ``clip_grad_norm_`` returns N, before
clipping, as a Python float: the number worth logging.

A non-finite N (an inf or NaN in some gradient) is returned as it is and the
gradients are left unscaled, so the caller sees the problem; with
``error_if_nonfinite=True`` it is an error instead.
"""
import math
import numbers

from .. import backend
from ..autograd.tensor import Tensor


def _vector_norm(xp, a, q):
    """||a||_q of the flattened array ``a``, in float64, as a 0-d array on a's device."""
    a = xp.abs(a.astype(xp.float64, copy=False)).ravel()
    if q == math.inf:
        return a.max()
    if q == 2:
        return xp.sqrt(xp.dot(a, a))
    return (a ** q).sum() ** (1.0 / q)


def _check(max_norm, norm_type):
    for name, value in (("max_norm", max_norm), ("norm_type", norm_type)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"clip_grad_norm_: {name} must be a number, got {type(value).__name__}")
    if not (math.isfinite(max_norm) and max_norm > 0):
        raise ValueError(f"clip_grad_norm_: max_norm must be a finite positive number, got {max_norm}")
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be positive (or inf), got {norm_type}")


def _grads(parameters):
    """The gradient Tensors of ``parameters`` (one Tensor or an iterable), those that exist."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = []
    for i, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            raise TypeError(f"clip_grad_norm_: parameter {i} is a {type(p).__name__}, not a Tensor/Parameter")
        if p.grad is not None and p.grad.data.size > 0:
            grads.append(p)
    return grads


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients of ``parameters`` so their total ``norm_type``-norm is at most
    ``max_norm``; return the total norm before scaling (a float)."""
    _check(max_norm, norm_type)
    q = float(norm_type)
    owners = _grads(parameters)
    if not owners:
        return 0.0
    xp = backend.get_array_module(owners[0].grad.data)
    norms = xp.stack([_vector_norm(xp, p.grad.data, q) for p in owners])
    total = float(_vector_norm(xp, norms, q))
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise RuntimeError(f"clip_grad_norm_: the total {norm_type}-norm of the gradients is {total}")
        return total
    c = max_norm / (total + 1e-6)
    if c < 1:
        _scale(owners, c)
    return total


def _scale(owners, c):
    done = set()  # a gradient array that two parameters share is scaled once
    for p in owners:
        g = p.grad
        if id(g.data) in done:
            continue
        if getattr(g.data.flags, "writeable", True):
            g.data *= c
            g._bump_version()
            done.add(id(g.data))
        else:  # a read-only view (left by create_graph): a new array
            p.grad = Tensor._make(g.data * c)
