"""Checks the GAN-family tests share: which parameters a training phase touched, and a digits batch."""
import numpy as np

from tinygen import data
from tinygen.autograd import Tensor


def snapshot(module):
    return [(p.data.copy(), None if p.grad is None else p.grad.data.copy()) for p in module.parameters()]


def unchanged(module, before):
    """Every parameter and gradient of ``module`` bitwise as in ``before``."""
    now = snapshot(module)
    same = lambda a, b: (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))  # noqa
    return all(np.array_equal(p0, p1) and same(g0, g1) for (p0, g0), (p1, g1) in zip(before, now))


def moved(module, before):
    return any(not np.array_equal(p0, p.data) for (p0, _), p in zip(before, module.parameters()))


def digits_batch(n=32, seed=0):
    x = data.digits().train_images
    return Tensor(x[np.random.default_rng(seed).choice(len(x), n, replace=False)])
