"""Independent Bernoulli pixels: the baseline every other explicit model must beat.

Section 1 of the notes: assume every pixel independent of every other,

    p(x) = prod_i p(x_i),     p(x_i = 1) = sigmoid(l_i),

so  log p(x) = sum_i [ x_i l_i - softplus(l_i) ]   with D = C*H*W parameters l.

The maximum-likelihood solution is sigmoid(l_i) = mean of pixel i over the data:
the model knows how often each pixel is on and nothing about how pixels co-occur,
so its samples are speckled averages. The full joint table would need 2^D - 1
parameters; the chain rule with logistic conditionals (FVSBN) needs D(D+1)/2.
"""
import numpy as np

from .. import backend
from .. import functional as F
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..nn import Parameter
from ..optim import Adam
from . import register
from .base import GenerativeModel, bernoulli_log_prob


@register("bernoulli", kind="explicit", section="1. conditional independence",
          summary="independent Bernoulli pixels (D parameters): the baseline",
          tested="the probabilities of all images sum to one; training reaches the pixel means; sample "
                 "frequencies match the density")
class BernoulliPixels(GenerativeModel):
    binary = True   # pixels are 0 or 1: the command line binarizes the data first

    def __init__(self, image_shape=(1, 8, 8), lr=0.05):
        super().__init__(image_shape)
        self.logits = Parameter(np.zeros(self.image_shape, dtype=np.float32))   # l_i
        self.optimizers["main"] = Adam(self.parameters(), lr=lr)

    def log_prob(self, x):
        x = self.check_images(x, binary=True)
        return bernoulli_log_prob(x, self.logits)               # sum_i x_i l_i - softplus(l_i)

    def sample(self, n):
        with no_grad():
            p = F.sigmoid(self.logits).data
            u = backend.generator(self.logits.device).random((n,) + self.image_shape)
            return Tensor._make((u < p).astype(np.float32))
