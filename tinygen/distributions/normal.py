"""Normal and mixtures of Normals: the VAE's posterior and prior, the AAE's priors.

Normal, mean loc = mu, standard deviation scale = sigma (not the variance):

    log_prob(x) = -(x - mu)^2 / (2 sigma^2) - log sigma - log(2 pi) / 2
    entropy     = 1/2 + log(2 pi) / 2 + log sigma
    rsample     = mu + sigma * eps,  eps ~ N(0, 1)   (the reparameterisation trick)

  A common bug is to give exp(log_var) as the standard deviation while the KL reads
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

The KL divergence of two Normals is in ``kl.py``.
"""
import math
import numbers

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from .base import Distribution, _as_params, _broadcast, _require, _sample_shape
from .discrete import Categorical

_LOG_2PI = math.log(2 * math.pi)


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
