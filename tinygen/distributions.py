"""Probability distributions: densities that score data, samplers that make it.

Every generative model in tinygen is one of two kinds (the distinction the notes
draw between likelihood models and GANs):

- **explicit**: the model writes down log p(x). It can score data, so it can be
  trained by maximum likelihood and evaluated in nats. FVSBN, NADE and the PixelRNNs
  are products of ``Bernoulli`` / ``Categorical`` conditionals; a VAE has a
  ``Normal`` posterior q(z|x), a ``Normal`` prior p(z) and a ``Bernoulli`` decoder.
- **implicit**: the model is only a sampler x = G(z), z ~ p(z). Drawing x is cheap,
  but p(x) would need G's inverse and the Jacobian determinant, which a generator
  network does not offer. A GAN is trained from samples alone (a discriminator,
  or MMD). ``Implicit`` wraps such a sampler; its ``log_prob`` says so by raising.

Each distribution has a *batch shape* (independent distributions side by side,
one per pixel or latent unit) and an *event shape* (the shape of one draw: ()
for the scalar families, (d,) for a mixture in R^d). ``sample(shape)`` returns
``shape + batch_shape + event_shape``; ``log_prob(x)`` returns one number per
element of the batch (summing over independent pixels or latent units is left to
the model, which knows which axes those are).

The formulas, in the symbols of the code
----------------------------------------

Bernoulli, logits l, p = sigmoid(l), values x in {0, 1}:

    log_prob(x) = x l - softplus(l)          (= x log p + (1 - x) log(1 - p))
    entropy     = softplus(l) - p l
    KL(p || q)  = p (l_p - l_q) - softplus(l_p) + softplus(l_q)

  written in the logits, so it never takes log 0: softplus(l) = log(1 + e^l) is
  computed stably for any l. ``log_prob`` also accepts x in [0, 1] (a soft target,
  e.g. a grey pixel): then it is minus the binary cross-entropy.

Categorical over the last axis, logits l_k, normalised log-probs
lp = log_softmax(l), p = exp(lp):

    log_prob(k) = lp[k]
    entropy     = -sum_k p_k lp_k
    KL(p || q)  = sum_k p_k (lp_k - lq_k)

Normal, mean loc = mu, standard deviation scale = sigma (not the variance):

    log_prob(x) = -(x - mu)^2 / (2 sigma^2) - log sigma - log(2 pi) / 2
    entropy     = 1/2 + log(2 pi) / 2 + log sigma
    rsample     = mu + sigma * eps,  eps ~ N(0, 1)   (the reparameterisation trick)
    KL(p || q)  = log(sigma_q / sigma_p) + (sigma_p^2 + (mu_p - mu_q)^2) / (2 sigma_q^2) - 1/2

  With q = N(0, 1) the KL is the VAE's 1/2 (mu^2 + sigma^2 - 1 - log sigma^2). A
  common bug is to give exp(log_var) as the standard deviation while the KL reads
  log_var as a log-variance (then Var(z) / exp(log_var) is not 1);
  ``Normal.from_log_var(mu, log_var)`` takes sigma = exp(log_var / 2) for you.

NormalMixture, weights w_k = softmax(logits)_k, component k = N(mu_k, A_k A_k^T)
in R^d (A_k = diag(s_k) for diagonal scales s_k):

    log_prob(x) = logsumexp_k [ log w_k - |A_k^-1 (x - mu_k)|^2 / 2 - log|det A_k| - d log(2 pi) / 2 ]
    sample      = mu_k + A_k eps,   k ~ Categorical(w),  eps ~ N(0, I_d)

  ``NormalMixture.ring`` / ``.grid`` build the usual priors and toy targets: the
  8-Gaussian ring and 25-Gaussian grid of GAN papers, and the AAE's 10 elongated
  Gaussians on a circle (std 0.5 along the radius and 0.05 across it, centred at
  radius 1.4: ``NormalMixture.ring(10, 1.4, 0.5, tangential_std=0.05)``).

Gradients and randomness
------------------------
Everything above is written with Tensor ops, so log_prob, entropy, KL and rsample
are differentiable in the parameters (and log_prob in x). ``sample`` never is: it
runs under ``no_grad`` (for Bernoulli and Categorical there is no pathwise
gradient to give). All noise comes from ``tinygen.backend.generator(device)`` on
the parameters' device, so ``tinygen.manual_seed`` makes every draw repeatable.
"""
import math
import numbers

import numpy as np

from . import backend
from . import functional as F
from .autograd.grad_mode import no_grad
from .autograd.tensor import Tensor

__all__ = ["Distribution", "Bernoulli", "Categorical", "Normal", "NormalMixture", "Implicit",
           "kl_divergence", "register_kl"]

_LOG_2PI = math.log(2 * math.pi)


# --- argument helpers ----------------------------------------------------

def _sample_shape(shape, who):
    """``shape`` argument of sample(): an int n means (n,)."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (int(shape),)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{who}: shape must be an int or a tuple of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"{who}: shape {shape} has a negative size")
    return shape


def _as_params(who, **named):
    """Each named parameter as a Tensor. Tensors are kept as they are (their graph
    too); numbers and arrays become constants with the Tensors' dtype and device.
    With no Tensor among them: float32 on the CPU, except that a float64 NumPy array
    keeps float64 (as ``tinygen.tensor`` does)."""
    tensors = {k: v for k, v in named.items() if isinstance(v, Tensor)}
    for k, v in tensors.items():
        if v.dtype.kind != "f":
            raise TypeError(f"{who}: {k} must be a floating-point tensor, got {v.dtype}")
    if tensors:
        dtypes = {v.dtype for v in tensors.values()}
        devices = {v.device for v in tensors.values()}
        if len(dtypes) > 1 or len(devices) > 1:
            shown = ", ".join(f"{k} {v.dtype} on {v.device}" for k, v in tensors.items())
            raise ValueError(f"{who}: the parameters must share one dtype and device, got {shown}; "
                             f"convert with .float() / .double() and .to(device)")
        dtype, device = dtypes.pop(), devices.pop()
    else:
        arrays = [v for v in named.values() if hasattr(v, "dtype") and hasattr(v, "shape")]
        dtype = np.dtype(np.float64) if any(a.dtype == np.float64 for a in arrays) else np.dtype(np.float32)
        device = backend.device_of(arrays[0]) if arrays else "cpu"
    out = {}
    for k, v in named.items():
        if isinstance(v, Tensor):
            out[k] = v
            continue
        arr = backend.get_array_module(v).asarray(v)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{who}: {k} must be numbers, got {arr.dtype}")
        out[k] = Tensor(arr, dtype=dtype, device=device)
    return out


def _require(ok, values, who, what):
    """Raise ValueError when the boolean array ``ok`` is not all True, showing bad values."""
    if bool(ok.all()):
        return
    bad = backend.to_device(values[~ok], "cpu").ravel()
    shown = np.array2string(bad[:4], precision=4, separator=", ")
    raise ValueError(f"{who}: {what}, got {shown} ({bad.size} of the {values.size} values, "
                     f"shape {tuple(values.shape)})")


def _broadcast(who, *named_shapes):
    """The common shape of (name, shape) pairs, or a ValueError that names them."""
    try:
        return tuple(np.broadcast_shapes(*(s for _, s in named_shapes)))
    except ValueError:
        shown = ", ".join(f"{n} {tuple(s)}" for n, s in named_shapes)
        raise ValueError(f"{who}: shapes do not broadcast together: {shown}") from None


# --- the base class ------------------------------------------------------

class Distribution:
    """What every distribution offers: shapes, device, sampling, log_prob, entropy.

    Subclasses call ``super().__init__(batch_shape, event_shape, ...)`` and define
    what they support; the rest raises ``NotImplementedError`` with the reason.
    ``validate_args=False`` skips the value checks (each costs a pass over the data
    and, on a GPU, a synchronisation).
    """
    has_rsample = False

    def __init__(self, batch_shape=(), event_shape=(), validate_args=True, dtype=np.float32, device="cpu"):
        self._batch_shape = tuple(batch_shape)
        self._event_shape = None if event_shape is None else tuple(event_shape)
        self.validate_args = bool(validate_args)
        self.dtype = np.dtype(dtype)
        self.device = device

    @property
    def batch_shape(self):
        """Shape of the batch of independent distributions held."""
        return self._batch_shape

    @property
    def event_shape(self):
        """Shape of one draw from one of them."""
        return self._event_shape

    def _extended_shape(self, shape, who):
        return _sample_shape(shape, who) + self._batch_shape + (self._event_shape or ())

    # --- noise from the device's generator (tinygen.manual_seed) ---------
    def _uniform(self, shape):
        """U[0, 1) draws, float64, on self.device."""
        u = backend.generator(self.device).random(size=shape)
        return backend.get_array_module(u).asarray(u)

    def _standard_normal(self, shape):
        """N(0, 1) draws in self.dtype on self.device; drawn in float64 so a seed gives the
        same numbers whatever the dtype (float64 gradient checks see float32 runs' noise)."""
        e = backend.generator(self.device).standard_normal(size=shape)
        return backend.get_array_module(e).asarray(e).astype(self.dtype)

    # --- the interface ---------------------------------------------------
    def sample(self, shape=()):
        """Draws of shape ``shape + batch_shape + event_shape``, with no gradient."""
        if self.has_rsample:
            with no_grad():
                return self.rsample(shape)
        raise NotImplementedError(f"{type(self).__name__} does not implement sample")

    def rsample(self, shape=()):
        raise NotImplementedError(
            f"{type(self).__name__}.rsample: its samples are not a differentiable function of its "
            f"parameters (discrete values have no pathwise gradient); use sample() for values, and "
            f"a score-function (REINFORCE) or relaxed (Gumbel-softmax) estimator for gradients")

    def log_prob(self, value):
        raise NotImplementedError(f"{type(self).__name__} does not implement log_prob")

    def entropy(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement entropy")

    def _value(self, value, who):
        """A value to score as a Tensor on our device; constants take our float dtype."""
        if isinstance(value, Tensor):
            if value.device != self.device:
                raise ValueError(f"{who}: value is on {value.device} but the distribution is on "
                                 f"{self.device}; move it with .to({self.device!r})")
            if value.dtype.kind != "f":  # integer data (0/1 pixels): a constant float copy
                return Tensor._make(value.data.astype(self.dtype))
            return value
        arr = backend.get_array_module(value).asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{who}: value must be numbers, got {arr.dtype}")
        return Tensor(arr, dtype=self.dtype, device=self.device)

    def __repr__(self):
        return (f"{type(self).__name__}(batch_shape={self.batch_shape}, event_shape={self.event_shape}, "
                f"dtype={self.dtype}, device={self.device!r})")


# --- Bernoulli -----------------------------------------------------------

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


# --- Normal --------------------------------------------------------------

class Normal(Distribution):
    """N(loc, scale^2) elementwise; ``scale`` is the standard deviation (must be > 0).

    ``loc`` and ``scale`` are Tensors, numbers or arrays of shapes that broadcast;
    the batch shape is their broadcast shape.
    """
    has_rsample = True

    def __init__(self, loc, scale, validate_args=True):
        p = _as_params("Normal", loc=loc, scale=scale)
        self._loc, self._scale = p["loc"], p["scale"]
        shape = _broadcast("Normal", ("loc", self._loc.shape), ("scale", self._scale.shape))
        super().__init__(shape, (), validate_args, self._loc.dtype, self._loc.device)
        if validate_args:
            xp = backend.get_array_module(self._loc.data)
            _require(xp.isfinite(self._loc.data), self._loc.data, "Normal", "loc must be finite")
            s = self._scale.data
            _require((s > 0) & (s < np.inf), s, "Normal",
                     "scale (a standard deviation) must be positive and finite")

    @classmethod
    def from_log_var(cls, loc, log_var, validate_args=True):
        """N(loc, exp(log_var)): scale = exp(log_var / 2), the VAE encoder's usual output."""
        if not isinstance(log_var, Tensor):
            log_var = _as_params("Normal.from_log_var", loc=loc, log_var=log_var)["log_var"]
        return cls(loc, F.exp(0.5 * log_var), validate_args)

    @property
    def loc(self):
        return F.expand(self._loc, self.batch_shape)

    @property
    def scale(self):
        return F.expand(self._scale, self.batch_shape)

    @property
    def mean(self):
        return self.loc

    @property
    def stddev(self):
        return self.scale

    @property
    def variance(self):
        return self.scale ** 2

    def rsample(self, shape=()):
        """loc + scale * eps with eps ~ N(0, 1): differentiable in loc and scale."""
        shape = self._extended_shape(shape, "Normal.rsample")
        eps = Tensor._make(self._standard_normal(shape))
        return self._loc + self._scale * eps

    def log_prob(self, value):
        """-z^2 / 2 - log scale - log(2 pi) / 2 with z = (x - loc) / scale."""
        x = self._value(value, "Normal.log_prob")
        _broadcast("Normal.log_prob", ("value", x.shape), ("batch", self.batch_shape))
        z = (x - self._loc) / self._scale
        return -0.5 * z * z - F.log(self._scale) - 0.5 * _LOG_2PI

    def entropy(self):
        """1/2 + log(2 pi) / 2 + log scale, batch-shaped."""
        return F.expand(F.log(self._scale) + 0.5 * (1 + _LOG_2PI), self.batch_shape)


# --- mixtures of Normals -------------------------------------------------

class NormalMixture(Distribution):
    """p(x) = sum_k w_k N(x; mu_k, A_k A_k^T) in R^d: a prior to sample from and to score with.

    locs     (K, d) component means mu_k
    scales   broadcastable to (K, d): diagonal standard deviations, A_k = diag(s_k);
             or (K, d, d): matrices A_k (e.g. rotated elongated components). Matrix
             scales are constants: log_prob needs A_k^-1, and tinygen.functional has no
             differentiable matrix inverse, so pass diagonal scales to learn them.
    weights  (K,) non-negative, divided by their sum; or ``logits`` (K,); neither
             means equal weights.

    log_prob is differentiable in x, locs, diagonal scales and weights/logits.
    """

    def __init__(self, locs, scales, weights=None, logits=None, validate_args=True):
        who = "NormalMixture"
        if weights is not None and logits is not None:
            raise ValueError(f"{who}: give weights= or logits= (or neither, for equal weights), not both")
        p = _as_params(who, locs=locs, scales=scales)
        self._locs, self._scales = p["locs"], p["scales"]
        if self._locs.ndim != 2 or 0 in self._locs.shape:
            raise ValueError(f"{who}: locs must have shape (K, d) with K, d >= 1, got "
                             f"{tuple(self._locs.shape)}")
        K, d = self._locs.shape
        self._full = self._scales.ndim == 3
        if self._full:
            if self._scales.shape != (K, d, d):
                raise ValueError(f"{who}: matrix scales must have shape (K, d, d) = {(K, d, d)} for locs "
                                 f"{(K, d)}, got {tuple(self._scales.shape)}")
            if self._scales.requires_grad:
                raise ValueError(f"{who}: matrix scales cannot be learned (no differentiable matrix "
                                 f"inverse); pass diagonal scales of shape (K, d), or .detach() them")
        else:
            try:
                ok = self._scales.ndim <= 2 and np.broadcast_shapes(self._scales.shape, (K, d)) == (K, d)
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"{who}: scales of shape {tuple(self._scales.shape)} do not broadcast to "
                                 f"(K, d) = {(K, d)} (diagonal) and are not (K, d, d) matrices")
        # The component choice is a Categorical: it samples k and gives log w_k.
        if weights is None and logits is None:
            logits = np.zeros(K)
        name, given = ("logits", logits) if logits is not None else ("weights", weights)
        given = _as_params(who, locs=self._locs, **{name: given})[name]
        if given.shape != (K,):
            raise ValueError(f"{who}: {name} must have shape (K,) = ({K},) for locs {(K, d)}, got "
                             f"{tuple(given.shape)}")
        self._mixture = Categorical(**{"logits" if name == "logits" else "probs": given},
                                    validate_args=validate_args)
        super().__init__((), (d,), validate_args, self._locs.dtype, self._locs.device)
        s = self._scales.data
        xp = backend.get_array_module(s)
        if validate_args:
            _require(xp.isfinite(self._locs.data), self._locs.data, who, "locs must be finite")
            if not self._full:
                _require((s > 0) & (s < np.inf), s, who, "diagonal scales must be positive and finite")
        if self._full:
            sign, logdet = xp.linalg.slogdet(s.astype(np.float64))
            _require(sign != 0, sign, who, "every scale matrix A_k must be invertible")
            self._inv = Tensor._make(xp.linalg.inv(s.astype(np.float64)).astype(self.dtype))
            self._log_det = Tensor._make(logdet.astype(self.dtype))

    # --- ready-made priors -----------------------------------------------
    @classmethod
    def ring(cls, n_components=8, radius=2.0, std=0.02, tangential_std=None, dim=2,
             dtype=np.float32, device="cpu"):
        """``n_components`` Gaussians centred on a circle in the first two axes, component k
        at angle 2 pi k / n_components.

        ``std`` is the standard deviation along the radius, and also across it unless
        ``tangential_std`` is given (then each component is elongated: A_k = R_k diag(std,
        tangential_std), R_k the rotation by component k's angle). With dim > 2 the
        other axes are centred at 0 with standard deviation ``std``.
        Defaults: the 8-Gaussian ring of the GAN papers (as ``tinygen.data.toy.ring``).
        """
        n = _positive_int(n_components, "NormalMixture.ring: n_components")
        if int(dim) < 2:
            raise ValueError(f"NormalMixture.ring: dim must be >= 2 (the ring lies in the first two "
                             f"axes), got {dim}")
        dim = int(dim)
        angle = 2 * np.pi * np.arange(n) / n
        cos, sin = np.cos(angle), np.sin(angle)
        locs = np.zeros((n, dim))
        locs[:, 0], locs[:, 1] = radius * cos, radius * sin
        if tangential_std is None:
            scales = np.full((n, dim), float(std))
        else:
            scales = np.zeros((n, dim, dim))
            scales[:, 0, 0], scales[:, 0, 1] = std * cos, -tangential_std * sin  # columns: radial, tangential
            scales[:, 1, 0], scales[:, 1, 1] = std * sin, tangential_std * cos
            for i in range(2, dim):
                scales[:, i, i] = std
        as_t = lambda a: Tensor(a, dtype=dtype, device=device)  # noqa: E731
        return cls(as_t(locs), as_t(scales))

    @classmethod
    def grid(cls, size=5, spacing=2.0, std=0.05, dim=2, dtype=np.float32, device="cpu"):
        """``size ** dim`` Gaussians of standard deviation ``std`` on a lattice centred on the origin,
        ``spacing`` apart (defaults: the 25-Gaussian grid, centres every pair of {-4, -2, 0, 2, 4}).
        Centres are in row-major order, as in ``tinygen.data.toy.grid_centers``."""
        size = _positive_int(size, "NormalMixture.grid: size")
        dim = _positive_int(dim, "NormalMixture.grid: dim")
        if size ** dim > 100_000:
            raise ValueError(f"NormalMixture.grid: size ** dim = {size ** dim} components is too many")
        axis = spacing * (np.arange(size) - (size - 1) / 2.0)
        locs = np.stack([g.ravel() for g in np.meshgrid(*([axis] * dim), indexing="ij")], axis=1)
        return cls(Tensor(locs, dtype=dtype, device=device),
                   Tensor(np.full(locs.shape, float(std)), dtype=dtype, device=device))

    # --- parameters ------------------------------------------------------
    @property
    def num_components(self):
        return self._locs.shape[0]

    @property
    def locs(self):
        return self._locs

    @property
    def scales(self):
        """(K, d) diagonal standard deviations, or the (K, d, d) matrices A_k."""
        return self._scales if self._full else F.expand(self._scales, self._locs.shape)

    @property
    def weights(self):
        return self._mixture.probs

    @property
    def logits(self):
        """log w_k (normalised)."""
        return self._mixture.logits

    @property
    def mean(self):
        """sum_k w_k mu_k, shape (d,)."""
        return F.sum(F.unsqueeze(self.weights, -1) * self._locs, axis=0)

    # --- scoring and sampling ---------------------------------------------
    def component_log_prob(self, value):
        """log w_k + log N(x; mu_k, A_k A_k^T) for every k: x (..., d) -> (..., K).

        Its softmax over k is the posterior P(k | x) (which component made x)."""
        x = self._value(value, "NormalMixture.log_prob")
        K, d = self._locs.shape
        if x.ndim == 0 or x.shape[-1] != d:
            raise ValueError(f"NormalMixture.log_prob: x must have shape (..., {d}) for a mixture in "
                             f"R^{d}, got {tuple(x.shape)}")
        diff = F.unsqueeze(x, -2) - self._locs                      # (..., K, d)
        if self._full:
            z = F.squeeze(F.matmul(self._inv, F.unsqueeze(diff, -1)), -1)   # A_k^-1 (x - mu_k)
            log_det = self._log_det
        else:
            z = diff / self._scales
            log_det = F.sum(F.log(F.expand(self._scales, (K, d))), axis=-1)
        log_normal = -0.5 * F.sum(z * z, axis=-1) - log_det - 0.5 * d * _LOG_2PI
        return log_normal + self.logits

    def log_prob(self, value):
        """log p(x) = logsumexp_k [log w_k + log N(x; mu_k, A_k A_k^T)]: x (..., d) -> (...)."""
        return F.logsumexp(self.component_log_prob(value), axis=-1)

    def sample(self, shape=(), return_components=False):
        """Draws of shape ``shape + (d,)`` (no gradient); with ``return_components`` also the
        int64 index k of the component each draw came from."""
        shape = _sample_shape(shape, "NormalMixture.sample")
        with no_grad():
            k = self._mixture.sample(shape).data
            eps = self._standard_normal(shape + self.event_shape)
            mu = self._locs.data[k]
            if self._full:
                x = mu + (self._scales.data[k] @ eps[..., None])[..., 0]
            else:
                x = mu + self.scales.data[k] * eps
            x = Tensor._make(x.astype(self.dtype))
        return (x, Tensor._make(k)) if return_components else x

    def entropy(self):
        raise NotImplementedError("NormalMixture.entropy: a mixture's entropy has no closed form; "
                                  "estimate it as -log_prob(sample(n)).mean()")


def _positive_int(v, who):
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{who} must be an int >= 1, got {v!r}")
    return int(v)


# --- implicit models -----------------------------------------------------

class Implicit(Distribution):
    """A model known only through a sampler: ``sampler(n)`` returns n draws, shape (n, ...).

    A GAN generator (``lambda n: G(tinygen.randn(n, 100))``), a data set, or the
    AAE's swiss-roll prior. ``event_shape`` is checked when given, else taken from
    the first draw. ``rsample`` returns the sampler's output as it is (with
    its graph, so a generator's loss can flow back through it); ``sample`` runs it
    under ``no_grad``. ``log_prob`` raises: there is no density to evaluate.
    """
    has_rsample = True

    def __init__(self, sampler, event_shape=None, name="Implicit"):
        if not callable(sampler):
            raise TypeError(f"Implicit: sampler must be callable as sampler(n), got {type(sampler).__name__}")
        self.sampler = sampler
        self.name = name
        super().__init__((), event_shape, validate_args=False)

    def rsample(self, shape=()):
        shape = _sample_shape(shape, f"{self.name}.sample")
        n = int(np.prod(shape, dtype=np.int64))
        x = self.sampler(n)
        if not isinstance(x, Tensor):
            x = Tensor(x)
        if x.ndim == 0 or x.shape[0] != n:
            raise ValueError(f"{self.name}: sampler({n}) must return {n} draws along axis 0, got shape "
                             f"{tuple(x.shape)}")
        if self._event_shape is None:
            self._event_shape = tuple(x.shape[1:])
        elif tuple(x.shape[1:]) != self._event_shape:
            raise ValueError(f"{self.name}: sampler({n}) returned draws of shape {tuple(x.shape[1:])}, "
                             f"expected event shape {self._event_shape}")
        self.dtype, self.device = x.dtype, x.device
        return F.reshape(x, shape + self._event_shape)

    def sample(self, shape=()):
        with no_grad():
            return self.rsample(shape)

    def log_prob(self, value):
        raise NotImplementedError(
            f"{self.name}.log_prob: an implicit model has no density to evaluate. It defines p(x) only "
            f"through its sampler x = G(z); log p(x) would need G's inverse and the log-determinant of "
            f"its Jacobian, which a generator network does not provide. Compare it with data through "
            f"samples instead (a discriminator, MMD, a Frechet distance)")

    def entropy(self):
        raise NotImplementedError(f"{self.name}.entropy: an implicit model has no density, so no "
                                  f"closed-form entropy; estimate what you need from samples")


# --- KL divergence -------------------------------------------------------

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
