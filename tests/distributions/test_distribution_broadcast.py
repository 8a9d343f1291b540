"""Distributions with broadcast parameters score exactly as with the parameters expanded by
hand, and the mixtures integrate to one (numerically, in 1-D and 2-D).

A log-determinant summed over the scales as given, not as broadcast to (K, d), is right
for full (K, d) scales only: these tests draw every broadcastable shape of the scales."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinygen.autograd.tensor import Tensor
from tinygen.distributions import Bernoulli, Categorical, Normal, NormalMixture


def _t(a):
    return Tensor(np.asarray(a, dtype=np.float64))


def _broadcast_of(draw, full):
    """A shape that broadcasts to ``full``: each axis kept or set to 1, leading axes maybe dropped."""
    shape = tuple(d if draw(st.booleans()) else 1 for d in full)
    return shape[draw(st.integers(0, len(shape))):]


@settings(max_examples=40, deadline=None)
@given(st.data(), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2 ** 16))
def test_a_mixture_with_broadcast_scales_is_the_mixture_with_them_expanded(data, K, d, seed):
    rng = np.random.default_rng(seed)
    locs = rng.standard_normal((K, d))
    scales = rng.uniform(0.3, 2.0, _broadcast_of(data.draw, (K, d)))
    logits = rng.standard_normal(K)
    x = rng.standard_normal((5, d)) * 2
    given_ = NormalMixture(_t(locs), _t(scales), logits=_t(logits)).log_prob(_t(x)).numpy()
    expanded = NormalMixture(_t(locs), _t(np.broadcast_to(scales, (K, d)).copy()), logits=_t(logits))
    np.testing.assert_allclose(given_, expanded.log_prob(_t(x)).numpy(), rtol=1e-12, atol=1e-12)
    # and both are the formula itself
    z = (x[:, None, :] - locs) / np.broadcast_to(scales, (K, d))
    log_w = logits - np.log(np.exp(logits).sum())
    comp = log_w - 0.5 * (z ** 2).sum(-1) - np.log(np.broadcast_to(scales, (K, d))).sum(-1) \
        - 0.5 * d * np.log(2 * np.pi)
    np.testing.assert_allclose(given_, np.log(np.exp(comp).sum(-1)), rtol=1e-10, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(st.data(), st.integers(1, 3), st.integers(1, 4), st.integers(0, 2 ** 16))
def test_normal_with_broadcast_parameters_is_normal_with_them_expanded(data, a, b, seed):
    rng = np.random.default_rng(seed)
    loc = rng.standard_normal(_broadcast_of(data.draw, (a, b)))
    scale = rng.uniform(0.3, 2.0, _broadcast_of(data.draw, (a, b)))
    x = rng.standard_normal((a, b))
    full = np.broadcast_shapes(loc.shape, scale.shape, x.shape)
    got = Normal(_t(loc), _t(scale)).log_prob(_t(x)).numpy()
    want = Normal(_t(np.broadcast_to(loc, full).copy()), _t(np.broadcast_to(scale, full).copy())).log_prob(_t(x))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.data(), st.integers(1, 3), st.integers(1, 4), st.integers(0, 2 ** 16))
def test_bernoulli_and_categorical_with_broadcast_parameters(data, a, b, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal(_broadcast_of(data.draw, (a, b)))
    x = (rng.random((a, b)) < 0.5).astype(np.float64)
    got = Bernoulli(logits=_t(logits)).log_prob(_t(x)).numpy()
    want = Bernoulli(logits=_t(np.broadcast_to(logits, (a, b)).copy())).log_prob(_t(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    class_logits = rng.standard_normal(_broadcast_of(data.draw, (a, 5))[:-1] + (5,))
    k = rng.integers(0, 5, (a,))
    got = Categorical(logits=_t(class_logits)).log_prob(k).numpy()
    want = Categorical(logits=_t(np.broadcast_to(class_logits, (a, 5)).copy())).log_prob(k).numpy()
    np.testing.assert_allclose(np.broadcast_to(got, want.shape), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scales", [[[0.5], [1.5], [0.8]], [0.7], [[0.6]], 0.9])
def test_a_1d_mixture_integrates_to_one(scales):
    locs = np.array([[-2.0], [0.5], [3.0]])
    m = NormalMixture(_t(locs), _t(scales), weights=_t([0.2, 0.5, 0.3]))
    x = np.linspace(-15, 18, 20001)[:, None]
    p = np.exp(m.log_prob(_t(x)).numpy())
    assert abs(np.trapezoid(p, x[:, 0]) - 1) < 1e-6


@pytest.mark.parametrize("scales", ["diagonal", "broadcast", "matrices"])
def test_a_2d_mixture_integrates_to_one(scales):
    locs = np.array([[-1.5, 0.0], [1.0, 1.0], [0.5, -2.0]])
    s = {"diagonal": np.array([[0.5, 1.0], [0.8, 0.4], [0.6, 0.6]]),
         "broadcast": np.array([[0.7, 0.4]]),
         "matrices": np.array([[[0.6, 0.2], [0.0, 0.4]], [[0.5, -0.3], [0.3, 0.5]], [[0.9, 0.0], [0.4, 0.3]]])}[scales]
    m = NormalMixture(_t(locs), _t(s), logits=_t([0.1, -0.4, 0.3]))
    axis = np.linspace(-8, 8, 401)
    xx, yy = np.meshgrid(axis, axis, indexing="ij")
    p = np.exp(m.log_prob(_t(np.stack([xx.ravel(), yy.ravel()], 1))).numpy()).reshape(xx.shape)
    step = axis[1] - axis[0]
    assert abs(p.sum() * step * step - 1) < 1e-4
