"""Gradient checks by central differences, in float64.

For f: R^n -> R^m the analytic Jacobian J (from the graph walk) must match

    J[:, j] ~ (f(x + eps e_j) - f(x - eps e_j)) / (2 eps)          error O(eps^2)

Small problems compare the full Jacobian, column by column and row by row. For
large ones, forming J costs too much, so we compare it along random directions:
for a random input direction u and output cotangent v (the adjoint identity)

    v . (f(x + eps u) - f(x - eps u)) / (2 eps)  ~  v^T J u  =  <grad(f, x, v), u>

``gradgradcheck`` applies the same test to the map (x, v) -> grad(f(x), x, v,
create_graph=True), which checks the backward formulas' own derivatives
(second derivatives, needed by gradient penalties).
"""
import numpy as np

from .tensor import Tensor
from .engine import grad as _grad
from .grad_mode import enable_grad
from .. import backend

FULL_JACOBIAN_LIMIT = 256  # n_in * n_out at most this: full Jacobian; otherwise random directions


class GradcheckError(AssertionError):
    pass


def _prepare(inputs):
    out = []
    for x in inputs:
        if isinstance(x, Tensor):
            out.append(x)
        elif isinstance(x, np.ndarray) and x.dtype.kind == "f":
            out.append(Tensor(x.astype(np.float64), requires_grad=True))
        else:
            out.append(x)  # a non-tensor argument passed through unchanged
    for x in out:
        if isinstance(x, Tensor) and x.requires_grad and x.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs that require gradients must be float64 (central "
                            f"differences in float32 are too coarse), got {x.dtype} of shape {tuple(x.shape)}")
    return out


def _outputs(fn, args):
    with enable_grad():
        y = fn(*args)
    ys = list(y) if isinstance(y, (list, tuple)) else [y]
    return [t for t in ys if isinstance(t, Tensor) and t.dtype.kind == "f"]


def _eval_flat(fn, args, idx, delta):
    """f with input ``idx`` replaced by x + delta, outputs flattened to one float64 vector."""
    moved = list(args)
    x = args[idx]
    moved[idx] = Tensor._make(x.data + delta)
    moved[idx].requires_grad = True
    ys = _outputs(fn, moved)
    if not ys:
        return np.zeros(0)
    return np.concatenate([np.asarray(backend.to_device(y.data, "cpu"), np.float64).ravel() for y in ys])


def _analytic_vjp(ys, wrt, vs):
    """[<sum_k v_k . dy_k/dx_i>] for each x_i in wrt, zeros where unused."""
    pairs = [(y, v) for y, v in zip(ys, vs) if y.requires_grad]
    if not pairs:
        return [np.zeros(x.shape) for x in wrt]
    gs = _grad([p[0] for p in pairs], wrt, [p[1] for p in pairs], retain_graph=True, allow_unused=True)
    return [np.zeros(x.shape) if g is None else np.asarray(backend.to_device(g.data, "cpu"), np.float64)
            for g, x in zip(gs, wrt)]


def _describe(args, names):
    parts = []
    for i, a in enumerate(args):
        if isinstance(a, Tensor):
            parts.append(f"  input {i}: shape {tuple(a.shape)}, values {np.array2string(a.numpy().ravel(), threshold=12, precision=4)}")
    return "\n".join(parts)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, raise_exception=True, n_directions=3, seed=0):
    """Compare fn's analytic gradients with central differences; True, or raise GradcheckError.

    ``inputs``: a sequence of Tensors (float64 where ``requires_grad``) or other arguments.
    """
    args = _prepare(list(inputs) if isinstance(inputs, (list, tuple)) else [inputs])
    wrt_idx = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    if not wrt_idx:
        raise ValueError("gradcheck: no input requires a gradient")
    wrt = [args[i] for i in wrt_idx]
    ys = _outputs(fn, args)
    out_sizes = [y.size for y in ys]
    n_out = sum(out_sizes)
    n_in = sum(x.size for x in wrt)
    rng = np.random.default_rng(seed)

    def fail(what, numerical, analytic):
        msg = (f"gradcheck failed ({what}):\n{_describe(args, None)}\n"
               f"  numerical: {np.array2string(np.asarray(numerical), threshold=40, precision=6)}\n"
               f"  analytic:  {np.array2string(np.asarray(analytic), threshold=40, precision=6)}\n"
               f"  max |difference| = {np.max(np.abs(np.asarray(numerical) - np.asarray(analytic))):.3e} "
               f"(atol={atol}, rtol={rtol})")
        if raise_exception:
            raise GradcheckError(msg)
        return False

    def cotangents(v_flat):
        vs, k = [], 0
        for y, s in zip(ys, out_sizes):
            xp = backend.get_array_module(y.data)
            vs.append(Tensor._make(xp.asarray(v_flat[k:k + s].reshape(y.shape), dtype=y.dtype)))
            k += s
        return vs

    if n_in * n_out <= FULL_JACOBIAN_LIMIT:
        for j, (i, x) in enumerate(zip(wrt_idx, wrt)):
            numerical = np.zeros((n_out, x.size))
            for e in range(x.size):
                d = np.zeros(x.size)
                d[e] = eps
                d = backend.to_device(d.reshape(x.shape), x.device)
                numerical[:, e] = (_eval_flat(fn, args, i, d) - _eval_flat(fn, args, i, -d)) / (2 * eps)
            analytic = np.zeros((n_out, x.size))
            for r in range(n_out):
                v = np.zeros(n_out)
                v[r] = 1.0
                analytic[r] = _analytic_vjp(ys, [x], cotangents(v))[0].ravel()
            if not np.allclose(analytic, numerical, atol=atol, rtol=rtol):
                return fail(f"Jacobian with respect to input {i}", numerical, analytic)
        return True

    for _ in range(n_directions):
        v = rng.standard_normal(n_out)
        us = [rng.standard_normal(x.shape) for x in wrt]
        analytic = sum(float((g * u).sum()) for g, u in zip(_analytic_vjp(ys, wrt, cotangents(v)), us))
        numerical = 0.0
        for i, x, u in zip(wrt_idx, wrt, us):
            d = backend.to_device(eps * u, x.device)
            numerical += float(v @ (_eval_flat(fn, args, i, d) - _eval_flat(fn, args, i, -d))) / (2 * eps)
        if not np.isclose(analytic, numerical, atol=atol * max(1.0, np.sqrt(n_out)), rtol=rtol):
            return fail("random direction v^T J u", numerical, analytic)
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-4, raise_exception=True,
                  seed=0):
    """gradcheck of (x, v) -> grad(fn(x), x, v, create_graph=True): second derivatives."""
    args = _prepare(list(inputs) if isinstance(inputs, (list, tuple)) else [inputs])
    wrt_idx = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    ys = _outputs(fn, args)
    rng = np.random.default_rng(seed + 1)
    if grad_outputs is None:
        grad_outputs = [Tensor(rng.standard_normal(y.shape), requires_grad=True) for y in ys]
    n_args = len(args)

    def first_derivatives(*all_args):
        xs, vs = list(all_args[:n_args]), list(all_args[n_args:])
        outs = _outputs(fn, xs)
        pairs = [(y, v) for y, v in zip(outs, vs) if y.requires_grad]
        gs = _grad([p[0] for p in pairs], [xs[i] for i in wrt_idx], [p[1] for p in pairs],
                   create_graph=True, allow_unused=True)
        return [g for g in gs if g is not None]

    return gradcheck(first_derivatives, args + list(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, seed=seed)
