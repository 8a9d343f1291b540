"""Progressive GAN (Karras, Aila, Laine & Lehtinen 2018): start at 4x4 and grow, fading each new layer in.

Section 7 of the notes. A GAN that must learn a 32x32 image at once has to find the
coarse layout and the fine strokes together; Progressive GAN trains both players at
4x4 first, then adds a block to each, doubling the resolution, until it reaches the
data's. The coarse blocks are already trained when the fine ones arrive, and each
new block is faded in smoothly so that it does not wreck them.

Resolutions. r_s = 4 * 2^s at stage s = 0, 1, ..., S - 1, with r_{S-1} = P: the data's
side padded up to a power of two (8x8 digits: 4 -> 8; 28x28 MNIST, padded with 2
black pixels on each side to 32x32: 4 -> 8 -> 16 -> 32). ``max_resolution`` stops
earlier (the reals are then average-pooled to it); it cannot pass P.

Channels: c(r) = ``width`` at 4x4 and 8x8, halved at each resolution above
(c(r) = 8 width / r), as the paper's feature maps shrink with resolution.

    G   z -> PN -> EqLinear(z, 16 c(4), gain sqrt(2)/4) -> (c(4), 4, 4) -> lrelu -> PN
          -> EqConv3x3 -> lrelu -> PN                                      = h_0 (4x4)
        block s (s >= 1): h_s = [upsample x2 -> (EqConv3x3 -> lrelu -> PN) x 2](h_{s-1})
        toRGB_s = EqConv1x1(c(r_s) -> C, gain 1)                     (linear: no tanh)
    D   fromRGB_s = EqConv1x1(C -> c(r_s)) -> lrelu
        block s (s >= 1): [EqConv3x3 -> lrelu -> EqConv3x3 (-> c(r_{s-1})) -> lrelu -> avgpool x2]
        last (4x4): MinibatchStd -> EqConv3x3 (c(4) + 1 -> c(4)) -> lrelu
          -> EqLinear(16 c(4) -> c(4)) -> lrelu -> EqLinear(c(4) -> 1, gain 1)

(PN = PixelNorm, Eq = equalized learning rate, lrelu = LeakyReLU(0.2); the layers
and their reference values are in ``tinygen/nn/progressive.py``.)

Fade-in. At stage s >= 1, with alpha in [0, 1]:

    G(z)   = alpha toRGB_s(block_s(h_{s-1})) + (1 - alpha) upsample(toRGB_{s-1}(h_{s-1}))
    D(x)   = tail( alpha block_s(fromRGB_s(x)) + (1 - alpha) fromRGB_{s-1}(avgpool(x)) )
    x_real = alpha x + (1 - alpha) upsample(avgpool(x))          the reals are faded too

where x is the real batch at r_s (padded, then average-pooled from P) and tail is D's
blocks s-1, ..., 1 and its last block. At alpha = 0 both players are exactly the
stage-(s-1) networks working on upsampled images, and the new blocks get zero
gradients; at alpha = 1 the old toRGB and fromRGB drop out. Fading only the fakes
would let D tell reals from fakes by their sharpness alone.

Schedule. The resolution and alpha are a function of n, the real images shown so far
(the ``images_seen`` buffer), with F = ``fade_images`` and T = ``stable_images``:

    stage 0 (4x4)                  n < T                               alpha = 1
    stage s >= 1                   n - T = (s - 1)(F + T) + t,  t < F + T
                                   alpha = t / F while t < F, then 1  (fade, then stabilise)
    stage S - 1                    alpha = 1 from the end of its fade on, for ever

Growing. Every stage's layers are built with the model (as the reference code builds
every resolution into one graph and picks the path by lod); the ``stage`` buffer says
how far the players have grown, and a step runs only the layers of stages <= s. The
stage moves on at the end of the step whose images cross into it, so a checkpoint's
stage always matches its schedule, and a checkpoint holds every layer whatever its
stage: a resumed run, ``tinygen sample`` and ``tinygen eval`` rebuild the model from
its options and copy the values in, with nothing to grow first.

Loss (the official one: WGAN-GP with a drift term, one D step per G step):

    L_D = mean D(x~) - mean D(x) + lambda mean_n (||grad D(x^_n)|| - 1)^2 + eps_drift mean D(x)^2
    L_G = -mean D(G(z))

with lambda = ``gp_weight`` = 10 and eps_drift = ``drift`` = 0.001; the drift term
keeps D's scores near 0, which the Wasserstein loss alone does not (it sees only
differences). Adam(lr, beta1 = 0, beta2 = 0.99, eps 1e-8) for both players, with one
param group per stage: a layer of a stage not yet reached takes no gradient, and Adam
leaves it and its state alone (an untouched parameter is skipped), so at each growth
the old layers keep their moments and step counts and the new ones start their own at
t = 1. (The reference code resets the optimizers at each resolution; the old layers'
moments are kept here, as the issue asks.)

The rate is lr = 6e-3, not the paper's 1e-3. With equalized learning rate Adam moves
each stored N(0, 1) weight by about lr per step, i.e. by lr relative to its own scale;
1e-3 is made for runs of millions of images, and in the few tens of thousands that a
CPU sees in minutes it learns too slowly (digits, 3 minutes: FD 67.6 at 1e-3, 14.9 at
6e-3; ``--set lr=0.001`` for the paper's). The rate is constant (``lr_half_life`` 0; the GAN
family's halving, ``_adversarial.py``, made it worse here: FD 25.1 with a 1000-step
half-life, 21.6 without, 3 minutes at batch 32).

Sampling. ``sample(n)`` uses G_bar, the exponential moving average of G's weights
(``optim.EMA``) kept in ``generator_ema``, updated after every step with

    decay_t = min(ema_decay, (1 + t) / (10 + t)),      t = updates so far, ema_decay = 0.999

(``ema_warmup``; without it, decay 0.999 from the first step). The warm-up matters
in a short run: at a constant 0.999, after t steps a share 0.999^t of G_bar is still
the random initial G (25% after 1400 steps), and the samples are half noise (digits,
3 minutes: FD 44.7 without the warm-up, 14.9 with); warmed up, G_bar averages over
about the last t / 9 updates (1 / (1 - decay_t) = (10 + t) / 9) until 0.999 takes
over at t ~ 9000.

A sample is G_bar at the current stage and alpha, always of the data's shape: G's
r_s x r_s output is upsampled (nearest) to P x P and cropped back to H x W (28x28
MNIST: the 2-pixel border G learned to paint black is cut off), so the command line,
its sample grids and the digits classifier treat it like any other model's. G's toRGB
is linear (no tanh, as in the paper), so a sample is clipped to [0, 1] once mapped
back (x = (y + 1) / 2).

Pictures. ``growth.png``: one column per resolution reached, the same 8 noise
vectors (seed ``eval_seed``) down each column; a column is G_bar's samples at the end
of its stage, kept in the ``growth_samples`` buffer when the model grows (so they
survive a resume), the last column the samples now.

Measured on the digits (seed 0, ``tinygen train NAME --seed 0 --minutes M`` on 2 shared
CPU cores; FD of the digits classifier's features, real-data floor 10.4):

    M (minutes)      1      2      3      5        defaults (1250 steps, ~2.5 min): 17.1
    progan        43.3   26.2   13.8   12.4
    dcgan         17.0   16.7   16.9   17.2

A ProGAN step costs about 8 of DCGAN's (the gradient penalty differentiates D twice,
at 8x8 with two 3x3 convolutions per block), so DCGAN leads for the first two minutes;
from about three on ProGAN's samples are the better ones, and still improving where
DCGAN's have settled.

Bad input: a ``max_resolution`` past P or not a power of two, a ``fade_images`` or
``stable_images`` of 0, a ``group_size`` below 2, and a training batch that does not
split into minibatch-std groups (``check_batch_size``) are refused by name.
"""
import math

import numpy as np

from .. import functional as F
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..imaging import make_grid
from ..nn import (AvgPool2d, EqualizedConv2d, EqualizedLinear, Flatten, LeakyReLU, MinibatchStd, Module,
                  ModuleList, PixelNorm, Reshape, Sequential, Upsample)
from ..nn.progressive import check_batch_for_groups, check_group_size
from ..optim import EMA, Adam
from . import register
from ._adversarial import AdversarialModel, _not_negative, _positive

FIRST_RESOLUTION = 4
GROWTH_SAMPLES = 8       # samples per column of growth.png


def channels(resolution, width):
    """c(r): ``width`` up to 8x8, halved at each doubling above."""
    return max(1, min(width, width * 8 // resolution))


def schedule(images, stages, fade_images, stable_images):
    """(stage, alpha) after ``images`` real images: T stable at 4x4, then per stage F fading and T stable."""
    if stages == 1 or images < stable_images:
        return 0, 1.0
    t = images - stable_images
    stage = 1 + t // (fade_images + stable_images)
    if stage >= stages:
        return stages - 1, 1.0
    return stage, min(1.0, (t % (fade_images + stable_images)) / fade_images)


def _lrelu():
    return LeakyReLU(0.2)


# --- the two players ---------------------------------------------------------------

class Generator(Module):
    """G: z -> an r_s x r_s image in the model's range, for the stage s it is called at."""

    def __init__(self, latent_dim, image_channels, width, stages):
        super().__init__()
        c = [channels(FIRST_RESOLUTION * 2 ** s, width) for s in range(stages)]
        self.first = Sequential(
            PixelNorm(), EqualizedLinear(latent_dim, 16 * c[0], gain=math.sqrt(2) / 4), Reshape(c[0], 4, 4),
            _lrelu(), PixelNorm(), EqualizedConv2d(c[0], c[0], 3, padding=1), _lrelu(), PixelNorm())
        self.blocks = ModuleList([                      # blocks[s - 1] takes h_{s-1} to h_s
            Sequential(Upsample(scale_factor=2),
                       EqualizedConv2d(c[s - 1], c[s], 3, padding=1), _lrelu(), PixelNorm(),
                       EqualizedConv2d(c[s], c[s], 3, padding=1), _lrelu(), PixelNorm())
            for s in range(1, stages)])
        self.to_rgb = ModuleList([EqualizedConv2d(c[s], image_channels, 1, gain=1.0) for s in range(stages)])

    def stage_modules(self, s):
        """The layers stage s adds: (first, toRGB_0) at 4x4, (block_s, toRGB_s) after."""
        return [self.first if s == 0 else self.blocks[s - 1], self.to_rgb[s]]

    def features(self, z, stage):
        """h_stage, the features at resolution r_stage."""
        h = self.first(z)
        for block in self.blocks[:stage]:
            h = block(h)
        return h

    def forward(self, z, stage, alpha=1.0):
        if stage == 0 or alpha >= 1:
            return self.to_rgb[stage](self.features(z, stage))
        h = self.features(z, stage - 1)
        new = self.to_rgb[stage](self.blocks[stage - 1](h))
        old = F.upsample_nearest(self.to_rgb[stage - 1](h), 2)
        return alpha * new + (1 - alpha) * old


class Discriminator(Module):
    """D: an r_s x r_s image -> one score (N, 1), for the stage s it is called at."""

    def __init__(self, image_channels, width, group_size, stages):
        super().__init__()
        c = [channels(FIRST_RESOLUTION * 2 ** s, width) for s in range(stages)]
        self.from_rgb = ModuleList([Sequential(EqualizedConv2d(image_channels, c[s], 1), _lrelu())
                                    for s in range(stages)])
        self.blocks = ModuleList([                      # blocks[s - 1] takes r_s to r_{s-1}
            Sequential(EqualizedConv2d(c[s], c[s], 3, padding=1), _lrelu(),
                       EqualizedConv2d(c[s], c[s - 1], 3, padding=1), _lrelu(), AvgPool2d(2))
            for s in range(1, stages)])
        self.last = Sequential(
            MinibatchStd(group_size), EqualizedConv2d(c[0] + 1, c[0], 3, padding=1), _lrelu(), Flatten(),
            EqualizedLinear(16 * c[0], c[0]), _lrelu(), EqualizedLinear(c[0], 1, gain=1.0))

    def stage_modules(self, s):
        """The layers stage s adds: (fromRGB_0, last) at 4x4, (block_s, fromRGB_s) after."""
        return [self.last if s == 0 else self.blocks[s - 1], self.from_rgb[s]]

    def forward(self, x, stage, alpha=1.0):
        h = self.from_rgb[stage](x)
        if stage > 0:
            h = self.blocks[stage - 1](h)
            if alpha < 1:
                h = alpha * h + (1 - alpha) * self.from_rgb[stage - 1](F.avg_pool2d(x, 2))
            for block in reversed(list(self.blocks[:stage - 1])):
                h = block(h)
        return self.last(h)


# --- the model ---------------------------------------------------------------------

@register("progan", kind="implicit", section="7. GAN",
          summary="progressive growing from 4x4 with fade-in, WGAN-GP + drift, PixelNorm, minibatch std, "
                  "equalized learning rate, EMA generator",
          tested="at alpha = 0 G is exactly the upsampled old output and its new block gets no gradient; reals"
                 " faded like fakes; growing keeps every parameter and Adam moment; resume mid-fade to the bit")
class ProGAN(AdversarialModel):
    default_steps = 1250
    default_batch_size = 64

    def __init__(self, image_shape=(1, 8, 8), latent_dim=32, width=32, max_resolution=None,
                 fade_images=8000, stable_images=16000, group_size=4, gp_weight=10.0, drift=0.001,
                 ema_decay=0.999, ema_warmup=True, lr=6e-3, betas=(0.0, 0.99), lr_half_life=0):
        super().__init__(image_shape=image_shape, latent_dim=latent_dim, loss="wgan", gp_weight=gp_weight,
                         gp_target=1.0, n_critic=1, lr=lr, betas=betas, lr_half_life=lr_half_life)
        self.width = _positive(width, "width", "progan")
        self.fade_images = _positive(fade_images, "fade_images", "progan")
        self.stable_images = _positive(stable_images, "stable_images", "progan")
        self.group_size = check_group_size(group_size, "progan")
        self.drift = _not_negative(drift, "drift", "progan", "no drift term")
        c, h, w = self.image_shape
        self.padded_size = 2 ** math.ceil(math.log2(max(h, w, FIRST_RESOLUTION)))
        self.max_resolution = self._check_max_resolution(max_resolution)
        self.stages = int(math.log2(self.max_resolution // FIRST_RESOLUTION)) + 1
        self.register_buffer("images_seen", Tensor._make(np.zeros((), np.int64)))
        self.register_buffer("stage", Tensor._make(np.zeros((), np.int64)))
        self.register_buffer("growth_samples", Tensor._make(np.zeros((self.stages, GROWTH_SAMPLES, c, h, w),
                                                                     np.float32)))
        self.generator = Generator(self.latent_dim, c, self.width, self.stages)
        self.discriminator = Discriminator(c, self.width, self.group_size, self.stages)
        self.generator_ema = Generator(self.latent_dim, c, self.width, self.stages)
        self.generator_ema.load_state_dict(self.generator.state_dict())
        self.generator_ema.requires_grad_(False)      # G_bar is averaged, never trained
        self.ema = EMA(self.generator, ema_decay)
        self.ema_decay, self.ema_warmup = self.ema.decay, bool(ema_warmup)
        self.make_optimizers()

    def _check_max_resolution(self, r):
        p = self.padded_size
        if r is None:
            return p
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < FIRST_RESOLUTION or r & (r - 1):
            raise ValueError(f"progan: max_resolution must be a power of two >= {FIRST_RESOLUTION}, got {r!r}")
        if r > p:
            raise ValueError(f"progan: max_resolution {r} would grow past the data's resolution: images "
                             f"{self.image_shape} are padded to {p}x{p}, so the model grows to {p} at most")
        return int(r)

    def make_optimizers(self):
        """Adam for each player, one param group per stage: a stage's layers take no gradient before
        it begins, so Adam leaves them and their state alone; the earlier stages' moments carry on."""
        for name in ("generator", "discriminator"):
            net = getattr(self, name)
            groups = [{"params": [p for m in net.stage_modules(s) for p in m.parameters()]}
                      for s in range(self.stages)]
            self.optimizers[name] = Adam(groups, lr=self.lr if name == "generator" else self.d_lr,
                                         betas=self.betas)

    def check_batch_size(self, n):
        """A training batch must split into the minibatch-std groups (the command line asks before a run)."""
        check_batch_for_groups(int(n), self.group_size, "progan")

    # --- where the schedule stands ----------------------------------------------------
    @property
    def resolution(self):
        """r_s, the side of the images both players work at now."""
        return FIRST_RESOLUTION * 2 ** int(self.stage.data)

    @property
    def alpha(self):
        """The fade-in weight of the newest blocks now (1 outside a fade, and at the end of a stage
        whose images are done but whose successor has not begun)."""
        stage, alpha = self._scheduled()
        return alpha if stage == int(self.stage.data) else 1.0

    def _scheduled(self):
        return schedule(int(self.images_seen.data), self.stages, self.fade_images, self.stable_images)

    def follow_schedule(self):
        """Move to the schedule's stage, keeping the samples of each stage that ends (growth.png)."""
        while int(self.stage.data) < self._scheduled()[0]:
            self.growth_samples.data[int(self.stage.data)] = self.eval_sample(GROWTH_SAMPLES).data
            self.growth_samples._bump_version()
            self.stage.data[...] = int(self.stage.data) + 1
            self.stage._bump_version()

    # --- the players at the current stage and alpha -------------------------------------
    def generate(self, latent):
        return self.generator(latent, int(self.stage.data), self.alpha)

    def discriminate(self, x):
        return F.reshape(self.discriminator(x, int(self.stage.data), self.alpha), (x.shape[0],))

    def reals(self, x):
        """The real batch (model range, the data's shape) as D sees it: padded to P x P with -1 (black),
        average-pooled to r_s, and faded: alpha x + (1 - alpha) upsample(avgpool(x))."""
        _, _, h, w = x.shape
        p, r = self.padded_size, self.resolution
        if (h, w) != (p, p):
            top, left = (p - h) // 2, (p - w) // 2
            x = F.pad(x, ((0, 0), (0, 0), (top, p - h - top), (left, p - w - left)), value=-1.0)
        if p > r:
            x = F.avg_pool2d(x, p // r)
        a = self.alpha
        if a < 1:
            x = a * x + (1 - a) * F.upsample_nearest(F.avg_pool2d(x, 2), 2)
        return x

    def full_size(self, y):
        """G's r_s x r_s output as an image of the data's shape: upsampled to P x P, then cropped."""
        _, h, w = self.image_shape
        p = self.padded_size
        if p > y.shape[2]:
            y = F.upsample_nearest(y, p // y.shape[2])
        top, left = (p - h) // 2, (p - w) // 2
        return y if (h, w) == (p, p) else y[:, :, top:top + h, left:left + w]

    # --- one training step ------------------------------------------------------------
    def discriminator_terms(self, real, fake, latent):
        real_logits = self.discriminate(real)
        terms = self.adversarial_terms(real_logits, self.discriminate(fake), real, fake)
        terms["drift"] = self.drift * F.mean(real_logits * real_logits)
        return terms

    def discriminator_step(self, real):
        return super().discriminator_step(self.reals(real))

    def train_step(self, batch):
        """One D step and one G step at the current stage and alpha; then G_bar follows G, the
        images are counted, and the stage moves on when that count says so."""
        x = self.check_data(batch)
        self.check_batch_size(x.shape[0])
        losses = super().train_step(x)
        if self.ema_warmup:   # decay_t = min(0.999, (1 + t) / (10 + t)): see "Sampling" above
            t = self.ema.num_updates
            self.ema.decay = min(self.ema_decay, (1 + t) / (10 + t))
        self.ema.update()
        self.ema.copy_to(self.generator_ema)
        self.images_seen.data[...] = int(self.images_seen.data) + x.shape[0]
        self.images_seen._bump_version()
        self.follow_schedule()
        return losses

    # --- sampling: G_bar at the data's shape ------------------------------------------------
    def _sample(self, latent):
        with no_grad():
            y = self.full_size(self.generator_ema(latent, int(self.stage.data), self.alpha))
            return F.clip(self.to_data_range(y), 0.0, 1.0)     # G's output is linear: clip to the data's range

    def pictures(self, batch, labels=None):
        """{"growth": one column per resolution reached, the same 8 noise vectors down each column}."""
        self.check_data(batch)
        s = int(self.stage.data)
        columns = np.concatenate([self.growth_samples.numpy()[:s], self.eval_sample(GROWTH_SAMPLES).numpy()[None]])
        images = columns.transpose(1, 0, 2, 3, 4).reshape((-1,) + self.image_shape)   # row i: sample i
        grid = make_grid(images, nrow=s + 1, scale=max(1, 32 // max(self.image_shape[1:])))
        return {"growth": grid[..., 0] if grid.shape[2] == 1 else grid}

    # --- checkpoints: the moving average too -------------------------------------------------
    def training_state(self):
        state = super().training_state()
        state["ema"] = self.ema.state_dict()
        return state

    def load_training_state(self, state):
        super().load_training_state(state)
        self.ema.load_state_dict(state["ema"])
