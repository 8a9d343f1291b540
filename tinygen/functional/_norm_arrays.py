"""The array side of the normalizations: the standardization and its gradient, on NumPy or CuPy arrays.

``normalization.py`` holds the op and its equations; this file is what makes it fast.
With A the standardized axes, m = |A|, d = x - mu and s = 1 / sqrt(var + eps):

    forward     mu = sum_A x / m,   var = sum_A d^2 / m,   y = d (gamma s) + beta
    backward    S1 = sum_A g,   S2 = sum_A g d,   k = gamma s
                dL/dx     = k g + d (2 g_var - k s^2 S2) / m + (g_mu - k S1) / m
                dL/dgamma = S2 s,   dL/dbeta = S1       (then summed over the statistics' own axes)

which is the op's formula with gamma taken out of the means (gamma is constant along A).
Every full-size step is one pass; the per-statistic ones (k, the coefficients) cost nothing.

Speed. The sums over A are ``einsum`` contractions: they read the array once in its
own memory order (a conv's output is often channels-last, NHWC, memory), where a
``sum`` over axes (0, 2, 3) of such memory runs several times slower (measured), and
``sum_A g d`` needs no product array. The gradient is laid out like d before the
passes, so that none of them mixes two memory orders (a strided read per element).
"""
from string import ascii_letters

from .. import backend


def _subscripts(ndim, axes):
    """einsum's names for an array's axes, and for the ones kept after summing over ``axes``."""
    names = ascii_letters[:ndim]
    return names, "".join(c for i, c in enumerate(names) if i not in axes)


def _sum_over(a, axes, b=None):
    """sum_A a (or sum_A a b without making the product), with the axes A kept as size 1."""
    xp = backend.get_array_module(a)
    names, kept = _subscripts(a.ndim, axes)
    operands = (a,) if b is None else (a, b)
    total = xp.einsum(",".join([names] * len(operands)) + "->" + kept, *operands)
    return total.reshape([1 if i in axes else n for i, n in enumerate(a.shape)])


def count(shape, axes):
    """m = |A|, the number of values behind each statistic."""
    m = 1
    for i in axes:
        m *= shape[i]
    return m


def standardize(x, gamma, beta, axes, eps, keep):
    """(y, mu, var, d, s): y = d gamma s + beta with the statistics over ``axes`` (size-1 axes kept).

    gamma / beta: arrays that broadcast against the statistics, or None. ``keep``: whether
    the caller keeps d for the gradient; if not, y is computed in d's memory.
    """
    m = count(x.shape, axes)
    xp = backend.get_array_module(x)
    mu = _sum_over(x, axes) / m
    d = x - mu
    var = _sum_over(d, axes, d) / m
    s = 1 / xp.sqrt(var + eps)
    scale = s if gamma is None else s * gamma
    if keep:
        y = d * scale
    else:
        y = d
        y *= scale
    if beta is not None:
        y += beta
    return y, mu, var, d, s


def like(g, d):
    """g in d's memory order (a copy only when the orders differ), for passes that read both."""
    if g.strides == d.strides:
        return g
    out = backend.get_array_module(d).empty_like(d)
    out[...] = g
    return out


def standardize_grad(g, g_mu, g_var, d, s, gamma, axes, need_x):
    """(dL/dx or None, sum_A g x_hat, sum_A g) from the backward of the module docstring.

    g_mu / g_var: the gradients reaching the returned mu and var (zeros when unused).
    The last two keep the statistics' shape; the caller sums them to gamma's.
    """
    m = count(d.shape, axes)
    g = like(g, d)
    s1, s2 = _sum_over(g, axes), _sum_over(g, axes, d)
    gx = None
    if need_x:
        k = s if gamma is None else gamma * s
        gx = g * k
        gx += d * ((2 * g_var - k * s * s * s2) / m)
        gx += (g_mu - k * s1) / m
    return gx, s2 * s, s1


def reduce_to(a, shape):
    """Sum a over the axes where ``shape`` has size 1 and a does not (a's rank kept)."""
    axes = tuple(i for i, (n, k) in enumerate(zip(a.shape, shape)) if k == 1 and n != 1)
    return a.sum(axis=axes, keepdims=True) if axes else a
