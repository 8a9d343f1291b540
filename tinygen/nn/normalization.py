"""Batch normalization (Ioffe & Szegedy, 2015).

For channel c, over the m = N * (spatial size) values x of that channel in the batch:

    mu_c      = (1/m) sum x                                 batch mean
    var_c     = (1/m) sum (x - mu_c)^2                      batch variance (biased)
    x_hat     = (x - mu_c) / sqrt(var_c + eps)
    y         = gamma_c x_hat + beta_c                      gamma = weight, beta = bias

In training, mu and var are those of the batch, and the whole expression is
differentiated through them (each output depends on every value of its
channel). A running estimate is kept for evaluation, with the unbiased variance
(as PyTorch does):

    running_mean <- (1 - momentum) running_mean + momentum mu_c
    running_var  <- (1 - momentum) running_var  + momentum var_c m / (m - 1)

In evaluation (``model.eval()``) the running estimates replace mu and var, so a
sample's output does not depend on the rest of its batch (GAN sampling, test
NLLs).

Shapes: BatchNorm1d takes (N, C) or (N, C, L); BatchNorm2d takes (N, C, H, W).
Statistics are over every axis but the channel axis 1.
"""
import numpy as np

from .. import backend
from .. import functional as F
from ..autograd.tensor import Tensor
from . import init
from .linear import _positive_int
from .module import Module, Parameter


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=True,
               momentum=0.1, eps=1e-5):
    """The BatchNorm computation on a Tensor ``x`` (N, C, ...); channel axis 1.

    ``running_mean`` / ``running_var``: Tensors (C,) or None. In training they are
    updated in place (when given); in evaluation they are used and must be given.
    ``weight`` / ``bias``: Tensors (C,) or None (no affine step).
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C, ...), got shape {tuple(x.shape)}")
    c = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise ValueError(f"batch_norm: {name} has shape {tuple(t.shape)}, expected ({c},) for "
                             f"input {tuple(x.shape)} with {c} channels")
    axes = (0,) + tuple(range(2, x.ndim))
    stat_shape = (1, c) + (1,) * (x.ndim - 2)  # broadcasts a (C,) vector against x

    if training:
        m = x.size // c
        if m <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got "
                             f"input shape {tuple(x.shape)} (use a batch of 2 or more, or eval mode)")
        mu = F.mean(x, axis=axes, keepdims=True)
        d = x - mu
        var = F.mean(d * d, axis=axes, keepdims=True)   # biased: divide by m
        x_hat = d * (var + eps) ** -0.5  # one op (PowScalar) instead of a sqrt and a division
        if running_mean is not None:
            # the running update is bookkeeping, not part of the graph: plain arrays, in place
            running_mean.data *= 1 - momentum
            running_mean.data += momentum * mu.data.reshape(c)
        if running_var is not None:
            running_var.data *= 1 - momentum
            running_var.data += momentum * var.data.reshape(c) * (m / (m - 1))
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
        mu = Tensor._make(running_mean.data.reshape(stat_shape).astype(x.dtype, copy=False))
        xp = backend.get_array_module(running_var.data)
        inv_std = 1.0 / xp.sqrt(running_var.data.astype(x.dtype, copy=False) + eps)
        x_hat = (x - mu) * Tensor._make(inv_std.reshape(stat_shape))

    y = x_hat
    if weight is not None:
        y = y * F.reshape(weight, stat_shape)
    if bias is not None:
        y = y + F.reshape(bias, stat_shape)
    return y


class _BatchNorm(Module):
    _dims = ()  # the input ranks this layer accepts

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True):
        super().__init__()
        self.num_features = _positive_int(num_features, "num_features", type(self).__name__)
        if not eps > 0:
            raise ValueError(f"{type(self).__name__}: eps must be positive, got {eps}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"{type(self).__name__}: momentum must lie in [0, 1], got {momentum}")
        self.eps, self.momentum, self.affine = float(eps), float(momentum), bool(affine)
        c = self.num_features
        if affine:
            self.weight = Parameter(np.ones(c, dtype=np.float32))
            self.bias = Parameter(np.zeros(c, dtype=np.float32))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", Tensor(np.zeros(c, dtype=np.float32)))
        self.register_buffer("running_var", Tensor(np.ones(c, dtype=np.float32)))

    def reset_running_stats(self):
        init.zeros_(self.running_mean)
        init.ones_(self.running_var)

    def forward(self, x):
        name = type(self).__name__
        if x.ndim not in self._dims:
            want = " or ".join(self._shapes)
            raise ValueError(f"{name}({self.num_features}): expected input {want}, got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}({self.num_features}): input has {x.shape[1]} channels (axis 1 of "
                             f"shape {tuple(x.shape)}), expected {self.num_features}")
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          training=self.training, momentum=self.momentum, eps=self.eps)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """BatchNorm over (N, C) or (N, C, L) inputs."""
    _dims = (2, 3)
    _shapes = ("(N, C)", "(N, C, L)")


class BatchNorm2d(_BatchNorm):
    """BatchNorm over (N, C, H, W) inputs (per channel, over batch and pixels)."""
    _dims = (4,)
    _shapes = ("(N, C, H, W)",)
