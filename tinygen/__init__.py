"""tinygen: generative models from scratch on NumPy (CPU) and CuPy (GPU).

    import tinygen
    import tinygen.functional as F

    x = tinygen.tensor([[1.0, 2.0]], requires_grad=True)
    y = F.sigmoid(x @ x.T).sum()
    y.backward()          # x.grad now holds dy/dx
"""
from .autograd.tensor import Tensor, tensor
from .autograd.grad_mode import no_grad, enable_grad, set_grad_enabled, is_grad_enabled
from .autograd import grad
from .backend import manual_seed, cuda_available, get_array_module
from . import functional

__version__ = "0.1.0"


def zeros(shape, dtype="float32", requires_grad=False, device="cpu"):
    import numpy as np
    return tensor(np.zeros(shape, dtype=dtype), requires_grad=requires_grad, device=device)


def ones(shape, dtype="float32", requires_grad=False, device="cpu"):
    import numpy as np
    return tensor(np.ones(shape, dtype=dtype), requires_grad=requires_grad, device=device)


def randn(*shape, dtype="float32", requires_grad=False, device="cpu"):
    """Standard normal values from the CPU generator (``manual_seed``)."""
    from . import backend
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    data = backend.generator("cpu").standard_normal(shape).astype(dtype)
    return tensor(data, requires_grad=requires_grad, device=device)


def rand(*shape, dtype="float32", requires_grad=False, device="cpu"):
    """Uniform [0, 1) values from the CPU generator (``manual_seed``)."""
    from . import backend
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    data = backend.generator("cpu").random(shape).astype(dtype)
    return tensor(data, requires_grad=requires_grad, device=device)


def __getattr__(name):  # lazy submodules and the checkpoint functions
    import importlib
    if name in ("nn", "optim", "distributions", "data", "models", "testing", "cuda", "metrics"):
        return importlib.import_module(f".{name}", __name__)
    if name in ("save", "load"):
        return getattr(importlib.import_module(".serialization", __name__), name)
    raise AttributeError(f"module 'tinygen' has no attribute {name!r}")
