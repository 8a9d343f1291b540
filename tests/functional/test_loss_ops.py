"""Losses: values against direct NumPy formulas, gradients (and second derivatives for BCE)."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen.functional as F
from tinygen.autograd import Tensor
from tinygen.testing import arrays, shapes

from strategies import check, fast

SHAPES1 = shapes(min_dims=1, max_dims=3, max_side=4)
REDUCTIONS = ["mean", "sum", "none"]


def reduce_np(loss, reduction):
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(reduction):
    @fast(20)
    @given(SHAPES1.flatmap(lambda s: st.tuples(arrays(s), arrays(s, domain="unit"))))
    def run(lt):
        logits, target = lt
        p = 1 / (1 + np.exp(-logits))
        expected = reduce_np(-(target * np.log(p) + (1 - target) * np.log(1 - p)), reduction)
        got = F.binary_cross_entropy_with_logits(Tensor(logits), Tensor(target), reduction)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)
        # differentiable in both the logits and the (soft) target, and twice
        check(lambda l, t: F.binary_cross_entropy_with_logits(l, t, reduction), logits, target,
              second=True)
        check(lambda l: F.binary_cross_entropy_with_logits(l, target, reduction), logits)
    run()


def test_bce_with_logits_is_stable():
    logits = Tensor(np.array([-800.0, 800.0]))
    loss = F.binary_cross_entropy_with_logits(logits, np.array([1.0, 0.0]), "none").numpy()
    np.testing.assert_allclose(loss, [800.0, 800.0])


@st.composite
def ce_inputs(draw, spatial):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    rest = tuple(draw(st.integers(1, 3)) for _ in range(spatial))
    logits = draw(arrays((n, c) + rest))
    target = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n * int(np.prod(rest)),
                                    max_size=n * int(np.prod(rest))))).reshape((n,) + rest)
    return logits, target


def ce_np(logits, target):
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -np.take_along_axis(logp, target[:, None], axis=1)[:, 0]


@pytest.mark.parametrize("spatial", [0, 2], ids=["2d", "4d"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy(spatial, reduction):
    @fast(20)
    @given(ce_inputs(spatial))
    def run(lt):
        logits, target = lt
        got = F.cross_entropy(Tensor(logits), target, reduction)
        np.testing.assert_allclose(got.numpy(), reduce_np(ce_np(logits, target), reduction), rtol=1e-10)
        check(lambda l: F.cross_entropy(l, Tensor(target), reduction), logits, second=spatial == 0)
    run()


def test_cross_entropy_gradient_is_softmax_minus_one_hot():
    logits = Tensor(np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]]), requires_grad=True)
    F.cross_entropy(logits, np.array([1, 2]), "sum").backward()
    p = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(1, keepdims=True)
    np.testing.assert_allclose(logits.grad.numpy(), p - np.eye(3)[[1, 2]])


def test_cross_entropy_errors():
    logits = Tensor(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2,\).*\(3,\)"):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        F.cross_entropy(logits, np.array([0, 3]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(reduction):
    @fast(20)
    @given(SHAPES1.flatmap(lambda s: st.tuples(arrays(s), arrays(s))))
    def run(xy):
        x, y = xy
        got = F.mse_loss(Tensor(x), Tensor(y), reduction)
        np.testing.assert_allclose(got.numpy(), reduce_np((x - y) ** 2, reduction), rtol=1e-12)
        check(lambda a, b: F.mse_loss(a, b, reduction), x, y, second=True)
        check(lambda a: F.mse_loss(a, y, reduction), x)
    run()


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_l1_loss(reduction):
    # the kink is at input == target: draw the target and a difference away from 0
    @fast(20)
    @given(SHAPES1.flatmap(lambda s: st.tuples(arrays(s), arrays(s, domain="away_from_zero_kinks"))))
    def run(yd):
        y, d = yd
        x = y + d
        got = F.l1_loss(Tensor(x), Tensor(y), reduction)
        np.testing.assert_allclose(got.numpy(), reduce_np(np.abs(x - y), reduction), rtol=1e-12)
        check(lambda a, b: F.l1_loss(a, b, reduction), x, y)
    run()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shared_log_var", [False, True])
def test_gaussian_nll(reduction, shared_log_var):
    @fast(15)
    @given(SHAPES1.flatmap(lambda s: st.tuples(
        arrays(s), arrays(s), arrays(() if shared_log_var else s))))
    def run(xml):
        x, mu, log_var = xml
        expected = 0.5 * (math.log(2 * math.pi) + log_var + (x - mu) ** 2 * np.exp(-log_var))
        got = F.gaussian_nll(Tensor(x), Tensor(mu), Tensor(log_var), reduction)
        np.testing.assert_allclose(got.numpy(), reduce_np(expected + 0 * x, reduction), rtol=1e-10)
        check(lambda a, b, c: F.gaussian_nll(a, b, c, reduction), x, mu, log_var, second=True)
    run()


def test_gaussian_nll_matches_density():
    # N(0.5; 0, 1) has density e^(-1/8) / sqrt(2 pi)
    nll = F.gaussian_nll(Tensor(np.array([0.5])), Tensor(np.array([0.0])), 0.0).item()
    np.testing.assert_allclose(nll, 0.125 + 0.5 * math.log(2 * math.pi))


@pytest.mark.parametrize("loss", [F.mse_loss, F.l1_loss, F.binary_cross_entropy_with_logits])
def test_loss_shape_mismatch_names_shapes(loss):
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        loss(Tensor(np.zeros((2, 3))), Tensor(np.zeros((3, 2))))


def test_loss_reduction_error():
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(Tensor(np.zeros(2)), Tensor(np.zeros(2)), "avg")
