"""Bernoulli and Categorical: the conditionals of the explicit models (FVSBN, NADE, PixelRNN).

Bernoulli, logits l, p = sigmoid(l), values x in {0, 1}:

    log_prob(x) = x l - softplus(l)          (= x log p + (1 - x) log(1 - p))
    entropy     = softplus(l) - p l

  written in the logits, so it never takes log 0: softplus(l) = log(1 + e^l) is
  computed stably for any l. ``log_prob`` also accepts x in [0, 1] (a soft target,
  e.g. a grey pixel): then it is minus the binary cross-entropy.

Categorical over the last axis, logits l_k, normalised log-probs
lp = log_softmax(l), p = exp(lp):

    log_prob(k) = lp[k]
    entropy     = -sum_k p_k lp_k

Their KL divergences are in ``kl.py``.
"""
import numpy as np

from .. import backend
from .. import functional as F
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from .base import Distribution, _as_params, _broadcast, _require, _sample_shape


class Bernoulli(Distribution):
    """Independent coin flips: P(x = 1) = sigmoid(logits) = probs.

    Give exactly one of ``logits`` (any real numbers; the stable parameterisation a
    network should output) or ``probs`` (in [0, 1]). From probs, the logits are
    computed with p clipped to [eps, 1 - eps] (eps the dtype's machine epsilon) so
    that they stay finite; the gradient is zero where p was clipped.
    """

    def __init__(self, logits=None, probs=None, validate_args=True):
        if (logits is None) == (probs is None):
            raise ValueError("Bernoulli: give exactly one of logits= or probs=, got "
                             + ("both" if logits is not None else "neither"))
        name = "logits" if logits is not None else "probs"
        param = _as_params("Bernoulli", **{name: logits if logits is not None else probs})[name]
        self._logits = param if name == "logits" else None
        self._probs = param if name == "probs" else None
        super().__init__(param.shape, (), validate_args, param.dtype, param.device)
        if validate_args:
            d = param.data
            if name == "logits":
                xp = backend.get_array_module(d)
                _require(xp.isfinite(d), d, "Bernoulli", "logits must be finite")
            else:
                _require((d >= 0) & (d <= 1), d, "Bernoulli", "probs must lie in [0, 1]")

    @property
    def logits(self):
        """l = log p - log(1 - p), batch-shaped."""
        if self._logits is not None:
            return self._logits
        eps = float(np.finfo(self.dtype).eps)
        p = F.clip(self._probs, eps, 1 - eps)  # keeps log finite at p = 0 or 1
        return F.log(p) - F.log(1 - p)

    @property
    def probs(self):
        """p = P(x = 1), batch-shaped."""
        return self._probs if self._probs is not None else F.sigmoid(self._logits)

    @property
    def mean(self):
        return self.probs

    @property
    def variance(self):
        p = self.probs
        return p * (1 - p)

    def log_prob(self, value):
        """x l - softplus(l), for x in {0, 1} (or a soft target in [0, 1]); shape broadcast(x, batch)."""
        x = self._value(value, "Bernoulli.log_prob")
        _broadcast("Bernoulli.log_prob", ("value", x.shape), ("batch", self.batch_shape))
        if self.validate_args:
            _require((x.data >= 0) & (x.data <= 1), x.data, "Bernoulli.log_prob",
                     "values must be 0 or 1 (or a soft target in [0, 1])")
        l = self.logits
        return x * l - F.softplus(l)

    def sample(self, shape=()):
        """0/1 draws (in the parameters' float dtype): x = [u < p], u ~ U[0, 1)."""
        shape = self._extended_shape(shape, "Bernoulli.sample")
        with no_grad():
            p = self.probs.data
            u = self._uniform(shape)
            return Tensor._make((u < p).astype(self.dtype))

    def entropy(self):
        """softplus(l) - p l  (= -p log p - (1 - p) log(1 - p)), batch-shaped."""
        l = self.logits
        return F.softplus(l) - self.probs * l


# --- Categorical ---------------------------------------------------------

class Categorical(Distribution):
    """One of K classes, K = the size of the last axis of ``logits`` or ``probs``.

    ``logits``: any reals (a -inf entry rules its class out); they are normalised
    with log_softmax. ``probs``: non-negative, each row with a positive sum; rows are
    divided by their sum. Values are integer class indices k in [0, K).
    """

    def __init__(self, logits=None, probs=None, validate_args=True):
        if (logits is None) == (probs is None):
            raise ValueError("Categorical: give exactly one of logits= or probs=, got "
                             + ("both" if logits is not None else "neither"))
        name = "logits" if logits is not None else "probs"
        param = _as_params("Categorical", **{name: logits if logits is not None else probs})[name]
        if param.ndim == 0 or param.shape[-1] == 0:
            raise ValueError(f"Categorical: {name} needs a last axis of K >= 1 classes, got shape "
                             f"{tuple(param.shape)}")
        self._logits = param if name == "logits" else None
        self._probs = param if name == "probs" else None
        super().__init__(param.shape[:-1], (), validate_args, param.dtype, param.device)
        if validate_args:
            d = param.data
            xp = backend.get_array_module(d)
            if name == "logits":
                _require(~xp.isnan(d) & (d < np.inf), d, "Categorical", "logits must not be nan or +inf")
                row_max = d.max(axis=-1)
                _require(xp.isfinite(row_max), row_max, "Categorical",
                         "every row of logits needs a finite entry (all -inf leaves nothing to choose)")
            else:
                _require(xp.isfinite(d) & (d >= 0), d, "Categorical", "probs must be finite and >= 0")
                total = d.sum(axis=-1)
                _require(total > 0, total, "Categorical", "every row of probs needs a positive sum")

    @property
    def num_categories(self):
        return (self._logits if self._logits is not None else self._probs).shape[-1]

    @property
    def probs(self):
        """p_k, summing to 1 over the last axis: batch_shape + (K,)."""
        if self._probs is not None:
            return self._probs / F.sum(self._probs, axis=-1, keepdims=True)
        return F.softmax(self._logits, axis=-1)

    @property
    def logits(self):
        """Normalised log-probabilities lp_k = log p_k (logsumexp over k is 0): batch_shape + (K,)."""
        if self._logits is not None:
            return F.log_softmax(self._logits, axis=-1)
        tiny = float(np.finfo(self.dtype).tiny)
        return F.log(F.clip(self.probs, lo=tiny))  # log 0 = -inf would make 0 * inf = nan gradients

    def _classes(self, value, who):
        """Integer class indices as an array on our device, checked against [0, K)."""
        k = backend.to_device(value.data if isinstance(value, Tensor) else value, self.device)
        xp = backend.get_array_module(k)
        if k.dtype.kind == "f":  # accept 2.0, refuse 2.5
            _require(k == xp.rint(k), k, who, "class indices must be whole numbers")
            k = k.astype(np.int64)
        elif k.dtype.kind not in "iu":
            raise TypeError(f"{who}: class indices must be integers, got {k.dtype}")
        K = self.num_categories
        _require((k >= 0) & (k < K), k, who, f"class indices must lie in [0, {K})")
        return k

    def log_prob(self, value):
        """lp[k] for integer k of a shape that broadcasts with batch_shape."""
        who = "Categorical.log_prob"
        k = self._classes(value, who)
        xp = backend.get_array_module(k)
        K = self.num_categories
        shape = _broadcast(who, ("value", k.shape), ("batch", self.batch_shape))
        # Line every (batch element, class index) pair up as one row of a (N, K)
        # table and pick one entry per row: an O(N) gather, no one-hot product.
        lp = F.reshape(F.expand(self.logits, shape + (K,)), (-1, K))
        rows = xp.arange(lp.shape[0])
        picked = F.getitem(lp, (rows, xp.broadcast_to(k, shape).reshape(-1)))
        return F.reshape(picked, shape)

    def sample(self, shape=()):
        """Integer (int64) class indices by inverting the CDF: k = #{j : cdf_j <= u}, u ~ U[0, 1).

        One uniform per draw, all draws at once (no loop over items). Class k is
        chosen when cdf_(k-1) <= u < cdf_k, which has probability p_k; a class with
        p_k = 0 has an empty interval, so it is never drawn.
        """
        shape = _sample_shape(shape, "Categorical.sample") + self.batch_shape
        with no_grad():
            p = self.probs.data.astype(np.float64)
            xp = backend.get_array_module(p)
            cdf = xp.cumsum(p, axis=-1)
            cdf = cdf / cdf[..., -1:]  # the last entry is exactly 1, so u < 1 never runs past K - 1
            u = self._uniform(shape)[..., None]
            k = (cdf <= u).sum(axis=-1)
            return Tensor._make(k.astype(np.int64))

    def entropy(self):
        """-sum_k p_k lp_k, batch-shaped."""
        lp = self.logits
        return -F.sum(F.exp(lp) * _finite_log(lp), axis=-1)


def _finite_log(lp):
    """lp with -inf replaced by a large finite negative number, so that p lp = 0 when p = 0
    (0 * -inf would be nan) and differences of two such values stay finite."""
    return F.clip(lp, lo=-float(np.finfo(lp.dtype).max) / 4)
