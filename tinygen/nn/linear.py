"""Linear (fully connected) layer and the identity.

    y = x W^T + b        x (..., in_features), W (out_features, in_features), b (out_features,)

computed by ``F.linear`` in one op. W is stored (out, in) as in PyTorch, so row
i of W holds the weights of output unit i.

Initial values: W_ij ~ U(-1/sqrt(in), 1/sqrt(in)) and b_i ~ U(-1/sqrt(in), 1/sqrt(in)).
This is PyTorch's default, ``kaiming_uniform_(W, a=sqrt(5))``: gain sqrt(2/(1+5)) =
1/sqrt(3) times sqrt(3/fan_in) gives the bound 1/sqrt(in). Var[W_ij] = 1/(3 in), so
a unit's pre-activation has about a third of its input's variance per layer; the
models that need another scale re-initialise with ``tinygen.nn.init``.
"""
import math

import numpy as np

from .. import functional as F
from . import init
from .module import Module, Parameter


def _positive_int(value, name, layer):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive integer, got {value!r}")
    return int(value)


class Identity(Module):
    """y = x (a placeholder where a layer is optional)."""

    def forward(self, x):
        return x


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=np.float32))
        if bias:
            self.bias = Parameter(np.empty(self.out_features, dtype=np.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.in_features)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}): input has shape "
                             f"{tuple(x.shape)}, expected (..., {self.in_features})")
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
