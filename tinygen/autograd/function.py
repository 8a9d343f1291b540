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

from .grad_mode import _state as _grad_state, no_grad, enable_grad
from .. import backend


class Function:
    # Set by apply before forward runs:
    #   needs_input_grad  tuple of bools, one per input (all False when no graph is recorded),
    #                     so that forward saves only what backward will use
    # and, when a graph is recorded:
    #   inputs            tuple of input Tensors
    #   _versions         each input's version counter at forward time (in-place detection)
    #   _outputs          weak references to the outputs (no reference cycle)
    #   _out_meta         (shape, dtype) of every output, to make zero gradients
    _freed = False
    # Which inputs backward reads (indices), for the in-place check; None: all of them.
    # An op whose backward never reads its inputs' values (add, reshape) sets ().
    saves_inputs = None
    # Names of the inputs, for error messages ("the weight (64, 32, 3, 3) saved by conv2d").
    input_names = ()
    op_name = None     # the public name, when it is not the class name in lower case

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, *grad_outputs):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on Tensors ``inputs``; returns a Tensor (or a tuple for several outputs)."""
        fn = cls()
        record = False
        if _grad_state["enabled"]:
            needs = tuple([t._requires_grad for t in inputs])
            record = True in needs
        fn.needs_input_grad = needs if record else _NOTHING_NEEDED[len(inputs)]
        if backend._cupy is not None:  # only a machine with CuPy can mix devices
            _check_same_device(cls, inputs)
        raw = fn.forward(*[t.data for t in inputs], **params)
        if type(raw) is not tuple:   # one output: the common case, without the tuples below
            if isinstance(raw, np.generic):   # NumPy reductions return scalars, not updatable in place
                raw = np.asarray(raw)
            if not record:
                return Tensor._make(raw)
            fn.inputs = inputs
            fn._versions = tuple([t._version for t in inputs])
            out = Tensor._make(raw, fn, 0)
            fn._outputs = (weakref.ref(out),)
            fn._out_meta = ((raw.shape, raw.dtype),)
            return out
        raws = tuple([np.asarray(a) if isinstance(a, np.generic) else a for a in raw])
        if record:
            fn.inputs = inputs
            fn._versions = tuple([t._version for t in inputs])
            outs = tuple([Tensor._make(a, fn, i) for i, a in enumerate(raws)])
            fn._outputs = tuple([weakref.ref(o) for o in outs])
            fn._out_meta = tuple([(a.shape, a.dtype) for a in raws])
        else:
            outs = tuple([Tensor._make(a) for a in raws])
        return outs

    @property
    def output(self):
        """The (single) output Tensor, for backward formulas written in terms of it (exp, tanh ...)."""
        out = self._outputs[0]()
        if out is None:  # cannot happen while a graph walk reaches this op through it
            raise RuntimeError(f"{type(self).__name__}: its output was freed before backward")
        if out._version:
            raise RuntimeError(f"the output {tuple(out.shape)} of {self._op_name()} that its backward "
                               f"reads was changed in place after the forward pass (version 0, now "
                               f"{out._version}): change a copy instead")
        return out

    def _check_versions(self):
        """Refuse to run backward on values changed in place since forward (a stale gradient)."""
        saved = range(len(self.inputs)) if self.saves_inputs is None else self.saves_inputs
        for i in saved:
            t, then = self.inputs[i], self._versions[i]
            if t._version != then:
                name = self.input_names[i] if i < len(self.input_names) else f"input {i}"
                raise RuntimeError(
                    f"the {name} {tuple(t.shape)} saved by {self._op_name()} was changed in place after "
                    f"the forward pass (version {then}, now {t._version}): compute the loss again "
                    f"after the optimizer step")

    def _op_name(self):
        return self.op_name or type(self).__name__.lower()

    def _release(self):
        self.__dict__.clear()
        self._freed = True


class _NothingNeeded(dict):
    """needs_input_grad when no graph is recorded: (False,) * n, made once per n."""

    def __missing__(self, n):
        self[n] = (False,) * n
        return self[n]


_NOTHING_NEEDED = _NothingNeeded()


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
    sweep = _Sweep(inputs, retain_graph, create_graph)
    order = _topological_order(roots)
    if inputs is not None:
        order = sweep.restrict(order)
    for r, s in zip(roots, seeds):
        if r.requires_grad:
            sweep.add(r, s)
    with enable_grad() if create_graph else no_grad():
        for fn in order:
            sweep.visit(fn)
    if inputs is not None:
        return sweep.wanted_grads(inputs)
    sweep.write_leaf_grads(seeds, create_graph)
    return None


def unit_seed(y):
    """dL/dy = 1 for a one-element y: the seed of ``backward()`` and of ``grad`` without
    grad_outputs (a reshaped one-number array: a third of the time of ``ones``)."""
    xp = backend.get_array_module(y.data)
    return Tensor._make(xp.array(1, dtype=y.dtype).reshape(y.shape))


def _key(t):
    """Where a tensor's gradient accumulates: (its creator, output slot), or its id for a leaf."""
    return (t.creator, t._index) if t.creator is not None else ("leaf", id(t))


class _Sweep:
    """The state of one backward pass: gradients summed so far, and the leaves they reach."""

    def __init__(self, inputs, retain_graph, create_graph):
        self.create_graph = create_graph
        self.grads = {}      # _key(t) -> accumulated gradient Tensor
        self.leaves = {}     # _key(leaf) -> leaf Tensor, for accumulating into .grad
        self.wanted = None if inputs is None else {_key(t) for t in inputs}
        self.captured = {}   # gradients of wanted non-leaf tensors, caught as they pass
        self.retain_graph = retain_graph
        self.kept = {}       # Function -> input Tensors kept alive until its backward ran

    def restrict(self, order):
        """Only the Functions on a path to some wanted tensor."""
        reaches = set()
        for fn in reversed(order):
            for t in fn.inputs:
                if _key(t) in self.wanted or (t.creator is not None and id(t.creator) in reaches):
                    reaches.add(id(fn))
                    break
        return [fn for fn in order if id(fn) in reaches]

    def add(self, t, g):
        if t.creator is not None:
            k = (t.creator, t._index)
        else:
            k = ("leaf", id(t))
            self.leaves[k] = t
        prev = self.grads.get(k)
        if prev is None:
            self.grads[k] = g
        elif self.create_graph:
            self.grads[k] = prev + g       # the sum is part of the gradient's own graph
        else:
            total = prev.data + g.data
            self.grads[k] = Tensor._make(np.asarray(total) if isinstance(total, np.generic) else total)

    def visit(self, fn):
        """dL/d(inputs of fn) from the complete dL/d(outputs of fn)."""
        gouts = self._output_grads(fn)
        if gouts is None:
            return
        if fn._versions != tuple([t._version for t in fn.inputs]):
            fn._check_versions()
        gins = fn.backward(*gouts)
        self.kept.pop(fn, None)
        if type(gins) is not tuple:
            gins = (gins,)
        if len(gins) != len(fn.inputs):
            raise RuntimeError(f"{type(fn).__name__}.backward returned {len(gins)} gradients "
                               f"for {len(fn.inputs)} inputs")
        for t, g, needed in zip(fn.inputs, gins, fn.needs_input_grad):
            if needed and g is not None:
                if g.data.shape != t.data.shape or g.data.dtype != t.data.dtype:
                    g = _checked(fn, t, g)
                self.add(t, g)
        if not self.retain_graph:
            # fn may hold the last reference to an input that another op made, and
            # that op's backward may still read it (exp, tanh: ``self.output`` is a
            # weak reference), so keep such inputs alive until it has run.
            for t in fn.inputs:
                if t.creator is not None:
                    self.kept.setdefault(t.creator, []).append(t)
            fn._release()

    def _output_grads(self, fn):
        """The gradient of each output of fn (zeros for an unused one of several); None if none."""
        if len(fn._out_meta) == 1 and self.wanted is None:   # the common case, without the loop
            g = self.grads.pop((fn, 0), None)
            if g is None:
                return None
            out = fn._outputs[0]()
            if out is not None and out._retain_grad:
                out.grad = g if out.grad is None else out.grad + g
            return (g,)
        gouts, reached = [], False
        for i, (shape, dtype) in enumerate(fn._out_meta):
            k = (fn, i)
            g = self.grads.pop(k, None)
            if g is not None:
                reached = True
                if self.wanted is not None and k in self.wanted:
                    self.captured[k] = g
                out = fn._outputs[i]()
                if out is not None and out._retain_grad and self.wanted is None:
                    out.grad = g if out.grad is None else out.grad + g
            elif len(fn._out_meta) > 1:
                xp = backend.get_array_module(fn.inputs[0].data)
                g = Tensor._make(xp.zeros(shape, dtype=dtype))
            gouts.append(g)
        return gouts if reached else None

    def wanted_grads(self, inputs):
        return [self.captured.get(_key(t), self.grads.get(_key(t))) for t in inputs]

    def write_leaf_grads(self, seeds, create_graph):
        handed_out = {id(s.data) for s in seeds}
        for k, t in self.leaves.items():
            g = self.grads[k]
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


def _checked(fn, t, g):
    """A gradient fn.backward gave for input t, of another shape or dtype than t: cast or refused."""
    if g.data.shape != t.data.shape:
        raise RuntimeError(f"{type(fn).__name__}.backward gave a gradient of shape "
                           f"{tuple(g.shape)} for an input of shape {tuple(t.shape)}")
    return g if g.data.dtype == t.data.dtype else g.astype(t.dtype)


from .tensor import Tensor  # noqa: E402  (tensor.py needs Function first)
