"""Initial values for weights, filled in place.

Why the scale matters: a layer y_i = sum_j W_ij x_j over fan_in inputs, with
independent zero-mean weights of variance s^2, gives Var[y] = fan_in s^2 Var[x].
Choosing s so that this factor is 1 (times a gain that undoes the activation's
shrinking) keeps activations from exploding or vanishing with depth.

    fan_in  = (inputs of the layer)  * receptive field       (shape[1] * kh * kw)
    fan_out = (outputs of the layer) * receptive field       (shape[0] * kh * kw)

for a Linear weight (out, in) (receptive field 1) and a Conv2d weight
(C_out, C_in, kh, kw). A ConvTranspose2d weight is stored (C_in, C_out, kh, kw):
pass ``transposed=True`` so that fan_in counts its input channels, shape[0].

    uniform_(t, a, b)        U(a, b)
    normal_(t, mean, std)    N(mean, std^2)
    xavier_uniform_          U(-c, c),  c = gain sqrt(6 / (fan_in + fan_out))   (Glorot & Bengio)
    xavier_normal_           N(0, s^2), s = gain sqrt(2 / (fan_in + fan_out))
    kaiming_uniform_         U(-c, c),  c = gain sqrt(3 / fan)                   (He et al.)
    kaiming_normal_          N(0, s^2), s = gain / sqrt(fan)
                             fan = fan_in (mode="fan_in": forward pass keeps its scale)
                                or fan_out (mode="fan_out": backward pass keeps its scale)

The gain of an activation (``calculate_gain``) is the factor that keeps the
second moment through it: sqrt(2) for ReLU (it zeroes half the values),
sqrt(2 / (1 + a^2)) for leaky ReLU with slope a, 5/3 for tanh, 1 for linear and
sigmoid.

Every draw comes from ``tinygen.backend.generator(device)`` (the tensor's
device), so ``tinygen.manual_seed(s)`` makes initialisation reproducible. The
values are written into the tensor's existing array; no graph is recorded.
"""
import math

import numpy as np

from .. import backend
from ..autograd.tensor import Tensor


def _check(t, op):
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: expected a Tensor (e.g. a Parameter), got {type(t).__name__}")
    if t.dtype.kind != "f":
        raise TypeError(f"{op}: the tensor must be floating point, got {t.dtype}")


def _fill(t, values):
    """Write ``values`` (drawn on t's device) into t's array, casting to its dtype."""
    t.data[...] = values
    return t


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for an activation (PyTorch's values and names)."""
    linear = ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d",
              "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param  # PyTorch's default slope here
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope must be a number, got {slope!r}")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; expected one of "
                     f"{', '.join(linear + ('tanh', 'relu', 'leaky_relu', 'selu'))}")


def calculate_fan_in_and_fan_out(t, transposed=False):
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel), or (in, out, *kernel) if transposed."""
    shape = tuple(t.shape)
    if len(shape) < 2:
        raise ValueError(f"fan in/out needs a weight with at least 2 dimensions, got shape {shape} "
                         f"(a bias has no fan; initialise it with uniform_ or zeros_)")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    n_out, n_in = (shape[1], shape[0]) if transposed else (shape[0], shape[1])
    return n_in * receptive, n_out * receptive


def uniform_(t, a=0.0, b=1.0):
    _check(t, "uniform_")
    if not a <= b:
        raise ValueError(f"uniform_: needs a <= b, got a={a}, b={b}")
    u = backend.generator(t.device).random(t.shape)
    return _fill(t, a + (b - a) * u)


def normal_(t, mean=0.0, std=1.0):
    _check(t, "normal_")
    if std < 0:
        raise ValueError(f"normal_: std must be non-negative, got {std}")
    z = backend.generator(t.device).standard_normal(t.shape)
    return _fill(t, mean + std * z)


def constant_(t, value):
    _check(t, "constant_")
    return _fill(t, value)


def zeros_(t):
    return constant_(t, 0.0)


def ones_(t):
    return constant_(t, 1.0)


def xavier_uniform_(t, gain=1.0, transposed=False):
    _check(t, "xavier_uniform_")
    fan_in, fan_out = calculate_fan_in_and_fan_out(t, transposed)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound)


def xavier_normal_(t, gain=1.0, transposed=False):
    _check(t, "xavier_normal_")
    fan_in, fan_out = calculate_fan_in_and_fan_out(t, transposed)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _kaiming_std(t, a, mode, nonlinearity, transposed, op):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{op}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(t, transposed)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu", transposed=False):
    """U(-c, c) with c = sqrt(3) * gain / sqrt(fan); ``a`` is the leaky ReLU slope (0: ReLU)."""
    _check(t, "kaiming_uniform_")
    bound = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity, transposed, "kaiming_uniform_")
    return uniform_(t, -bound, bound)


def kaiming_normal_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu", transposed=False):
    """N(0, s^2) with s = gain / sqrt(fan); ``a`` is the leaky ReLU slope (0: ReLU)."""
    _check(t, "kaiming_normal_")
    return normal_(t, 0.0, _kaiming_std(t, a, mode, nonlinearity, transposed, "kaiming_normal_"))
