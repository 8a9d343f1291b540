"""Convolution layers: Conv2d and ConvTranspose2d.

    Conv2d           y = conv2d(x, W) + b             x (N, C_in, H, W), W (C_out, C_in, kh, kw)
                     Ho = (H + 2 padding - kh) // stride + 1
    ConvTranspose2d  y = conv_transpose2d(x, W) + b   x (N, C_in, H, W), W (C_in, C_out, kh, kw)
                     Ho = (H - 1) stride - 2 padding + kh + output_padding

(the same for the width), computed by ``F.conv2d`` / ``F.conv_transpose2d``, whose
module docstring has the im2col equations. ConvTranspose2d is Conv2d's adjoint:
with the same kernel, stride and padding it maps Conv2d's output shape back to
its input shape, which is how DCGAN's generator upsamples 7 -> 14 -> 28.

Initial values (PyTorch's defaults, ``kaiming_uniform_(W, a=sqrt(5))``):

    W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),   fan_in = W.shape[1] * kh * kw

i.e. C_in kh kw for Conv2d (the inputs each output sums over) and, as PyTorch
computes it from the stored shape, C_out kh kw for ConvTranspose2d.
"""
import math

import numpy as np

from .. import functional as F
from ..functional.conv import _pair
from . import init
from .linear import _positive_int
from .module import Module, Parameter


class _ConvNd(Module):
    """What Conv2d and ConvTranspose2d share: argument checks, parameters, init, repr."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, bias, weight_shape):
        super().__init__()
        layer = type(self).__name__
        self.in_channels = _positive_int(in_channels, "in_channels", layer)
        self.out_channels = _positive_int(out_channels, "out_channels", layer)
        self.kernel_size = _pair(kernel_size, "kernel_size", layer, 1)
        self.stride = _pair(stride, "stride", layer, 1)
        self.padding = _pair(padding, "padding", layer, 0)
        self.weight = Parameter(np.empty(weight_shape(self.in_channels, self.out_channels)
                                         + self.kernel_size, dtype=np.float32))
        if bias:
            self.bias = Parameter(np.empty(self.out_channels, dtype=np.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / math.sqrt(fan_in)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def _check_input(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r}: input has shape {tuple(x.shape)}, expected "
                             f"(N, {self.in_channels}, H, W)")

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}, padding={self.padding}")
        if getattr(self, "output_padding", (0, 0)) != (0, 0):
            s += f", output_padding={self.output_padding}"
        return s + ("" if self.bias is not None else ", bias=False")


class Conv2d(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias,
                         weight_shape=lambda c_in, c_out: (c_out, c_in))

    def forward(self, x):
        self._check_input(x)
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)


class ConvTranspose2d(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias,
                         weight_shape=lambda c_in, c_out: (c_in, c_out))
        self.output_padding = _pair(output_padding, "output_padding", "ConvTranspose2d", 0)
        if any(op >= s for op, s in zip(self.output_padding, self.stride)):
            raise ValueError(f"ConvTranspose2d: output_padding {self.output_padding} must be smaller "
                             f"than stride {self.stride} in each direction")

    def forward(self, x):
        self._check_input(x)
        return F.conv_transpose2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                                  output_padding=self.output_padding)
