"""The layers Progressive GAN (Karras et al. 2018) adds: PixelNorm, MinibatchStd, equalized learning rate.

Section 7 of the notes. None of them is a new op: each is a few ``F.`` functions,
so each is differentiable twice (WGAN-GP differentiates the critic's gradient).
(PixelNorm's fast path, ``functional/_pixel_norm.py``, runs the same map as one op.)

PixelNorm (after every convolution of the generator, and on z). For x (N, C, ...),
each pixel's feature vector is scaled to unit mean square over the channels:

    PN(x)[n, c, i, j] = x[n, c, i, j] / sqrt( (1/C) sum_c' x[n, c', i, j]^2 + 1e-8 )

so mean_c PN(x)^2 = 1 (up to the 1e-8) and PN(s x) = PN(x) for every s > 0: the
generator's signal magnitudes cannot escalate, which is what batch norm was for in
DCGAN, without coupling the samples of a batch.

MinibatchStd (at the discriminator's 4x4 block). The batch of N = G M samples is
split into M groups of G (``group_size``), sample n going to group n mod M (a
stride, as in the reference code: the rows of x reshaped to (G, M, ...)). For
group m, the population standard deviation of each feature over the group's G
samples, averaged over channels and pixels, is one scalar:

    s_m = mean_{c, i, j} sqrt( (1/G) sum_g (x[g M + m, c, i, j] - mu_m[c, i, j])^2 + 1e-8 ),
    mu_m = (1/G) sum_g x[g M + m]

and s_{n mod M} is appended to sample n as one extra constant channel. A batch of
fakes with too little variety gets a small s, which the discriminator can see. The
1e-8 keeps sqrt's gradient finite where a group's features are all equal. A batch
that does not split into groups of G (N mod G != 0, or N < G) is refused: a group
of one sample has no spread (the peer bug that divides by zero and gives NaN).

Equalized learning rate (every Linear and Conv2d of both players). The stored
weight W is drawn from N(0, 1), and the layer uses

    W_hat = c W,     c = gain / sqrt(fan_in)     (fan_in: in_features, or C_in kh kw)

at run time, the scale of He's initialization applied at every call instead of
once. So dL/dW = c dL/dW_hat: Adam normalizes a gradient by its own running scale,
so each weight's step is about lr in W, i.e. about c lr in W_hat, the same
relative speed for every layer whatever its fan-in. ``gain`` is sqrt(2) (for the
leaky ReLU after it); the generator's toRGB layers and the critic's last layer use
gain 1, and the generator's first (dense) layer sqrt(2) / 4. Biases start at 0 and
are not scaled.
"""
import math

import numpy as np

from .. import fast_paths, functional as F
from ..functional._pixel_norm import pixel_norm
from . import init
from .conv import Conv2d
from .linear import Linear
from .module import Module

PIXEL_NORM_EPS = 1e-8
MINIBATCH_STD_EPS = 1e-8


class PixelNorm(Module):
    """x / sqrt(mean_c x^2 + 1e-8), over axis 1 (the channels) of (N, C, ...)."""

    def forward(self, x):
        if x.ndim < 2:
            raise ValueError(f"PixelNorm: expected an input (N, C, ...) with a channel axis, got shape "
                             f"{tuple(x.shape)}")
        if fast_paths.enabled():
            return pixel_norm(x, PIXEL_NORM_EPS)     # the same map as one op (functional/_pixel_norm.py)
        return x / F.sqrt(F.mean(x * x, axis=1, keepdims=True) + PIXEL_NORM_EPS)


class MinibatchStd(Module):
    """(N, C, H, W) -> (N, C + 1, H, W): the group's mean standard deviation as one extra channel."""

    def __init__(self, group_size=4):
        super().__init__()
        self.group_size = check_group_size(group_size, "MinibatchStd")

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"MinibatchStd: expected an input (N, C, H, W), got shape {tuple(x.shape)}")
        n, c, h, w = x.shape
        g = self.group_size
        check_batch_for_groups(n, g, "MinibatchStd")
        m = n // g
        y = F.reshape(x, (g, m, c, h, w))                                   # y[g, m] = x[g M + m]
        d = y - F.mean(y, axis=0, keepdims=True)
        std = F.sqrt(F.mean(d * d, axis=0) + MINIBATCH_STD_EPS)           # (M, C, H, W)
        s = F.mean(std, axis=(1, 2, 3), keepdims=True)                     # (M, 1, 1, 1)
        return F.concat([x, F.tile(s, (g, 1, h, w))], axis=1)             # row g M + m gets s_m

    def extra_repr(self):
        return f"group_size={self.group_size}"


def check_group_size(group_size, who):
    if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)) or group_size < 2:
        raise ValueError(f"{who}: group_size must be a whole number >= 2 (a group of one sample has no "
                         f"spread), got {group_size!r}")
    return int(group_size)


def check_batch_for_groups(n, group_size, who):
    """A batch of ``n`` must split into groups of ``group_size``: n a positive multiple of it."""
    if n < group_size:
        raise ValueError(f"{who}: minibatch std needs groups of {group_size} samples, but a batch of {n} "
                         f"is smaller than the group size {group_size}")
    if n % group_size:
        raise ValueError(f"{who}: minibatch std needs a batch that splits into groups of {group_size}, "
                         f"got a batch of {n} (use a batch size that is a multiple of {group_size})")


class _Equalized:
    """What both equalized layers share: N(0, 1) weights, zero biases, W_hat = c W at run time."""

    def _equalize(self, gain, fan_in):
        if not (isinstance(gain, (int, float, np.floating)) and not isinstance(gain, bool) and gain > 0):
            raise ValueError(f"{type(self).__name__}: gain must be a positive number, got {gain!r}")
        self.gain = float(gain)
        self.scale = self.gain / math.sqrt(fan_in)

    def reset_parameters(self):
        init.normal_(self.weight, 0.0, 1.0)
        if self.bias is not None:
            init.zeros_(self.bias)

    def effective_weight(self):
        """W_hat = c W, the weight the layer computes with."""
        return self.weight * self.scale

    def extra_repr(self):
        return super().extra_repr() + f", gain={self.gain:.4g}, scale={self.scale:.4g}"


class EqualizedLinear(_Equalized, Linear):
    """y = x (c W)^T + b,  c = gain / sqrt(in_features)."""

    def __init__(self, in_features, out_features, bias=True, gain=math.sqrt(2)):
        super().__init__(in_features, out_features, bias=bias)
        self._equalize(gain, self.in_features)

    def forward(self, x):
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"EqualizedLinear({self.in_features}, {self.out_features}): input has shape "
                             f"{tuple(x.shape)}, expected (..., {self.in_features})")
        return F.linear(x, self.effective_weight(), self.bias)


class EqualizedConv2d(_Equalized, Conv2d):
    """y = conv2d(x, c W) + b,  c = gain / sqrt(C_in kh kw)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 gain=math.sqrt(2)):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self._equalize(gain, self.in_channels * self.kernel_size[0] * self.kernel_size[1])

    def forward(self, x):
        self._check_input(x)
        return F.conv2d(x, self.effective_weight(), self.bias, stride=self.stride, padding=self.padding)
