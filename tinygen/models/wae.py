"""The Wasserstein autoencoder, WAE-MMD (Tolstikhin et al. 2018), and the AAE read as a WAE.

Section 5 of the notes. For a decoder G and a cost c, the WAE minimises over the
encoder Q

    E_{x ~ p_d} E_{z ~ Q(z|x)} c(x, G(z))  +  lambda * D_Z(q(z), p(z)),     q(z) = E_x Q(z|x)

a reconstruction term plus any divergence between the aggregated posterior q(z)
and the prior p(z). (For a deterministic decoder, the least reconstruction cost
over the encoders with q(z) = p(z) exactly is the optimal transport cost W_c
between p_d and the model's distribution, hence the name; the penalty relaxes
that constraint.) Here c is the Bernoulli decoder's -log p(x | z) summed over
pixels, as in ``aae.py`` (the official MNIST code uses ||x - G(z)||^2).

WAE-MMD takes D_Z = MMD^2 with the inverse multiquadratic kernel, estimated on the
batch's encodings z_n = Q(x_n) against as many prior draws z'_n:

    L = mean_n c(x_n, G(z_n)) + lambda * MMD_u^2({z_n}, {z'_n}),
    k(z, z') = sum_s C_s / (C_s + ||z - z'||^2),   C_s = 2 d s^2,  s in WAE_SCALES

(``tinygen.metrics.mmd``; the unbiased U-statistic, which averages exactly 0 when
the encodings are distributed as the prior, so the penalty pulls only while q and
p differ.) It is one loss, one optimizer, and no adversary: the MMD is a
differentiable function of the encodings, so its gradient reaches Q directly.

The AAE is the WAE whose D_Z is estimated by a GAN in latent space (WAE-GAN): a
discriminator D(z) trained to tell z' ~ p(z) from z = Q(x), and the encoder trained
to fool it (``aae.py``). The optimal-discriminator argument (section 7 of the notes)
says what that GAN estimates. For a fixed encoder the best discriminator is

    D*(z) = p(z) / (p(z) + q(z))

and, plugged into the GAN value V(D, Q) = E_p log D(z') + E_q log(1 - D(Q(x))),

    V(D*, Q) = -log 4 + 2 JSD(p || q).

So an AAE whose discriminator is kept near its optimum minimises the Jensen-Shannon
divergence between the prior and the aggregated posterior: its D_Z is 2 JSD (up to
the constant), reaching 0 (V = -log 4, D* = 1/2 everywhere) exactly when q = p. Two
consequences: the divergence is only as good as the discriminator's approximation
of D*, and when p and q barely overlap the JSD saturates at log 2 and the
minimax gradient vanishes, which is why the encoder is trained with the
non-saturating -log D(Q(x)). The MMD needs no inner optimisation, at the price
of a noisy estimate from a batch.

Defaults: lambda = 10 (the official MNIST value), the IMQ scales of a unit-variance
prior, latent_dim 2, hidden_size 128, Adam 1e-3. Measured on the binarized digits
test set after the default 6,000 steps (``tinygen train wae [--set prior=mixture]``,
seed 0, about 45 s on one CPU core): Gaussian prior, reconstruction 16.80 nats,
latent MMD 0.006, Frechet distance 26.5, class KL 0.029; mixture prior 16.85,
0.0003, 51.5, 0.027. Without the penalty (lambda = 0) the codes stray from the prior:
latent MMD 2.6 after 400 steps against 0.005 with lambda = 10.
"""
from .. import functional as F
from ..metrics import WAE_SCALES, mmd
from ..optim import Adam
from . import register
from ._autoencoder import LatentAutoencoder
from .base import descend


@register("wae", kind="implicit", section="5. AAE and WAE",
          summary="WAE-MMD: reconstruction + lambda * MMD (IMQ kernel) between encodings and prior draws",
          tested="the MMD penalty is 0 under the prior and grows with a shift; its gradient reaches the "
                 "encoder only through z; training pulls encodings to the prior")
class WAE(LatentAutoencoder):
    default_steps = 6000
    default_batch_size = 64
    default_lr = 1e-3
    default_penalty = 10.0

    def __init__(self, image_shape=(1, 8, 8), latent_dim=None, hidden_size=None, prior="gaussian",
                 encoder="deterministic", penalty=None, lr=None):
        super().__init__(image_shape, latent_dim, hidden_size, prior, encoder)
        lam = self.default_penalty if penalty is None else penalty
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not lam >= 0:
            raise ValueError(f"wae: penalty (lambda) must be a number >= 0, got {penalty!r}")
        self.penalty = float(lam)
        self.lr = self.default_lr if lr is None else float(lr)
        self.optimizers["main"] = Adam(self.parameters(), lr=self.lr)

    def latent_penalty(self, z):
        """MMD_u^2 between encodings ``z`` (N, d) and N prior draws (a differentiable 0-d Tensor)."""
        return mmd(z, self.prior_sample(z.shape[0]), kernel="imq", scales=WAE_SCALES)

    def train_step(self, batch):
        x, _ = self.split_batch(batch)
        z = self.encode(x)
        reconstruction = F.mean(self.reconstruction_cost(x, z))
        penalty = self.latent_penalty(z)
        loss = descend(self.optimizers["main"], reconstruction + self.penalty * penalty)
        return {"loss": loss, "reconstruction": reconstruction.item(), "mmd": penalty.item()}
