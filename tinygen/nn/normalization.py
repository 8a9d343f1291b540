"""Normalization layers: BatchNorm1d/2d, InstanceNorm2d, LayerNorm.

The computations live in ``tinygen.functional.normalization`` (with their
equations); these layers hold the affine parameters gamma = weight, beta = bias
and, where kept, the running statistics, and pass ``self.training`` along.

    BatchNorm1d(C)         (N, C) or (N, C, L)   statistics per channel, over batch and positions
    BatchNorm2d(C)         (N, C, H, W)          statistics per channel, over batch and pixels
    InstanceNorm2d(C)      (N, C, H, W)          statistics per sample and channel, over pixels
    LayerNorm(S)           (..., *S)             statistics per sample, over the trailing axes S

BatchNorm always keeps running statistics and uses them in evaluation
(``model.eval()``), so a sample's output does not depend on the rest of its batch
(GAN sampling, test NLLs). InstanceNorm2d, as in PyTorch, has no affine step and
no running statistics unless asked (``affine=True``, ``track_running_stats=True``);
without them it normalizes each image by its own statistics in evaluation too.
LayerNorm has a weight and bias of shape S unless ``elementwise_affine=False``.
"""
import numpy as np

from .. import functional as F
from ..autograd.tensor import Tensor
from ..functional.normalization import batch_norm
from . import init
from .linear import _positive_int
from .module import Module, Parameter


class _ChannelNorm(Module):
    """What BatchNorm and InstanceNorm share: per-channel gamma, beta and running statistics."""
    _dims = ()    # the input ranks this layer accepts
    _shapes = ()  # and how they read, for the error message

    def __init__(self, num_features, eps, momentum, affine, track_running_stats):
        super().__init__()
        name = type(self).__name__
        self.num_features = _positive_int(num_features, "num_features", name)
        if not eps > 0:
            raise ValueError(f"{name}: eps must be positive, got {eps}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"{name}: momentum must lie in [0, 1], got {momentum}")
        self.eps, self.momentum, self.affine = float(eps), float(momentum), bool(affine)
        self.track_running_stats = bool(track_running_stats)
        c = self.num_features
        if affine:
            self.weight = Parameter(np.ones(c, dtype=np.float32))
            self.bias = Parameter(np.zeros(c, dtype=np.float32))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(c, dtype=np.float32)))
            self.register_buffer("running_var", Tensor(np.ones(c, dtype=np.float32)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)

    def reset_running_stats(self):
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)

    def _check_input(self, x):
        name = type(self).__name__
        if x.ndim not in self._dims:
            want = " or ".join(self._shapes)
            raise ValueError(f"{name}({self.num_features}): expected input {want}, got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}({self.num_features}): input has {x.shape[1]} channels (axis 1 of "
                             f"shape {tuple(x.shape)}), expected {self.num_features}")

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class _BatchNorm(_ChannelNorm):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats=True)

    def forward(self, x):
        self._check_input(x)
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          training=self.training, momentum=self.momentum, eps=self.eps)


class BatchNorm1d(_BatchNorm):
    """BatchNorm over (N, C) or (N, C, L) inputs."""
    _dims = (2, 3)
    _shapes = ("(N, C)", "(N, C, L)")


class BatchNorm2d(_BatchNorm):
    """BatchNorm over (N, C, H, W) inputs (per channel, over batch and pixels)."""
    _dims = (4,)
    _shapes = ("(N, C, H, W)",)


class InstanceNorm2d(_ChannelNorm):
    """Instance norm over (N, C, H, W) inputs: each image's channel by its own mean and variance."""
    _dims = (4,)
    _shapes = ("(N, C, H, W)",)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)

    def forward(self, x):
        self._check_input(x)
        return F.instance_norm(x, self.weight, self.bias, eps=self.eps, running_mean=self.running_mean,
                               running_var=self.running_var, training=self.training,
                               momentum=self.momentum)

    def extra_repr(self):
        return super().extra_repr() + f", track_running_stats={self.track_running_stats}"


class LayerNorm(Module):
    """Layer norm over the trailing axes ``normalized_shape`` of every sample."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else normalized_shape
        self.normalized_shape = tuple(_positive_int(s, "normalized_shape", "LayerNorm") for s in shape)
        if not self.normalized_shape:
            raise ValueError("LayerNorm: normalized_shape must have at least one axis, got ()")
        if not eps > 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps}")
        self.eps, self.elementwise_affine = float(eps), bool(elementwise_affine)
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=np.float32))
            self.bias = Parameter(np.zeros(self.normalized_shape, dtype=np.float32))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, eps=self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")
