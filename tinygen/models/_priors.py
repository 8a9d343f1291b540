"""Latent priors p(z) for the adversarial and Wasserstein autoencoders (section 5 of the notes).

A VAE needs log p(z) in closed form (its KL term); the AAE and the WAE only ever
*sample* the prior, so any distribution one can draw from will do. A prior here is
anything with ``sample(n) -> (n, d)``. The three built in:

    "gaussian"     z ~ N(0, I_d)
    "mixture"      the AAE paper's 10 Gaussians in the plane: component k has its mean
                   at radius 1.4 and angle 2 pi k / 10, standard deviation 0.5 along
                   the radius and 0.05 across it, A_k = R_k diag(0.5, 0.05):
                       z = mu_k + A_k eps,   mu_k = 1.4 (cos t_k, sin t_k),   t_k = 2 pi k / 10
    "swiss_roll"   a spiral cut into 10 segments; segment k draws u ~ U[k/10, (k+1)/10) and
                       r = 3 sqrt(u),   theta = 4 pi sqrt(u),   z = r (cos theta, sin theta)
                   (u uniform on [0, 1) for the whole roll)

The supervised AAE ("labels") needs priors made of components, one per class:
``sample_components(k)`` draws z_n from component k_n, and ``component_of(z)`` says
which component a point belongs to (the mixture: argmax_k of the posterior
log w_k + log N(z; mu_k, A_k A_k^T); the swiss roll: the segment nearest to z).
A ``tinygen.distributions.NormalMixture`` passed as the prior gets both.

A user's own sampler object may return a NumPy array or a Tensor; ``SamplerPrior``
checks the shape of every draw, so a wrong width is one clear error, not a shape
mismatch deep inside the discriminator.
"""
import numpy as np

from .. import backend
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..distributions import NormalMixture

PRIORS = ("gaussian", "mixture", "swiss_roll")
TWO_D_PRIORS = ("mixture", "swiss_roll")
NUM_COMPONENTS = 10


def _standard_normal(shape, device, dtype=np.float32):
    e = backend.generator(device).standard_normal(size=shape)
    return backend.get_array_module(e).asarray(e).astype(dtype)


class GaussianPrior:
    """p(z) = N(0, I_d)."""

    def __init__(self, dim, device="cpu"):
        self.dim, self.device = int(dim), device

    def sample(self, n):
        return Tensor._make(_standard_normal((int(n), self.dim), self.device))

    def to(self, device):
        return GaussianPrior(self.dim, device)

    def __repr__(self):
        return f"GaussianPrior(dim={self.dim})"


class MixturePrior:
    """A ``NormalMixture`` as a prior with components: the paper's ring of 10 by ``paper()``."""

    def __init__(self, mixture):
        self.mixture = mixture
        self.dim = mixture.event_shape[0]
        self.num_components = mixture.num_components

    @classmethod
    def paper(cls, device="cpu"):
        return cls(NormalMixture.ring(NUM_COMPONENTS, radius=1.4, std=0.5, tangential_std=0.05, device=device))

    @property
    def device(self):
        return self.mixture.device

    def sample(self, n):
        return self.mixture.sample(int(n))

    def sample_components(self, k):
        """z_n ~ N(mu_{k_n}, A_{k_n} A_{k_n}^T) for the int array ``k``."""
        with no_grad():
            locs, scales = self.mixture.locs.data, self.mixture.scales.data
            eps = _standard_normal((len(k), self.dim), self.device, locs.dtype)
            if scales.ndim == 3:                               # matrices A_k
                z = locs[k] + (scales[k] @ eps[..., None])[..., 0]
            else:
                z = locs[k] + scales[k] * eps
        return Tensor._make(z)

    def component_of(self, z):
        """argmax_k P(k | z): the component most likely to have drawn each row of ``z``."""
        z = z.data if isinstance(z, Tensor) else z
        with no_grad():    # in the mixture's own dtype: a float64 model's codes are classified alike
            z = Tensor._make(backend.get_array_module(z).asarray(z).astype(self.mixture.dtype))
            return self.mixture.component_log_prob(z).data.argmax(axis=-1)

    def to(self, device):
        m = self.mixture
        moved = NormalMixture(m.locs.to(device), m.scales.to(device), logits=m.logits.to(device))
        return MixturePrior(moved)

    def __repr__(self):
        return f"MixturePrior({self.num_components} components in R^{self.dim})"


class SwissRollPrior:
    """The swiss roll of 10 segments: u in [k/K, (k+1)/K), r = 3 sqrt(u), theta = 4 pi sqrt(u)."""
    dim = 2
    num_components = NUM_COMPONENTS
    _POINTS_PER_SEGMENT = 64      # the polyline component_of measures distances to

    def __init__(self, device="cpu"):
        self.device = device

    def _roll(self, u):
        xp = backend.get_array_module(u)
        r = 3.0 * xp.sqrt(u)
        theta = 4.0 * np.pi * xp.sqrt(u)
        return xp.stack([r * xp.cos(theta), r * xp.sin(theta)], axis=1).astype(np.float32)

    def sample(self, n):
        u = backend.generator(self.device).random(size=(int(n),))
        return Tensor._make(self._roll(u))

    def sample_components(self, k):
        u = (k + backend.generator(self.device).random(size=(len(k),))) / self.num_components
        return Tensor._make(self._roll(u))

    def component_of(self, z):
        """The segment whose points lie nearest to each row of ``z``."""
        z = z.data if isinstance(z, Tensor) else z
        xp = backend.get_array_module(z)
        m = self._POINTS_PER_SEGMENT
        u = (xp.arange(self.num_components * m) + 0.5) / (self.num_components * m)
        curve = self._roll(u)                                              # (K*m, 2), segment-major
        d2 = ((z[:, None, :] - curve[None, :, :]) ** 2).sum(axis=-1)       # (N, K*m)
        return d2.argmin(axis=1) // m

    def to(self, device):
        return SwissRollPrior(device)

    def __repr__(self):
        return "SwissRollPrior(10 segments)"


class SamplerPrior:
    """A user's object with ``sample(n)``: its draws checked to be (n, dim) and put on our device.

    ``sample_components`` and ``component_of`` are passed through when the object has them."""

    def __init__(self, sampler, dim, who, device="cpu"):
        self.sampler, self.dim, self.who, self.device = sampler, dim, who, device

    def sample(self, n):
        z = self.sampler.sample(int(n))
        return self._checked(z, n, f"prior.sample({n})")

    def sample_components(self, k):
        if not callable(getattr(self.sampler, "sample_components", None)):
            raise ValueError(f"{self.who}: labels=True draws each prior sample from its label's component, "
                             f"but the prior {type(self.sampler).__name__} has no sample_components(k); "
                             f"use prior='mixture', 'swiss_roll' or a NormalMixture")
        return self._checked(self.sampler.sample_components(k), len(k), "prior.sample_components(k)")

    def component_of(self, z):
        return self.sampler.component_of(z)

    @property
    def num_components(self):
        return getattr(self.sampler, "num_components", None)

    def _checked(self, z, n, call):
        if not isinstance(z, Tensor):
            z = Tensor(np.asarray(backend.to_device(z, "cpu") if hasattr(z, "shape") else z, dtype=np.float32))
        if tuple(z.shape) != (n, self.dim):
            raise ValueError(f"{self.who}: {call} returned shape {tuple(z.shape)}, expected ({n}, {self.dim}): "
                             f"{n} draws of latent_dim = {self.dim}")
        if z.dtype != np.float32:
            z = Tensor._make(z.data.astype(np.float32))
        return z.detach().to(self.device)

    def to(self, device):
        return SamplerPrior(self.sampler, self.dim, self.who, device)

    def __repr__(self):
        return f"SamplerPrior({type(self.sampler).__name__}, dim={self.dim})"


def make_prior(prior, latent_dim, who):
    """The prior ``prior`` (a name or an object with ``sample(n)``) for a latent of ``latent_dim``.

    Returns (prior, latent_dim): ``latent_dim`` None means 2 for the built-in priors and
    the width of the sampler's draws for a user's own. Every draw's shape is checked."""
    if latent_dim is not None and (isinstance(latent_dim, bool) or not isinstance(latent_dim, (int, np.integer))
                                   or latent_dim < 1):
        raise ValueError(f"{who}: latent_dim must be a positive integer, got {latent_dim!r}")
    if isinstance(prior, str):
        if prior not in PRIORS:
            raise ValueError(f"{who}: unknown prior {prior!r}; known priors: {', '.join(PRIORS)}, "
                             f"or any object with sample(n) returning (n, latent_dim) draws")
        dim = 2 if latent_dim is None else int(latent_dim)
        if prior in TWO_D_PRIORS and dim != 2:
            raise ValueError(f"{who}: the {prior} prior lives in the plane, so latent_dim must be 2, got {dim}")
        built = {"gaussian": lambda: GaussianPrior(dim), "mixture": MixturePrior.paper,
                 "swiss_roll": SwissRollPrior}[prior]()
        return built, dim
    if isinstance(prior, NormalMixture):
        prior = MixturePrior(prior)
    if not callable(getattr(prior, "sample", None)):
        raise TypeError(f"{who}: prior must be one of {', '.join(PRIORS)} or an object with a sample(n) "
                        f"method returning (n, latent_dim) draws; got {type(prior).__name__}, which has no "
                        f"sample method")
    if isinstance(prior, (GaussianPrior, MixturePrior, SwissRollPrior)):
        dim = prior.dim
        if latent_dim is not None and int(latent_dim) != dim:
            raise ValueError(f"{who}: the prior draws {dim}-dimensional z but latent_dim is {latent_dim}")
        return prior, dim
    probe = prior.sample(2)
    shape = tuple(np.shape(probe.data if isinstance(probe, Tensor) else probe))
    if len(shape) != 2 or shape[0] != 2:
        raise ValueError(f"{who}: prior.sample(n) must return (n, latent_dim) draws; sample(2) returned "
                         f"shape {shape}")
    dim = shape[1] if latent_dim is None else int(latent_dim)
    if shape[1] != dim:
        raise ValueError(f"{who}: prior.sample(2) returned shape {shape}, expected (2, {dim}): "
                         f"draws of latent_dim = {dim}")
    return SamplerPrior(prior, dim, who), dim
