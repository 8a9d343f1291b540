"""InfoGAN (Chen et al. 2016): a GAN whose generator input carries a code it must make visible.

Section 7 of the notes. The generator takes noise z and a code c = (c_cat, c_1..c_M):

    z ~ N(0, I) (noise_dim)    c_cat ~ Cat(1/K) (one-hot, K = ``categories``)
    c_j ~ U(-1, 1), j = 1..M (M = ``continuous``)        x_f = G(z, c)

and an auxiliary network Q(c | x) reads the code back from a sample. InfoGAN asks the
mutual information I(c; G(z, c)) to be large. It cannot be computed (the posterior
p(c | x) is unknown), but any Q gives the variational lower bound (Barber & Agakov)

    I(c; x) = H(c) - H(c | x) >= E_{c, x = G(z, c)} log Q(c | x) + H(c) = L_I

(the gap is E KL(p(c | x) || Q(c | x)) >= 0), and the game becomes

    min_{G, Q} max_D  V(D, G) - lambda L_I(G, Q)

with lambda = ``info_weight`` (1, as in the paper and the official code). Q is D's
body with a head of its own, so it costs one small layer; both steps see the fakes:

    D step   L_D - lambda L_I      over D's body, D's head and Q's head   optimizers["discriminator"]
    G step   L_G - lambda L_I      over G (D and Q frozen)                optimizers["generator"]

L_I is estimated on the fake batch only (real images have no code). In the G step the
fakes keep their graph, so dL_I / d theta_G flows back through Q into G: G is paid for
making c readable. The two parts of L_I, in the code's symbols (N fakes, row n):

    categorical   Q's head gives logits l (N, K); log Q(c_cat | x) = log_softmax(l)[c_cat]
                  I_cat = ln K - cross_entropy(l, c_cat)                    in (-inf, ln K]
    continuous    Q's head gives means mu (N, M) of a factored Gaussian of fixed
                  std 1 (the official ``fix_std``): -log Q(c_j | x) = 1/2 (c_j - mu_j)^2 + 1/2 ln 2 pi,
                  and H(U(-1, 1)) = ln 2, so
                  I_cont = M (ln 2 - 1/2 ln 2 pi) - 1/N sum_n sum_j 1/2 (c_nj - mu_nj)^2

    L_I = I_cat + mu_c I_cont          mu_c = ``continuous_weight`` (0.1)

The paper sets lambda = 1 for a discrete code and "a smaller lambda" for continuous
ones, whose bound is a squared error on another scale; weighting I_cont by 0.1 keeps
the continuous codes from outbidding the categorical one for what G shows
(cluster_accuracy over seeds 0-2: 0.84 at mu_c = 1, 0.86 at 0.1).

Softmax is applied once, inside ``cross_entropy``'s log_softmax of the logits (the peer
bug, PyTorch-GAN#84, applies softmax in the network and then a cross-entropy that
softmaxes again, which flattens Q's gradient). ``train_step`` reports I_cat as
``mutual_information`` (nats): for the uniform categorical code it lies below ln K
(ln 10 = 2.303 for digits), is near 0 while Q guesses, and nears ln K as Q recovers
c_cat. The fixed-std Gaussian bound of a continuous code can never exceed
ln 2 - 1/2 ln 2 pi = -0.23 nats (a U(-1, 1) code read back exactly by a std-1
Gaussian still pays for the std), so it is part of the loss term but not of the
reported figure. Each step reports ``discriminator`` and ``generator`` (the adversarial
losses), ``discriminator_information`` and ``generator_information`` (each step's
-lambda L_I) and ``mutual_information``.

How does a random class input learn? c_cat is not a label of x: it is drawn at random
and fed to G, and nothing tells G what "class 3" should look like. What is asked is
only that Q can tell from G(z, c) which c went in. G is pushed to make c visible in its
output, so different codes must give different-looking samples, while D still asks
every sample to look like data. The cheapest way to be both readable and realistic is
to let each value of the code pick one mode of the data, and on digits the modes are
the digit classes: after training, Q's argmax on *real* digits clusters them by class
(``evaluate``'s ``cluster_accuracy``, Hungarian-matched to the labels, which InfoGAN
never sees in training). The continuous codes settle on smooth factors within a mode
(slant, width), which is what the ``codes`` picture shows.

Networks: DCGAN's (``dcgan.py``) with G's input z ++ onehot(c_cat) ++ c_cont, and the
categorical code fed to every stage of G, not only its first (``CodedGenerator``):
onehot(c_cat), tiled over the feature map, is concatenated to the channels before each
transposed convolution, as a conditional GAN feeds its label

    G   z ++ onehot(c) ++ u -> Linear -> (2w, h0, w0) BN ReLU
        ++ onehot(c) tiled -> ConvT 4s2p1 -> (w, 2h0, 2w0) BN ReLU
        ++ onehot(c) tiled -> ConvT 4s2p1 -> (C, H, W) tanh

A code that enters only through the projection can be washed out by batch norm and
the later layers; entering every stage, it stays within one layer of the output, so
G can make it visible (cluster_accuracy over seeds 0-2 at 1500 steps: 0.71 on average
with the code in the first layer only, 0.84 with it in every stage). D's
body, shared by both heads, is DCGAN's convolutions and then, as in the paper's D, one
fully connected layer (``shared_hidden`` units, BN, LeakyReLU(0.2)) whose output is h:

    D(x) = Linear(h) -> 1 logit
    Q(x) = Linear(h) -> 128, BN, LeakyReLU(0.2) -> Linear -> K logits ++ M means

Defaults for 8x8 digits: noise_dim 16, K = 10, M = 4, width 32, shared_hidden 256 (the
shared layer lifted cluster_accuracy most of any change tried), G lr 1e-3 and D/Q lr
2e-4 (the official code's), Adam beta1 = 0.5, batch 64, 1500 steps, and constant rates
(``lr_half_life`` 0: DCGAN's halving every 1000 steps settled the codes' assignment
earlier and scored lower). Four continuous codes rather than the paper's two: on these
small digits, codes that absorb style (slant, thickness) left the categorical code less
reason to split a digit class by style. What remains is InfoGAN's known weakness: a
code may still cover two look-alike classes (1 and 8, 2 and 8) while another class
takes two codes, and which happens depends on the seed.
"""
import math

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..imaging import make_grid
from ..metrics import cluster_accuracy
from ..nn import BatchNorm1d, LeakyReLU, Linear, Module, Sequential
from . import register
from ._adversarial import _not_negative, _positive
from .dcgan import DCGAN, dcgan_discriminator_body, dcgan_generator_stages

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
Q_HIDDEN = 128


class CodedGenerator(Module):
    """DCGAN's G whose categorical code also enters every later stage: onehot(c_cat), tiled
    over the feature map, is concatenated to the channels before each transposed convolution."""

    def __init__(self, latent_dim, code, image_shape, width):
        super().__init__()
        self.code = code            # (start, stop): where onehot(c_cat) lies in G's input
        project, up, out = dcgan_generator_stages(latent_dim, image_shape, width, code[1] - code[0])
        self.project, self.up, self.out = Sequential(*project), Sequential(*up), Sequential(*out)

    def forward(self, latent):
        onehot = latent[:, self.code[0]:self.code[1]]
        x = self.up(with_code(self.project(latent), onehot))
        return self.out(with_code(x, onehot))


def with_code(x, onehot):
    """x (N, C, H, W) ++ onehot (N, K) tiled over H x W: (N, C + K, H, W)."""
    n, k = onehot.shape
    return F.concat([x, F.tile(F.reshape(onehot, (n, k, 1, 1)), (1, 1) + tuple(x.shape[2:]))], axis=1)


class SharedBodyDiscriminator(Module):
    """D's body with two heads: ``forward`` is D's logit, ``q_head(body(x))`` Q's code parameters.

    One module, so D's optimizer steps Q's head too and freezing D for the G step
    freezes Q."""

    def __init__(self, body, d_head, q_head):
        super().__init__()
        self.body, self.d_head, self.q_head = body, d_head, q_head

    def forward(self, x):
        return self.d_head(self.body(x))


@register("infogan", kind="implicit", section="7. GAN",
          summary="DCGAN whose generator input carries a categorical code and continuous codes that a Q head "
                  "on D's body recovers (a mutual-information lower bound)",
          tested="the categorical estimate lies in [0, ln K] and rises; the information gradient reaches G; Q "
                 "recovers the code far above chance; the code enters every G stage")
class InfoGAN(DCGAN):
    default_steps = 1500
    default_batch_size = 64
    data_kind = "image"             # trains on images alone: the codes are drawn, never labels
    eval_data_kind = "labelled"     # evaluate scores cluster_accuracy when it is given labels too
    reported_only = ("mutual_information",)

    def __init__(self, image_shape=(1, 8, 8), noise_dim=16, categories=10, continuous=4, info_weight=1.0,
                 continuous_weight=0.1, width=32, shared_hidden=256, loss="nonsaturating", gp_weight=0.0, gp_target=1.0, n_critic=1,
                 lr=1e-3, d_lr=2e-4, betas=(0.5, 0.999), lr_half_life=0):
        if isinstance(categories, bool) or not isinstance(categories, (int, np.integer)) or categories < 2:
            extra = (" and continuous=0: no code at all, which is plain dcgan" if continuous == 0 else "")
            raise ValueError(f"infogan: the categorical code needs categories >= 2 (a whole number), "
                             f"got categories={categories!r}{extra}")
        if isinstance(continuous, bool) or not isinstance(continuous, (int, np.integer)) or continuous < 0:
            raise ValueError(f"infogan: continuous (the number of U(-1, 1) codes) must be a whole number >= 0, "
                             f"got {continuous!r}")
        self.noise_dim = _positive(noise_dim, "noise_dim", "infogan")
        self.categories, self.continuous = int(categories), int(continuous)
        self.info_weight = _positive(info_weight, "info_weight", "infogan", float)
        self.continuous_weight = _not_negative(continuous_weight, "continuous_weight", "infogan",
                                               "the continuous codes are drawn but not asked to be read")
        self.shared_hidden = _positive(shared_hidden, "shared_hidden", "infogan")
        # G's input is z ++ onehot(c_cat) ++ c_cont: DCGAN's latent_dim is their total width
        super().__init__(image_shape=image_shape, latent_dim=self.noise_dim + self.categories + self.continuous,
                         width=width, loss=loss, gp_weight=gp_weight, gp_target=gp_target, n_critic=n_critic,
                         lr=lr, d_lr=d_lr, betas=betas, lr_half_life=lr_half_life)

    def build_generator(self):
        """DCGAN's G, with the categorical code also fed to every later stage (``CodedGenerator``)."""
        return CodedGenerator(self.latent_dim, (self.noise_dim, self.noise_dim + self.categories),
                              self.image_shape, self.width)

    def build_discriminator(self):
        """DCGAN's convolutions, then (as in the paper's D) a shared fully connected layer whose
        features h both heads read."""
        convs, features = dcgan_discriminator_body(self.image_shape, self.width)
        hidden = self.shared_hidden
        body = Sequential(*convs, Linear(features, hidden, bias=False), BatchNorm1d(hidden), LeakyReLU(0.2))
        q_head = Sequential(Linear(hidden, Q_HIDDEN, bias=False), BatchNorm1d(Q_HIDDEN),
                            LeakyReLU(0.2), Linear(Q_HIDDEN, self.categories + self.continuous))
        return SharedBodyDiscriminator(body, Linear(hidden, 1), q_head)

    # --- the generator's input: noise and codes ---------------------------------------------
    def latent(self, n, rng=None, codes=None):
        """(n, noise_dim + K + M): z ~ N(0, I), onehot(c_cat), c_cont; ``codes`` may fix
        ``{"categorical": (n,) ints, "continuous": (n, M)}`` (either key; the rest is drawn)."""
        rng = backend.generator(self._device()) if rng is None else rng
        codes = {} if codes is None else codes
        unknown = set(codes) - {"categorical", "continuous"}
        if unknown:
            raise ValueError(f"infogan: codes takes 'categorical' and 'continuous', got {sorted(unknown)}")
        z = rng.standard_normal((n, self.noise_dim))
        c = codes.get("categorical")
        c = rng.integers(0, self.categories, n) if c is None else self._check_categories(c, n)
        u = codes.get("continuous")
        u = rng.uniform(-1, 1, (n, self.continuous)) if u is None else self._check_continuous(u, n)
        return self.join_latent(z, c, u)

    def join_latent(self, z, c, u):
        """The generator's input z ++ onehot(c) ++ u as a Tensor of the model's dtype and device."""
        dtype, device = self._dtype(), self._device()
        z, c, u = (backend.to_device(a, device) for a in (z, c, u))
        xp = backend.get_array_module(z)
        onehot = (c[:, None] == xp.arange(self.categories)).astype(dtype)
        return Tensor._make(xp.concatenate([z.astype(dtype), onehot, u.astype(dtype)], axis=1))

    def split_latent(self, latent):
        """(c_cat as an int array (n,), c_cont as a Tensor (n, M)) of a ``latent`` batch."""
        k0 = self.noise_dim
        onehot = latent.data[:, k0:k0 + self.categories]
        return onehot.argmax(axis=1), latent[:, k0 + self.categories:]

    def _check_categories(self, c, n):
        c = np.asarray(c)
        if c.shape != (n,) or c.dtype.kind not in "iu" or (c.size and (c.min() < 0 or c.max() >= self.categories)):
            raise ValueError(f"infogan: codes['categorical'] must be {n} whole numbers in [0, {self.categories}), "
                             f"got shape {c.shape}, dtype {c.dtype}")
        return c

    def _check_continuous(self, u, n):
        u = np.asarray(u, dtype=np.float64)
        if u.shape != (n, self.continuous):
            raise ValueError(f"infogan: codes['continuous'] must have shape ({n}, {self.continuous}), got {u.shape}")
        return u

    # --- Q and the information bound -------------------------------------------------------------
    def q_parameters(self, h):
        """Q's head on D's body features h: (logits (N, K), means (N, M))."""
        out = self.discriminator.q_head(h)
        return out[:, :self.categories], out[:, self.categories:]

    def information(self, logits, means, latent):
        """(I_cat, I_cont) of the module docstring, each a scalar Tensor (I_cont None when M = 0)."""
        c_cat, c_cont = self.split_latent(latent)
        i_cat = math.log(self.categories) - F.cross_entropy(logits, c_cat)     # softmax once, inside
        if self.continuous == 0:
            return i_cat, None
        d = c_cont - means
        i_cont = self.continuous * (math.log(2) - HALF_LOG_2PI) - 0.5 * F.sum(d * d) / d.shape[0]
        return i_cat, i_cont

    def information_loss(self, h_fake, latent):
        """-lambda L_I on body features of the fakes, and I_cat (the reported estimate)."""
        i_cat, i_cont = self.information(*self.q_parameters(h_fake), latent)
        bound = i_cat if i_cont is None else i_cat + self.continuous_weight * i_cont
        return -self.info_weight * bound, i_cat

    def _logits(self, h):
        return F.reshape(self.discriminator.d_head(h), (h.shape[0],))

    # --- the two players' terms (hooks of AdversarialModel) --------------------------------------
    def discriminator_terms(self, real, fake, latent):
        """L_D (with GP when on) - lambda L_I, with D's body run once on the fakes for both heads;
        I_cat is reported as ``mutual_information`` (``reported_only``: not trained on)."""
        h_fake = self.discriminator.body(fake)
        terms = self.adversarial_terms(self.discriminate(real), self._logits(h_fake), real, fake)
        terms["discriminator_information"], terms["mutual_information"] = self.information_loss(h_fake, latent)
        return terms

    def generator_terms(self, fake, latent):
        """L_G - lambda L_I; the fakes keep their graph, so L_I's gradient reaches G through Q."""
        h_fake = self.discriminator.body(fake)
        info, _ = self.information_loss(h_fake, latent)
        return {"generator": F.generator_loss(self._logits(h_fake), self.loss), "generator_information": info}

    # --- sampling and reading codes back ----------------------------------------------------------
    def sample(self, n, codes=None):
        """n images in [0, 1]; ``codes`` fixes some codes (``latent``), the rest are drawn."""
        return self._sample(self.latent(n, codes=codes))

    def infer_codes(self, x):
        """Q on images x in [0, 1] (evaluation mode): (categorical logits (N, K), continuous means (N, M))."""
        x = self.to_model_range(self.check_data(x))
        was = self.training
        self.eval()
        try:
            with no_grad():
                return self.q_parameters(self.discriminator.body(x))
        finally:
            self.train(was)

    # --- evaluation and pictures --------------------------------------------------------------------
    def evaluate(self, batch):
        """DCGAN's image metrics; given (images, labels), also ``cluster_accuracy`` of Q's argmax
        on the real images, Hungarian-matched to the labels."""
        images, labels = batch if isinstance(batch, (tuple, list)) else (batch, None)
        metrics = super().evaluate(images)
        if labels is not None:
            labels = labels.numpy() if isinstance(labels, Tensor) else np.asarray(labels)
            if labels.shape != (images.shape[0],):
                raise ValueError(f"infogan.evaluate: labels must have one entry per image, got shape "
                                 f"{labels.shape} for images {tuple(images.shape)}")
            logits, _ = self.infer_codes(images)
            metrics["cluster_accuracy"] = cluster_accuracy(logits.numpy().argmax(axis=1), labels)
        return metrics

    def pictures(self, images, labels=None):
        """The adversarial family's pictures and ``codes``: row r is c_cat = r, columns sweep c_1
        over [-1, 1] (other continuous codes 0; one noise vector z of seed ``eval_seed`` for the whole grid,
        so only the codes change). Without continuous codes, columns are different z."""
        out = super().pictures(images)
        k, cols = self.categories, 8
        rng = np.random.default_rng(self.eval_seed)
        c = np.repeat(np.arange(k), cols)
        if self.continuous:
            z = np.repeat(rng.standard_normal((1, self.noise_dim)), k * cols, axis=0)
            u = np.zeros((k * cols, self.continuous))
            u[:, 0] = np.tile(np.linspace(-1, 1, cols), k)
        else:
            z, u = rng.standard_normal((k * cols, self.noise_dim)), np.zeros((k * cols, 0))
        images = self._sample(self.join_latent(z, c, u)).numpy()
        grid = make_grid(images, nrow=cols, scale=max(1, 32 // max(self.image_shape[1:])))
        out["codes"] = grid[..., 0] if grid.shape[2] == 1 else grid
        return out
