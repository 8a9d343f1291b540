"""The autoencoder that the AAE and the WAE share: encoder, decoder, prior, metrics, pictures.

Both models (``aae.py``, ``wae.py``; section 5 of the notes) are an encoder
z = Q(x), a decoder with Bernoulli logits l = G(z), and a prior p(z) that is only
sampled (``_priors.py``). They differ in one term, how q(z) = E_x Q(z|x) is pulled
towards p(z): a discriminator on z (AAE) or an MMD penalty (WAE). What is common
lives here:

    encoder    x (N, C, H, W) -> D pixels -> h -> h -> z (N, d), ReLU hidden layers
               (``encoder="gaussian"``: -> (mu, log sigma^2) and z = mu + sigma eps)
    decoder    z -> h -> h -> l (N, C, H, W), the mirror image
    cost       c(x, z) = -log p(x | z) = -sum_i [x_i l_i - softplus(l_i)],  l = G(z)
               summed over the D pixels (nats per image)
    sample(n)  z ~ p(z), x ~ Bern(sigmoid(G(z)))

Evaluation (``evaluate(batch)``, all means over the batch's images):

    reconstruction_nats       mean_n c(x_n, Q(x_n)), encoding with the posterior mean for a
                              Gaussian encoder
    latent_mmd                MMD_u^2(Q(x), z ~ p), the IMQ kernel at ``WAE_SCALES``, against
                              ``eval_samples`` prior draws: about 0 when q(z) matches p(z)
    frechet_distance          ``sample_frechet_distance`` of ``eval_samples`` samples vs the batch
    class_kl                  ``class_histogram_kl`` of those samples (0 = every digit equally often)
    label_component_accuracy  (with labels) the fraction of encodings the prior assigns to
                              their label's component

The two sample metrics use the shipped digits classifier, so they are reported for
(1, 8, 8) images only.
"""
import numpy as np

from .. import backend
from .. import functional as F
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..distributions import Normal
from ..imaging import make_grid, scatter_array
from ..metrics import WAE_SCALES, class_histogram_kl, mmd, sample_frechet_distance
from ..nn import Flatten, Linear, ReLU, Sequential
from .base import GenerativeModel, bernoulli_log_prob
from ._priors import make_prior

ENCODERS = ("deterministic", "gaussian")


def mlp(sizes):
    """Linear layers of ``sizes`` with ReLU between them (none after the last)."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ReLU())
    return Sequential(*layers)


def positive_int(value, name, who):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive integer, got {value!r}")
    return int(value)


class LatentAutoencoder(GenerativeModel):
    binary = True
    default_hidden_size = 128
    eval_samples = 1000       # prior draws / samples behind latent_mmd, frechet_distance, class_kl

    def __init__(self, image_shape=(1, 8, 8), latent_dim=None, hidden_size=None, prior="gaussian",
                 encoder="deterministic"):
        super().__init__(image_shape)
        who = type(self).name or type(self).__name__
        self.prior, self.latent_dim = make_prior(prior, latent_dim, who)
        h = positive_int(self.default_hidden_size if hidden_size is None else hidden_size, "hidden_size", who)
        if encoder not in ENCODERS:
            raise ValueError(f"{who}: unknown encoder {encoder!r}; known: {', '.join(ENCODERS)}")
        self.hidden_size, self.encoder_kind = h, encoder
        pixels, d = int(np.prod(self.image_shape)), self.latent_dim
        self.encoder = Sequential(Flatten(), mlp([pixels, h, h, 2 * d if encoder == "gaussian" else d]))
        self.decoder = mlp([d, h, h, pixels])

    def to(self, device):
        super().to(device)
        self.prior = self.prior.to(device)
        return self

    # --- the networks -------------------------------------------------------------
    def posterior(self, x):
        """Q(z|x) of a Gaussian encoder: ``Normal`` with scale exp(log sigma^2 / 2)."""
        out = self.encoder(x)
        d = self.latent_dim
        return Normal.from_log_var(out[:, :d], out[:, d:], validate_args=False)

    def encode(self, x):
        """z = Q(x) (N, d); a Gaussian encoder draws z = mu + sigma eps (differentiable)."""
        if self.encoder_kind == "gaussian":
            return self.posterior(x).rsample()
        return self.encoder(x)

    def encode_mean(self, x):
        """The encoder's point estimate: Q(x), or mu for a Gaussian encoder."""
        return self.posterior(x).mean if self.encoder_kind == "gaussian" else self.encoder(x)

    def decode(self, z):
        """Bernoulli logits l = G(z), (N, C, H, W)."""
        return F.reshape(self.decoder(z), (z.shape[0],) + self.image_shape)

    def reconstruction_cost(self, x, z):
        """c(x, z) = -log p(x | z) summed over pixels, (N,) nats."""
        return -bernoulli_log_prob(x, self.decode(z))

    # --- what a batch holds -------------------------------------------------------
    def split_batch(self, batch):
        """(images, labels or None) from a Tensor of images or an (images, labels) pair."""
        if isinstance(batch, (tuple, list)):
            if len(batch) != 2:
                raise ValueError(f"{self.name}: a batch is images or (images, labels), got a "
                                 f"{type(batch).__name__} of {len(batch)} items")
            x, y = batch
            x = self.check_images(x, binary=True)
            y = self._check_labels(y, x.shape[0])
            return x, y
        return self.check_images(batch, binary=True), None

    def _check_labels(self, y, n):
        y = y.data if isinstance(y, Tensor) else y
        xp = backend.get_array_module(y)
        y = xp.asarray(y)
        if y.shape != (n,) or y.dtype.kind not in "iu":
            raise ValueError(f"{self.name}: labels must be {n} integers, one per image, got shape "
                             f"{tuple(y.shape)} of {y.dtype}")
        return y.astype(np.int64)

    # --- sampling -------------------------------------------------------------------
    def prior_sample(self, n, y=None):
        """n draws z ~ p(z) (n, d), in the model's dtype (a float64 model for exact checks)."""
        return self.as_model_dtype(self.prior.sample(n))

    def as_model_dtype(self, z):
        dtype = next(self.parameters()).dtype
        return z if z.dtype == dtype else Tensor._make(z.data.astype(dtype))

    def sample(self, n):
        """z ~ p(z), then x ~ Bern(sigmoid(G(z))): binary images (n, C, H, W)."""
        with no_grad():
            p = F.sigmoid(self.decode(self.prior_sample(n))).data
            u = backend.generator(backend.device_of(p)).random(p.shape)
            return Tensor._make((u < p).astype(np.float32))

    # --- evaluation -------------------------------------------------------------------
    def evaluate(self, batch):
        was = self.training
        self.eval()
        try:
            with no_grad():
                return self._metrics(*self.split_batch(batch))
        finally:
            self.train(was)

    def _metrics(self, x, y):
        z = self.encode_mean(x)
        out = {"reconstruction_nats": float(self.reconstruction_cost(x, z).data.mean())}
        z_prior = self.prior_sample(self.eval_samples)
        out["latent_mmd"] = mmd(z.numpy(), z_prior.numpy(), kernel="imq", scales=WAE_SCALES)
        if self.image_shape == (1, 8, 8) and x.shape[0] >= 2:
            samples = self.sample(self.eval_samples).numpy()
            out["frechet_distance"] = sample_frechet_distance(samples, x.numpy())
            out["class_kl"] = class_histogram_kl(samples)
        return out

    # --- pictures ----------------------------------------------------------------------
    def pictures(self, images, labels=None):
        """{"reconstructions", and for a 2-D latent "latent" and "manifold"}: uint8 arrays."""
        was = self.training
        self.eval()
        try:
            with no_grad():
                x = self.check_images(images, binary=True)
                out = {"reconstructions": self._reconstruction_grid(x)}
                if self.latent_dim == 2:
                    out["latent"] = self._latent_scatter(x, labels)
                    out["manifold"] = self._manifold()
                return out
        finally:
            self.train(was)

    def _scale(self):
        return max(1, 32 // self.image_shape[2])

    def _grid(self, images, nrow):
        g = make_grid(images, nrow=nrow, scale=self._scale())
        return g[..., 0] if g.shape[2] == 1 else g

    def _reconstruction_grid(self, x, n=16, nrow=8):
        """Rows of ``nrow`` test images, each above its reconstructions' probabilities."""
        x = x[:n]
        r = F.sigmoid(self.decode(self.encode_mean(x))).numpy()
        x = x.numpy()
        rows = [a[i:i + nrow] for i in range(0, len(x), nrow) for a in (x, r)]
        return self._grid(np.concatenate(rows), nrow)

    def _latent_scatter(self, x, labels):
        z = self.encode_mean(x[:1000]).numpy()
        if labels is not None:
            labels = np.asarray(labels.numpy() if isinstance(labels, Tensor) else backend.to_device(labels, "cpu"))
            labels = labels[:len(z)]
        reference = self.prior_sample(1000).numpy()
        return scatter_array(z, reference=reference, labels=labels,
                             title=f"{self.name}: encodings over prior samples (grey)")

    def _manifold(self, n=12):
        """G(z) over an n x n grid of the latent plane spanning the prior's 1%..99% quantiles."""
        ref = self.prior_sample(2000).numpy()
        lo, hi = np.quantile(ref, 0.01, axis=0), np.quantile(ref, 0.99, axis=0)
        u, v = np.linspace(lo[0], hi[0], n), np.linspace(hi[1], lo[1], n)   # top row: largest z_2
        zz = np.stack(np.meshgrid(u, v), axis=-1).reshape(-1, 2).astype(np.float32)
        z = self.as_model_dtype(Tensor(zz).to(next(self.parameters()).device))
        return self._grid(F.sigmoid(self.decode(z)).numpy(), n)
