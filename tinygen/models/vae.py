"""The variational autoencoder (Kingma & Welling 2014) and the IWAE bound (Burda et al. 2016).

Section 4 of the notes. A latent code z in R^d with prior p(z) = N(0, I) and a decoder
network whose D = C*H*W outputs are Bernoulli logits l(z):

    log p(x|z) = sum_i [ x_i l_i(z) - softplus(l_i(z)) ],      p(x) = E_{p(z)} p(x|z).

p(x) has no closed form, so an encoder network gives each x its own approximate posterior

    q(z|x) = N(mu(x), diag sigma(x)^2),     sigma = exp(logvar / 2)

(the network outputs mu and logvar; the sampler and the KL both read sigma from the one
``Normal`` that ``encode`` returns, so they cannot disagree: the numpy-ml bug took
exp(logvar) as the standard deviation in the sampler and as the variance in the KL).

The evidence lower bound. For any q,

    log p(x) = ELBO(x) + KL(q(z|x) || p(z|x)),
    ELBO(x)  = E_q[ log p(x|z) ] - KL(q(z|x) || p(z))
             = reconstruction    - kl,

so the ELBO lies below log p(x) by exactly how far q is from the true posterior. The KL
to the prior is in closed form, summed over the d latent dimensions,

    kl = 1/2 sum_j ( mu_j^2 + sigma_j^2 - 1 - log sigma_j^2 ),

and the reconstruction term is estimated with the reparameterised draw

    z = mu + sigma * eps,    eps ~ N(0, I),

a differentiable function of mu and logvar. The loss is the negative ELBO with the
reconstruction summed over the D pixels and the KL over the d latent dimensions, averaged
over the batch. (Averaging the pixels but summing the KL would weigh the KL D times too
much: the known peer bug that blurs samples or collapses the posterior.)

The IWAE bound. With k draws z_1..z_k ~ q(z|x) and importance weights

    log w_s = log p(x|z_s) + log p(z_s) - log q(z_s|x)          (full Gaussian densities),
    L_k(x)  = E[ log (1/k) sum_s w_s ] = E[ logsumexp_s(log w_s) - log k ],

L_1 = ELBO <= L_k <= L_{k+1} <= log p(x) in expectation, and L_k -> log p(x) as k grows.
Every normalising constant must stay in log w (the -d/2 log 2 pi of p(z) and q(z|x) cancel
only in expectation, not term by term), and the analytic KL must not be used inside it.
Option ``k`` > 1 trains on -L_k instead of -ELBO.

What ``evaluate`` reports, per image (means over the batch):

    nll_nats      -L_K with K = ``eval_samples`` (1000) importance samples: an estimate of
                  -log p(x) from above (``nll_importance_samples`` says K); K draws
                  are scored in chunks of at most ``ROWS_PER_CHUNK`` decoder rows
    elbo_nats     -ELBO (the reconstruction term averaged over the same K draws)
    kl_nats       the closed-form KL(q(z|x) || p(z))
    active_units  latent dimensions j with Cov_x( E_q[z_j] ) = Var_x( mu_j(x) ) > 0.01, the
                  variance taken over the evaluated batch (a dimension the encoder ignores
                  has mu_j the same for every x: a collapsed unit). The command line
                  evaluates a large test set in chunks and averages, so there the count is
                  a mean of per-chunk counts: close to, not exactly, the whole set's count
    bits_per_dim  nll_nats / (D ln 2)

Sampling: z ~ N(0, I), then x ~ Bern(sigmoid(l(z))), a 0/1 image like every other binary
model's samples; ``sample(n, mean=True)`` gives the decoder's probabilities sigmoid(l(z))
instead (smoother pictures; the manifold picture uses them).

Networks. ``arch="mlp"`` (default): D-h-h-2d encoder and d-h-h-D decoder with tanh, the
notes' 64-128-128-8 for 8x8 digits (h = ``hidden_size`` = 128, d = ``latent_dim`` = 8),
Adam 1e-3, batch 64. ``arch="conv"`` for 28x28 (or any H, W divisible by 4): two
stride-2 4x4 convolutions (32, 64 channels, ReLU) down to (H/4, W/4), a hidden layer of h,
and the mirror image with transposed convolutions.

Measured on the binarized 8x8 digits (the fixed test split of 359 images), defaults, seed 0,
6,000 steps (about 16 s of training on one core): nll_nats 16.8, elbo_nats 17.8, kl_nats 6.1,
7 of 8 units active; trained on L_5 (k = 5): nll_nats 16.6 (the Bernoulli baseline is 24.6,
NADE 16.8). The bounds of the k = 1 model on the test set: -L_1 17.9 >= -L_5 17.2 >= -L_50 17.0
>= -L_5000 16.8; of the k = 5 model: 18.8, 17.3, 16.8, 16.6 (a looser ELBO, a tighter L_5000).

Cost: K = 1000 draws per test image is cheap on the digits (about 1 s for the test set) but
not on 28x28 images on a CPU, where scoring dominates a run (the MLP decodes about 30k rows a
second, the conv net about 2k): lower it with ``eval_samples`` (``--set eval_samples=100``);
the output's ``nll_importance_samples`` always says which K was used.
"""
import math
import numbers

import numpy as np

from .. import backend
from .. import functional as F
from .. import nn
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..distributions import Normal, kl_divergence
from ..imaging import make_grid, scatter_array
from ..optim import Adam
from . import register
from .base import GenerativeModel, bernoulli_log_prob, descend

EVAL_SAMPLES = 1000          # K of the reported nll_nats = -L_K
ROWS_PER_CHUNK = 1 << 15     # decoder rows (draws x images) scored at once when K is large
ACTIVE_UNIT_THRESHOLD = 0.01


# --- the bounds, for any decoder -------------------------------------------------------
# ``log_likelihood(z)`` maps draws z (S, N, d) to log p(x_n | z_sn), shape (S, N); ``q`` is
# q(z|x) with batch shape (N, d) and ``prior`` p(z) with batch shape (d,). Written apart from
# the networks so the tests can check them on a model whose log p(x) is known exactly.

def elbo_terms(log_likelihood, q, prior, z):
    """(reconstruction, kl), each (N,): the mean over the S draws z of log p(x|z_s), and the
    closed-form KL(q(z|x) || p(z)) summed over the latent dimensions. ELBO = reconstruction - kl."""
    reconstruction = F.mean(log_likelihood(z), axis=0)
    kl = F.sum(kl_divergence(q, prior), axis=-1)
    return reconstruction, kl


def log_weights(log_likelihood, q, prior, z):
    """(log w, log p(x|z)), each (S, N): log w_s = log p(x|z_s) + log p(z_s) - log q(z_s|x)."""
    log_lik = log_likelihood(z)
    return log_lik + F.sum(prior.log_prob(z) - q.log_prob(z), axis=-1), log_lik


def combine_chunks(chunk_lse, k):
    """L_k (N,) from logsumexp_s log w_s over each chunk of draws (a list of (N,)), k draws in all."""
    lse = chunk_lse[0] if len(chunk_lse) == 1 else F.logsumexp(F.stack(chunk_lse), axis=0)
    return lse - math.log(k)


def _count(value, who, lo=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise ValueError(f"vae: {who} must be an integer >= {lo}, got {value!r}")
    return int(value)


# --- the networks --------------------------------------------------------------------------

def mlp_networks(image_shape, latent_dim, hidden_size):
    """(encoder x -> (N, 2d), decoder z -> logits (N, C, H, W)): D-h-h-2d and d-h-h-D, tanh."""
    d_in, h = int(np.prod(image_shape)), hidden_size
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(d_in, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh(),
                            nn.Linear(h, 2 * latent_dim))
    decoder = nn.Sequential(nn.Linear(latent_dim, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh(),
                            nn.Linear(h, d_in), nn.Unflatten(1, image_shape))
    return encoder, decoder


def conv_networks(image_shape, latent_dim, hidden_size, channels=(32, 64)):
    """Two stride-2 4x4 convolutions (H, W) -> (H/4, W/4), then h, then 2d; the decoder mirrors it."""
    c, height, width = image_shape
    if height % 4 or width % 4:
        raise ValueError(f"vae: arch='conv' halves the image twice, so H and W must be divisible by 4 "
                         f"(28x28 or 8x8 work); got image_shape {tuple(image_shape)}; use arch='mlp'")
    c1, c2 = channels
    inner = (c2, height // 4, width // 4)
    flat = int(np.prod(inner))
    encoder = nn.Sequential(nn.Conv2d(c, c1, 4, stride=2, padding=1), nn.ReLU(),
                            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                            nn.Linear(flat, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 2 * latent_dim))
    decoder = nn.Sequential(nn.Linear(latent_dim, hidden_size), nn.ReLU(), nn.Linear(hidden_size, flat),
                            nn.ReLU(), nn.Reshape(inner),
                            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),
                            nn.ConvTranspose2d(c1, c, 4, stride=2, padding=1))
    return encoder, decoder


ARCHITECTURES = {"mlp": mlp_networks, "conv": conv_networks}


@register("vae", kind="explicit", section="4. VAE and the IWAE bound",
          summary="variational autoencoder: Gaussian q(z|x), Bernoulli decoder; ELBO or IWAE (k) training",
          tested="L_1 <= L_k <= log p (by quadrature) and rising in k; the exact posterior closes the gap; the"
                 " gap is exactly the KL; closed-form KL equals Monte Carlo; reduction pinned")
class VAE(GenerativeModel):
    binary = True                # Bernoulli decoder: the command line binarizes the data
    default_steps = 6000
    default_batch_size = 64
    default_lr = 1e-3

    def __init__(self, image_shape=(1, 8, 8), latent_dim=8, hidden_size=128, arch="mlp", k=1, lr=None,
                 eval_samples=EVAL_SAMPLES):
        super().__init__(image_shape)
        self.latent_dim = _count(latent_dim, "latent_dim")
        self.hidden_size = _count(hidden_size, "hidden_size")
        self.k = _count(k, "k (the number of importance samples of the training bound)")
        self.eval_samples = _count(eval_samples, "eval_samples")
        if arch not in ARCHITECTURES:
            raise ValueError(f"vae: unknown arch {arch!r}; known: {', '.join(ARCHITECTURES)}")
        self.arch = arch
        self.encoder, self.decoder = ARCHITECTURES[arch](self.image_shape, self.latent_dim, self.hidden_size)
        self.lr = self.default_lr if lr is None else float(lr)
        self.optimizers["main"] = Adam(self.parameters(), lr=self.lr)

    # --- the model ----------------------------------------------------------------------
    def prior(self):
        """p(z) = N(0, I) in R^d, in the parameters' dtype and on their device."""
        w = next(iter(self.parameters())).data
        xp = backend.get_array_module(w)
        zeros, ones = xp.zeros(self.latent_dim, w.dtype), xp.ones(self.latent_dim, w.dtype)
        return Normal(Tensor._make(zeros), Tensor._make(ones), validate_args=False)

    def encode_parameters(self, x):
        """(mu, logvar), each (N, d): the encoder's two halves."""
        x = self.check_images(x, binary=True)
        out = self.encoder(x)
        d = self.latent_dim
        return out[:, :d], out[:, d:]

    def encode(self, x):
        """q(z|x) = N(mu, diag sigma^2), sigma = exp(logvar / 2): a Normal of batch shape (N, d)."""
        mu, logvar = self.encode_parameters(x)
        return Normal.from_log_var(mu, logvar)

    def decode(self, z):
        """Bernoulli logits l(z), (N, C, H, W), for codes z (N, d)."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"vae: decode expects codes of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        return self.decoder(z)

    def log_likelihood(self, x, z):
        """log p(x_n | z_sn), (S, N), for draws z (S, N, d): every draw decoded in one batch."""
        s, n = z.shape[0], z.shape[1]
        logits = self.decode(F.reshape(z, (s * n, self.latent_dim)))
        targets = F.reshape(F.expand(x, (s,) + tuple(x.shape)), (s * n,) + self.image_shape)
        return F.reshape(bernoulli_log_prob(targets, logits), (s, n))

    # --- the bounds ---------------------------------------------------------------------
    def _likelihood(self, x):
        """z (S, N, d) -> log p(x|z) (S, N), the form the bound functions above take."""
        return lambda z: self.log_likelihood(x, z)

    def _weight_chunks(self, x, q, k):
        """(log w, log p(x|z)) for k draws from q, in chunks of at most ROWS_PER_CHUNK decoder rows."""
        per_chunk = max(1, ROWS_PER_CHUNK // x.shape[0])
        prior, likelihood = self.prior(), self._likelihood(x)
        for start in range(0, k, per_chunk):
            z = q.rsample((min(per_chunk, k - start),))           # (S, N, d) = mu + sigma * eps
            yield log_weights(likelihood, q, prior, z)

    def _bound(self, x, q, k):
        """L_k (N,): logsumexp of each chunk's log w, then of the chunks, minus log k."""
        return combine_chunks([F.logsumexp(log_w, axis=0) for log_w, _ in self._weight_chunks(x, q, k)], k)

    def elbo(self, x):
        """ELBO (N,) = log p(x|z) - KL(q(z|x) || p(z)), one reparameterised draw z per image."""
        x = self.check_images(x, binary=True)
        q = self.encode(x)
        reconstruction, kl = elbo_terms(self._likelihood(x), q, self.prior(), q.rsample((1,)))
        return reconstruction - kl

    def iwae_bound(self, x, k):
        """L_k (N,) = logsumexp_s log w_s - log k over k draws from q(z|x) (differentiable)."""
        k = _count(k, "k (importance samples)")
        x = self.check_images(x, binary=True)
        return self._bound(x, self.encode(x), k)

    def log_prob(self, x):
        """An estimate of log p(x) (N,): L_K with K = eval_samples draws (a lower bound in expectation)."""
        return self.iwae_bound(x, self.eval_samples)

    # --- training -----------------------------------------------------------------------
    def loss(self, x):
        """(loss, terms): -ELBO (k = 1) or -L_k (k > 1), averaged over the batch; terms for the log."""
        x = self.check_images(x, binary=True)
        q, prior = self.encode(x), self.prior()
        if self.k == 1:
            reconstruction, kl = elbo_terms(self._likelihood(x), q, prior, q.rsample((1,)))
            terms = {"reconstruction": -reconstruction.data.mean().item(), "kl": kl.data.mean().item()}
            return F.mean(kl - reconstruction), terms
        with no_grad():   # reported only: L_k has no analytic KL inside it
            kl = F.sum(kl_divergence(q, prior), axis=-1)
        return -F.mean(self._bound(x, q, self.k)), {"kl": kl.data.mean().item()}

    def train_step(self, batch):
        loss, terms = self.loss(batch)
        return {"loss": descend(self.optimizers["main"], loss), **terms}

    # --- evaluation ---------------------------------------------------------------------
    def evaluate(self, batch):
        """nll_nats = -L_K (K = eval_samples), elbo_nats, kl_nats, active_units, bits_per_dim."""
        x = self.check_images(batch, binary=True)
        was = self.training
        self.eval()
        try:
            with no_grad():
                q = self.encode(x)
                chunk_lse, lik_sum = [], 0.0
                for log_w, log_lik in self._weight_chunks(x, q, self.eval_samples):
                    chunk_lse.append(F.logsumexp(log_w, axis=0))
                    lik_sum = lik_sum + F.sum(log_lik, axis=0)
                bound = combine_chunks(chunk_lse, self.eval_samples).data
                kl = F.sum(kl_divergence(q, self.prior()), axis=-1).data
                reconstruction = (lik_sum / self.eval_samples).data
                spread = q.loc.data.var(axis=0)                    # Var_x E_q[z_j] over this batch
        finally:
            self.train(was)
        nll = -float(bound.mean())
        d = int(np.prod(self.image_shape))
        return {"nll_nats": nll, "nll_importance_samples": self.eval_samples,
                "elbo_nats": float((kl - reconstruction).mean()), "kl_nats": float(kl.mean()),
                "active_units": int((spread > ACTIVE_UNIT_THRESHOLD).sum()),
                "bits_per_dim": nll / (d * math.log(2))}

    # --- sampling -----------------------------------------------------------------------
    def sample(self, n, mean=False):
        """n images decoded from z ~ N(0, I): Bernoulli draws (0/1), or with ``mean`` sigmoid(l(z))."""
        n = _count(n, "the number of samples", lo=0)
        with no_grad():
            z = self.prior().sample((n,))
            p = F.sigmoid(self.decode(z)).data
            if mean:
                return Tensor._make(p)
            u = backend.generator(z.device).random(p.shape)
            return Tensor._make((u < p).astype(p.dtype))

    # --- pictures -----------------------------------------------------------------------
    def pictures(self, images, labels=None, count=16, grid=15):
        """uint8 pictures for the run folder, {name: (H, W) or (H, W, 3) array}:

        reconstructions  ``count`` images (top row) above sigmoid(l(mu(x))) (bottom row)
        latent           (latent_dim == 2) the encodings mu(x) coloured by ``labels`` over
                         grey draws from p(z)
        manifold         (latent_dim == 2) decoder means sigmoid(l(z)) over a grid x grid lattice
                         of the latent plane at the N(0, 1) quantiles 0.05 .. 0.95 (z_2 up)
        """
        from scipy.special import ndtri
        x = self.check_images(images, binary=True)
        scale = max(1, 32 // self.image_shape[1])       # 8x8 digits drawn 4x larger
        was = self.training
        self.eval()
        try:
            with no_grad():
                mu = self.encode_parameters(x)[0]
                shown = min(count, x.shape[0])
                rec = F.sigmoid(self.decode(mu[:shown]))
                out = {"reconstructions": _grid(F.concat([x[:shown], rec], axis=0), shown, scale)}
                if self.latent_dim == 2:
                    out["latent"] = scatter_array(mu.numpy(), reference=self.prior().sample((1000,)).numpy(),
                                                  labels=None if labels is None else np.asarray(labels),
                                                  title="encodings mu(x) by digit over p(z) (grey)")
                    q = ndtri(np.linspace(0.05, 0.95, grid))
                    z1, z2 = np.meshgrid(q, q[::-1])             # row r: z_2 = q[grid - 1 - r], top = largest
                    z = Tensor(np.stack([z1.ravel(), z2.ravel()], axis=1), dtype=mu.dtype, device=mu.device)
                    out["manifold"] = _grid(F.sigmoid(self.decode(z)), grid, scale)
        finally:
            self.train(was)
        return out


def _grid(images, nrow, scale):
    g = make_grid(images, nrow=nrow, scale=scale)
    return g[..., 0] if g.shape[2] == 1 else g
