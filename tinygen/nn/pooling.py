"""Pooling and upsampling layers, module forms of ``tinygen.functional.pooling``
(whose docstring has the window and resampling equations).

    AvgPool2d(k, stride=k, padding=0)     (N, C, H, W) -> (N, C, Ho, Wo), window means
    MaxPool2d(k, stride=k, padding=0)     (N, C, H, W) -> (N, C, Ho, Wo), window maxima
    Upsample(scale_factor=s | size=(Ho, Wo), mode="nearest" | "bilinear", align_corners=False)

with Ho = (H + 2 padding - k) // stride + 1 for the pools. None has parameters.
"""
from .. import functional as F
from ..functional.conv import _pair
from ..functional.pooling import MODES
from .module import Module


class _Pool2d(Module):
    _op = None  # the F function

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = _pair(kernel_size, "kernel_size", name, 1)
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", name, 1)
        self.padding = _pair(padding, "padding", name, 0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{name}: padding {self.padding} must be at most half of kernel_size "
                             f"{self.kernel_size}")

    def forward(self, x):
        return type(self)._op(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_Pool2d):
    _op = staticmethod(F.avg_pool2d)


class MaxPool2d(_Pool2d):
    _op = staticmethod(F.max_pool2d)


class Upsample(Module):
    """Resize by ``scale_factor`` or to ``size`` (keyword arguments, as F.interpolate takes them)."""

    def __init__(self, *, scale_factor=None, size=None, mode="nearest", align_corners=False):
        super().__init__()
        if (scale_factor is None) == (size is None):
            raise ValueError(f"Upsample: give exactly one of scale_factor and size, got "
                             f"scale_factor={scale_factor!r}, size={size!r}")
        if mode not in MODES:
            raise ValueError(f"Upsample: mode must be one of {', '.join(MODES)}, got {mode!r}")
        if align_corners and mode == "nearest":
            raise ValueError("Upsample: align_corners applies to mode='bilinear' only, not 'nearest'")
        self.scale_factor = scale_factor
        self.size = None if size is None else _pair(size, "size", "Upsample", 1)
        self.mode, self.align_corners = mode, bool(align_corners)

    def forward(self, x):
        return F.interpolate(x, scale_factor=self.scale_factor, size=self.size, mode=self.mode,
                             align_corners=self.align_corners)

    def extra_repr(self):
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        corners = f", align_corners={self.align_corners}" if self.mode == "bilinear" else ""
        return f"{what}, mode={self.mode!r}{corners}"
