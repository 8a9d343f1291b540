"""tinygen: generative models from scratch on NumPy (CPU) and CuPy (GPU).

    import tinygen
    import tinygen.functional as F

    x = tinygen.tensor([[1.0, 2.0]], requires_grad=True)
    y = F.sigmoid(x @ x.T).sum()
    y.backward()          # x.grad now holds dy/dx
"""
import importlib

__version__ = "0.1.0"

# The public names load on first use (PEP 562's module __getattr__), so that
# `import tinygen` costs nothing until one is asked for: `python -m tinygen` then
# reaches the command line, and its one-line handling of Ctrl-C, before NumPy loads.
_NAMES = {
    "Tensor": ".autograd.tensor", "tensor": ".autograd.tensor",
    "no_grad": ".autograd.grad_mode", "enable_grad": ".autograd.grad_mode",
    "set_grad_enabled": ".autograd.grad_mode", "is_grad_enabled": ".autograd.grad_mode",
    "grad": ".autograd",
    "manual_seed": ".backend", "cuda_available": ".backend", "get_array_module": ".backend",
    "save": ".serialization", "load": ".serialization",
}
_SUBMODULES = ("autograd", "backend", "functional", "nn", "optim", "distributions", "data", "models",
               "metrics", "testing", "cuda", "serialization", "imaging")


def __getattr__(name):
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name], __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'tinygen' has no attribute {name!r}")
    globals()[name] = value   # found once; later lookups are plain attribute reads
    return value


def __dir__():
    return sorted(set(globals()) | set(_NAMES) | set(_SUBMODULES))


def zeros(shape, dtype="float32", requires_grad=False, device="cpu"):
    import numpy as np
    from .autograd.tensor import tensor
    return tensor(np.zeros(shape, dtype=dtype), requires_grad=requires_grad, device=device)


def ones(shape, dtype="float32", requires_grad=False, device="cpu"):
    import numpy as np
    from .autograd.tensor import tensor
    return tensor(np.ones(shape, dtype=dtype), requires_grad=requires_grad, device=device)


def randn(*shape, dtype="float32", requires_grad=False, device="cpu"):
    """Standard normal values from the CPU generator (``manual_seed``)."""
    from . import backend
    from .autograd.tensor import tensor
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    data = backend.generator("cpu").standard_normal(shape).astype(dtype)
    return tensor(data, requires_grad=requires_grad, device=device)


def rand(*shape, dtype="float32", requires_grad=False, device="cpu"):
    """Uniform [0, 1) values from the CPU generator (``manual_seed``)."""
    from . import backend
    from .autograd.tensor import tensor
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    data = backend.generator("cpu").random(shape).astype(dtype)
    return tensor(data, requires_grad=requires_grad, device=device)
