"""Shape ops: forward against NumPy and gradients (they are linear, so gradgradcheck checks that
each backward is itself differentiable: scatter-add's backward is getitem, split's is concat ...)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen.functional as F
from tinygen.autograd import Tensor
from tinygen.testing import arrays, shapes

from strategies import check, fast, leaves

SHAPES = shapes(max_dims=3, max_side=4)
SHAPES1 = shapes(min_dims=1, max_dims=3, max_side=4)


def same(t, expected):
    np.testing.assert_array_equal(t.numpy(), expected)


@fast(25)
@given(SHAPES.flatmap(lambda s: st.tuples(arrays(s), st.permutations(s))))
def test_reshape(xs):
    x, target = xs
    target = tuple(target)
    same(F.reshape(Tensor(x), target), x.reshape(target))
    check(lambda t: F.reshape(t, target), x)
    check(lambda t: F.reshape(t, (-1,)), x)
    check(lambda t: t.reshape(*target) if target else t.reshape(()), x)


@fast(25)
@given(SHAPES.flatmap(lambda s: st.tuples(arrays(s), st.permutations(range(len(s))), st.booleans())))
def test_transpose_permute(xpn):
    x, perm, negative = xpn
    axes = tuple(a - x.ndim for a in perm) if negative and x.ndim else tuple(perm)
    same(F.transpose(Tensor(x), axes), x.transpose(axes))
    same(F.permute(Tensor(x), axes), x.transpose(axes))
    same(F.transpose(Tensor(x)), x.T)
    check(lambda t: F.transpose(t, axes), x, second=True)
    check(lambda t: F.transpose(t), x)
    if x.ndim >= 2:
        same(F.swapaxes(Tensor(x), 0, -1), np.swapaxes(x, 0, -1))
        check(lambda t: F.swapaxes(t, 0, -1), x)


@fast(25)
@given(SHAPES1.flatmap(lambda s: st.tuples(arrays(s), st.integers(0, len(s) - 1),
                                           st.integers(0, len(s) - 1))))
def test_flatten(xse):
    x, s, e = xse
    s, e = min(s, e), max(s, e)
    expected = x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:])
    same(F.flatten(Tensor(x), s, e), expected)
    check(lambda t: F.flatten(t, s, e), x)
    same(F.flatten(Tensor(x)), x.ravel())


@fast(25)
@given(shapes(max_dims=4, max_side=2).flatmap(
    lambda s: st.tuples(arrays(s), st.integers(-len(s) - 1, len(s)))))
def test_squeeze_unsqueeze(xa):
    x, axis = xa
    same(F.squeeze(Tensor(x)), np.squeeze(x))
    check(F.squeeze, x)
    ones = tuple(i for i, d in enumerate(x.shape) if d == 1)
    if ones:
        same(F.squeeze(Tensor(x), ones), np.squeeze(x, ones))
        check(lambda t: F.squeeze(t, ones[-1]), x)
    same(F.unsqueeze(Tensor(x), axis), np.expand_dims(x, axis))
    check(lambda t: F.unsqueeze(t, axis), x)


def test_squeeze_rejects_a_non_unit_axis():
    with pytest.raises(ValueError, match=r"axis 1 has size 3.*\(1, 3\)"):
        F.squeeze(Tensor(np.ones((1, 3))), 1)


# --- getitem ---------------------------------------------------------------

@st.composite
def basic_index(draw, shape):
    """A tuple of ints, slices (any step sign), None and maybe an Ellipsis for ``shape``."""
    items = []
    for n in shape:
        kind = draw(st.sampled_from(["slice", "slice", "int", "all"]))
        if kind == "int":
            items.append(draw(st.integers(-n, n - 1)))
        elif kind == "all":
            items.append(slice(None))
        else:
            start = draw(st.none() | st.integers(-n - 1, n + 1))
            stop = draw(st.none() | st.integers(-n - 1, n + 1))
            step = draw(st.sampled_from([None, 1, 2, -1, -2, 3]))
            items.append(slice(start, stop, step))
    if items and draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), None)
    if len(items) > 1 and draw(st.booleans()):
        items = [Ellipsis] + items[1:]        # leave the first axis to the Ellipsis
    return tuple(items)


@fast(40)
@given(SHAPES1.flatmap(lambda s: st.tuples(arrays(s), basic_index(s))))
def test_getitem_basic(xi):
    x, index = xi
    same(F.getitem(Tensor(x), index), x[index])
    check(lambda t: t[index], x, second=True)


@fast(30)
@given(SHAPES1.flatmap(lambda s: st.tuples(
    arrays(s), st.lists(st.integers(-s[0], s[0] - 1), min_size=1, max_size=7))))
def test_getitem_integer_array_with_repeats_scatter_adds(xi):
    x, idx = xi
    idx = np.array(idx)
    same(F.getitem(Tensor(x), idx), x[idx])
    check(lambda t: t[idx], x, second=True)
    # gradient of sum(x[idx]) counts how often each row was picked
    t = leaves(x)[0]
    t[idx].sum().backward()
    counts = np.bincount(idx % x.shape[0], minlength=x.shape[0]).astype(np.float64)
    np.testing.assert_array_equal(t.grad.numpy(), np.broadcast_to(
        counts.reshape((-1,) + (1,) * (x.ndim - 1)), x.shape))


@fast(20)
@given(shapes(min_dims=2, max_dims=3, max_side=4).flatmap(lambda s: st.tuples(
    arrays(s),
    st.lists(st.integers(0, s[0] - 1), min_size=4, max_size=4),
    st.lists(st.integers(-s[1], s[1] - 1), min_size=4, max_size=4))))
def test_getitem_advanced_multi_axis(xij):
    x, i, j = xij
    i, j = np.array(i).reshape(2, 2), np.array(j).reshape(2, 2)
    for index in [(i, j), (slice(None), j), (i, slice(None, None, -1)), (i[0], j[1]),
                  (Tensor(i), Tensor(j)), [0, 0]]:
        same(F.getitem(Tensor(x), index), x[index])
        check(lambda t: F.getitem(t, index), x)


@fast(30)
@given(SHAPES1.flatmap(lambda s: st.tuples(arrays(s), arrays(s).map(lambda v: v > 0),
                                           arrays(s[:1]).map(lambda v: v > 0))))
def test_getitem_boolean_masks(xm):
    x, mask, rows = xm
    same(F.getitem(Tensor(x), mask), x[mask])
    check(lambda t: t[mask], x, second=True)
    check(lambda t: t[Tensor(mask)], x)                      # a boolean Tensor works as a mask
    same(F.getitem(Tensor(x), rows), x[rows])
    check(lambda t: t[rows], x)


MASK = np.array([True, False, True])


@pytest.mark.parametrize("index", [
    (MASK, slice(1, None)), ([0, 0, 2], slice(None)), (slice(None), [1, 1]), (Ellipsis, [0, 0]),
    (MASK, [0, 1]), (1, [2, 2, 0]), (np.array([[0], [2]]), np.array([1, 1, 3])), (None, MASK),
], ids=str)
def test_getitem_mixed_indices(index):
    x = np.random.default_rng(0).standard_normal((3, 4))
    same(F.getitem(Tensor(x), index), x[index])
    check(lambda t: t[index], x, second=True)


def test_getitem_with_python_list():
    x = leaves(np.arange(4.0))[0]
    x[[1, 1, 3]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 2, 0, 1])


def test_getitem_out_of_range_names_shape():
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        Tensor(np.ones((2, 3)))[5]


# --- joining and splitting ---------------------------------------------------

@st.composite
def concat_inputs(draw):
    base = draw(shapes(min_dims=1, max_dims=3, max_side=3))
    axis = draw(st.integers(-len(base), len(base) - 1))
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    xs = []
    for n in sizes:
        s = list(base)
        s[axis] = n
        xs.append(draw(arrays(tuple(s))))
    return xs, axis


@fast(30)
@given(concat_inputs())
def test_concat(xsa):
    xs, axis = xsa
    same(F.concat([Tensor(x) for x in xs], axis), np.concatenate(xs, axis))
    check(lambda *ts: F.concat(ts, axis), *xs, second=True)


@fast(25)
@given(shapes(max_dims=3, max_side=3).flatmap(lambda s: st.tuples(
    st.lists(arrays(s), min_size=1, max_size=3), st.integers(-len(s) - 1, len(s)))))
def test_stack(xsa):
    xs, axis = xsa
    same(F.stack([Tensor(x) for x in xs], axis), np.stack(xs, axis))
    check(lambda *ts: F.stack(ts, axis), *xs)


@st.composite
def split_inputs(draw):
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=5))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    if draw(st.booleans()):
        sections = draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
    else:
        cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
        bounds = [0] + cuts + [n]
        sections = [b - a for a, b in zip(bounds, bounds[1:])]
    return draw(arrays(shape)), sections, axis


@fast(30)
@given(split_inputs())
def test_split(xsa):
    x, sections, axis = xsa
    pieces = F.split(Tensor(x), sections, axis)
    if isinstance(sections, int):
        expected = np.split(x, sections, axis)
    else:
        expected = np.split(x, np.cumsum(sections)[:-1], axis)
    assert len(pieces) == len(expected)
    for p, e in zip(pieces, expected):
        same(p, e)
    check(lambda t: F.split(t, sections, axis), x, second=True)
    # a single piece used: the others' gradients are zeros
    check(lambda t: F.split(t, sections, axis)[-1] * 2.0, x)


def test_split_errors():
    with pytest.raises(ValueError, match="size 5.*2 equal"):
        F.split(Tensor(np.ones(5)), 2)
    with pytest.raises(ValueError, match=r"\[2, 2\].*5"):
        F.split(Tensor(np.ones(5)), [2, 2])


# --- padding, repeating, broadcasting ---------------------------------------

@fast(25)
@given(SHAPES1.flatmap(lambda s: st.tuples(
    arrays(s), st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=len(s), max_size=len(s)),
    st.floats(-2, 2))))
def test_pad(xwv):
    x, widths, value = xwv
    same(F.pad(Tensor(x), widths, value), np.pad(x, widths, constant_values=value))
    check(lambda t: F.pad(t, widths, value), x, second=True)
    check(lambda t: F.pad(t, 1), x)


def test_pad_errors():
    with pytest.raises(ValueError, match="non-negative"):
        F.pad(Tensor(np.ones(3)), [(-1, 0)])
    with pytest.raises(ValueError, match="2 dimensions"):
        F.pad(Tensor(np.ones((2, 2))), [(1, 1), (1, 1), (1, 1)])


@fast(25)
@given(SHAPES1.flatmap(lambda s: st.tuples(
    arrays(s), st.integers(1, 3), st.none() | st.integers(-len(s), len(s) - 1))))
def test_repeat(xra):
    x, r, axis = xra
    same(F.repeat(Tensor(x), r, axis), np.repeat(x, r, axis))
    check(lambda t: F.repeat(t, r, axis), x, second=True)


@fast(25)
@given(SHAPES.flatmap(lambda s: st.tuples(
    arrays(s), st.lists(st.integers(1, 3), min_size=0, max_size=len(s) + 1))))
def test_tile(xr):
    x, reps = xr
    reps = tuple(reps)
    same(F.tile(Tensor(x), reps), np.tile(x, reps))
    check(lambda t: F.tile(t, reps), x)
    same(F.tile(Tensor(x), 2), np.tile(x, 2))


@st.composite
def expand_inputs(draw):
    shape = draw(shapes(max_dims=3, max_side=3))
    target = tuple(draw(st.integers(1, 3)) if d == 1 else d for d in shape)
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    return draw(arrays(shape)), lead + target


@fast(25)
@given(expand_inputs())
def test_expand(xt):
    x, target = xt
    same(F.expand(Tensor(x), target), np.broadcast_to(x, target))
    check(lambda t: F.expand(t, target), x, second=True)
    check(lambda t: t.expand(*target) if target else t.expand(()), x)


def test_expand_error_names_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 3\)"):
        F.expand(Tensor(np.ones((2, 3))), (4, 3))
