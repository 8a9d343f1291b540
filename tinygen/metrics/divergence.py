"""Divergences between discrete distributions, and the GAN's optimal discriminator.

For distributions p, q over the same finite set (NumPy arrays of any shape,
entries >= 0 summing to 1; the set is all entries), in nats:

    KL(p || q)  = sum_i p_i log(p_i / q_i)            0 log(0 / q) = 0; +inf where p_i > 0 = q_i
    JSD(p, q)   = 1/2 KL(p || m) + 1/2 KL(q || m),     m = (p + q) / 2

JSD is symmetric and lies in [0, log 2]: 0 exactly when p = q, log 2 exactly
when their supports are disjoint (then m = p / 2 on p's support, and
KL(p || m) = log 2).

Why a GAN cares (Goodfellow et al., 2014). For a fixed generator with model
distribution p_g, the discriminator maximising

    V(D, G) = E_{x ~ p_data} log D(x) + E_{x ~ p_g} log(1 - D(x))

is, point by point (maximise a log D + b log(1 - D) over D in [0, 1]):

    D*(x) = p_data(x) / (p_data(x) + p_g(x))

and putting it back, with m = (p_data + p_g) / 2 so that D* = p_data / (2 m):

    V(D*, G) = sum_x p_data log(p_data / m) + sum_x p_g log(p_g / m) - 2 log 2
             = -log 4 + 2 JSD(p_data, p_g)

so training G against the best D minimises the Jensen-Shannon divergence, and
the global optimum p_g = p_data has D* = 1/2 and V = -log 4. Where both
densities are 0, D* is 0/0; ``optimal_discriminator`` returns 1/2 there (D*'s
value wherever p_data = p_g; such points have no mass under either
distribution, so V does not depend on the choice).
"""
import math

import numpy as np

from ._checks import to_numpy

SUM_TOLERANCE = 1e-6
"""How far from 1 the entries of a distribution may sum (rounding in how it was computed)."""


def rel_entr(a, b):
    """a log(a / b) elementwise: 0 where a = 0 (whatever b), inf where a > 0 = b.
    (scipy.special's, written here: importing scipy.special costs 0.3 s at every start.)"""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(a > 0, a * (np.log(a) - np.log(b)), 0.0)
    return np.where((a > 0) & (b == 0), np.inf, out)


def _distribution(p, op, name):
    a = to_numpy(p)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{op}: {name} must hold real numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if a.size == 0:
        raise ValueError(f"{op}: {name} is empty (shape {a.shape})")
    if not np.isfinite(a).all():
        raise ValueError(f"{op}: {name} (shape {a.shape}) has non-finite entries")
    if (a < 0).any():
        raise ValueError(f"{op}: {name} has negative entries (the smallest is {a.min():.6g}); "
                         "a probability distribution is >= 0 everywhere")
    total = a.sum()
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(f"{op}: {name} sums to {total:.9g}, not 1; normalise it (p / p.sum())")
    return a


def _pair(p, q, op, names):
    a, b = _distribution(p, op, names[0]), _distribution(q, op, names[1])
    if a.shape != b.shape:
        raise ValueError(f"{op}: {names[0]} and {names[1]} must have the same shape, got "
                         f"{a.shape} and {b.shape}")
    return a, b


def kl_divergence(p, q):
    """KL(p || q) in nats, a float in [0, inf] (inf where q is 0 but p is not)."""
    a, b = _pair(p, q, "kl_divergence", ("p", "q"))
    return max(float(rel_entr(a, b).sum()), 0.0)


def jensen_shannon(p, q):
    """JSD(p, q) in nats, a float in [0, log 2] (rounding is clipped to that range)."""
    a, b = _pair(p, q, "jensen_shannon", ("p", "q"))
    m = (a + b) / 2
    jsd = 0.5 * rel_entr(a, m).sum() + 0.5 * rel_entr(b, m).sum()
    return float(np.clip(jsd, 0.0, math.log(2.0)))


def optimal_discriminator(p_data, p_model):
    """D* = p_data / (p_data + p_model), float64 of their shape; 1/2 where both are 0."""
    a, b = _pair(p_data, p_model, "optimal_discriminator", ("p_data", "p_model"))
    total = a + b
    return np.divide(a, total, out=np.full_like(total, 0.5), where=total > 0)
