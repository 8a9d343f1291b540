"""Ops that move values around without arithmetic.

Each backward moves the gradient back the way the values came:

    reshape    y = x viewed with a new shape         dL/dx = reshape(dL/dy, x.shape)
    transpose  y = x with axes permuted by p         dL/dx = transpose(dL/dy, p^-1)
    getitem    y = x[index]                          dL/dx = zeros with dL/dy scatter-added at index
               (an index that picks one element twice sends it both gradients)
    concat     y = [x_1, ..., x_k] along an axis     dL/dx_i = the matching slice of dL/dy
    split      the reverse of concat                 dL/dx = concat of the slices' gradients

stack, flatten, squeeze, unsqueeze, repeat and tile are built from these (and from
``expand``), so they need no backward of their own; ``pad`` is in ``padding.py``.
"""
import numpy as np

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from .. import backend
from ._base import normalize_axis


class Reshape(Function):
    saves_inputs = ()

    def forward(self, x, shape):
        self.in_shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return reshape(g, self.in_shape)


def reshape(x, shape):
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(shape)
    if shape == x.shape:
        return x
    try:
        return Reshape.apply(x, shape=shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} "
                         f"({x.size} elements) to {shape}") from None


class Transpose(Function):
    saves_inputs = ()

    def forward(self, x, axes):
        self.axes = axes
        return x.transpose(axes)

    def backward(self, g):
        inverse = tuple(int(i) for i in np.argsort(self.axes))
        return transpose(g, inverse)


def transpose(x, axes=None):
    """Permute axes (reverse them when ``axes`` is None)."""
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    elif isinstance(axes, (int, np.integer)):  # x.permute(0) on a 1-D tensor
        axes = (axes,)
    axes = tuple(int(a) % max(x.ndim, 1) for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes "
                         f"of a tensor of shape {tuple(x.shape)}")
    if axes == tuple(range(x.ndim)):
        return x
    return Transpose.apply(x, axes=axes)


permute = transpose


def swapaxes(x, a, b):
    a, b = (normalize_axis(i, x.ndim, "swapaxes")[0] for i in (a, b))
    axes = list(range(x.ndim))
    axes[a], axes[b] = axes[b], axes[a]
    return transpose(x, axes)


def flatten(x, start_axis=0, end_axis=-1):
    """Merge axes start_axis..end_axis into one."""
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = start_axis % x.ndim, end_axis % x.ndim
    if s > e:
        raise ValueError(f"flatten: start_axis {start_axis} comes after end_axis {end_axis}")
    n = 1
    for d in x.shape[s:e + 1]:
        n *= d
    return reshape(x, x.shape[:s] + (n,) + x.shape[e + 1:])


def squeeze(x, axis=None):
    if axis is None:
        return reshape(x, tuple(d for d in x.shape if d != 1))
    axes = normalize_axis(axis, x.ndim, "squeeze")
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} has size {x.shape[a]}, not 1 (shape {tuple(x.shape)})")
    return reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


def unsqueeze(x, axis):
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise ValueError(f"unsqueeze: axis {axis} is out of range for {x.ndim} dimensions")
    axis = axis % (x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


# --- indexing ------------------------------------------------------------

def _is_basic(index):
    """True when ``index`` is made of ints, slices, None and Ellipsis only (a view)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


class GetItem(Function):
    saves_inputs = ()

    def forward(self, x, index):
        self.index, self.in_shape = index, x.shape
        return x[index]

    def backward(self, g):
        return ScatterAdd.apply(g, index=self.index, shape=self.in_shape)


class ScatterAdd(Function):
    """zeros(shape) with g added at ``index``; the backward of getitem (and its own backward is getitem)."""
    def forward(self, g, index, shape):
        xp = backend.get_array_module(g)
        self.index = index
        out = xp.zeros(shape, dtype=g.dtype)
        if _is_basic(index):
            out[index] = g  # a view: each element appears once
        elif xp is np:
            np.add.at(out, index, g)
        else:
            xp.add.at(out, index, g)
        return out

    def backward(self, gg):
        return getitem(gg, self.index)


def _unwrap_index(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def getitem(x, index):
    """``x[index]`` with NumPy's rules: slices, integers, integer arrays, boolean masks."""
    index = _unwrap_index(index)
    try:
        return GetItem.apply(x, index=index)
    except IndexError as e:
        raise IndexError(f"getitem: index {index!r} is invalid for a tensor of shape "
                         f"{tuple(x.shape)}: {e}") from None


# --- joining and splitting -----------------------------------------------

class Concat(Function):
    saves_inputs = ()

    def forward(self, *xs, axis):
        xp = backend.get_array_module(*xs)
        self.axis = axis
        self.sizes = [x.shape[axis] for x in xs]
        return xp.concatenate(xs, axis=axis)

    def backward(self, g):
        return tuple(split(g, self.sizes, self.axis))  # one gradient per input, as a tuple


class Split(Function):
    saves_inputs = ()

    def forward(self, x, sizes, axis):
        self.axis = axis
        bounds = np.cumsum(sizes)[:-1]
        xp = backend.get_array_module(x)
        return tuple(xp.split(x, bounds, axis=axis))

    def backward(self, *gs):
        return concat(gs, self.axis)


def concat(tensors, axis=0):
    """Join tensors along an existing axis; all other sizes must agree."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concat: needs at least one tensor")
    first = tensors[0]
    axis = normalize_axis(axis, first.ndim, "concat")[0]
    for t in tensors[1:]:
        if t.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape))
                                       if i != axis):
            shown = ", ".join(str(tuple(u.shape)) for u in tensors)
            raise ValueError(f"concat: shapes {shown} differ outside axis {axis}")
    if len(tensors) == 1:
        return first
    return Concat.apply(*tensors, axis=axis)


def stack(tensors, axis=0):
    """Join same-shaped tensors along a new axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    if any(t.shape != tensors[0].shape for t in tensors):
        shown = ", ".join(str(tuple(t.shape)) for t in tensors)
        raise ValueError(f"stack: all tensors must have the same shape, got {shown}")
    return concat([unsqueeze(t, axis) for t in tensors], axis)


def split(x, sections, axis=0):
    """Split along ``axis`` into pieces of the given sizes (a list) or into ``sections`` equal pieces."""
    axis = normalize_axis(axis, x.ndim, "split")[0]
    n = x.shape[axis]
    if isinstance(sections, (int, np.integer)):
        if sections <= 0 or n % sections:
            raise ValueError(f"split: axis {axis} of size {n} does not split into {sections} equal parts")
        sizes = [n // sections] * int(sections)
    else:
        sizes = [int(s) for s in sections]
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise ValueError(f"split: sizes {sizes} do not add up to {n}, the size of axis {axis}")
    return list(Split.apply(x, sizes=sizes, axis=axis))


# --- padding, repeating --------------------------------------------------

def repeat(x, repeats, axis=None):
    """Repeat each element ``repeats`` times along ``axis`` (NumPy's ``repeat``; flattened when None)."""
    if not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeat: repeats must be a positive integer, got {repeats!r}")
    from .elementwise import expand
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    axis = normalize_axis(axis, x.ndim, "repeat")[0]
    y = unsqueeze(x, axis + 1)
    y = expand(y, y.shape[:axis + 1] + (repeats,) + y.shape[axis + 2:])
    return reshape(y, x.shape[:axis] + (x.shape[axis] * repeats,) + x.shape[axis + 1:])


def tile(x, reps):
    """Repeat the whole tensor ``reps[i]`` times along axis i (NumPy's ``tile``)."""
    from .elementwise import expand
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    if len(reps) < x.ndim:
        reps = (1,) * (x.ndim - len(reps)) + reps
    x = reshape(x, (1,) * (len(reps) - x.ndim) + x.shape)
    inter = []
    for r, d in zip(reps, x.shape):
        inter += [1, d]
    y = reshape(x, tuple(inter))
    y = expand(y, tuple(v for r, d in zip(reps, x.shape) for v in (r, d)))
    return reshape(y, tuple(r * d for r, d in zip(reps, x.shape)))
