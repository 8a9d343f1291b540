"""A sum of kernels over length scales, as one op: the fast path of ``two_sample._kernel``.

``two_sample.py`` writes the multi-scale kernels of MMD as a loop of Tensor ops over the
scales s, two or three ops per scale on the whole (n, m) matrix of squared distances r2:

    "imq"   k = sum_s C_s / (C_s + r2)                 dk/dr2 = - sum_s C_s / (C_s + r2)^2
    "rbf"   k = sum_s exp(a_s r2),  a_s = -1 / (2 s^2)   dk/dr2 =   sum_s a_s exp(a_s r2)

WAE's seven scales make that 21 ops on each of its three kernel matrices, and as many
backward, in a step of a few milliseconds where each op costs more in Python than in
arithmetic. Here it is one op. The forward computes the loop's numbers bit for bit (the
same operations in the same order on arrays); without a graph to record, the backward
is one pass per scale over arrays; under create_graph it is the formula above in Tensor
ops of r2, so the kernel is differentiable again (the gradient rounds in its own order).
``tinygen.fast_paths`` switches it off.
"""
from ..autograd.function import Function
from .. import backend, fast_paths
from .. import functional as F
from ..functional._base import array_tensor


class KernelSum(Function):
    """k(r2) summed over the scales; ``kind`` "imq" (params: the C_s) or "rbf" (params: the a_s)."""
    op_name = "mmd_kernel"

    def forward(self, r2, kind, params):
        xp = backend.get_array_module(r2)
        self.kind, self.params = kind, params
        total = None
        for p in params:
            term = p / (p + r2) if kind == "imq" else xp.exp(r2 * p)
            total = term if total is None else total + term
        return total

    def backward(self, g):
        r2, = self.inputs
        if not fast_paths.array_backward():
            return g * self._slope(r2)
        return array_tensor(g.data * self._slope_array(r2.data))

    def _slope_array(self, r2):
        xp = backend.get_array_module(r2)
        slope = xp.zeros_like(r2)
        for p in self.params:
            if self.kind == "imq":
                term = p + r2
                xp.multiply(term, term, out=term)
                xp.divide(p, term, out=term)
                slope -= term
            else:
                term = xp.exp(r2 * p)
                term *= p
                slope += term
        return slope

    def _slope(self, r2):
        """dk/dr2 in Tensor ops of r2 (a graph: the second derivative goes through it)."""
        slope = 0.0
        for p in self.params:
            if self.kind == "imq":
                slope = slope - p / ((p + r2) * (p + r2))
            else:
                slope = slope + F.exp(r2 * p) * p
        return slope


def kernel_sum(r2, kind, params):
    """sum over params of the "imq" or "rbf" kernel of the squared distances r2 (a Tensor)."""
    return KernelSum.apply(r2, kind=kind, params=tuple(params))
