"""Activation layers: module forms of the elementwise functions in ``tinygen.functional``,
so that they can sit in a ``Sequential``.

    ReLU(x)       = max(x, 0)
    LeakyReLU(x)  = x if x > 0 else a x           (a = negative_slope, 0.2 as in GAN discriminators)
    ELU(x)        = x if x > 0 else alpha (e^x - 1)
    Sigmoid(x)    = 1 / (1 + e^-x)
    Tanh(x)       = (e^x - e^-x) / (e^x + e^-x)
    Softplus(x)   = log(1 + e^x)
"""
from .. import functional as F
from .module import Module


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.2):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Softplus(Module):
    def forward(self, x):
        return F.softplus(x)
