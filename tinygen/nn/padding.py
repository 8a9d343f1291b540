"""Padding layers for images (N, C, H, W) or (C, H, W), module forms of ``F.pad``.

    ReflectionPad2d(p)    mirror about the edge pixel (not repeated):  d c b | a b c d | c b a
    ReplicationPad2d(p)   repeat the edge pixel:                       a a a | a b c d | d d d

``p`` is an int (every side) or PyTorch's 4-tuple (left, right, top, bottom).
CycleGAN's generator pads with reflection before its 7x7 convolutions, so the
border is made of image, not of zeros.
"""
import numpy as np

from .. import functional as F
from .module import Module


def _sides(padding, layer):
    """(left, right, top, bottom) from an int or a 4-tuple of non-negative ints."""
    sides = (padding,) * 4 if isinstance(padding, (int, np.integer)) else tuple(padding)
    if len(sides) != 4 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                  for s in sides):
        raise TypeError(f"{layer}: padding must be an int or (left, right, top, bottom), got {padding!r}")
    if any(s < 0 for s in sides):
        raise ValueError(f"{layer}: padding must be non-negative, got {padding!r}")
    return tuple(int(s) for s in sides)


class _Pad2d(Module):
    _mode = None

    def __init__(self, padding):
        super().__init__()
        self.padding = _sides(padding, type(self).__name__)

    def forward(self, x):
        if x.ndim not in (3, 4):
            raise ValueError(f"{type(self).__name__}: expected input (N, C, H, W) or (C, H, W), got "
                             f"shape {tuple(x.shape)}")
        left, right, top, bottom = self.padding
        widths = ((0, 0),) * (x.ndim - 2) + ((top, bottom), (left, right))
        return F.pad(x, widths, mode=self._mode)

    def extra_repr(self):
        return str(self.padding)


class ReflectionPad2d(_Pad2d):
    _mode = "reflect"


class ReplicationPad2d(_Pad2d):
    _mode = "replicate"
