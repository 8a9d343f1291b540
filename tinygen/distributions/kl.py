"""KL(p || q) = E_{x~p}[log p(x) - log q(x)] in closed form, for the pairs registered here.

    Bernoulli    p (l_p - l_q) - softplus(l_p) + softplus(l_q)         (logits l, p = sigmoid(l_p))
    Categorical  sum_k p_k (lp_k - lq_k)                               (lp = log_softmax(l))
    Normal       log(sigma_q / sigma_p) + (sigma_p^2 + (mu_p - mu_q)^2) / (2 sigma_q^2) - 1/2

With q = N(0, 1) the Normal's is the VAE's 1/2 (mu^2 + sigma^2 - 1 - log sigma^2).
``register_kl(P, Q)`` adds a pair; ``kl_divergence`` looks the pair up along both classes'
MROs, and for an unknown pair says how to estimate it by Monte Carlo instead.
"""
import numpy as np

from .. import functional as F
from .base import Distribution, _broadcast
from .discrete import Bernoulli, Categorical, _finite_log
from .normal import Normal

_KL_REGISTRY = {}


def register_kl(type_p, type_q):
    """Decorator: ``@register_kl(P, Q)`` on ``fn(p, q)`` makes kl_divergence use it for P || Q."""
    def decorate(fn):
        _KL_REGISTRY[(type_p, type_q)] = fn
        return fn
    return decorate


def kl_divergence(p, q):
    """KL(p || q) = E_{x~p}[log p(x) - log q(x)] in closed form, one value per batch element
    (batch shape: the broadcast of p's and q's); differentiable in both sets of parameters."""
    if not isinstance(p, Distribution) or not isinstance(q, Distribution):
        raise TypeError(f"kl_divergence: expected two distributions, got {type(p).__name__} and "
                        f"{type(q).__name__}")
    for tp in type(p).__mro__:
        for tq in type(q).__mro__:
            fn = _KL_REGISTRY.get((tp, tq))
            if fn is not None:
                _broadcast("kl_divergence", ("p's batch", p.batch_shape), ("q's batch", q.batch_shape))
                return fn(p, q)
    known = ", ".join(f"{a.__name__} || {b.__name__}" for a, b in _KL_REGISTRY)
    raise NotImplementedError(
        f"kl_divergence: no closed form for KL({type(p).__name__} || {type(q).__name__}); known pairs: "
        f"{known}. Estimate it by Monte Carlo instead: x = p.sample(n); "
        f"(p.log_prob(x) - q.log_prob(x)).mean(axis=0)")


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    # log(s_q / s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2, as 1/2 (r + t - 1 - log r)
    r = (p._scale / q._scale) ** 2
    t = ((p._loc - q._loc) / q._scale) ** 2
    kl = 0.5 * (r + t - 1) - (F.log(p._scale) - F.log(q._scale))
    return F.expand(kl, np.broadcast_shapes(p.batch_shape, q.batch_shape))


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p, q):
    # p log(p/q) + (1-p) log((1-p)/(1-q)) with log p = l - softplus(l), log(1-p) = -softplus(l)
    lp, lq = p.logits, q.logits
    return p.probs * (lp - lq) - F.softplus(lp) + F.softplus(lq)


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    if p.num_categories != q.num_categories:
        raise ValueError(f"kl_divergence: p has {p.num_categories} categories but q has "
                         f"{q.num_categories}")
    lp, lq = _finite_log(p.logits), _finite_log(q.logits)
    return F.sum(p.probs * (lp - lq), axis=-1)
