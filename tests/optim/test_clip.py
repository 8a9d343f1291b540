"""clip_grad_norm_: the total norm against NumPy, the clipped norm equals max_norm, and bad input."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygen.nn as nn
from tinygen import optim
from tinygen.autograd import Tensor
from tinygen.testing import shapes

NORMS = [1.0, 2.0, 3.5, math.inf]


def _with_grads(grads, dtype=np.float64):
    params = []
    for g in grads:
        p = nn.Parameter(np.zeros(np.shape(g), dtype=dtype))
        p.grad = Tensor(np.asarray(g, dtype=dtype))
        params.append(p)
    return params


def _numpy_norm(grads, q):
    flat = np.concatenate([np.ravel(g) for g in grads])
    return float(np.linalg.norm(flat, ord=q))


@settings(max_examples=25, deadline=None)
@given(shape_list=st.lists(shapes(min_dims=1, max_dims=3, max_side=4), min_size=1, max_size=4),
       q=st.sampled_from(NORMS), scale=st.floats(0.01, 100.0), ratio=st.floats(0.05, 0.9),
       seed=st.integers(0, 1000))
def test_total_norm_matches_numpy_and_the_clipped_norm_is_max_norm(shape_list, q, scale, ratio, seed):
    rng = np.random.default_rng(seed)
    grads = [scale * rng.standard_normal(s) for s in shape_list]
    params = _with_grads(grads)
    total = _numpy_norm(grads, q)
    max_norm = ratio * total
    got = optim.clip_grad_norm_(params, max_norm, norm_type=q)
    assert isinstance(got, float)
    assert got == pytest.approx(total, rel=1e-12)
    c = max_norm / (got + 1e-6)
    for p, g in zip(params, grads):  # one factor for all, so the direction is kept
        np.testing.assert_allclose(p.grad.numpy(), c * g, rtol=1e-14, atol=0)
        assert p.grad._version == 1
    clipped = _numpy_norm([p.grad.numpy() for p in params], q)
    assert clipped == pytest.approx(max_norm * total / (total + 1e-6), rel=1e-12) and clipped <= max_norm
    assert 0 <= max_norm - clipped < 1e-6  # max_norm, up to the 1e-6 of the rule


@pytest.mark.parametrize("q", NORMS)
def test_gradients_within_the_limit_are_left_alone(q):
    grads = [np.array([3.0, -4.0]), np.array([[0.5, 1.0]])]
    params = _with_grads(grads)
    total = optim.clip_grad_norm_(params, _numpy_norm(grads, q) * 2, norm_type=q)
    assert total == pytest.approx(_numpy_norm(grads, q), rel=1e-14)
    for p, g in zip(params, grads):
        np.testing.assert_array_equal(p.grad.numpy(), g)
        assert p.grad._version == 0


def test_a_known_case_by_hand():
    params = _with_grads([np.array([3.0, 0.0]), np.array([0.0, 4.0])])  # total 2-norm 5
    assert optim.clip_grad_norm_(params, 1.0) == 5.0
    np.testing.assert_allclose(params[0].grad.numpy(), [3.0 / (5 + 1e-6), 0.0], rtol=1e-15)
    params = _with_grads([np.array([3.0, -7.0]), np.array([2.0])])
    assert optim.clip_grad_norm_(params, 3.5, norm_type=math.inf) == 7.0


def test_parameters_without_grad_are_skipped_and_one_tensor_is_accepted():
    with_grad, without = _with_grads([np.array([6.0, 8.0])])[0], nn.Parameter(np.ones(3))
    assert optim.clip_grad_norm_([without, with_grad], 5.0) == 10.0
    assert without.grad is None
    np.testing.assert_allclose(with_grad.grad.numpy(), [6.0 * 5 / (10 + 1e-6), 8.0 * 5 / (10 + 1e-6)])
    single = _with_grads([np.array([1.0, 1.0])])[0]
    assert optim.clip_grad_norm_(single, 10.0) == pytest.approx(math.sqrt(2))
    assert optim.clip_grad_norm_([without], 1.0) == 0.0


def test_float32_gradients_stay_float32():
    params = _with_grads([np.full(4, 10.0)], dtype=np.float32)
    assert optim.clip_grad_norm_(params, 1.0) == pytest.approx(20.0)
    assert params[0].grad.dtype == np.float32
    assert np.linalg.norm(params[0].grad.numpy()) == pytest.approx(1.0, rel=1e-6)


def test_a_gradient_shared_by_two_parameters_is_scaled_once():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(2))
    a.grad = b.grad = Tensor(np.array([3.0, 4.0]))
    total = optim.clip_grad_norm_([a, b], 1.0)
    assert total == pytest.approx(5 * math.sqrt(2))
    np.testing.assert_allclose(a.grad.numpy(), np.array([3.0, 4.0]) / (total + 1e-6))


def test_non_finite_norm_is_returned_and_the_gradients_left_as_they_are():
    params = _with_grads([np.array([1.0, math.inf]), np.array([2.0])])
    assert optim.clip_grad_norm_(params, 1.0) == math.inf
    np.testing.assert_array_equal(params[1].grad.numpy(), [2.0])
    with pytest.raises(RuntimeError, match="the total 2.0-norm of the gradients is inf"):
        optim.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)


@pytest.mark.parametrize("max_norm", [0.0, -1.0, math.inf, math.nan])
def test_max_norm_must_be_finite_and_positive(max_norm):
    with pytest.raises(ValueError, match=f"max_norm must be a finite positive number, got {max_norm}"):
        optim.clip_grad_norm_(_with_grads([np.ones(2)]), max_norm)


def test_bad_arguments():
    params = _with_grads([np.ones(2)])
    with pytest.raises(ValueError, match="norm_type must be positive"):
        optim.clip_grad_norm_(params, 1.0, norm_type=0)
    with pytest.raises(TypeError, match="max_norm must be a number, got str"):
        optim.clip_grad_norm_(params, "1")
    with pytest.raises(TypeError, match="parameter 1 is a ndarray, not a Tensor"):
        optim.clip_grad_norm_([params[0], np.ones(2)], 1.0)
