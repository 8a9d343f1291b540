"""The reverse-mode engine: Tensor, Function, the graph walk, grad and gradient checks."""
from .tensor import Tensor, tensor
from .function import Function
from .grad_mode import no_grad, enable_grad, set_grad_enabled, is_grad_enabled
from .engine import grad
from .gradcheck import gradcheck, gradgradcheck
