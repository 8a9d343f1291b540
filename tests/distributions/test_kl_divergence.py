"""kl_divergence (tinygen/distributions/kl.py): every closed form against Monte Carlo and
enumeration, the VAE's formula, broadcasting, gradients and registration."""
import numpy as np
import pytest
import scipy.special as sp
from hypothesis import given
from hypothesis import strategies as st

from tinygen import Tensor
from tinygen.autograd import gradcheck
from tinygen.distributions import Bernoulli, Categorical, Distribution, Normal, kl_divergence, register_kl
from tinygen.testing import Domain, arrays

from distribution_checks import FAST, SCALES, assert_kl_matches_monte_carlo, t64


# --- KL divergence -------------------------------------------------------

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
