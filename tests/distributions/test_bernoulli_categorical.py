"""Bernoulli and Categorical (tinygen/distributions/discrete.py): normalisation, scipy's
numbers, sample frequencies, gradients and errors."""
import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as ss
from hypothesis import given
from hypothesis import strategies as st

import tinygen
from tinygen.autograd import gradcheck
from tinygen.distributions import Bernoulli, Categorical
from tinygen.testing import arrays, shapes

from distribution_checks import FAST, LOGITS, UNIT_CLOSED, Z, small_shapes, t64


# --- Bernoulli -----------------------------------------------------------

@FAST
@given(arrays(small_shapes(), domain=LOGITS))
def test_bernoulli_probabilities_of_0_and_1_sum_to_one(logits):
    d = Bernoulli(logits=t64(logits))
    p0, p1 = (np.exp(d.log_prob(np.full(logits.shape, v)).numpy()) for v in (0.0, 1.0))
    total = p0 + p1
    np.testing.assert_allclose(total, 1.0, atol=1e-12)


@FAST
@given(arrays(small_shapes(), domain=UNIT_CLOSED))
def test_bernoulli_from_probs_sums_to_one_even_at_0_and_1(probs):
    d = Bernoulli(probs=t64(probs))
    p0, p1 = (np.exp(d.log_prob(np.full(probs.shape, v)).numpy()) for v in (0.0, 1.0))
    np.testing.assert_allclose(p0 + p1, 1.0, atol=1e-12)
    np.testing.assert_allclose(p1, probs, atol=1e-12)
    assert np.all(np.isfinite(d.logits.numpy())) and np.all(np.isfinite(d.entropy().numpy()))


def test_bernoulli_matches_scipy():
    logits = np.array([-6.0, -1.0, 0.0, 0.5, 3.0])
    p = sp.expit(logits)
    d = Bernoulli(logits=t64(logits))
    for x in (0.0, 1.0):
        np.testing.assert_allclose(d.log_prob(np.full(5, x)).numpy(), ss.bernoulli.logpmf(x, p), rtol=1e-10)
    np.testing.assert_allclose(d.entropy().numpy(), ss.bernoulli.entropy(p), rtol=1e-10)
    np.testing.assert_allclose(d.probs.numpy(), p, rtol=1e-12)
    np.testing.assert_allclose(d.mean.numpy(), p, rtol=1e-12)
    np.testing.assert_allclose(d.variance.numpy(), p * (1 - p), rtol=1e-12)
    np.testing.assert_allclose(Bernoulli(probs=t64(p)).logits.numpy(), logits, rtol=1e-9, atol=1e-9)


def test_bernoulli_soft_targets_give_minus_bce():
    logits, x = t64([-2.0, 0.3, 4.0]), t64([0.25, 0.5, 0.9])
    expected = -tinygen.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
    np.testing.assert_allclose(Bernoulli(logits=logits).log_prob(x).numpy(), expected.numpy(), rtol=1e-12)


def test_bernoulli_log_prob_broadcasts_value_against_batch():
    d = Bernoulli(logits=np.zeros((3, 1), np.float32))
    assert d.batch_shape == (3, 1) and d.event_shape == ()
    assert d.log_prob(np.ones(4)).shape == (3, 4)
    assert d.log_prob(np.array([1, 0, 1, 1], dtype=np.int64)).dtype == np.float32  # integer pixels are fine


def test_bernoulli_sample_frequencies_match_probabilities():
    tinygen.manual_seed(0)
    probs = np.array([0.0, 0.01, 0.3, 0.5, 0.9, 1.0])
    n = 20000
    x = Bernoulli(probs=probs.astype(np.float32)).sample(n)
    assert x.shape == (n, 6) and x.dtype == np.float32 and not x.requires_grad
    assert set(np.unique(x.numpy())) <= {0.0, 1.0}
    freq = x.numpy().mean(axis=0)
    assert np.all(np.abs(freq - probs) <= Z * np.sqrt(probs * (1 - probs) / n)), freq
    assert freq[0] == 0.0 and freq[-1] == 1.0


def test_bernoulli_sample_shapes_and_seed():
    d = Bernoulli(logits=tinygen.tensor(np.zeros((2, 3)), requires_grad=True))
    assert d.sample().shape == (2, 3) and d.sample((4, 5)).shape == (4, 5, 2, 3)
    assert not d.sample(2).requires_grad
    tinygen.manual_seed(7)
    a = d.sample(10).numpy()
    tinygen.manual_seed(7)
    np.testing.assert_array_equal(a, d.sample(10).numpy())


def test_bernoulli_gradients():
    logits, x = np.array([-1.5, 0.2, 2.0]), np.array([0.0, 1.0, 0.3])
    assert gradcheck(lambda l: Bernoulli(logits=l).log_prob(x), [t64(logits, True)])
    soft = t64([0.2, 0.5, 0.7], True)  # in x only away from 0 and 1 (the steps must stay in [0, 1])
    assert gradcheck(lambda l, v: Bernoulli(logits=l).log_prob(v), [t64(logits, True), soft])
    assert gradcheck(lambda l: Bernoulli(logits=l).entropy(), [t64(logits, True)])
    assert gradcheck(lambda p: Bernoulli(probs=p).log_prob(x), [t64([0.1, 0.6, 0.95], True)])


def test_bernoulli_errors():
    with pytest.raises(ValueError, match="exactly one of logits= or probs=, got both"):
        Bernoulli(logits=[0.0], probs=[0.5])
    with pytest.raises(ValueError, match="neither"):
        Bernoulli()
    with pytest.raises(ValueError, match=r"probs must lie in \[0, 1\]"):
        Bernoulli(probs=[0.2, 1.5])
    with pytest.raises(ValueError, match="logits must be finite"):
        Bernoulli(logits=[0.0, np.nan])
    d = Bernoulli(logits=np.zeros(3))
    with pytest.raises(ValueError, match=r"values must be 0 or 1.*2\."):
        d.log_prob([0.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="values must be 0 or 1"):
        d.log_prob([-0.5, 0.0, 1.0])
    with pytest.raises(ValueError, match=r"value \(4,\), batch \(3,\)"):
        d.log_prob(np.ones(4))
    with pytest.raises(TypeError, match="floating-point"):
        Bernoulli(logits=tinygen.tensor([1, 2]))


# --- Categorical ---------------------------------------------------------

@st.composite
def categorical_logits(draw):
    batch = draw(shapes(min_dims=0, max_dims=2, max_side=3))
    k = draw(st.integers(1, 6))
    return draw(arrays(batch + (k,), domain=LOGITS))


@FAST
@given(categorical_logits())
def test_categorical_probabilities_over_all_classes_sum_to_one(logits):
    d = Categorical(logits=t64(logits))
    batch, k = logits.shape[:-1], logits.shape[-1]
    assert d.batch_shape == batch and d.num_categories == k
    per_class = np.stack([d.log_prob(np.full(batch, j)).numpy() for j in range(k)], axis=-1)
    np.testing.assert_allclose(np.exp(per_class).sum(axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(per_class, sp.log_softmax(logits, axis=-1), atol=1e-12)
    np.testing.assert_allclose(d.logits.numpy(), per_class, atol=1e-12)
    np.testing.assert_allclose(d.entropy().numpy(), ss.entropy(sp.softmax(logits, axis=-1), axis=-1),
                               atol=1e-10)


def test_categorical_from_probs_normalises_them():
    d = Categorical(probs=t64([[1.0, 3.0, 0.0], [2.0, 2.0, 4.0]]))
    np.testing.assert_allclose(d.probs.numpy(), [[0.25, 0.75, 0.0], [0.25, 0.25, 0.5]])
    np.testing.assert_allclose(np.exp(d.log_prob([1, 2]).numpy()), [0.75, 0.5])
    np.testing.assert_allclose(d.entropy().numpy(), ss.entropy([[1, 3, 0], [2, 2, 4]], axis=-1), rtol=1e-12)


def test_categorical_log_prob_broadcasts_and_accepts_whole_floats():
    d = Categorical(logits=np.zeros((3, 4)))
    assert d.log_prob(np.arange(4).reshape(4, 1) % 4).shape == (4, 3)
    assert d.log_prob(2).shape == (3,)
    np.testing.assert_allclose(d.log_prob(np.array([0.0, 3.0, 2.0])).numpy(), np.log(0.25), rtol=1e-6)
    assert d.log_prob(d.sample(5)).shape == (5, 3)


def test_categorical_sample_frequencies_match_probabilities():
    tinygen.manual_seed(1)
    probs = np.array([[0.05, 0.15, 0.3, 0.5, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0]])
    n = 20000
    k = Categorical(probs=probs).sample(n)
    assert k.shape == (n, 2) and k.dtype == np.int64 and not k.requires_grad
    freq = np.stack([np.bincount(k.numpy()[:, i], minlength=5) / n for i in range(2)])
    assert np.all(np.abs(freq - probs) <= Z * np.sqrt(probs * (1 - probs) / n)), freq
    assert freq[0, 4] == 0 and freq[1, 2] == 1.0  # zero-probability classes are never drawn


def test_categorical_minus_infinity_logits_rule_a_class_out():
    tinygen.manual_seed(2)
    d = Categorical(logits=t64([0.0, -np.inf, np.log(3.0)]))
    k = d.sample(4000).numpy()
    assert not np.any(k == 1)
    assert abs((k == 2).mean() - 0.75) < Z * np.sqrt(0.75 * 0.25 / 4000)
    np.testing.assert_allclose(d.entropy().numpy(), ss.entropy([0.25, 0.0, 0.75]), rtol=1e-12)
    assert d.log_prob(1).numpy() == -np.inf


def test_categorical_gradients():
    logits = np.array([[0.3, -1.0, 2.0], [0.0, 0.5, -0.5]])
    assert gradcheck(lambda l: Categorical(logits=l).log_prob([2, 0]), [t64(logits, True)])
    assert gradcheck(lambda l: Categorical(logits=l).entropy(), [t64(logits, True)])
    assert gradcheck(lambda p: Categorical(probs=p).log_prob([1, 2]),
                     [t64([[0.2, 0.5, 0.3], [1.0, 2.0, 3.0]], True)])


def test_categorical_errors():
    d = Categorical(logits=np.zeros(3))
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 3\).*3"):
        d.log_prob([0, 3])
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\)"):
        d.log_prob(-1)
    with pytest.raises(ValueError, match="whole numbers.*1.5"):
        d.log_prob(1.5)
    with pytest.raises(TypeError, match="must be integers"):
        d.log_prob(np.array([True]))
    with pytest.raises(ValueError, match="do not broadcast"):
        Categorical(logits=np.zeros((2, 3))).log_prob([0, 1, 2])
    with pytest.raises(ValueError, match="last axis of K >= 1"):
        Categorical(logits=1.0)
    with pytest.raises(ValueError, match=">= 0"):
        Categorical(probs=[0.5, -0.1, 0.6])
    with pytest.raises(ValueError, match="positive sum"):
        Categorical(probs=[[0.0, 0.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="nan"):
        Categorical(logits=[0.0, np.nan])
    with pytest.raises(ValueError, match="finite entry"):
        Categorical(logits=[[-np.inf, -np.inf], [0.0, 1.0]])
    with pytest.raises(ValueError, match="exactly one"):
        Categorical(logits=[0.0], probs=[1.0])
    with pytest.raises(NotImplementedError, match="rsample"):
        d.rsample(3)
