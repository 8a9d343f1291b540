"""Test-only strategies and checking helpers for tests/autograd and tests/functional.

The general strategies (shapes, broadcastable shapes, arrays in a value domain)
come from ``tinygen.testing``; this file adds what only these tests need:

    avoiding(shape, kinks)   values in [-3, 3] at least ``gap`` away from every kink
                             (clip's bounds, ...), by a piecewise-linear map of the
                             base draw (shifting into the domain, never filtering)
    distinct_arrays(shapes)  several arrays whose values are all distinct from one
                             another, across the arrays too (maximum/minimum: no ties)
    axis_specs(ndim)         None, one axis (maybe negative) or a tuple of axes
    check(fn, *arrays)       gradcheck (and optionally gradgradcheck) on float64 copies
"""
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tinygen.autograd import Tensor, gradcheck, gradgradcheck
from tinygen.testing import Domain, arrays

BASE = Domain("base", -1.0, 1.0)  # the identity map: raw draws in [-1, 1]


def fast(n=20):
    """Settings for a gradient-check property test: few, small examples and no deadline."""
    return settings(max_examples=n, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _avoid_map(v, kinks, gap, low, high):
    """Map v in [-1, 1] monotonically onto [low, high] minus the open gaps (k - gap, k + gap)."""
    edges = [low]
    for k in sorted(kinks):
        edges += [k - gap, k + gap]
    edges.append(high)
    pieces = [(edges[i], edges[i + 1]) for i in range(0, len(edges), 2)]
    lengths = np.array([b - a for a, b in pieces])
    assert (lengths > 0).all(), "kinks too close together for this gap"
    t = (np.asarray(v, dtype=np.float64) + 1.0) / 2.0 * lengths.sum()   # position along the pieces
    out = np.empty_like(t)
    start = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
    for (a, _), s, length in zip(pieces, start, lengths):
        sel = (t >= s) & (t <= s + length)
        out[sel] = a + (t[sel] - s)
    return out


def avoiding(shape, kinks, gap=0.1, low=-3.0, high=3.0, dtype=np.float64):
    """Arrays of ``shape`` in [low, high] with every value at least ``gap`` from each kink."""
    return arrays(shape, domain=BASE).map(lambda v: _avoid_map(v, kinks, gap, low, high).astype(dtype))


def distinct_arrays(shapes_):
    """A tuple of arrays, one per shape, with every value distinct from every other (>= 0.02 apart
    for up to 150 values in all)."""
    sizes = [int(np.prod(s)) for s in shapes_]
    total = max(sum(sizes), 1)

    def split(flat):
        out, k = [], 0
        for s, n in zip(shapes_, sizes):
            out.append(flat[k:k + n].reshape(s))
            k += n
        return tuple(out)
    return arrays((total,), domain="distinct").map(split)


@st.composite
def axis_specs(draw, ndim, allow_none=True):
    """An ``axis`` argument for a tensor with ``ndim`` axes: None, an int or a tuple."""
    if ndim == 0:
        return None
    kinds = ["none", "int", "tuple"] if allow_none else ["int", "tuple"]
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return None
    if kind == "int":
        a = draw(st.integers(0, ndim - 1))
        return a - ndim if draw(st.booleans()) else a
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)


def leaves(*arrays_):
    """float64 leaf Tensors that require gradients, one per array."""
    return [Tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays_]


def check(fn, *arrays_, second=False, **tolerances):
    """gradcheck ``fn`` at float64 copies of ``arrays_`` (and gradgradcheck when ``second``)."""
    xs = leaves(*arrays_)
    assert gradcheck(fn, xs, **tolerances)
    if second:
        assert gradgradcheck(fn, xs, **tolerances)
