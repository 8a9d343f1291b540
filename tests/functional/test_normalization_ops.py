"""F.instance_norm, F.layer_norm (and F.batch_norm, which moved beside them).

Values against direct NumPy references, the defining property (each normalized
slice has mean 0 and variance 1), running statistics by their update formula,
gradients and second derivatives by central differences over hypothesis-drawn
rectangular shapes, the float32 rule and every bad-input error.

Values are drawn ``distinct`` so no slice is (nearly) constant: its variance
would then sit near 0, where x_hat's derivative is of size 1/sqrt(eps) and a
central difference is meaningless.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen.functional as F
import tinygen.nn as nn
from tinygen.autograd import Tensor
from tinygen.testing import arrays

from strategies import check, fast


def reference_instance_norm(x, w=None, b=None, eps=1e-5):
    """Each (n, c) image on its own, written out with NumPy."""
    y = np.empty_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            s = x[n, c]
            y[n, c] = (s - s.mean()) / np.sqrt(s.var() + eps)
            if w is not None:
                y[n, c] = y[n, c] * w[c] + b[c]
    return y


def reference_layer_norm(x, k, w=None, b=None, eps=1e-5):
    """Flatten each sample's trailing k axes and standardize that row."""
    lead = x.shape[:x.ndim - k]
    rows = x.reshape((-1, int(np.prod(x.shape[x.ndim - k:]))))
    mu = rows.mean(axis=1, keepdims=True)
    var = ((rows - mu) ** 2).mean(axis=1, keepdims=True)
    y = ((rows - mu) / np.sqrt(var + eps)).reshape(lead + x.shape[x.ndim - k:])
    return y if w is None else y * w + b


@st.composite
def images(draw, max_batch=2, max_channels=3):
    """(N, C, H, W) with H != W, each (n, c) slice at least 2 values."""
    n, c = draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels))
    h = draw(st.integers(1, 3))
    w = h + draw(st.integers(1, 2))
    return draw(arrays((n, c, h, w), domain="distinct"))


def _affine(c, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2.0, c), rng.uniform(-1, 1, c)


# --- instance_norm -------------------------------------------------------------

@fast(15)
@given(images(), st.integers(0, 100))
def test_instance_norm_values_and_gradients(x, seed):
    c = x.shape[1]
    w, b = _affine(c, seed)
    np.testing.assert_allclose(F.instance_norm(Tensor(x)).numpy(), reference_instance_norm(x),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(F.instance_norm(Tensor(x), Tensor(w), Tensor(b)).numpy(),
                               reference_instance_norm(x, w, b), rtol=1e-10, atol=1e-10)
    check(lambda t, wt, bt: F.instance_norm(t, wt, bt), x, w, b, second=True)
    check(lambda t: F.instance_norm(t, eps=0.1), x, second=True)


@fast(10)
@given(images())
def test_instance_norm_each_slice_has_mean_0_and_variance_1(x):
    y = F.instance_norm(Tensor(x), eps=1e-12).numpy()
    np.testing.assert_allclose(y.mean(axis=(2, 3)), 0, atol=1e-10)
    np.testing.assert_allclose(y.var(axis=(2, 3)), 1, rtol=1e-8)
    # and a sample's output does not depend on the rest of its batch
    np.testing.assert_allclose(F.instance_norm(Tensor(x[:1])).numpy(), F.instance_norm(Tensor(x)).numpy()[:1])


def test_instance_norm_works_on_1d_and_3d_spatial_inputs():
    x = np.random.default_rng(0).standard_normal((2, 3, 5))
    y = F.instance_norm(Tensor(x)).numpy()
    np.testing.assert_allclose(y, (x - x.mean(2, keepdims=True)) / np.sqrt(x.var(2, keepdims=True) + 1e-5))
    x3 = np.random.default_rng(1).standard_normal((1, 2, 2, 3, 4))
    np.testing.assert_allclose(F.instance_norm(Tensor(x3)).numpy().mean(axis=(2, 3, 4)), 0, atol=1e-12)


def test_instance_norm_running_statistics_follow_the_update_formula():
    rng = np.random.default_rng(0)
    momentum = 0.25
    rm, rv = Tensor(np.zeros(3)), Tensor(np.ones(3))
    erm, erv = np.zeros(3), np.ones(3)
    for step in range(3):
        x = rng.standard_normal((4, 3, 2, 5)) * (1 + step) + step
        F.instance_norm(Tensor(x), running_mean=rm, running_var=rv, training=True, momentum=momentum)
        m = 2 * 5
        erm = (1 - momentum) * erm + momentum * x.mean(axis=(2, 3)).mean(axis=0)
        erv = (1 - momentum) * erv + momentum * (x.var(axis=(2, 3)) * m / (m - 1)).mean(axis=0)
        np.testing.assert_allclose(rm.numpy(), erm, rtol=1e-12)
        np.testing.assert_allclose(rv.numpy(), erv, rtol=1e-12)
    assert rm._version == 3 and rv._version == 3   # in-place changes are recorded


def test_instance_norm_evaluation_uses_running_statistics_only_when_given():
    x = np.random.default_rng(2).standard_normal((2, 2, 3, 4))
    rm, rv = Tensor(np.array([0.5, -1.0])), Tensor(np.array([4.0, 0.25]))
    y = F.instance_norm(Tensor(x), running_mean=rm, running_var=rv, training=False).numpy()
    expected = (x - rm.numpy()[None, :, None, None]) / np.sqrt(rv.numpy()[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(y, expected)
    np.testing.assert_array_equal(rm.numpy(), [0.5, -1.0])       # evaluation changes nothing
    # without running statistics, evaluation normalizes by each slice's own (PyTorch's default)
    np.testing.assert_allclose(F.instance_norm(Tensor(x), training=False).numpy(), reference_instance_norm(x))
    check(lambda t: F.instance_norm(t, running_mean=rm, running_var=rv, training=False), x, second=True)


# --- layer_norm ------------------------------------------------------------------

@st.composite
def layer_inputs(draw):
    """(x, k): x with 0-2 leading axes and k = 1 or 2 normalized trailing axes, sides unequal."""
    k = draw(st.integers(1, 2))
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    first = draw(st.integers(2, 4))
    trailing = (first,) if k == 1 else (first, first + draw(st.integers(1, 2)))
    return draw(arrays(lead + trailing, domain="distinct")), k


@fast(15)
@given(layer_inputs(), st.integers(0, 100))
def test_layer_norm_values_and_gradients(xk, seed):
    x, k = xk
    shape = x.shape[x.ndim - k:]
    rng = np.random.default_rng(seed)
    w, b = rng.uniform(0.5, 2, shape), rng.uniform(-1, 1, shape)
    np.testing.assert_allclose(F.layer_norm(Tensor(x), shape).numpy(), reference_layer_norm(x, k),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(F.layer_norm(Tensor(x), shape, Tensor(w), Tensor(b)).numpy(),
                               reference_layer_norm(x, k, w, b), rtol=1e-10, atol=1e-10)
    check(lambda t, wt, bt: F.layer_norm(t, shape, wt, bt), x, w, b, second=True)


@fast(10)
@given(layer_inputs())
def test_layer_norm_standardizes_the_trailing_axes(xk):
    x, k = xk
    y = F.layer_norm(Tensor(x), x.shape[x.ndim - k:], eps=1e-12).numpy()
    axes = tuple(range(x.ndim - k, x.ndim))
    np.testing.assert_allclose(y.mean(axis=axes), 0, atol=1e-10)
    np.testing.assert_allclose(y.var(axis=axes), 1, rtol=1e-8)


def test_layer_norm_accepts_an_int_shape():
    x = np.random.default_rng(0).standard_normal((3, 5))
    np.testing.assert_allclose(F.layer_norm(Tensor(x), 5).numpy(), reference_layer_norm(x, 1))


# --- float32 and batch_norm's new home ------------------------------------------------

def test_float32_stays_float32():
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32))
    w, b = Tensor(np.ones(3, np.float32)), Tensor(np.zeros(3, np.float32))
    assert F.instance_norm(x, w, b).dtype == np.float32
    assert F.instance_norm(x, eps=1e-3).dtype == np.float32
    assert F.layer_norm(x, (4, 5), Tensor(np.ones((4, 5), np.float32)), eps=1e-3).dtype == np.float32
    assert F.batch_norm(x, None, None, w, b).dtype == np.float32


def test_batch_norm_is_one_function_under_both_names():
    assert F.batch_norm is nn.batch_norm


# --- bad input --------------------------------------------------------------------------

def test_instance_norm_errors():
    with pytest.raises(ValueError, match=r"at least one spatial axis, got shape \(2, 3\)"):
        F.instance_norm(Tensor(np.ones((2, 3))))
    with pytest.raises(ValueError, match=r"more than 1 spatial value per channel, got "
                                         r"input shape \(2, 3, 1, 1\)"):
        F.instance_norm(Tensor(np.ones((2, 3, 1, 1))))
    with pytest.raises(ValueError, match=r"weight has shape \(4,\), expected \(3,\) "
                                         r"for input \(2, 3, 2, 2\)"):
        F.instance_norm(Tensor(np.ones((2, 3, 2, 2))), weight=Tensor(np.ones(4)))
    with pytest.raises(ValueError, match="both running_mean and running_var"):
        F.instance_norm(Tensor(np.ones((2, 3, 2, 2))), running_mean=Tensor(np.zeros(3)))
    with pytest.raises(ValueError, match=r"running_var has shape \(2,\)"):
        F.instance_norm(Tensor(np.ones((2, 3, 2, 2))), running_mean=Tensor(np.zeros(3)),
                        running_var=Tensor(np.ones(2)))


def test_layer_norm_errors():
    x = Tensor(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"input of shape \(2, 3, 4\) does not end in "
                                         r"normalized_shape \(3,\)"):
        F.layer_norm(x, 3)
    with pytest.raises(ValueError, match=r"does not end in normalized_shape \(1, 2, 3, 4\)"):
        F.layer_norm(x, (1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"bias has shape \(3, 4\), expected normalized_shape \(4,\)"):
        F.layer_norm(x, 4, bias=Tensor(np.ones((3, 4))))
    with pytest.raises(ValueError, match=r"positive sizes, got \(0,\)"):
        F.layer_norm(x, (0,))
    with pytest.raises(ValueError, match=r"positive sizes, got \(\)"):
        F.layer_norm(x, ())
