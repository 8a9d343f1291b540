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

Where each family is, with its formulas in the symbols of its code:

    base.py       Distribution: the shapes, the noise, the interface; the argument checks
    discrete.py   Bernoulli (in its logits) and Categorical (over the last axis)
    normal.py     Normal (loc, scale), and NormalMixture in R^d with its ring and grid priors
    implicit.py   Implicit: a model known only through its sampler
    kl.py         kl_divergence in closed form, and register_kl for more pairs

Gradients and randomness
------------------------
Everything is written with Tensor ops, so log_prob, entropy, KL and rsample
are differentiable in the parameters (and log_prob in x). ``sample`` never is: it
runs under ``no_grad`` (for Bernoulli and Categorical there is no pathwise
gradient to give). All noise comes from ``tinygen.backend.generator(device)`` on
the parameters' device, so ``tinygen.manual_seed`` makes every draw repeatable.
"""
from .base import Distribution
from .discrete import Bernoulli, Categorical
from .implicit import Implicit
from .kl import kl_divergence, register_kl
from .normal import Normal, NormalMixture

__all__ = ["Distribution", "Bernoulli", "Categorical", "Normal", "NormalMixture", "Implicit",
           "kl_divergence", "register_kl"]
