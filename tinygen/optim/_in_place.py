"""Adam's step in place: the fast path of ``adam.py``'s formulas (``tinygen.fast_paths``).

The formulas as written allocate a fresh array for every product and sum (eight per
parameter per step); here the moments are updated in their own memory through one
scratch array, and the step is

    eta m_hat / (sqrt(v_hat) + eps)  =  (eta / bc1) m / (sqrt(v) / sqrt(bc2) + eps)

the same quantity with the bias corrections applied to the scalars, which rounds
differently from the formula in the last bits only.
"""
import math


def adam_step_in_place(xp, theta, g, m, v, lr, beta1, beta2, eps, bias1, bias2):
    """m, v and theta updated in place for one Adam step (bias corrections bias1, bias2)."""
    tmp = xp.empty_like(theta)
    xp.multiply(g, 1 - beta1, out=tmp)
    m *= beta1
    m += tmp
    xp.multiply(g, g, out=tmp)
    tmp *= 1 - beta2
    v *= beta2
    v += tmp
    xp.sqrt(v, out=tmp)
    tmp /= math.sqrt(bias2)
    tmp += eps
    step = m * (lr / bias1)
    step /= tmp
    theta -= step
