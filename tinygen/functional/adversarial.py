"""The adversarial losses and the WGAN-GP gradient penalty, on the discriminator's logits.

Write a for the discriminator's logit, D(x) = sigmoid(a). Then

    log D = -softplus(-a)        log(1 - D) = -softplus(a)

so every loss below is a softplus of a logit: finite for |a| = 100 and beyond, where
log(sigmoid(a)) computed as written would be log(0). With a_r = D's logits on real
data and a_f on fakes, each averaged over its batch:

    kind             discriminator loss L_D                    generator loss L_G
    "minimax"        softplus(-a_r) + softplus(a_f)            -softplus(a_f)      = E log(1 - D(G(z)))
    "nonsaturating"  softplus(-a_r) + softplus(a_f)            softplus(-a_f)      = -E log D(G(z))
    "lsgan"          1/2 (a_r - 1)^2 + 1/2 a_f^2               1/2 (a_f - 1)^2     (a read as D's output)
    "wgan"           a_f - a_r                                 -a_f                (a is the critic f(x))

L_D = -V(D, G) for the two log-losses: D minimizing it maximizes the GAN value V. The
minimax generator descends V itself, and its gradient dL_G/da_f = -sigmoid(a_f) vanishes
when D rejects the fakes confidently (-3.4e-4 at a_f = -8); the non-saturating one has
dL_G/da_f = -(1 - sigmoid(a_f)), about -1 there, which is why it is every GAN's default.

WGAN-GP (Gulrajani et al., 2017) keeps the critic f near 1-Lipschitz with

    GP = weight * mean_n (||grad_x f(x_hat_n)|| - target)^2,
    x_hat_n = alpha_n x_n + (1 - alpha_n) x_fake_n,      alpha_n ~ U(0, 1), one per sample

where the norm of sample n's gradient runs over all of its own axes (C, H, W), never
across the batch. The penalty is itself differentiated with respect to the critic's
weights, so grad_x f is taken with create_graph: the critic's ops are differentiated twice.
"""
from .. import backend
from ..autograd.engine import grad
from ..autograd.tensor import Tensor
from .activation import softplus
from .elementwise import sqrt, where
from .reduction import mean, sum as _sum
from .shape import reshape

KINDS = ("minimax", "nonsaturating", "lsgan", "wgan")


def _check_kind(kind, op):
    if kind not in KINDS:
        raise ValueError(f"{op}: unknown loss kind {kind!r}; the kinds are {', '.join(map(repr, KINDS))}")


def _check_logits(logits, what, op):
    if not isinstance(logits, Tensor):
        raise TypeError(f"{op}: {what} must be a Tensor of the discriminator's logits, got "
                        f"{type(logits).__name__}")
    if logits.ndim == 0 or logits.size == 0 or logits.dtype.kind != "f":
        raise ValueError(f"{op}: {what} must be a non-empty float Tensor with one logit per sample, "
                         f"got shape {tuple(logits.shape)} and dtype {logits.dtype}")


def discriminator_loss(real_logits, fake_logits, kind="nonsaturating"):
    """L_D of the table above: D's logits on a real batch and on a fake batch (any shapes)."""
    op = "discriminator_loss"
    _check_kind(kind, op)
    _check_logits(real_logits, "real_logits", op)
    _check_logits(fake_logits, "fake_logits", op)
    a_r, a_f = real_logits, fake_logits
    if kind == "lsgan":
        return 0.5 * mean((a_r - 1) * (a_r - 1)) + 0.5 * mean(a_f * a_f)
    if kind == "wgan":
        return mean(a_f) - mean(a_r)
    return mean(softplus(-a_r)) + mean(softplus(a_f))      # minimax and non-saturating alike


def generator_loss(fake_logits, kind="nonsaturating"):
    """L_G of the table above: D's logits on the generator's fakes."""
    op = "generator_loss"
    _check_kind(kind, op)
    _check_logits(fake_logits, "fake_logits", op)
    a_f = fake_logits
    if kind == "minimax":
        return -mean(softplus(a_f))
    if kind == "nonsaturating":
        return mean(softplus(-a_f))
    if kind == "lsgan":
        return 0.5 * mean((a_f - 1) * (a_f - 1))
    return -mean(a_f)


# --- the gradient penalty ----------------------------------------------------------

def _interpolation_weights(alpha, real, op):
    """alpha as an (N, 1, ..., 1) array: one weight per sample, drawn when None."""
    n, ndim = real.shape[0], real.ndim
    xp = backend.get_array_module(real.data)
    if alpha is None:
        return backend.generator(real.device).random((n,) + (1,) * (ndim - 1)).astype(real.dtype)
    a = xp.asarray(alpha.data if isinstance(alpha, Tensor) else alpha, dtype=real.dtype)
    if a.size != n or (a.ndim > 1 and a.shape != (n,) + (1,) * (a.ndim - 1)):
        raise ValueError(f"{op}: alpha must hold one weight per sample, shape ({n},) or ({n}, 1, ...), "
                         f"got shape {tuple(a.shape)} for samples of shape {tuple(real.shape)}")
    if not ((a >= 0) & (a <= 1)).all():
        raise ValueError(f"{op}: alpha must lie in [0, 1], got values from {float(a.min())} to {float(a.max())}")
    return a.reshape((n,) + (1,) * (ndim - 1))


def _safe_norm(squares):
    """sqrt(s), with gradient 0 instead of inf * 0 = nan where s = 0 (a flat critic)."""
    zero = squares.data == 0
    return where(zero, 0.0, sqrt(where(zero, 1.0, squares)))


def _critic_gradient(critic, x_hat, op):
    scores = critic(x_hat)
    n = x_hat.shape[0]
    if not isinstance(scores, Tensor) or tuple(scores.shape) not in ((n,), (n, 1)):
        shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"{op}: the critic must give one score per sample, shape ({n},) or ({n}, 1), "
                         f"got {shape} for input {tuple(x_hat.shape)}")
    if not scores.requires_grad:
        raise ValueError(f"{op}: the critic's scores do not depend on its input (no graph from "
                         f"x_hat {tuple(x_hat.shape)} to them), so there is no gradient to penalize")
    try:
        g, = grad(_sum(scores), x_hat, create_graph=True)
    except RuntimeError:
        raise ValueError(f"{op}: the critic's scores do not depend on its input x_hat "
                         f"{tuple(x_hat.shape)}, so there is no gradient to penalize") from None
    return g


def gradient_penalty(critic, real, fake, alpha=None, weight=10.0, target=1.0):
    """WGAN-GP: weight * mean_n (||grad f(x_hat_n)|| - target)^2, differentiable in the critic.

    ``critic`` maps (N, ...) to one score per sample; ``real`` and ``fake`` are batches of
    one shape. x_hat is a new leaf (its values only: the penalty trains the critic, not
    the generator). ``alpha`` (N,) fixes the interpolation weights; None draws them from
    tinygen's generator.
    """
    op = "gradient_penalty"
    for what, t in (("real", real), ("fake", fake)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {what} must be a Tensor, got {type(t).__name__}")
    if real.shape != fake.shape or real.ndim < 2 or real.shape[0] < 1:
        raise ValueError(f"{op}: real and fake must be batches (N, ...) of one shape, got "
                         f"{tuple(real.shape)} and {tuple(fake.shape)}")
    if not weight >= 0:
        raise ValueError(f"{op}: weight must be non-negative, got {weight}")
    a = _interpolation_weights(alpha, real, op)
    x_hat = Tensor._make(a * real.data + (1 - a) * fake.data).requires_grad_(True)
    g = _critic_gradient(critic, x_hat, op)
    norms = _safe_norm(_sum(reshape(g * g, (g.shape[0], -1)), axis=1))     # one per sample
    d = norms - target
    return weight * mean(d * d)
