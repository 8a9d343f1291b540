"""What the tests of tinygen.distributions share: tolerances, domains and reference formulas.

Statistical checks use a fixed seed and a tolerance of Z = 5 standard errors: a
correct implementation fails one with probability below 1e-6, a wrong formula
(a missing factor, a sign, a variance used as a standard deviation) fails it by
far more. Hypothesis runs derandomized, so every run checks the same cases.
"""
import numpy as np
import scipy.special as sp
import scipy.stats as ss
from hypothesis import HealthCheck, settings

import tinygen
from tinygen import Tensor
from tinygen.distributions import kl_divergence
from tinygen.testing import Domain, shapes

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


def assert_kl_matches_monte_carlo(p, q, n=20000, seed=0):
    """Closed-form KL(p || q) against mean(log p(x) - log q(x)), x ~ p, within Z standard errors."""
    tinygen.manual_seed(seed)
    x = p.sample(n)
    ratio = (p.log_prob(x) - q.log_prob(x)).numpy()
    mc, se = ratio.mean(axis=0), ratio.std(axis=0) / np.sqrt(n)
    kl = kl_divergence(p, q).numpy()
    assert np.all(kl >= -1e-12)
    assert np.all(np.abs(kl - mc) <= Z * se + 1e-9), (kl, mc, se)


def mixture_logpdf_scipy(x, locs, covs, weights):
    comps = [np.log(w) + ss.multivariate_normal(m, c).logpdf(x) for m, c, w in zip(locs, covs, weights)]
    return sp.logsumexp(np.stack(comps, axis=-1), axis=-1)
