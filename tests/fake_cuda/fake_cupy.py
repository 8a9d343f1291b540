"""A stand-in for CuPy, for tests: NumPy underneath, a GPU's rules on top.

``pytest --fake-cuda`` installs this module as ``cupy`` before tinygen is imported
(tests/conftest.py), so every line of tinygen that runs on ``device="cuda"`` runs
here, on a machine without a GPU. What it keeps from a real GPU:

- ``cupy.ndarray`` is its own type, not a ``numpy.ndarray``: ``get_array_module``
  and ``device_of`` see it as CuPy's, and it never mixes with NumPy arrays
  silently. ``np.asarray(a)`` raises (CuPy forbids implicit device -> host copies),
  and a NumPy array beside a device array in an operator, a ufunc, a function or
  a kernel launch raises ``TypeError`` as in CuPy. Host -> device is explicit:
  ``cupy.asarray(host)`` copies; so does ``a[...] = host`` (CuPy allows that one).
- Reductions and scalar indexing give 0-d device arrays, never NumPy scalars;
  ``float(a)``, ``a.item()``, ``a.get()`` and ``cupy.asnumpy(a)`` bring values back.
- ``empty``/``empty_like`` are filled with NaN (floats) or -7777 (integers): a read of
  memory nobody wrote shows up, where NumPy's fresh pages would often be zero.
- ``RawModule`` / ``RawKernel`` compile the CUDA source with the SIMT emulator
  (tests/cuda/emulator.py) and launch it with the call's grid, block and shared
  memory size, after the checks a GPU makes: at most 1024 threads per block
  (block z at most 64), grid y and z at most 65535 and x at most 2**31 - 1, dynamic
  shared memory within 48 KiB unless the kernel opted in. Arguments follow CuPy's
  rule: arrays must be device arrays of the pointer's type (the emulator also
  demands C-contiguous ones, as a kernel indexing a view's base pointer would be
  wrong on a GPU), NumPy scalars must be exactly the parameter's type, a Python
  ``int`` is a ``long long`` and a ``float`` a ``double``.
- ``random.default_rng(seed)`` gives a Generator whose draws are device arrays. It
  draws NumPy's stream (cuRAND's would differ); the tests that compare a CUDA run
  with a CPU run give it the CPU's generator, so both see the same noise.

What tinygen calls and this module lacks fails loudly with ``NotInStandIn``, naming
the function; nothing falls back to NumPy. Every name here exists in CuPy 13 with
NumPy's meaning; add one only after checking that it does.
"""
import operator
import sys

import numpy as np

DEVICE_COUNT = 1
MAX_THREADS_PER_BLOCK = 1024
MAX_BLOCK = (1024, 1024, 64)
MAX_GRID = (2**31 - 1, 65535, 65535)
SHARED_BYTES = 48 * 1024     # dynamic shared memory without cudaFuncAttributeMaxDynamicSharedMemorySize
UNWRITTEN_INT = -7777        # what empty() holds in integer arrays

LAUNCHES = []                # (kernel name, grid, block, shared_mem) of every launch, for tests


class NotInStandIn(AttributeError):
    """tinygen used a part of CuPy this stand-in does not provide."""


def _missing(name):
    return NotInStandIn(f"{name}: the CuPy stand-in (tests/fake_cuda/fake_cupy.py) does not provide it; "
                        f"if CuPy has it with NumPy's meaning, add it there, else tinygen must not call it")


# --- devices ---------------------------------------------------------------------

class CUDARuntimeError(RuntimeError):
    """What CuPy raises for a CUDA error (here: a device that does not exist)."""


_current = [0]   # stack of current device ids


def _check_ordinal(index):
    if not 0 <= index < DEVICE_COUNT:
        raise CUDARuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {index} "
                               f"({DEVICE_COUNT} device(s))")


class Device:
    def __init__(self, device=None):
        self.id = _current[-1] if device is None else int(device)

    def __enter__(self):
        _check_ordinal(self.id)
        _current.append(self.id)
        return self

    def __exit__(self, *exc):
        _current.pop()

    def use(self):
        _check_ordinal(self.id)
        _current[-1] = self.id

    def synchronize(self):
        pass

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class _Namespace:
    """A sub-module (cupy.cuda, cupy.random, ...): its names, and a loud error for any other."""

    def __init__(self, name, **members):
        self._name = name
        self.__dict__.update(members)

    def __getattr__(self, name):
        raise _missing(f"{self._name}.{name}")


def _device_count():
    return DEVICE_COUNT


# --- the array type -----------------------------------------------------------------

_SCALARS = (bool, int, float, complex, np.generic)   # what CuPy takes beside its arrays


def _unwrap(value, where, host_ok=False):
    """``value`` with every device array replaced by its NumPy buffer; a host array is a TypeError
    unless ``host_ok`` (the explicit host -> device paths)."""
    if isinstance(value, ndarray):
        if value._device != _current[-1]:
            raise ValueError(f"{where}: the array is on device {value._device} but the current device is "
                             f"{_current[-1]}")
        return value._a
    if isinstance(value, np.ndarray) and not host_ok:
        raise TypeError(f"{where}: Unsupported type {type(value)}: a NumPy array beside CuPy arrays "
                        f"(move it with cupy.asarray first)")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, where, host_ok) for v in value)
    return value


def _operand(value, where):
    """An operand of an operator or ufunc: a device array or a scalar, as in CuPy."""
    if isinstance(value, ndarray) or isinstance(value, _SCALARS):
        return _unwrap(value, where)
    raise TypeError(f"{where}: Unsupported type {type(value)}")


def _wrap(value):
    """NumPy results as device arrays: arrays and NumPy scalars (CuPy gives 0-d arrays)."""
    if isinstance(value, np.ndarray):
        return ndarray._new(value)
    if isinstance(value, np.generic):
        return ndarray._new(np.asarray(value))
    if isinstance(value, (tuple, list)):
        wrapped = [_wrap(v) for v in value]
        return wrapped if isinstance(value, list) else tuple(wrapped)
    return value


def _defers(other):
    """True where Python should ask ``other`` (a tinygen Tensor, say) for the operator instead."""
    return (not isinstance(other, (ndarray, np.ndarray)) and not isinstance(other, _SCALARS)
            and getattr(type(other), "__array_priority__", 0) > ndarray.__array_priority__)


class _Flags:
    def __init__(self, a):
        self.c_contiguous, self.f_contiguous, self.owndata = (a.flags.c_contiguous, a.flags.f_contiguous,
                                                              a.flags.owndata)

    def __getattr__(self, name):
        raise _missing(f"cupy.ndarray.flags.{name}")


class _Pointer:
    def __init__(self, a):
        self.ptr = a.__array_interface__["data"][0]


class ndarray:
    """A device array: a NumPy array that only device code may touch."""
    __slots__ = ("_a", "_device")
    __module__ = "cupy._core.core"   # what tinygen.serialization recognises a CuPy array by
    __array_priority__ = 100      # CuPy's: Tensors (1000) take the operators beside it

    def __init__(self, shape, dtype=float):
        self._a, self._device = _unwritten(np.empty(shape, dtype)), _current[-1]

    @classmethod
    def _new(cls, a, device=None):
        out = object.__new__(cls)
        out._a, out._device = a, _current[-1] if device is None else device
        return out

    # --- what CuPy forbids, and the explicit ways back --------------------------------
    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def get(self, stream=None, order="C", out=None, blocking=True):
        return self._a.copy(order=order)

    def set(self, arr, stream=None):
        if not isinstance(arr, np.ndarray) or arr.shape != self.shape:
            raise ValueError(f"set: expected a NumPy array of shape {self.shape}")
        self._a[...] = arr

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _ufunc(ufunc.__name__)._apply(method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        # CuPy runs np.f(device array) as cupy.f; one it lacks is an error there too
        if func.__module__.endswith("linalg"):
            return getattr(linalg, func.__name__)(*args, **kwargs)
        return getattr(sys.modules[__name__], func.__name__)(*args, **kwargs)

    # --- attributes ------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: _Flags(self._a))
    data = property(lambda self: _Pointer(self._a))
    device = property(lambda self: Device(self._device))
    T = property(lambda self: self._new(self._a.T, self._device))
    real = property(lambda self: self._new(self._a.real, self._device))
    imag = property(lambda self: self._new(self._a.imag, self._device))
    base = property(lambda self: None if self._a.base is None else self._new(self._a.base, self._device))

    def __getattr__(self, name):
        if hasattr(np.ndarray, name):
            raise _missing(f"cupy.ndarray.{name}")
        raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")

    # --- Python's protocols ------------------------------------------------------------
    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key, "cupy.ndarray.__getitem__", host_ok=True)])

    def __setitem__(self, key, value):
        where = "cupy.ndarray.__setitem__"
        self._a[_unwrap(key, where, host_ok=True)] = _unwrap(value, where, host_ok=True)

    def __bool__(self):
        return bool(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __complex__(self):
        return complex(self._a)

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __format__(self, spec):
        return format(self._a.item() if self.ndim == 0 else self._a, spec)

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        return (_from_host, (self._a.copy(), self._device))

    __hash__ = None


def _from_host(a, device):
    return ndarray._new(a, device)


def _operator(name):
    fn = getattr(operator, name + "_" if name in ("and", "or") else name)

    def method(self, other):
        if _defers(other):
            return NotImplemented
        where = f"cupy.ndarray.__{name}__"
        return _wrap(fn(_unwrap(self, where), _operand(other, where)))
    return method


def _reflected(name):
    fn = getattr(operator, name + "_" if name in ("and", "or") else name)

    def method(self, other):
        if _defers(other):
            return NotImplemented
        where = f"cupy.ndarray.__r{name}__"
        return _wrap(fn(_operand(other, where), _unwrap(self, where)))
    return method


def _in_place(name):
    fn = getattr(operator, f"i{name}")

    def method(self, other):
        where = f"cupy.ndarray.__i{name}__"
        fn(_unwrap(self, where), _operand(other, where))
        return self
    return method


def _unary(name):
    fn = getattr(operator, name)

    def method(self):
        return _wrap(fn(_unwrap(self, f"cupy.ndarray.__{name}__")))
    return method


def _method(name):
    def method(self, *args, **kwargs):
        where = f"cupy.ndarray.{name}"
        raw = getattr(_unwrap(self, where), name)
        return _wrap(raw(*_unwrap(args, where), **{k: _unwrap(v, where) for k, v in kwargs.items()}))
    method.__name__ = name
    return method


_ARITHMETIC = ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
               "lshift", "rshift")
for _name in _ARITHMETIC:
    setattr(ndarray, f"__{_name}__", _operator(_name))
    setattr(ndarray, f"__r{_name}__", _reflected(_name))
    setattr(ndarray, f"__i{_name}__", _in_place(_name))
for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(ndarray, f"__{_name}__", _operator(_name))
for _name in ("neg", "pos", "abs", "invert"):
    setattr(ndarray, f"__{_name}__", _unary(_name))
# The methods of cupy.ndarray that tinygen may call, each NumPy's on the device buffer.
for _name in ("all", "any", "argmax", "argmin", "argsort", "astype", "clip", "conj", "copy", "cumsum",
              "diagonal", "dot", "fill", "flatten", "item", "max", "mean", "min", "nonzero", "prod",
              "ravel", "repeat", "reshape", "round", "sort", "squeeze", "std", "sum", "swapaxes", "take",
              "tobytes", "tolist", "trace", "transpose", "var", "view"):
    setattr(ndarray, _name, _method(_name))


def _unwritten(a):
    """``a`` filled with values no computation gives by chance: a read of unwritten memory shows."""
    if a.dtype.kind in "fc":
        a.fill(np.nan)
    elif a.dtype.kind in "iu":
        a.fill(UNWRITTEN_INT if a.dtype.kind == "i" else np.iinfo(a.dtype).max)
    return a


# --- ufuncs and functions -----------------------------------------------------------

_UFUNCS = {"add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "negative", "positive",
           "power", "remainder", "mod", "fmod", "absolute", "rint", "sign", "exp", "exp2", "log", "log2",
           "log10", "expm1", "log1p", "sqrt", "square", "reciprocal", "sin", "cos", "tan", "arcsin", "arccos",
           "arctan", "arctan2", "hypot", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "greater",
           "greater_equal", "less", "less_equal", "not_equal", "equal", "logical_and", "logical_or",
           "logical_xor", "logical_not", "maximum", "minimum", "fmax", "fmin", "isfinite", "isinf", "isnan",
           "signbit", "copysign", "floor", "ceil", "trunc", "logaddexp", "bitwise_and", "bitwise_or",
           "bitwise_xor", "invert", "abs", "matmul", "conjugate", "conj", "deg2rad", "rad2deg"}
_UFUNC_AT = {"add", "subtract", "maximum", "minimum"}      # CuPy's ufunc.at (scatter_add and its kin)
_ATOMIC_DTYPES = {np.dtype(t) for t in (np.float16, np.float32, np.float64, np.int32, np.uint32, np.uint64)}
_ALIASES = {"abs": "absolute", "conj": "conjugate", "divide": "true_divide"}


class _Ufunc:
    def __init__(self, name):
        self.__name__ = name
        self._np = getattr(np, name)

    def __call__(self, *args, **kwargs):
        return self._apply("__call__", args, kwargs)

    def at(self, a, indices, b=None):
        return self._apply("at", (a, indices) + (() if b is None else (b,)), {})

    def __getattr__(self, name):
        raise _missing(f"cupy.{self.__name__}.{name}")

    def _apply(self, method, inputs, kwargs):
        where = f"cupy.{self.__name__}" + ("" if method == "__call__" else f".{method}")
        if method not in ("__call__", "at") or (method == "at" and self.__name__ not in _UFUNC_AT):
            raise _missing(where)
        if method == "at":
            if not isinstance(inputs[0], ndarray):
                raise TypeError(f"{where}: the array to update must be a CuPy array, got {type(inputs[0])}")
            if inputs[0].dtype not in _ATOMIC_DTYPES:   # CuPy scatters with CUDA's atomics
                raise TypeError(f"{where}: CuPy supports only {sorted(d.name for d in _ATOMIC_DTYPES)} "
                                f"arrays here (CUDA atomics), got {inputs[0].dtype}")
            raw = [_unwrap(inputs[0], where), _unwrap(inputs[1], where, host_ok=True)]
            raw += [_operand(v, where) for v in inputs[2:]]
            getattr(self._np, "at")(*raw)
            return None
        out = kwargs.get("out")
        raw_kwargs = {k: (_unwrap(v, where) if k == "out" else v) for k, v in kwargs.items()}
        result = self._np(*[_operand(v, where) for v in inputs], **raw_kwargs)
        if out is not None:
            return out[0] if isinstance(out, tuple) and len(out) == 1 else out
        return _wrap(result)


_ufuncs = {}


def _ufunc(name):
    name = _ALIASES.get(name, name)
    if name not in _UFUNCS:
        raise _missing(f"cupy.{name}")
    if name not in _ufuncs:
        _ufuncs[name] = _Ufunc(name)
    return _ufuncs[name]


# Functions of CuPy with NumPy's meaning. They take device arrays (never host ones) and give
# device arrays; the META ones give dtypes, shapes and flags.
_FUNCTIONS = {"zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "arange", "linspace", "eye",
              "identity", "concatenate", "stack", "hstack", "vstack", "split", "array_split", "broadcast_to",
              "broadcast_arrays", "expand_dims", "squeeze", "reshape", "transpose", "swapaxes", "moveaxis",
              "flip", "where", "pad", "einsum", "dot", "tensordot", "inner", "outer", "cumsum", "cumprod",
              "sum", "prod", "mean", "var", "std", "max", "min", "amax", "amin", "argmax", "argmin", "all",
              "any", "clip", "round", "around", "nonzero", "count_nonzero", "sort", "argsort", "take",
              "take_along_axis", "repeat", "tile", "diag", "diagonal", "trace", "tril", "triu", "isclose",
              "allclose", "array_equal", "unique", "searchsorted", "bincount", "copy", "ravel", "atleast_1d",
              "atleast_2d", "atleast_3d", "roll", "nan_to_num", "meshgrid", "cov", "sinc",
              "histogram", "digitize", "column_stack", "rot90", "fliplr", "flipud"}


def _dtype_of(value):
    return value.dtype if isinstance(value, ndarray) else value


def _result_type(*arrays_and_dtypes):
    return np.result_type(*[_dtype_of(v) for v in arrays_and_dtypes])


def _can_cast(from_, to, casting="safe"):
    return np.can_cast(_dtype_of(from_), to, casting)


def _shape(a):
    return a.shape if isinstance(a, ndarray) else np.shape(a)


def _ndim(a):
    return a.ndim if isinstance(a, ndarray) else np.ndim(a)


def _size(a, axis=None):
    return (a.size if axis is None else a.shape[axis]) if isinstance(a, ndarray) else np.size(a, axis)


_META = {"shape": _shape, "ndim": _ndim, "size": _size, "result_type": _result_type,
         "promote_types": np.promote_types, "can_cast": _can_cast, "finfo": np.finfo, "iinfo": np.iinfo,
         "issubdtype": np.issubdtype, "isscalar": np.isscalar}
_TYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
          "uint64", "bool_", "complex64", "complex128", "intp", "dtype", "number", "integer", "floating",
          "signedinteger", "unsignedinteger", "complexfloating", "generic", "pi", "e", "inf", "nan", "newaxis")


# Functions whose arguments after the first are read on the host in CuPy too (indices, shapes,
# widths), so a NumPy array there is fine.
_HOST_PARAMETERS = {"split", "array_split", "pad", "reshape", "broadcast_to", "tile", "transpose"}


def _function(name):
    fn = getattr(np, name)
    host_ok = name in _HOST_PARAMETERS

    def call(*args, **kwargs):
        where = f"cupy.{name}"
        raw = _unwrap(args[:1], where) + _unwrap(args[1:], where, host_ok)
        return _wrap(fn(*raw, **{k: _unwrap(v, where, host_ok) for k, v in kwargs.items()}))
    call.__name__ = name
    return call


def __getattr__(name):
    """The module's names beyond those defined below, made on first use; anything else is loud."""
    if name in _UFUNCS:
        value = _ufunc(name)
    elif name in _FUNCTIONS:
        value = _function(name)
    elif name in _META:
        value = _META[name]
    elif name in _TYPES:
        value = getattr(np, name)
    else:
        raise _missing(f"cupy.{name}")
    globals()[name] = value
    return value


def _host_data(obj, where):
    """The host value of what ``asarray`` / ``array`` is given (device arrays inside lists too)."""
    return _unwrap(obj, where, host_ok=True)


def asarray(a, dtype=None, order=None, blocking=False):
    if isinstance(a, ndarray):
        return a if dtype is None or np.dtype(dtype) == a.dtype else a.astype(dtype)
    return ndarray._new(np.array(_host_data(a, "cupy.asarray"), dtype=dtype, order=order or "K", copy=True))


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, blocking=False):
    if isinstance(obj, ndarray) and not copy and (dtype is None or np.dtype(dtype) == obj.dtype):
        return obj
    return ndarray._new(np.array(_host_data(obj, "cupy.array"), dtype=dtype, copy=True, order=order, ndmin=ndmin))


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError(f"cupy.ascontiguousarray: Unsupported type {type(a)}")
    if a.flags.c_contiguous and (dtype is None or np.dtype(dtype) == a.dtype):
        return a
    return _wrap(np.ascontiguousarray(_unwrap(a, "cupy.ascontiguousarray"), dtype=dtype))


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    if isinstance(a, ndarray):
        return a._a.copy(order=order)
    return np.asarray(a, order=order)


def empty(shape, dtype=float, order="C"):
    return ndarray._new(_unwritten(np.empty(shape, dtype=dtype, order=order)))


def empty_like(a, dtype=None, order="K", subok=None, shape=None):
    raw = _unwrap(a, "cupy.empty_like")
    return ndarray._new(_unwritten(np.empty_like(raw, dtype=dtype, order=order, shape=shape)))


def get_array_module(*args):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else np


def _linalg_function(name):
    fn = getattr(np.linalg, name)

    def call(*args, **kwargs):
        result = fn(*_unwrap(args, f"cupy.linalg.{name}"), **kwargs)
        return _wrap(tuple(result) if isinstance(result, tuple) else result)   # slogdet's named pair
    call.__name__ = name
    return call


linalg = _Namespace("cupy.linalg", **{name: _linalg_function(name)
                                     for name in ("inv", "slogdet", "det", "solve", "cholesky", "eigh", "norm")})


# --- random numbers ---------------------------------------------------------------------

class Generator:
    """cupy.random.Generator: device arrays drawn from a NumPy Generator (or bit generator).

    Its methods are those of CuPy's Generator that tinygen may use: random, standard_normal,
    uniform, integers (CuPy's also has beta, gamma, poisson, ...; add them as needed)."""

    def __init__(self, bit_generator):
        self._g = bit_generator if isinstance(bit_generator, np.random.Generator) else np.random.Generator(
            bit_generator)

    def _draw(self, name, args, kwargs):
        where = f"cupy.random.Generator.{name}"
        return _wrap(getattr(self._g, name)(*_unwrap(args, where), **{k: _unwrap(v, where)
                                                                       for k, v in kwargs.items()}))

    def random(self, size=None, dtype=np.float64, out=None):
        if out is not None:
            raise _missing("cupy.random.Generator.random(out=...)")
        return self._draw("random", (size,), {"dtype": dtype})

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        if out is not None:
            raise _missing("cupy.random.Generator.standard_normal(out=...)")
        return self._draw("standard_normal", (size,), {"dtype": dtype})

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        return self._draw("uniform", (low, high, size), {}).astype(dtype, copy=False)

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        return self._draw("integers", (low, high, size), {"dtype": dtype, "endpoint": endpoint})

    # No normal, permutation, shuffle or choice: CuPy's Generator has none of them
    # (cupy/random/_generator_api.pyx); the legacy cupy.random.RandomState does, but tinygen
    # draws from default_rng's Generator.

    def __getattr__(self, name):
        raise _missing(f"cupy.random.Generator.{name}")


def _default_rng(seed=None):
    return Generator(np.random.default_rng(seed))


random = _Namespace("cupy.random", default_rng=_default_rng, Generator=Generator)


# --- kernels: the SIMT emulator with a GPU's launch checks ---------------------------

class LaunchError(CUDARuntimeError):
    """A launch a GPU would refuse."""


def _dims(value, what, limits):
    dims = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if not 1 <= len(dims) <= 3 or any(not isinstance(d, (int, np.integer)) for d in dims):
        raise LaunchError(f"{what} must be an int or a tuple of 1 to 3 ints, got {value!r}")
    dims = tuple(int(d) for d in dims) + (1,) * (3 - len(dims))
    if any(d < 1 for d in dims) or any(d > m for d, m in zip(dims, limits)):
        raise LaunchError(f"cudaErrorInvalidConfiguration: {what} {dims} outside 1..{limits}")
    return dims


_PYTHON_SCALARS = ((bool, np.bool_), (int, np.int64), (float, np.float64))   # CuPy: bool, long long, double


def _argument(kernel, k, value):
    """One launch argument as the emulator takes it, after CuPy's type rules."""
    where = f"{kernel.name}: argument {kernel.names[k]}"
    code = kernel.types[k]
    if isinstance(value, np.ndarray):
        raise TypeError(f"{where}: Unsupported type {type(value)} (a NumPy array passed to a CUDA kernel)")
    if isinstance(value, ndarray):
        if not code.startswith("*"):
            raise TypeError(f"{where} is a {code} scalar, got an array")
        return _unwrap(value, where)
    for python, dtype in _PYTHON_SCALARS:
        if type(value) is python:
            value = dtype(value)
            break
    if isinstance(value, np.generic):
        import emulator
        want = emulator._SCALARS.get(code, (None, None))[1]
        if want is None or np.dtype(want) != value.dtype:
            raise TypeError(f"{where}: a {value.dtype} value for a parameter of type {code}: on a GPU it is "
                            f"passed as {value.dtype.itemsize} bytes and misread (pass np.{np.dtype(want).name})"
                            if want is not None else f"{where}: a scalar for a pointer parameter")
        return value
    raise TypeError(f"{where}: Unsupported type {type(value)}")


class RawKernel:
    def __init__(self, code=None, name=None, options=(), backend="nvrtc", *, _kernel=None):
        if _kernel is None:
            _kernel = RawModule(code=code, options=options).get_function(name)._kernel
        self._kernel, self.name = _kernel, _kernel.name
        self.max_dynamic_shared_size_bytes = None      # CuPy's opt-in attribute for more than 48 KiB

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None, enable_cooperative_groups=False):
        grid3, block3 = _dims(grid, "grid", MAX_GRID), _dims(block, "block", MAX_BLOCK)
        if np.prod(block3) > MAX_THREADS_PER_BLOCK:
            raise LaunchError(f"cudaErrorInvalidConfiguration: block {block3} has {np.prod(block3)} threads, "
                              f"more than {MAX_THREADS_PER_BLOCK}")
        limit = self.max_dynamic_shared_size_bytes or SHARED_BYTES
        if not 0 <= int(shared_mem) <= limit:
            raise LaunchError(f"cudaErrorInvalidValue: shared_mem={shared_mem} bytes, more than {limit} "
                              f"(set max_dynamic_shared_size_bytes to opt in)")
        if int(shared_mem) > SHARED_BYTES:
            raise _missing("launches with more than 48 KiB of dynamic shared memory (the emulator's limit)")
        args = tuple(args)
        if len(args) != len(self._kernel.types):
            raise TypeError(f"{self.name} takes {len(self._kernel.types)} arguments, got {len(args)}")
        raw = [_argument(self._kernel, k, v) for k, v in enumerate(args)]
        LAUNCHES.append((self.name, grid3, block3, int(shared_mem)))
        self._kernel(grid3, block3, raw, shared_mem=int(shared_mem))

    def __getattr__(self, name):
        raise _missing(f"cupy.RawKernel.{name}")


class RawModule:
    def __init__(self, code=None, path=None, options=(), backend="nvrtc", translate_cucomplex=False,
                 jitify=False, name_expressions=None):
        import emulator
        if (code is None) == (path is None):
            raise TypeError("RawModule takes exactly one of code= and path=")
        if not all(isinstance(o, str) for o in options):
            raise TypeError(f"RawModule: options must be strings, got {options!r}")
        self.options = tuple(options)
        self._module = (emulator.Module(code=code, name="raw_module.cu") if code is not None
                        else emulator.Module(path=path))

    def get_function(self, name):
        return RawKernel(_kernel=self._module.get_function(name))

    def __getattr__(self, name):
        raise _missing(f"cupy.RawModule.{name}")


cuda = _Namespace("cupy.cuda", Device=Device, runtime=_Namespace(
    "cupy.cuda.runtime", getDeviceCount=_device_count, CUDARuntimeError=CUDARuntimeError),
    CUDARuntimeError=CUDARuntimeError)

__version__ = "13.0.0+stand-in"
