"""The base class every distribution shares, and the checks of their arguments.

A distribution holds its parameters as Tensors (``_as_params``: numbers and arrays become
constants of the Tensors' dtype and device), knows its batch and event shapes, and draws
its noise from ``tinygen.backend.generator`` on its device. What a family does not offer
(a discrete family's rsample, an implicit model's log_prob) raises with the reason.
"""
import numbers

import numpy as np

from .. import backend
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor


# --- argument helpers ----------------------------------------------------

def _sample_shape(shape, who):
    """``shape`` argument of sample(): an int n means (n,)."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (int(shape),)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{who}: shape must be an int or a tuple of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"{who}: shape {shape} has a negative size")
    return shape


def _as_params(who, **named):
    """Each named parameter as a Tensor. Tensors are kept as they are (their graph
    too); numbers and arrays become constants with the Tensors' dtype and device.
    With no Tensor among them: float32 on the CPU, except that a float64 NumPy array
    keeps float64 (as ``tinygen.tensor`` does)."""
    tensors = {k: v for k, v in named.items() if isinstance(v, Tensor)}
    for k, v in tensors.items():
        if v.dtype.kind != "f":
            raise TypeError(f"{who}: {k} must be a floating-point tensor, got {v.dtype}")
    if tensors:
        dtypes = {v.dtype for v in tensors.values()}
        devices = {v.device for v in tensors.values()}
        if len(dtypes) > 1 or len(devices) > 1:
            shown = ", ".join(f"{k} {v.dtype} on {v.device}" for k, v in tensors.items())
            raise ValueError(f"{who}: the parameters must share one dtype and device, got {shown}; "
                             f"convert with .float() / .double() and .to(device)")
        dtype, device = dtypes.pop(), devices.pop()
    else:
        arrays = [v for v in named.values() if hasattr(v, "dtype") and hasattr(v, "shape")]
        dtype = np.dtype(np.float64) if any(a.dtype == np.float64 for a in arrays) else np.dtype(np.float32)
        device = backend.device_of(arrays[0]) if arrays else "cpu"
    out = {}
    for k, v in named.items():
        if isinstance(v, Tensor):
            out[k] = v
            continue
        arr = backend.get_array_module(v).asarray(v)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{who}: {k} must be numbers, got {arr.dtype}")
        out[k] = Tensor(arr, dtype=dtype, device=device)
    return out


def _require(ok, values, who, what):
    """Raise ValueError when the boolean array ``ok`` is not all True, showing bad values."""
    if bool(ok.all()):
        return
    bad = backend.to_device(values[~ok], "cpu").ravel()
    shown = np.array2string(bad[:4], precision=4, separator=", ")
    raise ValueError(f"{who}: {what}, got {shown} ({bad.size} of the {values.size} values, "
                     f"shape {tuple(values.shape)})")


def _broadcast(who, *named_shapes):
    """The common shape of (name, shape) pairs, or a ValueError that names them."""
    try:
        return tuple(np.broadcast_shapes(*(s for _, s in named_shapes)))
    except ValueError:
        shown = ", ".join(f"{n} {tuple(s)}" for n, s in named_shapes)
        raise ValueError(f"{who}: shapes do not broadcast together: {shown}") from None


# --- the base class ------------------------------------------------------

class Distribution:
    """What every distribution offers: shapes, device, sampling, log_prob, entropy.

    Subclasses call ``super().__init__(batch_shape, event_shape, ...)`` and define
    what they support; the rest raises ``NotImplementedError`` with the reason.
    ``validate_args=False`` skips the value checks (each costs a pass over the data
    and, on a GPU, a synchronisation).
    """
    has_rsample = False

    def __init__(self, batch_shape=(), event_shape=(), validate_args=True, dtype=np.float32, device="cpu"):
        self._batch_shape = tuple(batch_shape)
        self._event_shape = None if event_shape is None else tuple(event_shape)
        self.validate_args = bool(validate_args)
        self.dtype = np.dtype(dtype)
        self.device = device

    @property
    def batch_shape(self):
        """Shape of the batch of independent distributions held."""
        return self._batch_shape

    @property
    def event_shape(self):
        """Shape of one draw from one of them."""
        return self._event_shape

    def _extended_shape(self, shape, who):
        return _sample_shape(shape, who) + self._batch_shape + (self._event_shape or ())

    # --- noise from the device's generator (tinygen.manual_seed) ---------
    def _uniform(self, shape):
        """U[0, 1) draws, float64, on self.device."""
        u = backend.generator(self.device).random(size=shape)
        return backend.get_array_module(u).asarray(u)

    def _standard_normal(self, shape):
        """N(0, 1) draws in self.dtype on self.device; drawn in float64 so a seed gives the
        same numbers whatever the dtype (float64 gradient checks see float32 runs' noise)."""
        e = backend.generator(self.device).standard_normal(size=shape)
        return backend.get_array_module(e).asarray(e).astype(self.dtype)

    # --- the interface ---------------------------------------------------
    def sample(self, shape=()):
        """Draws of shape ``shape + batch_shape + event_shape``, with no gradient."""
        if self.has_rsample:
            with no_grad():
                return self.rsample(shape)
        raise NotImplementedError(f"{type(self).__name__} does not implement sample")

    def rsample(self, shape=()):
        raise NotImplementedError(
            f"{type(self).__name__}.rsample: its samples are not a differentiable function of its "
            f"parameters (discrete values have no pathwise gradient); use sample() for values, and "
            f"a score-function (REINFORCE) or relaxed (Gumbel-softmax) estimator for gradients")

    def log_prob(self, value):
        raise NotImplementedError(f"{type(self).__name__} does not implement log_prob")

    def entropy(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement entropy")

    def _value(self, value, who):
        """A value to score as a Tensor on our device; constants take our float dtype."""
        if isinstance(value, Tensor):
            if value.device != self.device:
                raise ValueError(f"{who}: value is on {value.device} but the distribution is on "
                                 f"{self.device}; move it with .to({self.device!r})")
            if value.dtype.kind != "f":  # integer data (0/1 pixels): a constant float copy
                return Tensor._make(value.data.astype(self.dtype))
            return value
        arr = backend.get_array_module(value).asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{who}: value must be numbers, got {arr.dtype}")
        return Tensor(arr, dtype=self.dtype, device=self.device)

    def __repr__(self):
        return (f"{type(self).__name__}(batch_shape={self.batch_shape}, event_shape={self.event_shape}, "
                f"dtype={self.dtype}, device={self.device!r})")
