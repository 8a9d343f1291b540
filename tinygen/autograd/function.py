"""The op contract and the graph walk.

An op is a ``Function`` subclass with two methods, side by side:

    forward(self, *arrays, **params) -> array or tuple of arrays
        plain NumPy/CuPy arrays in and out; saves on ``self`` what backward needs.
    backward(self, *grad_outputs) -> one gradient (Tensor or None) per input
        written with Tensor ops, so that a gradient is itself differentiable.

``Function.apply`` runs forward and, when a graph is being recorded and some input
requires a gradient, links the outputs to the function (``output.creator``) and
keeps the input Tensors in ``self.inputs`` for backward to use.

The graph walk (reverse mode). Given roots y_k with seed gradients g_k, every
tensor t in the graph gets

    dL/dt = sum over the ops f that used t of  f.backward(dL/d outputs of f)[slot of t]

It is computed by visiting each Function once, in reverse topological order (an
iterative depth-first search: no recursion limit on a 10,000-step chain), so that
when f is visited every gradient of its outputs is complete. Gradients of a tensor
used twice are summed. Unless ``retain_graph`` is set, each Function drops what it
saved once its backward has run, and a second pass through it is an error.
"""
import weakref

import numpy as np

from .grad_mode import is_grad_enabled, no_grad, enable_grad
from .. import backend


class Function:
    # Set by apply when a graph is recorded:
    #   inputs            tuple of input Tensors
    #   needs_input_grad  tuple of bools, one per input
    #   _outputs          weak references to the outputs (no reference cycle)
    #   _out_meta         (shape, dtype) of every output, to make zero gradients
    _freed = False

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, *grad_outputs):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on Tensors ``inputs``; returns a Tensor (or a tuple for several outputs)."""
        fn = cls()
        arrays = [t.data for t in inputs]
        if backend._cupy is not None:  # only a machine with CuPy can mix devices
            _check_same_device(cls, inputs)
        raw = fn.forward(*arrays, **params)
        multi = isinstance(raw, tuple)
        raws = raw if multi else (raw,)
        # NumPy reductions return scalars (np.float32), which cannot be updated in place
        raws = tuple(np.asarray(a) if isinstance(a, np.generic) else a for a in raws)
        if is_grad_enabled() and any(t.requires_grad for t in inputs):
            fn.inputs = inputs
            fn.needs_input_grad = tuple(t.requires_grad for t in inputs)
            outs = tuple(Tensor._make(a, fn, i) for i, a in enumerate(raws))
            fn._outputs = tuple(weakref.ref(o) for o in outs)
            fn._out_meta = tuple((a.shape, a.dtype) for a in raws)
        else:
            outs = tuple(Tensor._make(a) for a in raws)
        return outs if multi else outs[0]

    @property
    def output(self):
        """The (single) output Tensor, for backward formulas written in terms of it (exp, tanh ...)."""
        out = self._outputs[0]()
        if out is None:  # cannot happen while a graph walk reaches this op through it
            raise RuntimeError(f"{type(self).__name__}: its output was freed before backward")
        return out

    def _release(self):
        self.__dict__.clear()
        self._freed = True


def _check_same_device(cls, inputs):
    devices = {t.device for t in inputs}
    if len(devices) > 1:
        shown = ", ".join(f"{t.device} {tuple(t.shape)}" for t in inputs)
        raise RuntimeError(f"{cls.__name__}: inputs are on different devices ({shown}); "
                           f"move them to one device with .to(device)")


def _topological_order(roots):
    """Functions reachable from ``roots``, each after every Function that consumes its outputs."""
    order, visited = [], set()
    stack = [(r.creator, False) for r in roots if r.creator is not None]
    while stack:
        fn, done = stack.pop()
        if done:
            order.append(fn)
            continue
        if id(fn) in visited:
            continue
        if fn._freed:
            raise RuntimeError(
                "backward through a graph that was already freed: a first backward released the "
                "values it saved; pass retain_graph=True to the first backward (or grad) to go through "
                "the graph again")
        visited.add(id(fn))
        stack.append((fn, True))
        for t in fn.inputs:
            c = t.creator
            if c is not None and id(c) not in visited:
                stack.append((c, False))
    order.reverse()
    return order


def run_backward(roots, seeds, inputs=None, retain_graph=False, create_graph=False):
    """Reverse-mode sweep from ``roots`` (Tensors) seeded with ``seeds`` (Tensors).

    With ``inputs=None`` gradients are accumulated into ``.grad`` of every leaf that
    requires one (``Tensor.backward``). Otherwise the gradients of ``inputs`` are
    returned (``autograd.grad``), ``.grad`` is left untouched, and only the part of
    the graph that leads to ``inputs`` is visited.
    """
    order = _topological_order(roots)
    grads = {}    # (fn, output index) or ("leaf", id) -> accumulated gradient Tensor
    leaves = {}   # id -> leaf Tensor, for accumulating into .grad

    def key(t):
        return (t.creator, t._index) if t.creator is not None else ("leaf", id(t))

    def add(k, g):
        prev = grads.get(k)
        grads[k] = g if prev is None else prev + g

    if inputs is not None:
        wanted = {key(t) for t in inputs}
        # keep only the Functions on a path to some wanted tensor
        reaches = set()
        for fn in reversed(order):
            for i, t in enumerate(fn.inputs):
                if key(t) in wanted or (t.creator is not None and id(t.creator) in reaches):
                    reaches.add(id(fn))
                    break
        order = [fn for fn in order if id(fn) in reaches]

    for r, s in zip(roots, seeds):
        if r.requires_grad:
            add(key(r), s)
            if r.creator is None:  # backward on a leaf itself: its gradient is the seed
                leaves[key(r)] = r
    captured = {}
    kept = {}     # Function -> its output Tensors, alive until its backward has run (see below)

    mode = enable_grad() if create_graph else no_grad()
    with mode:
        for fn in order:
            gouts = []
            for i, (shape, dtype) in enumerate(fn._out_meta):
                k = (fn, i)
                g = grads.pop(k, None)
                if inputs is not None and k in wanted and g is not None:
                    captured[k] = g
                if g is None and len(fn._out_meta) > 1:
                    xp = backend.get_array_module(fn.inputs[0].data)
                    g = Tensor._make(xp.zeros(shape, dtype=dtype))
                gouts.append(g)
                out_ref = fn._outputs[i]()
                if out_ref is not None and out_ref._retain_grad and g is not None and inputs is None:
                    out_ref.grad = g if out_ref.grad is None else out_ref.grad + g
            if all(g is None for g in gouts):
                continue
            gins = fn.backward(*gouts)
            kept.pop(fn, None)
            if not isinstance(gins, tuple):
                gins = (gins,)
            if len(gins) != len(fn.inputs):
                raise RuntimeError(f"{type(fn).__name__}.backward returned {len(gins)} gradients "
                                   f"for {len(fn.inputs)} inputs")
            for t, g, needed in zip(fn.inputs, gins, fn.needs_input_grad):
                if not needed or g is None:
                    continue
                if g.shape != t.shape:
                    raise RuntimeError(f"{type(fn).__name__}.backward gave a gradient of shape "
                                       f"{tuple(g.shape)} for an input of shape {tuple(t.shape)}")
                if g.dtype != t.dtype:
                    g = g.astype(t.dtype)
                k = key(t)
                add(k, g)
                if t.creator is None:
                    leaves[k] = t
            if not retain_graph:
                # fn may hold the last reference to an input that another op made, and
                # that op's backward may still read it (exp, tanh: ``self.output`` is a
                # weak reference), so keep such inputs alive until it has run.
                for t in fn.inputs:
                    if t.creator is not None:
                        kept.setdefault(t.creator, []).append(t)
                fn._release()

    if inputs is not None:
        out = []
        for t in inputs:
            k = key(t)
            out.append(captured.get(k, grads.get(k)))
        return out
    handed_out = {id(s.data) for s in seeds}
    for k, t in leaves.items():
        g = grads[k]
        if not create_graph:
            # Each leaf gets an array of its own that may be updated in place: the walk
            # may hand one array to several leaves (add), or a read-only broadcast view
            # (sum), or the caller's seed. A fresh, unshared result (a matmul's) is kept
            # as it is: copying every weight gradient costs as much as an optimizer step.
            a = g.data
            if a.base is not None or not getattr(a.flags, "writeable", True) or id(a) in handed_out:
                a = a.copy()
            handed_out.add(id(a))
            g = Tensor._make(a)
        t.grad = g if t.grad is None else t.grad + g
    return None


from .tensor import Tensor  # noqa: E402  (tensor.py needs Function first)
