"""Hypothesis strategies for property tests of tinygen ops (and of your own).

tinygen's own tests check every op on shapes and values drawn by hypothesis
rather than on a few hand-picked cases; the strategies live here, in the
package, so a user who adds an op can test it the same way:

    from hypothesis import given
    from tinygen.testing import arrays, broadcastable_shapes

    @given(broadcastable_shapes().flatmap(
        lambda pair: st.tuples(arrays(pair[0]), arrays(pair[1], domain="nonzero"))))
    def test_div_gradient(ab): ...

Value domains: shift, never filter
----------------------------------
Most ops have inputs where their gradient check is meaningless: ``log`` needs
x > 0, ``log(1 - x)`` needs x < 1, ``relu`` and ``abs`` have a kink at 0 that a
central difference straddles, ``max`` has a tie where the gradient is not
defined. One could draw any float and throw away the bad draws
(``.filter``, ``assume``), but with an array of n elements the chance that
*all* of them are acceptable shrinks like p**n: hypothesis then rejects most
draws, fails its health checks and tests little. Instead every domain here is
the image of a map from a base draw ``v`` in [-1, 1]: each draw lands in the
domain, none is wasted, and when hypothesis shrinks a failure towards v = 0
the value shrinks towards the domain's simplest point (its centre, or the
smallest allowed magnitude).

The domains (``DOMAINS``; pass the name or your own ``Domain``):

=======================  ==========================  =============================
name                     values                      for
=======================  ==========================  =============================
``real``                 [-3, 3]                     most ops; bounded so exp() and
                                                     products stay well scaled
``positive``             [0.1, 3]                    log, sqrt, pow, division
``unit``                 [0.05, 0.95]                log(x) and log(1-x): BCE, logit
``nonzero``              -3 <= x <= -0.1 or          division by x, 1/x
                         0.1 <= x <= 3
``away_from_zero_kinks`` same as ``nonzero``         relu, leaky_relu, abs, sign:
                                                     the difference step never
                                                     crosses the kink at 0
``distinct``             [-3, 3], every two values   max, min, argmax, sort,
                         at least ``gap`` apart      max-pooling: no ties
=======================  ==========================  =============================
"""
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

try:  # hypothesis is a test tool, installed with `pip install 'tinygen[test]'`, not by tinygen itself
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as exc:
    raise ImportError("tinygen.testing needs hypothesis, which is installed only with the test "
                      "extras: pip install 'tinygen[test]' (or pip install hypothesis)") from exc

__all__ = ["Domain", "DOMAINS", "shapes", "broadcastable_shapes", "arrays", "ConvParams", "conv_params"]


@dataclass(frozen=True)
class Domain:
    """A set of allowed values: ``[low, high]``, minus ``(-gap, gap)``, optionally with no ties.

    name      for messages
    low/high  the interval the values lie in
    gap       when > 0, values satisfy ``|x| >= gap``; needs ``low == -high``
    distinct  when True, any two values of one array differ by at least
              ``min(0.05, (high - low) / (2 (n - 1)))`` for an array of n values
    """

    name: str
    low: float
    high: float
    gap: float = 0.0
    distinct: bool = False

    def __post_init__(self):
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"Domain {self.name!r}: need finite low < high, got [{self.low}, {self.high}]")
        if self.gap < 0 or (self.gap > 0 and (self.low != -self.high or self.gap >= self.high)):
            raise ValueError(f"Domain {self.name!r}: a gap around 0 needs a symmetric interval "
                             f"low == -high and 0 <= gap < high; got [{self.low}, {self.high}], gap {self.gap}")
        if self.distinct and self.gap:
            raise ValueError(f"Domain {self.name!r}: distinct values with a gap around 0 are not supported")

    def min_spacing(self, n):
        """The smallest difference between two values of an ``n``-value array (``distinct`` only)."""
        return min(0.05, (self.high - self.low) / (2.0 * max(n - 1, 1)))

    def contains(self, values):
        """True when every entry of ``values`` lies in the domain (checked in float64)."""
        x = np.asarray(values, dtype=np.float64)
        ok = np.all((x >= self.low) & (x <= self.high))
        if self.gap:
            ok = ok and np.all(np.abs(x) >= self.gap)
        if self.distinct and x.size > 1:
            ok = ok and np.min(np.diff(np.sort(x.ravel()))) >= self.min_spacing(x.size) * (1 - 1e-6)
        return bool(ok)

    def from_base(self, v):
        """Map base draws ``v`` in [-1, 1] (any shape, float64) into the domain."""
        v = np.asarray(v, dtype=np.float64)
        if self.gap:
            # The sign of v picks the side; |v| runs from the gap to the edge.
            # v == 0 (hypothesis' simplest draw) goes to +gap.
            sign = np.where(v < 0, -1.0, 1.0)
            return sign * (self.gap + (self.high - self.gap) * np.abs(v))
        if self.distinct:
            # x = low + R u + g rank(u): monotone in u plus a strictly increasing
            # step per rank, so sorted neighbours differ by at least g, and the
            # largest value is low + R + g (n - 1) = high.
            n = v.size
            g = self.min_spacing(n)
            u = (v.ravel() + 1.0) / 2.0
            rank = np.empty(n)
            rank[np.argsort(u, kind="stable")] = np.arange(n)
            room = (self.high - self.low) - g * (n - 1)
            # clipped: low + room + g (n - 1) can round one ulp above high
            return np.minimum(self.low + room * u + g * rank, self.high).reshape(v.shape)
        mid, half = (self.high + self.low) / 2.0, (self.high - self.low) / 2.0
        return mid + half * v


DOMAINS = {
    "real": Domain("real", -3.0, 3.0),
    "positive": Domain("positive", 0.1, 3.0),
    "unit": Domain("unit", 0.05, 0.95),
    "nonzero": Domain("nonzero", -3.0, 3.0, gap=0.1),
    "away_from_zero_kinks": Domain("away_from_zero_kinks", -3.0, 3.0, gap=0.1),
    "distinct": Domain("distinct", -3.0, 3.0, distinct=True),
}
"""The named value domains ``arrays(..., domain=name)`` knows."""


def _domain(domain):
    if isinstance(domain, Domain):
        return domain
    try:
        return DOMAINS[domain]
    except (KeyError, TypeError):
        raise ValueError(f"unknown value domain {domain!r}; known: {', '.join(DOMAINS)} "
                         "(or pass a tinygen.testing.Domain)") from None


def shapes(min_dims=0, max_dims=4, min_side=1, max_side=5):
    """Array shapes (tuples) with ``min_dims..max_dims`` axes of ``min_side..max_side`` each.

    Small sides by default: gradient checks cost one forward pass per element.
    """
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=1, max_side=5):
    """Tuples of ``num_shapes`` shapes that broadcast together (a pair by default).

    Sides of 1 and missing leading axes both occur, e.g. ``((3, 1, 4), (5, 4))``:
    exactly the cases where a binary op must sum its gradient back to the input's shape.
    """
    return hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims,
                                             min_side=min_side, max_side=max_side).map(
        lambda drawn: tuple(drawn.input_shapes))


def arrays(shape, dtype=np.float64, domain="real"):
    """Arrays of ``shape`` (a tuple, or a strategy of tuples) with values in ``domain``.

    ``domain`` is a name from ``DOMAINS`` or a ``Domain``; ``dtype`` a floating
    dtype (float64 for gradient checks, float32 for what models use). Values are
    made by mapping base draws into the domain, never by filtering (see the
    module docstring).
    """
    dom = _domain(domain)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"arrays: dtype must be a floating dtype (float32, float64), got {dtype}")
    shape_strategy = shape if isinstance(shape, st.SearchStrategy) else st.just(_check_shape(shape))
    # Base draws in [-1, 1]; no subnormals, so no platform's flush-to-zero matters.
    base = st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False)
    return shape_strategy.flatmap(
        lambda s: hnp.arrays(np.float64, s, elements=base).map(lambda v: dom.from_base(v).astype(dtype)))


def _check_shape(shape):
    try:
        shape = tuple(int(d) for d in shape)
    except TypeError:
        raise ValueError(f"arrays: shape must be a tuple of ints or a strategy of them, got {shape!r}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"arrays: shape {shape} has a negative side")
    return shape


class ConvParams(NamedTuple):
    """One valid 2-D convolution: input ``(N, C_in, H, W)``, weight ``(C_out, C_in, kh, kw)``,
    ``stride`` = (sh, sw) and ``padding`` = (ph, pw), each drawn per axis."""

    N: int
    C_in: int
    H: int
    W: int
    C_out: int
    kh: int
    kw: int
    stride: tuple
    padding: tuple

    @property
    def input_shape(self):
        return (self.N, self.C_in, self.H, self.W)

    @property
    def weight_shape(self):
        return (self.C_out, self.C_in, self.kh, self.kw)

    @property
    def output_shape(self):
        """conv2d's output ``(N, C_out, H_out, W_out)``, ``H_out = (H + 2 ph - kh) // sh + 1``."""
        (sh, sw), (ph, pw) = self.stride, self.padding
        return (self.N, self.C_out, (self.H + 2 * ph - self.kh) // sh + 1, (self.W + 2 * pw - self.kw) // sw + 1)

    @property
    def output_padding(self):
        """conv_transpose2d's output_padding that maps ``output_shape`` back to ``input_shape``:
        the rows and columns a strided conv2d skipped at the edge."""
        (sh, sw), (ph, pw) = self.stride, self.padding
        return ((self.H + 2 * ph - self.kh) % sh, (self.W + 2 * pw - self.kw) % sw)


@st.composite
def conv_params(draw, max_batch=3, max_channels=3, max_side=7, max_kernel=4, max_stride=3, max_padding=2):
    """Valid conv2d settings as a ``ConvParams``: the kernel never exceeds the padded input.

    Every size is drawn per axis: the input's H and W, the padding (ph, pw), the
    kernel (kh, kw) and the stride (sh, sw), so a formula that uses the width's
    stride for the height fails. The kernel sides are drawn after the input side
    and the padding, from ``1 .. min(max_kernel, side + 2 padding)``, so every
    draw is usable (no filtering) and the output has at least one pixel. Strides
    that skip pixels at the edge and padding as large as the kernel occur. For
    conv_transpose2d (conv2d's adjoint), feed it ``output_shape`` and expect
    ``input_shape`` back, with ``output_padding``.
    """
    n = draw(st.integers(1, max_batch))
    c_in = draw(st.integers(1, max_channels))
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    c_out = draw(st.integers(1, max_channels))
    ph, pw = draw(st.integers(0, max_padding)), draw(st.integers(0, max_padding))
    kh = draw(st.integers(1, min(max_kernel, h + 2 * ph)))
    kw = draw(st.integers(1, min(max_kernel, w + 2 * pw)))
    sh, sw = draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride))
    return ConvParams(n, c_in, h, w, c_out, kh, kw, (sh, sw), (ph, pw))
