"""Layers that change shape or drop values, for use inside a ``Sequential``.

    Flatten(1, -1)     (N, C, H, W) -> (N, C*H*W)             the batch axis is kept
    Unflatten(1, s)    (N, prod(s)) -> (N, *s)                its inverse
    Reshape(*s)        (N, ...)     -> (N, *s)                s may contain one -1
    Dropout(p)         x * mask / (1 - p), mask_i ~ Bernoulli(1 - p), in training only
"""
import numpy as np

from .. import functional as F
from .module import Module


class Flatten(Module):
    def __init__(self, start_axis=1, end_axis=-1):
        super().__init__()
        self.start_axis, self.end_axis = int(start_axis), int(end_axis)

    def forward(self, x):
        return F.flatten(x, self.start_axis, self.end_axis)

    def extra_repr(self):
        return f"start_axis={self.start_axis}, end_axis={self.end_axis}"


class Unflatten(Module):
    def __init__(self, axis, sizes):
        super().__init__()
        self.axis, self.sizes = int(axis), tuple(int(s) for s in sizes)

    def forward(self, x):
        axis = self.axis % x.ndim
        if int(np.prod(self.sizes)) != x.shape[axis]:
            raise ValueError(f"Unflatten: axis {self.axis} of input {tuple(x.shape)} has size "
                             f"{x.shape[axis]}, which is not {' x '.join(map(str, self.sizes))}")
        return F.reshape(x, x.shape[:axis] + self.sizes + x.shape[axis + 1:])

    def extra_repr(self):
        return f"axis={self.axis}, sizes={self.sizes}"


class Reshape(Module):
    """Reshape every sample: (N, ...) -> (N, *shape), e.g. a generator's (N, 128) -> (N, 8, 4, 4)."""

    def __init__(self, *shape):
        super().__init__()
        self.shape = tuple(int(s) for s in (shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list))
                                              else shape))

    def forward(self, x):
        return F.reshape(x, (x.shape[0],) + self.shape)

    def extra_repr(self):
        return ", ".join(map(str, self.shape))


class Dropout(Module):
    """Inverted dropout: active while ``self.training``, the identity in eval mode."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must lie in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x):
        return F.dropout(x, self.p, training=self.training)

    def extra_repr(self):
        return f"p={self.p}"
