"""Normalization: batch, instance and layer norm.

All three standardize x over a set of axes A and then apply an optional affine
map, differing only in A:

    mu      = mean_A x
    var     = mean_A (x - mu)^2                              (biased: divide by m = |A|)
    x_hat   = (x - mu) / sqrt(var + eps)
    y       = gamma x_hat + beta                             gamma = weight, beta = bias

    batch_norm      x (N, C, ...)   A = every axis but the channel axis 1 (per channel)
    instance_norm   x (N, C, ...)   A = the spatial axes 2, 3, ...         (per sample and channel)
    layer_norm      x (..., *S)     A = the trailing axes S = normalized_shape (per sample)

Each output depends on every value it was standardized with, through mu and var.
With s = 1 / sqrt(var + eps), m = |A|, g = dL/dy and g_hat = gamma g = dL/dx_hat,
the chain rule through mu and var gives (mean over A, per statistic)

    dL/dx     = s (g_hat - mean_A g_hat - x_hat mean_A(g_hat x_hat))
                + (dL/dmu + 2 dL/dvar (x - mu)) / m           (when mu, var are used too)
    dL/dgamma = sum g x_hat,    dL/dbeta = sum g             (over every axis gamma is constant on)

One op, ``Standardize``, computes y, mu and var for batch and instance norm (gamma
and beta per channel, so constant along A) and x_hat for layer norm (whose affine
map varies along A and follows as two ordinary products). Its backward is the
formula above twice: on arrays in one pass per term when no graph is recorded
(``_norm_arrays.py``), and in Tensor ops (mean, sub, mul, pow) under
``create_graph``, so that the gradient is itself differentiable (a gradient penalty
passes through a critic's normalization layers).

Running statistics (batch_norm; instance_norm when asked) are an estimate kept for
evaluation, updated with the unbiased variance, as PyTorch does:

    running_mean <- (1 - momentum) running_mean + momentum mu
    running_var  <- (1 - momentum) running_var  + momentum var m / (m - 1)

For instance_norm, mu and var here are the averages over the batch of the
per-sample statistics. In evaluation (``training=False``) the running estimates
replace mu and var, so a sample's output depends on nothing else in its batch.
"""
import numpy as np

from .. import backend
from .. import fast_paths
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from . import _norm_arrays
from ._base import array_tensor, as_float
from .elementwise import sum_to
from .reduction import mean
from .shape import reshape


# --- the op: standardize, with a per-statistic affine map -------------------------

class Standardize(Function):
    """(y, mu, var): y = gamma x_hat + beta over ``axes``. The inputs are x, then weight and
    bias where ``affine`` = (weight given, bias given) says, each broadcast as ``view``
    against the statistics (constant along A)."""
    input_names = ("input", "weight", "bias")
    op_name = "standardize"

    def forward(self, x, *vectors, axes, eps, view, affine):
        self.axes, self.eps, self.view, self.affine = axes, eps, view, affine
        rest = iter(vectors)
        gamma, beta = (next(rest).reshape(view) if given else None for given in affine)
        keep = any(self.needs_input_grad)
        y, mu, var, d, s = _norm_arrays.standardize(x, gamma, beta, axes, eps, keep)
        if keep:
            self.d, self.s = d, s   # d = x - mu and s = 1 / sqrt(var + eps), for the fast backward
        return y, mu, var

    def backward(self, g, g_mu, g_var):
        if not fast_paths.array_backward():
            return self._backward_graph(g, g_mu, g_var)
        weight, bias = self._vectors()
        gamma = None if weight is None else weight.data.reshape(self.view)
        gx, g_gamma, g_beta = _norm_arrays.standardize_grad(
            g.data, g_mu.data, g_var.data, self.d, self.s, gamma, self.axes, self.needs_input_grad[0])
        grads = [None if gx is None else array_tensor(gx)]
        for t, total in ((weight, g_gamma), (bias, g_beta)):
            if t is not None:
                grads.append(array_tensor(_norm_arrays.reduce_to(total, self.view).reshape(t.shape)))
        return tuple(grads)

    def _backward_graph(self, g, g_mu, g_var):
        """The same gradients in Tensor ops, mu and var recomputed as a graph of x."""
        x = self.inputs[0]
        weight, bias = self._vectors()
        d, s, _, _ = _moments(x, self.axes, self.eps)
        x_hat = d * s
        g_hat = g if weight is None else g * reshape(weight, self.view)
        m = _norm_arrays.count(x.shape, self.axes)
        grads = [s * (g_hat - mean(g_hat, axis=self.axes, keepdims=True)
                      - x_hat * mean(g_hat * x_hat, axis=self.axes, keepdims=True))
                 + (g_mu + 2 * g_var * d) / m]
        if weight is not None:
            grads.append(reshape(sum_to(g * x_hat, self.view), weight.shape))
        if bias is not None:
            grads.append(reshape(sum_to(g, self.view), bias.shape))
        return tuple(grads)

    def _vectors(self):
        """(weight, bias) among the inputs, None where not given."""
        rest = iter(self.inputs[1:])
        return tuple(next(rest) if given else None for given in self.affine)


def _standardize(x, axes, eps, weight=None, bias=None, view=None):
    """(gamma x_hat + beta, mu, var): statistics over ``axes`` kept as size-1 axes, var biased."""
    vectors = [t for t in (weight, bias) if t is not None]
    return Standardize.apply(as_float(x), *vectors, axes=axes, eps=eps, view=view,
                             affine=(weight is not None, bias is not None))


# --- the shared steps --------------------------------------------------------

def _moments(x, axes, eps):
    """d = x - mu, s = (var + eps)^(-1/2), mu and var over ``axes`` in Tensor ops (a graph of x)."""
    mu = mean(x, axis=axes, keepdims=True)
    d = x - mu
    var = mean(d * d, axis=axes, keepdims=True)
    return d, (var + eps) ** -0.5, mu, var  # one PowScalar instead of a sqrt and a division


def _standardize_frozen(x, running_mean, running_var, eps, view):
    """(x - running_mean) / sqrt(running_var + eps): the statistics are constants."""
    xp = backend.get_array_module(running_var.data)
    mu = running_mean.data.reshape(view).astype(x.dtype, copy=False)
    inv_std = 1.0 / xp.sqrt(running_var.data.reshape(view).astype(x.dtype, copy=False) + eps)
    return (x - Tensor._make(mu)) * Tensor._make(inv_std)


def _update_running(running, value, momentum):
    """running <- (1 - momentum) running + momentum value, in place (bookkeeping, not graph)."""
    if running is not None:
        running.data *= 1 - momentum
        running.data += momentum * value
        running._bump_version()


def _affine(y, weight, bias, view):
    if weight is not None:
        y = y * reshape(weight, view)
    if bias is not None:
        y = y + reshape(bias, view)
    return y


def _check_vectors(op, x, size, what, **vectors):
    for name, t in vectors.items():
        if t is not None and tuple(t.shape) != (size,):
            raise ValueError(f"{op}: {name} has shape {tuple(t.shape)}, expected ({size},) for "
                             f"input {tuple(x.shape)} with {size} {what}")


def _check_running_pair(op, running_mean, running_var):
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")


# --- the three norms -----------------------------------------------------------

def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=True,
               momentum=0.1, eps=1e-5):
    """Batch norm of ``x`` (N, C, ...) per channel (axis 1).

    ``running_mean`` / ``running_var``: Tensors (C,) or None. In training they are
    updated in place (when given); in evaluation they are used and must be given.
    ``weight`` / ``bias``: Tensors (C,) or None (no affine step).
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C, ...), got shape {tuple(x.shape)}")
    c = x.shape[1]
    _check_vectors("batch_norm", x, c, "channels", running_mean=running_mean,
                   running_var=running_var, weight=weight, bias=bias)
    view = (1, c) + (1,) * (x.ndim - 2)  # broadcasts a (C,) vector against x
    if training:
        m = x.size // c
        if m <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got "
                             f"input shape {tuple(x.shape)} (use a batch of 2 or more, or eval mode)")
        y, mu, var = _standardize(x, (0,) + tuple(range(2, x.ndim)), eps, weight, bias, view)
        _update_running(running_mean, mu.data.reshape(c), momentum)
        _update_running(running_var, var.data.reshape(c) * (m / (m - 1)), momentum)
        return y
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
    return _affine(_standardize_frozen(x, running_mean, running_var, eps, view), weight, bias, view)


def instance_norm(x, weight=None, bias=None, eps=1e-5, running_mean=None, running_var=None,
                  training=True, momentum=0.1):
    """Instance norm of ``x`` (N, C, *spatial): each (sample, channel) slice on its own.

    The slice's own statistics are used in training, and always when no running
    statistics are given; with ``running_mean`` / ``running_var`` (C,) they are
    updated in training and used in evaluation. ``weight`` / ``bias``: (C,) or None.
    """
    if x.ndim < 3:
        raise ValueError(f"instance_norm: input must be (N, C, *spatial) with at least one spatial "
                         f"axis, got shape {tuple(x.shape)}")
    n, c = x.shape[:2]
    _check_vectors("instance_norm", x, c, "channels", running_mean=running_mean,
                   running_var=running_var, weight=weight, bias=bias)
    _check_running_pair("instance_norm", running_mean, running_var)
    view = (1, c) + (1,) * (x.ndim - 2)
    if training or running_mean is None:
        m = int(np.prod(x.shape[2:]))
        if m <= 1:
            raise ValueError(f"instance_norm: expected more than 1 spatial value per channel, got "
                             f"input shape {tuple(x.shape)}")
        y, mu, var = _standardize(x, tuple(range(2, x.ndim)), eps, weight, bias, view)
        if training and running_mean is not None:
            _update_running(running_mean, mu.data.reshape(n, c).mean(axis=0), momentum)
            _update_running(running_var, var.data.reshape(n, c).mean(axis=0) * (m / (m - 1)), momentum)
        return y
    return _affine(_standardize_frozen(x, running_mean, running_var, eps, view), weight, bias, view)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer norm of ``x`` over its trailing axes ``normalized_shape`` (an int or a tuple).

    ``weight`` / ``bias``: Tensors of shape ``normalized_shape`` or None.
    """
    shape = ((int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer))
             else tuple(int(s) for s in normalized_shape))
    k = len(shape)
    if k == 0 or any(s < 1 for s in shape):
        raise ValueError(f"layer_norm: normalized_shape must be positive sizes, got {normalized_shape!r}")
    if x.ndim < k or tuple(x.shape[x.ndim - k:]) != shape:
        raise ValueError(f"layer_norm: input of shape {tuple(x.shape)} does not end in normalized_shape "
                         f"{shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(f"layer_norm: {name} has shape {tuple(t.shape)}, expected normalized_shape "
                             f"{shape}")
    x_hat = _standardize(x, tuple(range(x.ndim - k, x.ndim)), eps)[0]   # gamma varies along A: apart
    return _affine(x_hat, weight, bias, shape)
