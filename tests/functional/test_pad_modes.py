"""F.pad's reflect and replicate modes (constant mode is in test_shape_ops.py).

The reference builds the padded array from an explicit source index per output
position (reflect: -i -> i, n - 1 + i -> n - 1 - i; replicate: clamp), so the
gradient reference is the same map read backwards: each output gradient is
added onto the input position it was copied from.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen.functional as F
import tinygen.nn as nn
from tinygen.autograd import Tensor
from tinygen.testing import arrays

from strategies import check, fast, leaves


def source_index(n, lo, hi, mode):
    """For each of the n + lo + hi padded positions, the input position it copies."""
    i = np.arange(-lo, n + hi)
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    i = np.abs(i)                                  # reflect about position 0 ...
    return np.where(i > n - 1, 2 * (n - 1) - i, i)  # ... and about position n - 1


def reference_pad(x, widths, mode):
    y = x
    for axis, (lo, hi) in enumerate(widths):
        y = np.take(y, source_index(x.shape[axis], lo, hi, mode), axis=axis)
    return y


def reference_pad_grad(x_shape, widths, mode, g):
    """d sum(g * pad(x)) / dx: g scatter-added back through the source indices."""
    out = g
    for axis in reversed(range(len(x_shape))):
        idx = source_index(x_shape[axis], *widths[axis], mode)
        moved = np.moveaxis(out, axis, 0)
        acc = np.zeros((x_shape[axis],) + moved.shape[1:])
        np.add.at(acc, idx, moved)
        out = np.moveaxis(acc, 0, axis)
    return out


@st.composite
def pad_cases(draw, mode):
    """x with 1-3 axes of unequal sides and widths legal for ``mode`` (reflect: < the side)."""
    ndim = draw(st.integers(1, 3))
    first = draw(st.integers(1, 3))
    shape = tuple(first + i + draw(st.integers(0, 1)) for i in range(ndim))   # increasing: H != W
    limit = (lambda n: n - 1) if mode == "reflect" else (lambda n: 3)
    widths = tuple((draw(st.integers(0, limit(n))), draw(st.integers(0, limit(n)))) for n in shape)
    return draw(arrays(shape)), widths


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
def test_values_and_gradients(mode):
    @fast(20)
    @given(pad_cases(mode))
    def run(case):
        x, widths = case
        y = F.pad(Tensor(x), widths, mode=mode)
        np.testing.assert_array_equal(y.numpy(), reference_pad(x, widths, mode))
        g = np.random.default_rng(0).standard_normal(y.shape)
        t = leaves(x)[0]
        (F.pad(t, widths, mode=mode) * Tensor(g)).sum().backward()
        np.testing.assert_allclose(t.grad.numpy(), reference_pad_grad(x.shape, widths, mode, g),
                                   rtol=1e-12, atol=1e-14)   # sums in another order: a cancellation to 2e-16
        check(lambda u: F.pad(u, widths, mode=mode), x, second=True)
    run()


def test_reflect_gradient_folds_onto_the_mirrored_pixels():
    t = leaves(np.arange(4.0))[0]            # a b c d  ->  c b | a b c d | c b
    y = F.pad(t, [(2, 2)], mode="reflect")
    np.testing.assert_array_equal(y.numpy(), [2, 1, 0, 1, 2, 3, 2, 1])
    y.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), [1, 3, 3, 1])   # b and c are copied twice more


def test_replicate_gradient_accumulates_on_the_edge():
    t = leaves(np.arange(3.0))[0]            # a b c  ->  a a a | a b c | c
    y = F.pad(t, [(3, 1)], mode="replicate")
    np.testing.assert_array_equal(y.numpy(), [0, 0, 0, 0, 1, 2, 2])
    y.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), [4, 1, 2])


def test_image_padding_in_2d_matches_the_modules_side_order():
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    left, right, top, bottom = 1, 3, 2, 0
    expected = reference_pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), "reflect")
    np.testing.assert_array_equal(nn.ReflectionPad2d((left, right, top, bottom))(Tensor(x)).numpy(), expected)
    assert expected.shape == (1, 1, 5, 8)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_float32_stays_float32(mode):
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    y = F.pad(x, 1, mode=mode)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_errors():
    x = Tensor(np.ones((1, 1, 3, 5)))
    with pytest.raises(ValueError, match=r"reflect padding \(3, 0\) of axis 2 must be "
                                         r"smaller than its size 3"):
        F.pad(x, ((0, 0), (0, 0), (3, 0), (0, 0)), mode="reflect")
    with pytest.raises(ValueError, match=r"reflect padding \(1, 1\) of axis 0 must be "
                                         r"smaller than its size 1"):
        F.pad(x, 1, mode="reflect")
    with pytest.raises(ValueError, match="non-negative"):
        F.pad(x, ((0, 0), (0, 0), (-1, 0), (0, 0)), mode="reflect")
    with pytest.raises(ValueError, match="mode must be one of constant, reflect, replicate, got 'circular'"):
        F.pad(x, 1, mode="circular")
    with pytest.raises(ValueError, match="mode 'replicate' takes no fill value, got value=2"):
        F.pad(x, 1, 2.0, mode="replicate")
    with pytest.raises(ValueError, match=r"replicate padding of axis 0 .* shape \(0, 2\)"):
        F.pad(Tensor(np.ones((0, 2))), 1, mode="replicate")
    with pytest.raises(TypeError, match="widths must be integers"):
        F.pad(x, 1.5, mode="reflect")


def _channels_last(a):
    return a.transpose(0, 2, 3, 1).flags.c_contiguous


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_every_memory_order_gives_the_reference_in_new_memory(mode):
    """pad gathers along x's axes in x's memory order: a channels-last image, a transpose, a
    strided slice, a broadcast view, size-1 axes and zero widths give the reference values, in
    memory of their own; a channels-last image (a conv's output) stays channels-last, and so
    does the gradient the adjoint folds back from a channels-last g."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((2, 5, 4, 3))
    last = np.ascontiguousarray(base.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)     # (2, 3, 5, 4) NHWC
    cases = [base, last, base[:, ::2, :, ::-1], np.broadcast_to(base[:1, :1], (2, 3, 4, 3)), base[:, :1]]
    widths = [((0, 0), (0, 0), (1, 2), (2, 1)), ((1, 0), (0, 0), (0, 0), (0, 2)), ((0, 0),) * 4]
    for x in cases:
        for w in widths:
            y = F.pad(Tensor(x), w, mode=mode).numpy()
            expected = np.pad(x, w) if mode == "constant" else reference_pad(x, w, mode)
            np.testing.assert_array_equal(y, expected)
            assert not np.shares_memory(y, x)
    if mode != "constant":
        t = Tensor(last, requires_grad=True)
        y = F.pad(t, widths[0], mode=mode)
        assert _channels_last(y.numpy())
        g = np.ascontiguousarray(rng.standard_normal(y.shape).transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        (y * Tensor(g)).sum().backward()
        np.testing.assert_allclose(t.grad.numpy(), reference_pad_grad(last.shape, widths[0], mode, g),
                                   rtol=1e-12, atol=1e-14)
        from tinygen.functional.padding import PadAdjoint
        assert _channels_last(PadAdjoint.apply(Tensor(g), widths=widths[0], mode=mode).numpy())
