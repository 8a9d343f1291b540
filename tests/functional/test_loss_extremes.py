"""Losses stay exact at the extremes: infinite logits, vanishing variances.

    bce(l, t) = (1 - t) softplus(l) + t softplus(-l)
is 0 for l = +inf, t = 1 (and l = -inf, t = 0), with gradient sigmoid(l) - t = 0; the
Gaussian NLL at x = mean is 1/2 (log 2 pi + log_var) for any log_var, with gradient
1/2 in log_var. Plain IEEE arithmetic gives nan in both (inf - inf, 0 * inf).
"""
import math
import warnings

import numpy as np
import pytest

import tinygen.functional as F
from tinygen.autograd import Tensor


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_infinite_logits_on_the_right_side_is_zero(dtype):
    logits = Tensor(np.array([np.inf, -np.inf, 40.0, -40.0], dtype=dtype), requires_grad=True)
    target = np.array([1.0, 0.0, 1.0, 0.0])
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    assert loss.dtype == dtype
    np.testing.assert_allclose(loss.numpy(), [0.0, 0.0, math.exp(-40.0), math.exp(-40.0)], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(logits.grad.numpy(), [0.0, 0.0, -math.exp(-40.0), math.exp(-40.0)],
                               rtol=1e-6)


def test_bce_with_infinite_logits_on_the_wrong_side_is_infinite():
    logits = Tensor(np.array([np.inf, -np.inf]))
    loss = F.binary_cross_entropy_with_logits(logits, np.array([0.0, 1.0]), reduction="none")
    assert np.isposinf(loss.numpy()).all()


@pytest.mark.parametrize("l,t", [(3.0, 0.25), (-2.0, 0.9), (0.0, 0.5), (50.0, 0.0), (-50.0, 1.0)])
def test_bce_equals_the_textbook_formula_where_that_is_finite(l, t):
    s = 1 / (1 + math.exp(-l))
    want = -(t * math.log(s) + (1 - t) * math.log1p(-s)) if abs(l) < 30 else \
        (math.log1p(math.exp(-abs(l))) + (abs(l) if (l > 0) != (t > 0.5) else 0.0))
    got = F.binary_cross_entropy_with_logits(Tensor(np.array([l])), np.array([t])).item()
    assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("log_var", [-1e4, -800.0, 0.0, 700.0])
def test_gaussian_nll_at_the_mean_for_any_variance(log_var):
    mean = Tensor(np.array([0.5, -2.0]), requires_grad=True)
    lv = Tensor(np.full(2, log_var), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # exp(1e4) overflows to inf, as it should
        loss = F.gaussian_nll(np.array([0.5, -2.0]), mean, lv, reduction="none")
        loss.sum().backward()
    np.testing.assert_allclose(loss.numpy(), 0.5 * (math.log(2 * math.pi) + log_var), rtol=1e-12)
    np.testing.assert_array_equal(mean.grad.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(lv.grad.numpy(), [0.5, 0.5])


def test_gaussian_nll_with_a_shared_log_variance_scalar():
    mean = Tensor(np.array([0.0, 1.0]), requires_grad=True)
    lv = Tensor(np.array(math.log(4.0)), requires_grad=True)
    loss = F.gaussian_nll(np.array([0.0, 3.0]), mean, lv, reduction="sum")
    loss.backward()
    want = 0.5 * (2 * math.log(2 * math.pi) + 2 * math.log(4.0) + 4.0 / 4.0)
    assert loss.item() == pytest.approx(want, rel=1e-12)
    assert lv.grad.item() == pytest.approx(0.5 * (2 - 4.0 / 4.0), rel=1e-12)
