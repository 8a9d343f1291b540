"""Tests for tinygen.distributions.

Statistical checks use a fixed seed and a tolerance of Z = 5 standard errors: a
correct implementation fails one with probability below 1e-6, a wrong formula
(a missing factor, a sign, a variance used as a standard deviation) fails it by
far more. Hypothesis runs derandomized, so every run checks the same cases.
"""
import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as ss
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygen
from tinygen import Tensor, backend
from tinygen.autograd import gradcheck, gradgradcheck
from tinygen.distributions import (Bernoulli, Categorical, Distribution, Implicit, Normal, NormalMixture,
                                   kl_divergence, register_kl)
from tinygen.testing import Domain, arrays, shapes

Z = 5.0
FAST = settings(max_examples=12, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

LOGITS = Domain("logits", -8.0, 8.0)
UNIT_CLOSED = Domain("unit_closed", 0.0, 1.0)
SCALES = Domain("scales", 0.2, 4.0)


def t64(a, grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def small_shapes():
    return shapes(min_dims=0, max_dims=2, max_side=3)


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


# --- Normal --------------------------------------------------------------

@FAST
@given(st.tuples(small_shapes(), small_shapes()).flatmap(
    lambda s: st.tuples(arrays(s[0]), arrays(s[1], domain=SCALES), arrays(s[0]))))
def test_normal_log_prob_and_entropy_match_scipy(args):
    loc, scale, x = args
    try:
        np.broadcast_shapes(loc.shape, scale.shape)
    except ValueError:
        with pytest.raises(ValueError, match="do not broadcast"):
            Normal(loc, scale)
        return
    d = Normal(t64(loc), t64(scale))
    assert d.batch_shape == np.broadcast_shapes(loc.shape, scale.shape)
    np.testing.assert_allclose(d.log_prob(x).numpy(), ss.norm.logpdf(x, loc, scale), rtol=1e-12, atol=1e-12)
    expected_entropy = np.broadcast_to(ss.norm.entropy(loc, scale), d.batch_shape)
    np.testing.assert_allclose(d.entropy().numpy(), expected_entropy, rtol=1e-12)
    np.testing.assert_allclose(d.mean.numpy(), np.broadcast_to(loc, d.batch_shape))
    np.testing.assert_allclose(d.stddev.numpy(), np.broadcast_to(scale, d.batch_shape))
    np.testing.assert_allclose(d.variance.numpy(), np.broadcast_to(scale ** 2, d.batch_shape), rtol=1e-12)


def test_normal_sample_mean_and_variance():
    tinygen.manual_seed(3)
    loc, scale, n = np.array([-1.0, 0.0, 3.0]), np.array([0.5, 1.0, 2.0]), 40000
    x = Normal(loc, scale).sample(n).numpy()
    assert x.shape == (n, 3) and x.dtype == np.float64  # float64 arrays stay float64
    assert np.all(np.abs(x.mean(0) - loc) <= Z * scale / np.sqrt(n))
    assert np.all(np.abs(x.var(0) / scale ** 2 - 1) <= Z * np.sqrt(2 / (n - 1)))


def test_normal_from_log_var_uses_the_standard_deviation():
    # The notes' sampler check: Var(z) / exp(log_var) = 1 (exp(log_var) as the std gives 1.89, 0.51, ...).
    tinygen.manual_seed(4)
    log_var, n = np.array([0.64, -0.67, 1.2]), 40000
    z = Normal.from_log_var(np.zeros(3), log_var).sample(n).numpy()
    assert np.all(np.abs(z.var(0) / np.exp(log_var) - 1) <= Z * np.sqrt(2 / (n - 1)))


def test_rsample_is_the_reparameterisation_loc_plus_scale_eps():
    loc, scale = t64([0.5, -1.0, 2.0], True), t64([1.0, 0.3, 2.5], True)
    tinygen.manual_seed(5)
    x = Normal(loc, scale).rsample(7)
    tinygen.manual_seed(5)
    eps = backend.generator("cpu").standard_normal((7, 3))
    np.testing.assert_allclose(x.numpy(), loc.numpy() + scale.numpy() * eps, rtol=1e-15)
    x.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), 7.0)               # d/dloc of sum(loc + scale eps)
    np.testing.assert_allclose(scale.grad.numpy(), eps.sum(axis=0))  # d/dscale = sum of eps
    assert not Normal(loc, scale).sample(7).requires_grad


def test_rsample_gradcheck_with_a_fixed_seed():
    def draw(loc, scale):
        tinygen.manual_seed(11)  # every evaluation sees the same eps
        return Normal(loc, scale).rsample((2, 3))
    assert gradcheck(draw, [t64([0.1, -0.4, 1.0], True), t64([0.7, 1.3, 0.2], True)])


def test_normal_noise_does_not_depend_on_dtype():
    tinygen.manual_seed(6)
    a = Normal(np.zeros(4, np.float64), 1.0).sample(3).numpy()
    tinygen.manual_seed(6)
    b = Normal(np.zeros(4, np.float32), 1.0).sample(3).numpy()
    assert a.dtype == np.float64 and b.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_normal_gradients():
    x, loc, scale = np.array([0.3, -2.0, 1.0]), np.array([0.0, -1.0, 2.0]), np.array([0.5, 1.5, 2.0])
    assert gradcheck(lambda v, m, s: Normal(m, s).log_prob(v),
                     [t64(x, True), t64(loc, True), t64(scale, True)])
    assert gradcheck(lambda s: Normal(0.0, s).entropy(), [t64(scale, True)])
    assert gradcheck(lambda m, lv: Normal.from_log_var(m, lv).log_prob(x),
                     [t64(loc, True), t64([0.1, -1.0, 0.4], True)])


def test_second_derivatives():
    # log_prob and KL are built from Tensor ops, so they can be differentiated twice.
    assert gradgradcheck(lambda v, m, s: Normal(m, s).log_prob(v),
                         [t64([0.3, -1.0], True), t64([0.0, 0.5], True), t64([1.0, 2.0], True)])
    assert gradgradcheck(lambda l: Categorical(logits=l).log_prob([2, 0]),
                         [t64([[0.3, -1.0, 2.0], [0.0, 1.0, 0.5]], True)])
    assert gradgradcheck(lambda lp, lq: kl_divergence(Bernoulli(logits=lp), Bernoulli(logits=lq)),
                         [t64([0.3, -2.0], True), t64([1.0, 0.5], True)])


def test_normal_errors():
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="scale .* must be positive"):
            Normal(0.0, [1.0, bad])
    with pytest.raises(ValueError, match="loc must be finite"):
        Normal([np.nan], 1.0)
    with pytest.raises(ValueError, match=r"loc \(2,\), scale \(3,\)"):
        Normal(np.zeros(2), np.ones(3))
    with pytest.raises(ValueError, match="share one dtype"):
        Normal(tinygen.tensor([0.0]), t64([1.0]))
    with pytest.raises(ValueError, match="do not broadcast"):
        Normal(np.zeros(3), 1.0).log_prob(np.zeros(2))
    with pytest.raises(ValueError, match="negative size"):
        Normal(0.0, 1.0).sample(-1)


# --- KL divergence -------------------------------------------------------

def assert_kl_matches_monte_carlo(p, q, n=20000, seed=0):
    """Closed-form KL(p || q) against mean(log p(x) - log q(x)), x ~ p, within Z standard errors."""
    tinygen.manual_seed(seed)
    x = p.sample(n)
    ratio = (p.log_prob(x) - q.log_prob(x)).numpy()
    mc, se = ratio.mean(axis=0), ratio.std(axis=0) / np.sqrt(n)
    kl = kl_divergence(p, q).numpy()
    assert np.all(kl >= -1e-12)
    assert np.all(np.abs(kl - mc) <= Z * se + 1e-9), (kl, mc, se)


@FAST
@given(arrays((3,)), arrays((3,), domain=SCALES), arrays((3,)), arrays((3,), domain=SCALES))
def test_kl_normal_normal_matches_monte_carlo(mp, sp_, mq, sq):
    assert_kl_matches_monte_carlo(Normal(t64(mp), t64(sp_)), Normal(t64(mq), t64(sq)))


@FAST
@given(arrays((4,), domain=Domain("l", -4.0, 4.0)), arrays((4,), domain=Domain("l", -4.0, 4.0)))
def test_kl_bernoulli_bernoulli_matches_monte_carlo_and_enumeration(lp, lq):
    p, q = Bernoulli(logits=t64(lp)), Bernoulli(logits=t64(lq))
    assert_kl_matches_monte_carlo(p, q)
    a, b = sp.expit(lp), sp.expit(lq)
    exact = a * np.log(a / b) + (1 - a) * np.log((1 - a) / (1 - b))
    np.testing.assert_allclose(kl_divergence(p, q).numpy(), exact, rtol=1e-9, atol=1e-12)


@FAST
@given(st.integers(2, 5).flatmap(lambda k: st.tuples(arrays((2, k)), arrays((2, k)))))
def test_kl_categorical_categorical_matches_monte_carlo_and_enumeration(logits):
    lp, lq = logits
    p, q = Categorical(logits=t64(lp)), Categorical(logits=t64(lq))
    assert_kl_matches_monte_carlo(p, q)
    a, b = sp.softmax(lp, -1), sp.softmax(lq, -1)
    exact = (a * np.log(a / b)).sum(-1)
    np.testing.assert_allclose(kl_divergence(p, q).numpy(), exact, rtol=1e-9, atol=1e-12)


def test_kl_of_a_distribution_with_itself_is_zero():
    for d in (Normal(t64([0.3, -1.0]), t64([0.5, 2.0])), Bernoulli(probs=t64([0.0, 0.4, 1.0])),
              Categorical(probs=t64([[0.2, 0.8, 0.0], [1.0, 0.0, 0.0]]))):
        np.testing.assert_allclose(kl_divergence(d, d).numpy(), 0.0, atol=1e-12)


def test_kl_normal_to_standard_normal_is_the_vae_formula():
    mu, sigma = np.array([0.5, -2.0, 0.0]), np.array([0.3, 1.0, 2.5])
    kl = kl_divergence(Normal(t64(mu), t64(sigma)), Normal(0.0, 1.0)).numpy()
    np.testing.assert_allclose(kl, 0.5 * (mu ** 2 + sigma ** 2 - 1 - np.log(sigma ** 2)), rtol=1e-12)


def test_kl_broadcasts_batches_and_handles_excluded_classes():
    kl = kl_divergence(Normal(np.zeros((3, 1)), 1.0), Normal(np.zeros(4), 2.0))
    assert kl.shape == (3, 4)
    # q rules out a class p never picks: finite; p = 0 where q > 0: only the other terms count.
    p = Categorical(probs=t64([0.5, 0.5, 0.0]))
    q = Categorical(logits=t64([0.0, 0.0, -np.inf]))
    np.testing.assert_allclose(kl_divergence(p, q).numpy(), 0.0, atol=1e-12)


def test_kl_gradients():
    a, b, c, d = (t64(v, True) for v in ([0.3, -1.0], [0.5, 2.0], [1.0, 0.0], [1.5, 0.4]))
    assert gradcheck(lambda mp, sp_, mq, sq: kl_divergence(Normal(mp, sp_), Normal(mq, sq)), [a, b, c, d])
    assert gradcheck(lambda lp, lq: kl_divergence(Bernoulli(logits=lp), Bernoulli(logits=lq)),
                     [t64([0.3, -2.0, 1.0], True), t64([1.0, 0.5, -0.5], True)])
    assert gradcheck(lambda lp, lq: kl_divergence(Categorical(logits=lp), Categorical(logits=lq)),
                     [t64([[0.3, -2.0, 1.0]], True), t64([[1.0, 0.5, -0.5]], True)])
    assert gradcheck(lambda pp: kl_divergence(Bernoulli(probs=pp), Bernoulli(probs=0.3)),
                     [t64([0.2, 0.9], True)])


def test_kl_errors():
    with pytest.raises(NotImplementedError, match=r"KL\(Normal \|\| Bernoulli\)"):
        kl_divergence(Normal(0.0, 1.0), Bernoulli(probs=0.5))
    with pytest.raises(ValueError, match="3 categories but q has 4"):
        kl_divergence(Categorical(logits=np.zeros(3)), Categorical(logits=np.zeros(4)))
    with pytest.raises(ValueError, match="do not broadcast"):
        kl_divergence(Normal(np.zeros(2), 1.0), Normal(np.zeros(3), 1.0))
    with pytest.raises(TypeError, match="two distributions"):
        kl_divergence(Normal(0.0, 1.0), 1.0)


def test_register_kl_extends_kl_divergence():
    class Point(Distribution):
        pass

    @register_kl(Point, Point)
    def _zero(p, q):
        return Tensor(0.0)
    assert kl_divergence(Point(), Point()).item() == 0.0


# --- mixtures ------------------------------------------------------------

def mixture_logpdf_scipy(x, locs, covs, weights):
    comps = [np.log(w) + ss.multivariate_normal(m, c).logpdf(x) for m, c, w in zip(locs, covs, weights)]
    return sp.logsumexp(np.stack(comps, axis=-1), axis=-1)


def test_diagonal_mixture_log_prob_matches_scipy():
    rng = np.random.default_rng(0)
    locs, scales, w = rng.normal(size=(3, 2)), rng.uniform(0.3, 2.0, size=(3, 2)), np.array([0.2, 0.5, 0.3])
    x = rng.normal(size=(4, 5, 2))
    d = NormalMixture(t64(locs), t64(scales), weights=t64(w))
    assert d.batch_shape == () and d.event_shape == (2,) and d.num_components == 3
    expected = mixture_logpdf_scipy(x, locs, [np.diag(s ** 2) for s in scales], w)
    np.testing.assert_allclose(d.log_prob(x).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(d.mean.numpy(), w @ locs, rtol=1e-12)
    np.testing.assert_allclose(sp.softmax(d.component_log_prob(x).numpy(), -1).sum(-1), 1.0)


def test_elongated_ring_log_prob_matches_scipy_and_integrates_to_one():
    d = NormalMixture.ring(10, radius=1.4, std=0.5, tangential_std=0.05, dtype=np.float64)
    A = d.scales.numpy()
    pts = np.random.default_rng(1).normal(size=(50, 2))
    expected = mixture_logpdf_scipy(pts, d.locs.numpy(), A @ A.transpose(0, 2, 1), np.full(10, 0.1))
    np.testing.assert_allclose(d.log_prob(pts).numpy(), expected, rtol=1e-10)
    h = 0.02
    g = np.arange(-4.0, 4.0 + h / 2, h)
    grid = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1)
    assert abs(np.exp(d.log_prob(grid).numpy()).sum() * h * h - 1.0) < 1e-3


def test_mixture_samples_land_near_their_components_in_proportion():
    tinygen.manual_seed(8)
    locs = np.array([[0.0, 0.0], [5.0, 5.0], [-5.0, 3.0]])
    scales = np.array([[0.5, 1.0], [0.2, 0.2], [1.0, 2.0]])
    w = np.array([0.5, 0.3, 0.2])
    n = 20000
    x, k = NormalMixture(locs, scales, weights=w).sample(n, return_components=True)
    x, k = x.numpy(), k.numpy()
    assert x.shape == (n, 2) and k.shape == (n,)
    counts = np.bincount(k, minlength=3) / n
    assert np.all(np.abs(counts - w) <= Z * np.sqrt(w * (1 - w) / n)), counts
    for j in range(3):
        z = (x[k == j] - locs[j]) / scales[j]  # standardised by their own component
        m = len(z)
        assert np.all(np.abs(z.mean(0)) <= Z / np.sqrt(m))
        assert np.all(np.abs(z.var(0) - 1) <= Z * np.sqrt(2 / (m - 1)))


def test_aae_ring_prior_is_elongated_along_the_radius():
    # The AAE prior of the notes: 10 components at radius 1.4, std 0.5 along the radius, 0.05 across.
    tinygen.manual_seed(9)
    x, k = NormalMixture.ring(10, 1.4, 0.5, tangential_std=0.05).sample(20000, return_components=True)
    x, k = x.numpy().astype(np.float64), k.numpy()
    angle = 2 * np.pi * k / 10
    radial = np.stack([np.cos(angle), np.sin(angle)], -1)
    tangential = np.stack([-np.sin(angle), np.cos(angle)], -1)
    r, t = (x * radial).sum(-1) - 1.4, (x * tangential).sum(-1)
    n = len(r)
    assert abs(r.mean()) < Z * 0.5 / np.sqrt(n) and abs(t.mean()) < Z * 0.05 / np.sqrt(n)
    assert abs(r.std() / 0.5 - 1) < Z / np.sqrt(2 * n) and abs(t.std() / 0.05 - 1) < Z / np.sqrt(2 * n)


def test_ring_and_grid_centres():
    ring = NormalMixture.ring(8, radius=2.0, std=0.02)
    np.testing.assert_allclose(np.linalg.norm(ring.locs.numpy(), axis=1), 2.0, rtol=1e-6)
    np.testing.assert_allclose(ring.locs.numpy()[2], [0.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(ring.scales.numpy(), 0.02)
    grid = NormalMixture.grid()
    assert grid.num_components == 25
    assert sorted(set(grid.locs.numpy().ravel().tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    np.testing.assert_allclose(grid.locs.numpy()[:2], [[-4.0, -4.0], [-4.0, -2.0]])
    assert NormalMixture.grid(3, 1.0, 0.1, dim=3).locs.shape == (27, 3)
    assert NormalMixture.ring(4, dim=3).sample(5).shape == (5, 3)


def test_mixture_gradients():
    x = t64([[0.3, -0.2], [1.0, 2.0]], True)
    locs, scales = t64([[0.0, 0.0], [1.0, 1.5]], True), t64([[0.5, 1.0], [0.8, 0.3]], True)
    logits = t64([0.2, -0.3], True)
    assert gradcheck(lambda v, m, s, l: NormalMixture(m, s, logits=l).log_prob(v), [x, locs, scales, logits])
    assert gradcheck(lambda w: NormalMixture(locs.detach(), scales.detach(), weights=w).log_prob(x.detach()),
                     [t64([0.3, 0.9], True)])
    A = NormalMixture.ring(3, 1.0, 0.5, tangential_std=0.1, dtype=np.float64).scales.detach()
    locs3 = t64([[1.0, 0.0], [-0.5, 0.8], [-0.5, -0.8]], True)
    assert gradcheck(lambda v, m: NormalMixture(m, A).log_prob(v), [x, locs3])


def test_mixture_errors():
    locs = np.zeros((2, 3))
    with pytest.raises(ValueError, match="not both"):
        NormalMixture(locs, 1.0, weights=[0.5, 0.5], logits=[0.0, 0.0])
    with pytest.raises(ValueError, match=r"locs must have shape \(K, d\)"):
        NormalMixture(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match=r"scales of shape \(3, 3\) do not broadcast to \(K, d\) = \(2, 3\)"):
        NormalMixture(locs, np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"weights must have shape \(K,\) = \(2,\)"):
        NormalMixture(locs, 1.0, weights=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=">= 0"):
        NormalMixture(locs, 1.0, weights=[1.5, -0.5])
    with pytest.raises(ValueError, match="must be positive"):
        NormalMixture(locs, [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="invertible"):
        NormalMixture(locs, np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="cannot be learned"):
        NormalMixture(t64(locs), t64(np.stack([np.eye(3)] * 2), True))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 3\).*\(4, 2\)"):
        NormalMixture(locs, 1.0).log_prob(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="n_components must be an int >= 1"):
        NormalMixture.ring(0)


# --- implicit models and the base class ----------------------------------

def test_implicit_samples_but_has_no_density():
    w = tinygen.tensor([2.0], requires_grad=True)
    model = Implicit(lambda n: w * tinygen.ones((n, 2)), name="Generator")
    assert model.sample((3, 4)).shape == (3, 4, 2) and model.event_shape == (2,)
    assert not model.sample(3).requires_grad
    model.rsample(3).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [6.0])  # the sampler's graph is kept
    with pytest.raises(NotImplementedError, match="Generator.log_prob: an implicit model has no density"):
        model.log_prob(np.zeros(2))
    with pytest.raises(NotImplementedError, match="entropy"):
        model.entropy()
    with pytest.raises(NotImplementedError, match="no closed form"):
        NormalMixture.grid(2).entropy()
    with pytest.raises(ValueError, match=r"sampler\(5\) must return 5 draws"):
        Implicit(lambda n: np.zeros((3, 2))).sample(5)
    with pytest.raises(TypeError, match="callable"):
        Implicit(3)


def test_samples_live_on_the_parameters_device():
    for d in (Bernoulli(probs=[0.5]), Categorical(logits=[0.0, 1.0]), Normal(0.0, 1.0),
              NormalMixture.grid(2)):
        assert d.device == "cpu" and d.sample(2).device == "cpu"


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and a CUDA GPU")
def test_samples_on_cuda():
    import cupy
    tinygen.manual_seed(0)
    loc = tinygen.tensor([0.0, 1.0], device="cuda")
    for d in (Normal(loc, 2.0), Bernoulli(logits=loc), Categorical(logits=loc),
              NormalMixture(loc[None], 1.0)):
        x = d.sample(1000)
        assert d.device == "cuda" and x.device == "cuda" and isinstance(x.data, cupy.ndarray)
    n = Normal(loc, 2.0)
    assert n.log_prob(n.sample(3)).device == "cuda"
    assert kl_divergence(n, Normal(0.0, 1.0)).device == "cuda"
