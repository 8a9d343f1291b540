"""Tensor: an array plus what reverse mode needs.

A Tensor holds

    data            a NumPy array (CPU) or a CuPy array (GPU)
    requires_grad   whether gradients flow to it
    creator         the Function that made it (None for a leaf: data or a parameter)
    grad            after ``backward()``, dL/d(self) as a Tensor of the same shape

``y.backward()`` seeds dL/dy = 1 for a scalar y and walks the graph back to the
leaves (see ``function.py``). Arithmetic operators and most methods are thin
names for the ops in ``tinygen.functional``, so ``(x * w).sum()`` and
``F.sum(F.mul(x, w))`` build the same graph.

dtype: float32 unless the data says otherwise. A NumPy float64 array stays
float64 (the gradient checks use it); Python floats and lists become float32;
integers stay integers (labels, indices) and cannot require gradients.
"""
import numpy as np

from .. import backend


def _as_array(data, dtype=None):
    """Turn user data into an array with tinygen's default dtypes."""
    if isinstance(data, Tensor):
        data = data.data
    xp = backend.get_array_module(data)
    if dtype is not None:
        return xp.array(data, dtype=np.dtype(dtype) if xp is np else dtype)
    if isinstance(data, (np.ndarray, np.generic)) or xp is not np:
        arr = xp.array(data)
    else:  # Python numbers and (nested) lists: floats become float32
        arr = np.array(data)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"tensor: cannot make a tensor from {type(data).__name__} of dtype {arr.dtype} "
                        f"(tensors hold numbers: bool, integer, float or complex; not text, objects "
                        f"or ragged lists)")
    return arr


class Tensor:
    __slots__ = ("data", "grad", "_requires_grad", "creator", "_index", "_retain_grad", "_version",
                 "__weakref__")
    __array_priority__ = 1000  # numpy scalars and arrays defer to Tensor's operators

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        arr = _as_array(data, dtype)
        if device is not None:
            arr = backend.to_device(arr, device)
        self.data = arr
        self.grad = None
        self.creator = None
        self._index = 0
        self._retain_grad = False
        self._version = 0
        self._requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, creator=None, index=0):
        """Fast internal constructor: ``data`` is already an array."""
        t = object.__new__(cls)
        t.data = data
        t.grad = None
        t.creator = creator
        t._index = index
        t._retain_grad = False
        t._version = 0
        t._requires_grad = creator is not None
        return t

    # --- properties -------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    @property
    def device(self):
        return backend.device_of(self.data)

    @property
    def is_leaf(self):
        return self.creator is None

    @property
    def T(self):
        return F.transpose(self)

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __repr__(self):
        body = np.array2string(backend.to_device(self.data, "cpu"), precision=4, separator=", ",
                               threshold=50, prefix="tensor(")
        extra = [] if self.dtype == np.float32 else [f"dtype={self.dtype}"]
        if self.device != "cpu":
            extra.append(f"device='{self.device}'")
        if self.creator is not None:
            extra.append(f"creator={type(self.creator).__name__}")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    # --- autograd ---------------------------------------------------------
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        self.requires_grad_(flag)

    def requires_grad_(self, flag=True):
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only real floating-point tensors can require gradients; this one is "
                            f"{self.data.dtype} (convert with .float() first)")
        if not flag and self.creator is not None:
            raise RuntimeError("requires_grad can only be turned off on a leaf; use .detach()")
        self._requires_grad = bool(flag)
        return self

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        self._retain_grad = True
        return self

    def backward(self, grad=None, retain_graph=False, create_graph=False):
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires a gradient."""
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require a gradient and has no graph "
                               "(was it made under no_grad, or from tensors without requires_grad?)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: the tensor has shape {tuple(self.shape)}, not a scalar; "
                                   f"pass grad= (a tensor of that shape) or reduce it first, e.g. .sum()")
            grad = unit_seed(self)
        else:
            grad = grad if isinstance(grad, Tensor) else Tensor(grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward: grad has shape {tuple(grad.shape)} but the tensor has "
                                 f"shape {tuple(self.shape)}")
        run_backward([self], [grad], retain_graph=retain_graph or create_graph,
                     create_graph=create_graph)

    # --- in-place changes -----------------------------------------------------
    def _bump_version(self):
        """Record that ``data`` was changed in place (optimizer step, copy_, EMA, load_state_dict).

        Every op notes the versions of the tensors its backward will read; a backward that
        finds a newer version refuses to run, instead of using the new values silently."""
        self._version += 1

    def copy_(self, src):
        """Overwrite this tensor's values with ``src`` (same shape; cast to this dtype), in place."""
        src_data = src.data if isinstance(src, Tensor) else src
        xp = backend.get_array_module(self.data)
        src_data = xp.asarray(src_data)
        if tuple(src_data.shape) != tuple(self.shape):
            raise ValueError(f"copy_: source has shape {tuple(src_data.shape)}, this tensor has shape "
                             f"{tuple(self.shape)}")
        self.data[...] = src_data
        self._bump_version()
        return self

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor._make(self.data)

    def zero_grad(self):
        self.grad = None

    # --- conversion -------------------------------------------------------
    def numpy(self):
        """A NumPy array (copied from the GPU when needed)."""
        return backend.to_device(self.data, "cpu")

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only a one-element tensor converts to a Python number, "
                             f"this one has shape {tuple(self.shape)}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def to(self, device):
        """This tensor on ``device`` ('cpu' or 'cuda'); differentiable across the move."""
        device = backend.normalize_device(device)
        if device == self.device:
            return self
        return F.to_device(self, device)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def astype(self, dtype):
        return F.cast(self, dtype)

    def float(self):
        return F.cast(self, np.float32)

    def double(self):
        return F.cast(self, np.float64)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {tuple(self.shape)} is ambiguous; "
                             f"use .any() or .all()")
        return bool(self.item())

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    # --- operators (names for functional ops) -----------------------------
    def __add__(self, o): return F.add(self, o)
    def __radd__(self, o): return F.add(o, self)
    def __sub__(self, o): return F.sub(self, o)
    def __rsub__(self, o): return F.sub(o, self)
    def __mul__(self, o): return F.mul(self, o)
    def __rmul__(self, o): return F.mul(o, self)
    def __truediv__(self, o): return F.div(self, o)
    def __rtruediv__(self, o): return F.div(o, self)
    def __pow__(self, o): return F.pow(self, o)
    def __rpow__(self, o): return F.pow(o, self)
    def __matmul__(self, o): return F.matmul(self, o)
    def __rmatmul__(self, o): return F.matmul(o, self)
    def __neg__(self): return F.neg(self)
    def __pos__(self): return self
    def __abs__(self): return F.abs(self)
    def __getitem__(self, index): return F.getitem(self, index)

    # comparisons: plain boolean tensors, no gradient
    def __lt__(self, o): return F.less(self, o)
    def __le__(self, o): return F.less_equal(self, o)
    def __gt__(self, o): return F.greater(self, o)
    def __ge__(self, o): return F.greater_equal(self, o)
    def __eq__(self, o): return F.equal(self, o)
    def __ne__(self, o): return F.not_equal(self, o)
    __hash__ = object.__hash__

    # --- methods ----------------------------------------------------------
    def sum(self, axis=None, keepdims=False): return F.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return F.mean(self, axis, keepdims)
    def var(self, axis=None, keepdims=False, unbiased=False): return F.var(self, axis, keepdims, unbiased)
    def max(self, axis=None, keepdims=False): return F.max(self, axis, keepdims)
    def min(self, axis=None, keepdims=False): return F.min(self, axis, keepdims)
    def logsumexp(self, axis=None, keepdims=False): return F.logsumexp(self, axis, keepdims)
    def argmax(self, axis=None): return F.argmax(self, axis)
    def any(self, axis=None): return Tensor._make(self.data.any(axis=axis))
    def all(self, axis=None): return Tensor._make(self.data.all(axis=axis))
    def exp(self): return F.exp(self)
    def log(self): return F.log(self)
    def sqrt(self): return F.sqrt(self)
    def abs(self): return F.abs(self)
    def clip(self, lo=None, hi=None): return F.clip(self, lo, hi)
    def sigmoid(self): return F.sigmoid(self)
    def tanh(self): return F.tanh(self)
    def relu(self): return F.relu(self)
    def softmax(self, axis=-1): return F.softmax(self, axis)
    def log_softmax(self, axis=-1): return F.log_softmax(self, axis)
    def matmul(self, o): return F.matmul(self, o)
    def reshape(self, *shape): return F.reshape(self, shape[0] if len(shape) == 1 else shape)
    def transpose(self, *axes): return F.transpose(self, axes[0] if len(axes) == 1 else (axes or None))
    def permute(self, *axes): return F.transpose(self, axes[0] if len(axes) == 1 else axes)
    def flatten(self, start_axis=0, end_axis=-1): return F.flatten(self, start_axis, end_axis)
    def squeeze(self, axis=None): return F.squeeze(self, axis)
    def unsqueeze(self, axis): return F.unsqueeze(self, axis)
    def expand(self, *shape): return F.expand(self, shape[0] if len(shape) == 1 else shape)
    def repeat(self, repeats, axis=None): return F.repeat(self, repeats, axis)


def tensor(data, requires_grad=False, dtype=None, device="cpu"):
    """Make a leaf Tensor from data (a list, a number, a NumPy or CuPy array, a Tensor).

    The data is copied. float32 by default; a NumPy float64 array stays float64.
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


from .function import run_backward, unit_seed  # noqa: E402
from .. import functional as F  # noqa: E402  (the ops import Tensor from here)
