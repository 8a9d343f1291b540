"""Implicit: a model known only through its sampler x = G(z), with no density to score.

A GAN is of this kind: drawing x is cheap, but p(x) would need G's inverse and the
log-determinant of its Jacobian. ``rsample`` keeps the sampler's graph, so a generator's
loss flows back through the draws; ``log_prob`` and ``entropy`` raise and say why.
"""
import numpy as np

from .. import functional as F
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from .base import Distribution, _sample_shape


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
