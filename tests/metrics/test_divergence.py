"""jensen_shannon, kl_divergence and optimal_discriminator on discrete distributions; the GAN identity."""
import math

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats
from hypothesis import given, settings, strategies as st
from scipy.special import xlogy

from tinygen.metrics import jensen_shannon, kl_divergence, optimal_discriminator

FAST = settings(max_examples=40, deadline=None, derandomize=True)
LOG2 = math.log(2.0)


def _distribution(seed, size, zeros=0.0):
    """A random distribution over ``size`` points, a fraction ``zeros`` of them with no mass."""
    rng = np.random.default_rng(seed)
    p = rng.random(size) * (rng.random(size) >= zeros)
    if p.sum() == 0:
        p[rng.integers(size)] = 1.0
    return p / p.sum()


pairs = st.tuples(st.integers(0, 2**31), st.integers(1, 20), st.sampled_from([0.0, 0.3, 0.7]))


def _pair(case):
    seed, size, zeros = case
    return _distribution(seed, size, zeros), _distribution(seed + 1, size, zeros)


def _gan_value(d, p_data, p_model):
    """V(D, G) = E_data log D + E_g log(1 - D), with 0 log 0 = 0 where a distribution has no mass."""
    return float(xlogy(p_data, d).sum() + xlogy(p_model, 1 - d).sum())


@FAST
@given(pairs)
def test_jsd_properties(case):
    p, q = _pair(case)
    jsd = jensen_shannon(p, q)
    assert 0.0 <= jsd <= LOG2
    assert jsd == jensen_shannon(q, p)
    assert jensen_shannon(p, p) == 0.0
    # scipy's jensenshannon is the square root of JSD (natural log by default)
    assert jsd == pytest.approx(scipy.spatial.distance.jensenshannon(p, q) ** 2, rel=1e-9, abs=1e-12)


def test_disjoint_supports_give_log_2():
    p = np.array([0.5, 0.5, 0.0, 0.0])
    q = np.array([0.0, 0.0, 0.25, 0.75])
    assert jensen_shannon(p, q) == pytest.approx(LOG2, rel=1e-15)


def test_distributions_of_any_shape():
    p, q = _distribution(0, 12).reshape(3, 4), _distribution(1, 12).reshape(3, 4)
    assert jensen_shannon(p, q) == pytest.approx(jensen_shannon(p.ravel(), q.ravel()))
    assert optimal_discriminator(p, q).shape == (3, 4)


@FAST
@given(pairs)
def test_kl_matches_scipy(case):
    p, q = _pair(case)
    assert kl_divergence(p, q) == pytest.approx(scipy.stats.entropy(p, q), rel=1e-9, abs=1e-12)
    assert kl_divergence(p, p) == 0.0


def test_kl_is_infinite_where_q_misses_mass_of_p():
    assert kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf
    assert kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(LOG2)


@FAST
@given(pairs)
def test_value_at_the_optimal_discriminator_is_minus_log_4_plus_2_jsd(case):
    p_data, p_model = _pair(case)
    d_star = optimal_discriminator(p_data, p_model)
    assert ((d_star >= 0) & (d_star <= 1)).all()
    v_star = _gan_value(d_star, p_data, p_model)
    assert v_star == pytest.approx(-math.log(4.0) + 2 * jensen_shannon(p_data, p_model), abs=1e-12)
    # D* maximises V: any other discriminator in (0, 1) does no better
    other = np.clip(d_star + np.random.default_rng(case[0]).uniform(-0.2, 0.2, d_star.shape), 1e-3, 1 - 1e-3)
    assert _gan_value(other, p_data, p_model) <= v_star + 1e-12


def test_optimal_discriminator_values():
    p_data = np.array([0.5, 0.3, 0.2, 0.0, 0.0])
    p_model = np.array([0.5, 0.1, 0.0, 0.4, 0.0])
    np.testing.assert_allclose(optimal_discriminator(p_data, p_model), [0.5, 0.75, 1.0, 0.0, 0.5])
    p = _distribution(3, 6)
    np.testing.assert_array_equal(optimal_discriminator(p, p), np.full(6, 0.5))
    assert _gan_value(optimal_discriminator(p, p), p, p) == pytest.approx(-math.log(4.0))


@pytest.mark.parametrize("function", [jensen_shannon, kl_divergence, optimal_discriminator])
@pytest.mark.parametrize("p, q, error, message", [
    ([0.5, 0.6], [0.5, 0.5], ValueError, r"sums to 1.1, not 1"),
    ([1.5, -0.5], [0.5, 0.5], ValueError, r"negative entries.*-0.5"),
    ([0.5, 0.5], [0.2, 0.3, 0.5], ValueError, r"same shape.*\(2,\) and \(3,\)"),
    ([], [], ValueError, r"empty"),
    ([np.nan, 1.0], [0.5, 0.5], ValueError, r"non-finite"),
    (["a", "b"], [0.5, 0.5], TypeError, r"real numbers"),
])
def test_bad_input(function, p, q, error, message):
    with pytest.raises(error, match=message):
        function(np.array(p), np.array(q))
