"""Parameter and Module: the bookkeeping every network layer shares.

A network is a function y = f(x; theta) whose parameters theta are spread over
many layers. ``Module`` keeps track of them so that nobody has to list them by
hand:

    parameters    Parameter tensors, trained by an optimizer (dL/dtheta flows to them)
    buffers       Tensors that are state but not trained, e.g. BatchNorm's running
                  mean and variance; saved in ``state_dict`` but not in ``parameters()``
    submodules    Modules held as attributes; their parameters and buffers belong
                  to the parent too, under dotted names: ``encoder.0.weight``

Assigning an attribute registers it: ``self.fc = Linear(2, 3)`` records a
submodule, ``self.w = Parameter(...)`` a parameter, and ``register_buffer`` a
buffer. Everything else is an ordinary Python attribute.

Two modes, set recursively by ``train()`` / ``eval()``: ``self.training`` is True
while training (dropout drops, BatchNorm uses the batch's statistics) and False
for evaluation and sampling (dropout is the identity, BatchNorm uses its running
statistics).

A checkpoint of a module is ``state_dict()``: an ordered dict of dotted name ->
NumPy array copy. ``load_state_dict`` copies such a dict back into the existing
arrays (keeping each tensor's dtype and device, and the Parameter objects an
optimizer holds), and names every missing, unexpected or mis-shaped entry in one
error.
"""
from collections import OrderedDict, namedtuple

import numpy as np

from .. import backend
from ..autograd.tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that a Module trains: floating point, created with ``requires_grad=True``
    (``Module.requires_grad_(False)`` can freeze it later, e.g. a GAN's discriminator).

    The data is copied. Python numbers and lists become float32 (as ``tensor``
    does for floats); NumPy float64 arrays stay float64 (gradient checks use them).
    """
    __slots__ = ()

    def __init__(self, data, dtype=None):
        super().__init__(data, dtype=dtype)
        if self.data.dtype.kind != "f":
            if isinstance(data, (Tensor, np.ndarray, np.generic)) or backend.get_array_module(data) is not np:
                raise TypeError(f"Parameter: data must be floating point, got {self.data.dtype} of "
                                f"shape {tuple(self.shape)} (convert it with .astype(np.float32) first)")
            self.data = self.data.astype(np.float32)  # Python ints, e.g. Parameter([1, 2])
        self.requires_grad = True

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def _buffer_tensor(name, value):
    """A buffer is a Tensor without gradient (or None); arrays are wrapped."""
    if value is None:
        return None
    if isinstance(value, Parameter):
        raise TypeError(f"buffer '{name}': got a Parameter; a buffer holds state that is not trained "
                        f"(register it as a parameter instead)")
    if not isinstance(value, Tensor):
        if not isinstance(value, np.ndarray) and backend.get_array_module(value) is np:
            raise TypeError(f"buffer '{name}': expected a Tensor, an array or None, got {type(value).__name__}")
        value = Tensor._make(value)
    return value


def _as_plain_array(name, value):
    """A state_dict value (array, Tensor or number) as an array on its own device."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, (np.ndarray, np.generic, int, float, list, tuple)):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"load_state_dict: entry '{name}' holds {arr.dtype} values, not numbers")
        return arr
    if backend.get_array_module(value) is not np:
        return value  # a CuPy array
    raise TypeError(f"load_state_dict: entry '{name}' is a {type(value).__name__}, expected an array")


class LoadStateDictError(RuntimeError):
    """``load_state_dict`` found entries that do not fit; ``missing``, ``unexpected`` and
    ``mismatched`` (name -> (expected shape, given shape)) say which."""

    def __init__(self, module_name, missing, unexpected, mismatched):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        lines = [f"load_state_dict: the state does not fit this {module_name}:"]
        if missing:
            lines.append("  missing (in the module, not in the state): " + ", ".join(missing))
        if unexpected:
            lines.append("  unexpected (in the state, not in the module): " + ", ".join(unexpected))
        for name, (want, got) in mismatched.items():
            lines.append(f"  shape mismatch for '{name}': the module has {want}, the state has {got}")
        super().__init__("\n".join(lines))


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of every layer and model; subclasses define ``__init__`` and ``forward``.

        class MLP(Module):
            def __init__(self):
                super().__init__()           # first: sets up the registries
                self.fc1 = Linear(2, 16)     # a submodule, registered by assignment
                self.fc2 = Linear(16, 1)

            def forward(self, x):
                return self.fc2(F.relu(self.fc1(x)))

        MLP()(x)        # calls forward
    """

    def __init__(self):
        # object.__setattr__: our own __setattr__ needs these dicts to exist already
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # --- registration ---------------------------------------------------------
    def _registries(self, what):
        d = self.__dict__
        if "_parameters" not in d:
            raise RuntimeError(f"{type(self).__name__}: cannot assign {what} before Module.__init__() "
                               f"has run; call super().__init__() first in __init__")
        return d["_parameters"], d["_buffers"], d["_modules"]

    def _forget(self, name, keep=None):
        """Drop ``name`` from every registry (except ``keep``, where re-assigning keeps its
        place, so the order of parameters does not change) and from the plain attributes."""
        params, buffers, modules = self._registries(repr(name))
        for registry in (params, buffers, modules):
            if registry is not keep:
                registry.pop(name, None)
        self.__dict__.pop(name, None)
        self._non_persistent.discard(name)

    def register_parameter(self, name, param):
        """Register ``param`` (a Parameter, or None for an absent one such as ``bias=False``)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter '{name}': expected a Parameter or None, got "
                            f"{type(param).__name__} (wrap a Tensor as Parameter(t) to train it)")
        params = self._registries(f"parameter {name!r}")[0]
        self._check_name(name)
        self._forget(name, keep=params)
        params[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Register untrained state (a Tensor, array or None); saved in ``state_dict`` when persistent."""
        buffers = self._registries(f"buffer {name!r}")[1]
        self._check_name(name)
        value = _buffer_tensor(name, tensor)
        self._forget(name, keep=buffers)
        buffers[name] = value
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module '{name}': expected a Module or None, got {type(module).__name__}")
        modules = self._registries(f"submodule {name!r}")[2]
        self._check_name(name)
        self._forget(name, keep=modules)
        modules[name] = module

    def _check_name(self, name):
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"{type(self).__name__}: invalid attribute name {name!r} (a non-empty "
                             f"string without dots, which separate the levels of dotted names)")

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            self.add_module(name, value)
        else:
            d = self.__dict__
            if name in d.get("_parameters", ()):
                if value is not None:
                    raise TypeError(f"{type(self).__name__}.{name} is a parameter; assign a Parameter "
                                    f"or None, not {type(value).__name__}")
                self._parameters[name] = None
            elif name in d.get("_buffers", ()):
                self._buffers[name] = _buffer_tensor(name, value)
            elif name in d.get("_modules", ()):
                if value is not None:
                    raise TypeError(f"{type(self).__name__}.{name} is a submodule; assign a Module or "
                                    f"None, not {type(value).__name__}")
                self._modules[name] = None
            else:
                object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # only called when normal lookup fails: look in the registries
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        d = self.__dict__
        if any(name in d.get(r, ()) for r in ("_parameters", "_buffers", "_modules")):
            self._forget(name)
        else:
            object.__delattr__(self, name)

    # --- traversal ------------------------------------------------------------
    def named_children(self):
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and every descendant, each once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:  # depth-first, children in registration order
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            kids = [(f"{name}.{k}" if name else k, c) for k, c in m.named_children()]
            stack.extend(reversed(kids))

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def _named_members(self, registry, prefix, recurse):
        seen = set()  # a tensor shared by two layers is listed once, under its first name
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_name, m in mods:
            for name, t in getattr(m, registry).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{mod_name}.{name}" if mod_name else name), t

    def named_parameters(self, prefix="", recurse=True):
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """Call ``fn(m)`` on every submodule, children first, then on self (e.g. custom init)."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # --- modes and housekeeping ----------------------------------------------
    def train(self, mode=True):
        """Set training mode on this module and every descendant."""
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be True or False, got {mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, flag=True):
        """Turn gradients of every parameter on or off (e.g. freeze the discriminator)."""
        for p in self.parameters():
            p.requires_grad = bool(flag)
        return self

    def zero_grad(self):
        """Forget the gradients of every parameter (``.grad = None``)."""
        for p in self.parameters():
            p.grad = None

    def _tensors(self):
        """Every parameter and buffer, each once."""
        yield from (p for _, p in self.named_parameters())
        yield from (b for _, b in self.named_buffers())

    def to(self, device):
        """Move every parameter and buffer to ``device`` in place and return self.

        The Parameter objects stay the same (only their ``.data`` moves), so an
        optimizer made before the move still holds them.
        """
        device = backend.normalize_device(device)
        for t in self._tensors():
            t.data = backend.to_device(t.data, device)
            t._bump_version()
            if t.grad is not None:
                t.grad = Tensor._make(backend.to_device(t.grad.data, device))
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def astype(self, dtype):
        """Cast floating-point parameters and buffers to ``dtype`` in place (e.g. float64 for gradcheck)."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"astype: parameters must stay floating point, got {dtype}")
        for t in self._tensors():
            if t.data.dtype.kind == "f":
                t.data = t.data.astype(dtype)
                t._bump_version()
                t.grad = None if t.grad is None else Tensor._make(t.grad.data.astype(dtype))
        return self

    def double(self):
        return self.astype(np.float64)

    def float(self):
        return self.astype(np.float32)

    # --- checkpoints ------------------------------------------------------------
    def _state_tensors(self):
        """name -> Tensor for what a state_dict holds: each module's parameters, then its
        persistent buffers, module by module (a tensor shared by two layers appears once)."""
        out, seen = OrderedDict(), set()
        for mod_name, m in self.named_modules():
            prefix = mod_name + "." if mod_name else ""
            entries = list(m._parameters.items()) + [(k, b) for k, b in m._buffers.items()
                                                     if k not in m._non_persistent]
            for name, t in entries:
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    out[prefix + name] = t
        return out

    def state_dict(self):
        """Ordered dict of dotted name -> NumPy array (a copy, on the CPU)."""
        return OrderedDict((name, np.array(backend.to_device(t.data, "cpu"), copy=True))
                           for name, t in self._state_tensors().items())

    def load_state_dict(self, state, strict=True):
        """Copy ``state`` (name -> array) into this module's parameters and buffers.

        Shapes must match exactly. With ``strict`` the names must match too;
        otherwise missing and unexpected names are skipped and returned. Every
        problem is reported at once, by name, before anything is changed.
        """
        if not isinstance(state, dict):
            raise TypeError(f"load_state_dict: expected a dict of name -> array, got {type(state).__name__}")
        own = self._state_tensors()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        arrays, mismatched = {}, {}
        for name, t in own.items():
            if name in state:
                arr = _as_plain_array(name, state[name])
                arrays[name] = arr
                if tuple(arr.shape) != tuple(t.shape):
                    mismatched[name] = (tuple(t.shape), tuple(arr.shape))
        if mismatched or (strict and (missing or unexpected)):
            raise LoadStateDictError(type(self).__name__, missing, unexpected, mismatched)
        for name, arr in arrays.items():
            t = own[name]
            # in place: same array object, its own dtype and device
            t.data[...] = backend.to_device(arr, t.device)
            t._bump_version()
        return IncompatibleKeys(missing, unexpected)

    # --- printing -------------------------------------------------------------------
    def extra_repr(self):
        """The text inside the parentheses of this module's repr (layer settings)."""
        return ""

    def __repr__(self):
        children = list(self.named_children())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [head]
        for name, m in children:
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"
