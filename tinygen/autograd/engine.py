"""``grad``: gradients of outputs with respect to chosen inputs, without touching ``.grad``.

    grad([y_1..y_m], [x_1..x_n], [g_1..g_m]) = [sum_k g_k . dy_k/dx_i  for each i]

With ``create_graph=True`` the returned gradients carry a graph of their own, so a
function of them (a gradient penalty ||dD/dx||) can be differentiated again.
"""
from .function import run_backward, unit_seed
from .tensor import Tensor


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None,
         allow_unused=False):
    outputs, inputs = _as_list(outputs), _as_list(inputs)
    for t in inputs:
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise ValueError("grad: every input must be a Tensor with requires_grad=True")
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    grad_outputs = _as_list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    seeds = []
    for y, g in zip(outputs, grad_outputs):
        if not y.requires_grad:
            raise ValueError(f"grad: an output of shape {tuple(y.shape)} does not require a gradient "
                             f"(it has no graph back to the inputs)")
        if g is None:
            if y.size != 1:
                raise RuntimeError(f"grad: output of shape {tuple(y.shape)} is not a scalar; pass "
                                   f"grad_outputs of that shape")
            g = unit_seed(y)
        elif not isinstance(g, Tensor):
            g = Tensor(g, dtype=y.dtype)
        if g.shape != y.shape:
            raise ValueError(f"grad: grad_output of shape {tuple(g.shape)} for an output of shape "
                             f"{tuple(y.shape)}")
        seeds.append(g)
    if retain_graph is None:
        retain_graph = create_graph
    result = run_backward(outputs, seeds, inputs=inputs, retain_graph=retain_graph,
                          create_graph=create_graph)
    for i, (t, g) in enumerate(zip(inputs, result)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"grad: input {i} (shape {tuple(t.shape)}) is not used to compute "
                                   f"the outputs; pass allow_unused=True to get None for it")
        elif not create_graph:
            result[i] = g.detach()
    return result
