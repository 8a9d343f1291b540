"""Losses, written with the ops above so every one is differentiable twice.

    binary_cross_entropy_with_logits(l, t) = -[t log sigmoid(l) + (1 - t) log(1 - sigmoid(l))]
        = (1 - t) softplus(l) + t softplus(-l)      (= softplus(l) - t l, without its cancellation
        at large l), exact for any l: an infinite logit on the right side costs 0, not 0 * inf
    cross_entropy(l, y)   = -log_softmax(l)[y]       (l: (N, C, ...), y: (N, ...) integers)
    mse_loss(x, y)        = (x - y)^2
    l1_loss(x, y)         = |x - y|
    gaussian_nll(x, mu, log_var) = 1/2 [log(2 pi) + log_var + (x - mu)^2 e^(-log_var)]
        the negative log-density of x under N(mu, e^log_var), in nats; at x = mu the
        quadratic term is 0 however small the variance (0 times e^(-log_var) = inf counts as 0)

``reduction`` is 'mean' (over every element), 'sum' or 'none'.
"""
import math

import numpy as np

from ..autograd.tensor import Tensor
from .. import backend
from ._base import as_tensor
from .activation import softplus, log_softmax
from .elementwise import exp, where, abs as _abs
from .reduction import sum as _sum, mean as _mean
from .shape import transpose, reshape, getitem


def _reduce(loss, reduction, op):
    if reduction == "mean":
        return _mean(loss)
    if reduction == "sum":
        return _sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _same_shape(a, b, op, names=("input", "target")):
    if a.shape != b.shape:
        raise ValueError(f"{op}: {names[0]} has shape {tuple(a.shape)} but {names[1]} has shape "
                         f"{tuple(b.shape)}; they must match")


def _zero_times_inf(w, v):
    """Where w is 0 and v infinite: IEEE gives w v = nan, the loss's limit is 0."""
    xp = backend.get_array_module(w.data)
    return (w.data == 0) & xp.isinf(v.data)


def _times(w, v):
    """w * v, with 0 where w is 0 and v infinite. v is masked before the product, not the
    product after it, so that no nan reaches the gradients either (d(w v)/dw = v)."""
    bad = _zero_times_inf(w, v)
    return w * where(bad, 0.0, v) if bad.any() else w * v


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    target = as_tensor(target, like=logits)
    _same_shape(logits, target, "binary_cross_entropy_with_logits", ("logits", "target"))
    loss = _times(1 - target, softplus(logits)) + _times(target, softplus(-logits))
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def cross_entropy(logits, target, reduction="mean"):
    """Logits (N, C) or (N, C, d1, ...) with integer targets (N,) or (N, d1, ...) in [0, C)."""
    t = target.data if isinstance(target, Tensor) else target
    xp = backend.get_array_module(logits.data)
    t = xp.asarray(t)
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integer class indices, got {t.dtype}")
    if logits.ndim < 2 or t.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f"cross_entropy: logits {tuple(logits.shape)} need targets of shape "
                         f"{logits.shape[:1] + logits.shape[2:]} (class axis 1), got {tuple(t.shape)}")
    c = logits.shape[1]
    if t.size and (int(t.min()) < 0 or int(t.max()) >= c):
        raise ValueError(f"cross_entropy: targets must lie in [0, {c}), got values from "
                         f"{int(t.min())} to {int(t.max())}")
    logp = log_softmax(logits, axis=1)
    if logits.ndim > 2:  # move the class axis last, then treat every position as a row
        logp = transpose(logp, (0,) + tuple(range(2, logits.ndim)) + (1,))
    flat = reshape(logp, (-1, c))
    picked = getitem(flat, (xp.arange(flat.shape[0]), t.reshape(-1)))
    return _reduce(-reshape(picked, t.shape), reduction, "cross_entropy")


def mse_loss(input, target, reduction="mean"):
    target = as_tensor(target, like=input)
    _same_shape(input, target, "mse_loss")
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(input, target, reduction="mean"):
    target = as_tensor(target, like=input)
    _same_shape(input, target, "l1_loss")
    return _reduce(_abs(input - target), reduction, "l1_loss")


_LOG_2PI = math.log(2 * math.pi)


def _scaled_square(d2, log_var):
    """d2 e^(-log_var), 0 where d2 is 0 and e^(-log_var) overflows; there the exponent is
    masked too, so that its backward (g e^(-log_var)) never meets 0 * inf either."""
    v = exp(-log_var)
    bad = _zero_times_inf(d2, v)
    if not bad.any():
        return d2 * v
    return d2 * where(bad, 0.0, exp(-where(bad, 0.0, log_var)))


def gaussian_nll(x, mean, log_var, reduction="mean"):
    """-log N(x; mean, exp(log_var)) elementwise, in nats (log_var broadcasts, e.g. a shared scalar)."""
    x = as_tensor(x, like=mean)
    _same_shape(x, mean, "gaussian_nll", ("x", "mean"))
    log_var = as_tensor(log_var, like=mean)
    try:
        np.broadcast_shapes(log_var.shape, mean.shape)
    except ValueError:
        raise ValueError(f"gaussian_nll: log_var of shape {tuple(log_var.shape)} does not broadcast "
                         f"to {tuple(mean.shape)}") from None
    d = x - mean
    return _reduce(0.5 * (_LOG_2PI + log_var + _scaled_square(d * d, log_var)), reduction, "gaussian_nll")
