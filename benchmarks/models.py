"""Every registered model's training step beside the same network in PyTorch CPU, checked, then timed.

    python benchmarks/models.py [--threads 1] [--models nade,pixelcnn] [--rounds 5] [--markdown] [--size 28]
    python benchmarks/models.py --device cuda [--no-check]      # both sides on one GPU

One row per registered model (two for PixelRNN: row_lstm and diagonal_bilstm), each at
its default options and default batch size, on 8x8 images:

1. The twin (``_twins.py``): the same network written in PyTorch, built from the
   tinygen model's own weights, copied in by name. The names, the shapes and the
   parameter counts are asserted equal, so no layer is missing on either side. The
   twin's optimizers are PyTorch's Adam over the same parameters, with each tinygen
   optimizer's own groups and options (lr, betas, eps, weight_decay).
2. The check, in float64 on both sides: one ``train_step`` of tinygen and one step of
   the twin (for a model with ``n_critic`` > 1 a whole beat: n D steps, the last with
   its G step) from the same weights, on the same batch and the same noise. Every
   draw tinygen makes goes through ``tinygen.backend.generator``; ``recording`` logs
   each one (kind, array) and ``Replay`` hands them to the twin in order, checking
   kind and shape, so latents, reparameterisation noise, prior draws, gradient-penalty
   weights, permutations and the host-side caption bookkeeping all agree. A
   several-phase step (the GANs, the AAE) is mirrored phase by phase, so each
   parameter's gradient is the one of its own last phase (D's from the D step; G's
   from the G step, after D's update), and

       rel = max over parameters of  max |g_tinygen - g_torch| / max |g_torch|

   must stay below ``TOLERANCE``, and the first reported losses agree as closely;
   a row that fails is left out of the table and named under it. Dropout would
   draw different masks through the two libraries' own samplers, so PixelCNN and
   PixelRNN are checked with dropout 0 (and timed with their default).
3. The timing, in float32 with fresh copies: tinygen steps and twin steps alternate
   in ``--rounds`` rounds in one process, so a burst of other work on the machine
   spoils a round of both sides, not one; each side's median ms per ``train_step``,
   their ratio, the ratio of the two sides' 10th percentiles (steadier where the
   machine's own speed drifts), and tinygen's minor page faults per step
   (``resource.getrusage``'s ru_minflt over its own timed steps). With ``n_critic`` > 1
   (StarGAN) the timed unit is a whole beat, divided by n. The last line is the median
   of the ratios.

Where a row needs a word:
- progan is moved to its last stage (8x8, alpha = 1) before the weights are copied:
  the whole network, as trained for most of a run; its twin runs that stage only
  and averages G into G_bar in place after each step (what EMA + copy_to compute).
- text2image: the wrong captions and the GAN-INT pairs are chosen on the host by
  tinygen's own NumPy code on token ids on both sides (the same small work); the
  twin is the network, the losses and the optimizers.
- the learning-rate schedules are left out on the torch side: they change the
  values of the updates, not the work of a step.
``--markdown`` prints the table as Markdown for the README.

``--device cuda`` (or cuda:N) times both sides on that GPU: tinygen on CuPy, the twin on
PyTorch's CUDA, the same float32 weights and batch moved there after the check (which
stays on the CPU in float64: it is about the networks being the same), each step's time
taken with the device synchronised after it, PyTorch's TF32 off (CuPy's cuBLAS does not
use it either). The minor page faults are the host's. ``--no-check`` skips the float64
check (a GPU session's minutes are few; the check is the same on every machine).
"""
import argparse
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import tinygen  # noqa: E402
from _timing import blas_kernels, gemm_rate, limit_threads, print_table  # noqa: E402

TOLERANCE = 1e-9        # float64 on both sides: what is left is the order of summation


# --- parameters: matched by name, copied across ---------------------------------------------------
def matched_parameters(model, twin):
    """[(name, tinygen parameter, torch parameter)]; asserts the same names, shapes and counts."""
    ours = dict(model.named_parameters())
    theirs = dict(twin.named_parameters())
    assert set(ours) == set(theirs), (f"names differ: only tinygen {sorted(set(ours) - set(theirs))}, "
                                      f"only torch {sorted(set(theirs) - set(ours))}")
    for name, p in ours.items():
        assert tuple(p.shape) == tuple(theirs[name].shape), f"{name}: {p.shape} vs {tuple(theirs[name].shape)}"
    n_ours, n_theirs = sum(p.size for p in ours.values()), sum(p.numel() for p in theirs.values())
    assert n_ours == n_theirs, f"{n_ours} parameters in tinygen, {n_theirs} in torch"
    return [(name, ours[name], theirs[name]) for name in ours]


def copy_weights(torch, pairs):
    with torch.no_grad():
        for _, ours, theirs in pairs:
            theirs.copy_(torch.from_numpy(np.asarray(ours.data)))


def mirror_optimizers(torch, model, pairs):
    """PyTorch Adam for each of the model's optimizers: the same parameters, groups and options."""
    to_torch = {id(ours): theirs for _, ours, theirs in pairs}
    mirrored = {}
    for key, opt in model.optimizers.items():
        assert type(opt).__name__ == "Adam", f"{key}: {type(opt).__name__} has no mirror here"
        groups = [dict(params=[to_torch[id(p)] for p in g["params"]], lr=g["lr"], betas=tuple(g["betas"]),
                       eps=g["eps"], weight_decay=g["weight_decay"]) for g in opt.param_groups]
        mirrored[key] = torch.optim.Adam(groups)
    return mirrored


# --- noise: what tinygen drew, fed to the twin -----------------------------------------------------
DRAWS = ("standard_normal", "random", "integers", "uniform", "normal", "permutation")


class RecordedDraw:
    def __init__(self, draw, name, log):
        self.draw, self.name, self.log = draw, name, log

    def __call__(self, *args, **kwargs):
        out = self.draw(*args, **kwargs)
        self.log.append((self.name, np.array(out)))
        return out


class RecordingGenerator:
    """A NumPy generator whose draws (``DRAWS``) are also appended to ``log`` as (kind, array)."""

    def __init__(self, generator, log):
        self.generator, self.log = generator, log

    def __getattr__(self, name):
        attr = getattr(self.generator, name)
        return RecordedDraw(attr, name, self.log) if name in DRAWS else attr


class recording:
    """``with recording(log):`` every random draw of tinygen (all go through
    ``tinygen.backend.generator``) is logged in order, values unchanged."""

    def __init__(self, log):
        self.log = log

    def __call__(self, device="cpu"):
        return RecordingGenerator(self.saved(device), self.log)

    def __enter__(self):
        self.saved, tinygen.backend.generator = tinygen.backend.generator, self
        return self.log

    def __exit__(self, *exc):
        tinygen.backend.generator = self.saved


class Replay:
    """The twin's noise in the check: tinygen's draws, in order, checked for kind and shape.
    ``noise(shape, kind)`` gives a torch tensor; ``noise.host()`` a stand-in for a NumPy
    generator (the draws of tinygen's host-side bookkeeping: wrong captions, pairs)."""

    def __init__(self, torch, log):
        self.torch, self.log = torch, list(log)

    def _next(self, kind, shape=None):
        assert self.log, f"the twin draws {kind}, tinygen drew nothing more"
        drawn, a = self.log.pop(0)
        assert drawn == kind and (shape is None or a.shape == tuple(shape)), \
            f"tinygen drew {drawn} {a.shape}, the twin wants {kind} {shape}"
        return a

    def __call__(self, shape, kind="standard_normal", low=0, high=1):
        return self.torch.from_numpy(self._next(kind, shape))

    def host(self):
        return self

    def random(self, *args, **kwargs):
        return self._next("random")

    def integers(self, *args, **kwargs):
        return self._next("integers")

    def permutation(self, *args, **kwargs):
        return self._next("permutation")


# --- the twins' steps: tinygen's train_step, in PyTorch ---------------------------------------------
def binary_batch(shape, n, dtype):
    return (np.random.default_rng(1).random((n,) + shape) < 0.4).astype(dtype)


def image_batch(shape, n, dtype):
    return np.random.default_rng(1).random((n,) + shape).astype(dtype)


def descend(opt, loss):
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def explicit_step(torch, model, twin, opts, x):
    """Adam on -1/N sum_n log p(x_n)."""
    return lambda noise: descend(opts["main"], -twin.log_prob(x).mean())


def vae_step(torch, model, twin, opts, x):
    """Adam on -ELBO, one reparameterised draw (tinygen's Normal draws eps in float64, then casts)."""
    shape = (1, x.shape[0], model.latent_dim)
    return lambda noise: descend(opts["main"], twin.loss(x, noise(shape).to(x.dtype)))


def prior_draw(noise, shape, dtype):
    """tinygen's Gaussian prior: float64 draws rounded to float32, then the model's dtype."""
    return noise(shape).float().to(dtype)


def wae_step(torch, model, twin, opts, x):
    """Adam on mean c(x, Q(x)) + lambda MMD_u^2(Q(x), z'), z' ~ p(z)."""
    import _twins
    from tinygen.metrics import WAE_SCALES

    def step(noise):
        z = twin.encoder(x)
        penalty = _twins.imq_mmd(z, prior_draw(noise, z.shape, x.dtype), WAE_SCALES)
        return descend(opts["main"], twin.reconstruction_cost(x, z).mean() + model.penalty * penalty)
    return step


def aae_step(torch, model, twin, opts, x):
    """The three phases: reconstruction (Q, G), D on prior draws vs encodings, Q against D frozen."""
    F = torch.nn.functional
    D = twin.discriminator

    def step(noise):
        loss = descend(opts["autoencoder"], twin.reconstruction_cost(x, twin.encoder(x)).mean())
        with torch.no_grad():
            fake = twin.encoder(x)
        real = prior_draw(noise, fake.shape, x.dtype)
        descend(opts["discriminator"], F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean())
        D.requires_grad_(False)
        descend(opts["encoder"], F.softplus(-D(twin.encoder(x))).mean())
        D.requires_grad_(True)
        return loss
    return step


def gan_step(torch, model, twin, opts, x):
    """The non-saturating GAN: D on real (2x - 1) vs fakes made without a graph, then G with D frozen."""
    F = torch.nn.functional
    G, D = twin.generator, twin.discriminator
    real, shape = 2 * x - 1, (x.shape[0], model.latent_dim)

    def step(noise):
        with torch.no_grad():
            fake = G(noise(shape).to(x.dtype))
        loss = descend(opts["discriminator"], F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean())
        D.requires_grad_(False)
        descend(opts["generator"], F.softplus(-D(G(noise(shape).to(x.dtype)))).mean())
        D.requires_grad_(True)
        return loss
    return step


def infogan_latent(torch, model, noise, n, dtype):
    """(G's input z ++ onehot(c) ++ u, c, u), drawn in tinygen's order: z, then c, then u."""
    z = noise((n, model.noise_dim)).to(dtype)
    c = noise((n,), "integers", 0, model.categories)
    u = noise((n, model.continuous), "uniform", -1, 1).to(dtype)
    onehot = torch.nn.functional.one_hot(c, model.categories).to(dtype)
    return torch.cat([z, onehot, u], dim=1), c, u


def infogan_information(torch, model, D, h_fake, c, u):
    """-lambda (I_cat + mu_c I_cont) from Q's head on the fakes' body features."""
    import math
    out = D.q_head(h_fake)
    logits, means = out[:, :model.categories], out[:, model.categories:]
    i_cat = math.log(model.categories) - torch.nn.functional.cross_entropy(logits, c)
    d = u - means
    i_cont = model.continuous * (math.log(2) - 0.5 * math.log(2 * math.pi)) - 0.5 * (d * d).sum() / d.shape[0]
    return -model.info_weight * (i_cat + model.continuous_weight * i_cont)


def infogan_step(torch, model, twin, opts, x):
    """The GAN step with -lambda L_I added to both players' losses (Q's head steps with D)."""
    F = torch.nn.functional
    G, D = twin.generator, twin.discriminator
    real, n = 2 * x - 1, x.shape[0]

    def step(noise):
        latent, c, u = infogan_latent(torch, model, noise, n, x.dtype)
        with torch.no_grad():
            fake = G(latent)
        h_fake = D.body(fake)
        loss_d = F.softplus(-D(real)).mean() + F.softplus(D.d_head(h_fake)).mean()
        descend(opts["discriminator"], loss_d + infogan_information(torch, model, D, h_fake, c, u))
        D.requires_grad_(False)
        latent, c, u = infogan_latent(torch, model, noise, n, x.dtype)
        h_fake = D.body(G(latent))
        descend(opts["generator"], F.softplus(-D.d_head(h_fake)).mean()
                + infogan_information(torch, model, D, h_fake, c, u))
        D.requires_grad_(True)
        return loss_d.detach()                      # tinygen reports L_D first
    return step


def unpaired_batch(shape, n, dtype):
    """(images of A, images of B) in [0, 1]."""
    rng = np.random.default_rng(1)
    return tuple(rng.random((n,) + shape).astype(dtype) for _ in range(2))


def l1(x, y):
    return (x - y).abs().mean()


def cyclegan_step(torch, model, twin, opts, batch):
    """G and F on the least-squares terms (x2), cycle and identity L1 with D_A, D_B frozen; then
    D_A and D_B on real images against the fakes through a buffer each."""
    import _twins
    a, b = (2 * x - 1 for x in batch)
    pools = _twins.ImagePool(model.pool_a.size), _twins.ImagePool(model.pool_b.size)
    d_a, d_b, g_ab, g_ba = twin.d_a, twin.d_b, twin.g_ab, twin.g_ba

    def step(noise):
        d_a.requires_grad_(False)
        d_b.requires_grad_(False)
        fake_b, fake_a = g_ab(a), g_ba(b)
        gen_ab = 2 * (0.5 * ((d_b(fake_b) - 1) ** 2).mean())
        loss = (gen_ab + 2 * (0.5 * ((d_a(fake_a) - 1) ** 2).mean())
                + model.cycle_weight * (l1(g_ba(fake_b), a) + l1(g_ab(fake_a), b))
                + model.identity_weight * (l1(g_ab(b), b) + l1(g_ba(a), a)))
        descend(opts["generator"], loss)
        d_a.requires_grad_(True)
        d_b.requires_grad_(True)
        fa, fb = pools[0].query(fake_a.detach(), noise), pools[1].query(fake_b.detach(), noise)
        descend(opts["discriminator"], 0.5 * ((d_a(a) - 1) ** 2).mean() + 0.5 * (d_a(fa) ** 2).mean()
                + 0.5 * ((d_b(b) - 1) ** 2).mean() + 0.5 * (d_b(fb) ** 2).mean())
        return gen_ab.detach()
    return step


def captioned_batch(shape, n, dtype):
    """(images in [0, 1], tokens, lengths): captions of random digits, written as the data writes them."""
    from tinygen.data import CAPTION_VOCABULARY
    from tinygen.models._text_encoder import random_captions
    rng = np.random.default_rng(1)
    tokens, lengths = CAPTION_VOCABULARY.encode_batch(random_captions(rng.integers(10, size=n), rng))
    return rng.random((n,) + shape).astype(dtype), tokens, lengths


def text2image_step(torch, model, twin, opts, batch):
    """GAN-CLS: D (with its text encoder) on right, wrong and fake pairs; then G on the batch's captions
    and on interpolated ones (GAN-INT), D frozen. The host-side choice of wrong captions and pairs is
    tinygen's own code (NumPy on token ids: the same work on both sides)."""
    from tinygen.models._text_encoder import join_tokens
    from tinygen.models.text2image import BETA, interpolation_pairs
    F = torch.nn.functional
    x, tokens, lengths = batch
    tokens, lengths = tokens.numpy(), lengths.numpy()
    G, D = twin.generator, twin.discriminator
    real, n, nd = 2 * x - 1, x.shape[0], model.latent_dim

    def step(noise):
        both = join_tokens((tokens, lengths), model.wrong_captions(tokens, lengths, noise.host()))
        phi_both = D.encode(*both)
        phi, phi_wrong = phi_both[:n], phi_both[n:]
        z = noise((n, nd)).to(x.dtype)
        with torch.no_grad():
            fake = G(z, phi.detach())
        a_r, a_w, a_f = D(real, phi), D(real, phi_wrong), D(fake, phi)
        loss = descend(opts["discriminator"], F.softplus(-a_r).mean()
                       + 0.5 * (F.softplus(a_w).mean() + F.softplus(a_f).mean()))
        D.requires_grad_(False)
        phi = D.encode(tokens, lengths)
        loss_g = F.softplus(-D(G(noise((n, nd)).to(x.dtype), phi), phi)).mean()
        first, second = (torch.from_numpy(i).to(x.device) for i in interpolation_pairs(n, noise.host()))
        phi_int = BETA * phi[first] + (1 - BETA) * phi[second]
        a_i = D(G(noise((first.shape[0], nd)).to(x.dtype), phi_int), phi_int)
        descend(opts["generator"], loss_g + model.interp_weight * F.softplus(-a_i).mean())
        D.requires_grad_(True)
        return loss
    return step


def grown(model):
    """ProGAN moved to its last stage at alpha = 1 (the whole network; a step at 4x4 times a fraction of it)."""
    model.images_seen.data[...] = 10 ** 9
    model.follow_schedule()
    assert model.alpha == 1 and model.resolution == model.padded_size == model.image_shape[1] == model.image_shape[2]
    return model


def progan_step(torch, model, twin, opts, x):
    """WGAN-GP with drift at the last stage: D on mean a_f - mean a_r + GP + drift mean a_r^2, then G on
    -mean a_f with D frozen; then G_bar <- d G_bar + (1 - d) G, d = min(decay, (1 + t) / (10 + t))."""
    G, D, G_bar = twin.generator, twin.discriminator, twin.generator_ema
    stage, real, n = int(model.stage.data), 2 * x - 1, x.shape[0]
    shape, updates = (n, model.latent_dim), [0]

    def step(noise):
        with torch.no_grad():
            fake = G(noise(shape).to(x.dtype), stage)
        a_r, a_f = D(real, stage), D(fake, stage)
        a = noise((n, 1, 1, 1), "random").to(x.dtype)
        x_hat = (a * real + (1 - a) * fake).requires_grad_(True)
        g, = torch.autograd.grad(D(x_hat, stage).sum(), x_hat, create_graph=True)
        penalty = model.gp_weight * ((g.reshape(n, -1).pow(2).sum(1).sqrt() - model.gp_target) ** 2).mean()
        wasserstein = a_f.mean() - a_r.mean()
        descend(opts["discriminator"], wasserstein + penalty + model.drift * (a_r * a_r).mean())
        D.requires_grad_(False)
        descend(opts["generator"], -D(G(noise(shape).to(x.dtype), stage), stage).mean())
        D.requires_grad_(True)
        t = updates[0]
        d = min(model.ema_decay, (1 + t) / (10 + t)) if model.ema_warmup else model.ema_decay
        with torch.no_grad():
            for shadow, p in zip(G_bar.parameters(), G.parameters()):
                shadow.mul_(d).add_(p, alpha=1 - d)
        updates[0] += 1
        return wasserstein.detach()
    return step


def attributes_batch(shape, n, dtype):
    """(images in [0, 1], attribute vectors (N, 4) of thick, thin, rotated, inverted; never thick and thin)."""
    rng = np.random.default_rng(1)
    c = np.zeros((n, 4), dtype)
    c[np.arange(n), rng.integers(0, 3, n)] = 1            # thick, thin, or (column 2, overwritten) neither
    c[:, 2:] = rng.integers(0, 2, (n, 2))
    return rng.random((n,) + shape).astype(dtype), c


def critic_penalty(torch, critic, real, fake, a, weight):
    """WGAN-GP: weight mean (||grad critic(x_hat)|| - 1)^2, x_hat = a real + (1 - a) fake (a new leaf)."""
    x_hat = (a * real + (1 - a) * fake).requires_grad_(True)
    g, = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return weight * ((g.reshape(g.shape[0], -1).pow(2).sum(1).sqrt() - 1) ** 2).mean()


def stargan_step(torch, model, twin, opts, batch):
    """D on the WGAN critic of real vs G(x, c') + lambda_cls BCE(D_cls(x), c) + GP, c' a permutation of the
    batch's c; every n_critic-th call then G on -D_src(x_f) + lambda_cls BCE(D_cls(x_f), c') + the L1
    reconstruction and identity terms, D frozen."""
    F = torch.nn.functional
    x, c = batch
    x, n, D, calls = 2 * x - 1, x.shape[0], twin.discriminator, [0]

    def bce(logits, target):
        return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / n

    def step(noise):
        target = c[noise((n,), "permutation")]
        with torch.no_grad():
            fake = twin.generate(x, target)
        (src_real, cls_real), (src_fake, _) = D(x), D(fake)
        penalty = critic_penalty(torch, D.critic, x, fake, noise((n, 1, 1, 1), "random").to(x.dtype),
                                 model.gp_weight)
        wasserstein = src_fake.mean() - src_real.mean()
        descend(opts["discriminator"], wasserstein + model.cls_weight * bce(cls_real, c) + penalty)
        calls[0] += 1
        if calls[0] % model.n_critic == 0:
            D.requires_grad_(False)
            fake = twin.generate(x, target)
            src_fake, cls_fake = D(fake)
            descend(opts["generator"], -src_fake.mean() + model.cls_weight * bce(cls_fake, target)
                    + model.rec_weight * l1(twin.generate(fake, c), x)
                    + model.identity_weight * l1(twin.generate(x, c), x))
            D.requires_grad_(True)
        return wasserstein.detach()
    return step


def twin_of(name, model):
    """The twin network of a built tinygen model (float32, weights still to be copied)."""
    import _twins
    if name == "bernoulli":
        return _twins.Bernoulli(model.image_shape)
    if name == "fvsbn":
        return _twins.FVSBN(model.d)
    if name == "nade":
        return _twins.NADE(model.d, model.hidden_size)
    if name == "pixelcnn":
        return _twins.PixelCNN(model.hidden, model.blocks_count, model.first_kernel, model.head1.weight.shape[0],
                               model.dropout)
    if name == "pixelrnn":
        return _twins.PixelRNN(model.variant, model.hidden, model.layers_count, model.first_kernel,
                               model.head1.weight.shape[0], model.dropout)
    if name == "vae":
        return _twins.VAE(model.image_shape, model.latent_dim, model.hidden_size)
    if name in ("aae", "wae"):
        disc = model.discriminator[0].weight.shape[0] if name == "aae" else None
        return _twins.LatentAutoencoder(model.image_shape, model.latent_dim, model.hidden_size, disc)
    if name == "gan":
        return _twins.MLPGAN(model.image_shape, model.latent_dim, model.hidden_size)
    if name == "dcgan":
        return _twins.Players(*_twins.dcgan_networks(model.latent_dim, model.image_shape, model.width))
    if name == "infogan":
        code = (model.noise_dim, model.noise_dim + model.categories)
        D = _twins.SharedBodyDiscriminator(model.image_shape, model.width, model.shared_hidden,
                                           model.discriminator.q_head[0].weight.shape[0],
                                           model.categories + model.continuous)
        return _twins.Players(_twins.CodedGenerator(model.latent_dim, code, model.image_shape, model.width), D)
    if name == "cyclegan":
        return _twins.CycleGAN(model.image_shape, model.width, model.blocks, model.d_width)
    if name == "text2image":
        d, g = model.discriminator, model.generator
        encoder = _twins.BagEncoder(*d.encoder.embedding.weight.shape)
        text_proj = g.project[0].weight.shape[0]
        return _twins.Players(
            _twins.TextConditionedGenerator(model.latent_dim, d.encoder.dim, text_proj, model.image_shape,
                                            model.width),
            _twins.TextConditionedDiscriminator(encoder, text_proj, model.image_shape, model.width))
    if name == "progan":
        return _twins.ProGAN(model.latent_dim, model.image_shape[0], model.width, model.group_size, model.stages)
    if name == "stargan":
        return _twins.StarGAN(model.image_shape, len(model.attribute_names), model.width, model.blocks,
                              model.d_width, getattr(model, "src_depth", 2), model.generator_kind == "small")
    raise KeyError(name)


# row -> (registered model, build options, the twin's step, the batch)
ROWS = {
    "bernoulli": ("bernoulli", {}, explicit_step, binary_batch),
    "fvsbn": ("fvsbn", {}, explicit_step, binary_batch),
    "nade": ("nade", {}, explicit_step, binary_batch),
    "pixelcnn": ("pixelcnn", {}, explicit_step, binary_batch),
    "pixelrnn row_lstm": ("pixelrnn", {"variant": "row_lstm"}, explicit_step, binary_batch),
    "pixelrnn diagonal_bilstm": ("pixelrnn", {"variant": "diagonal_bilstm"}, explicit_step, binary_batch),
    "vae": ("vae", {}, vae_step, binary_batch),
    "aae": ("aae", {}, aae_step, binary_batch),
    "wae": ("wae", {}, wae_step, binary_batch),
    "gan": ("gan", {"image_shape": (1, 8, 8)}, gan_step, image_batch),
    "dcgan": ("dcgan", {}, gan_step, image_batch),
    "infogan": ("infogan", {}, infogan_step, image_batch),
    "text2image": ("text2image", {}, text2image_step, captioned_batch),
    "cyclegan": ("cyclegan", {}, cyclegan_step, unpaired_batch),
    "stargan": ("stargan", {}, stargan_step, attributes_batch),
    "progan": ("progan", {}, progan_step, image_batch),
}
DROPOUT_MODELS = ("pixelcnn", "pixelrnn")
IMAGE_SIDE = [8]                  # --size: the side of the square images every row is built for
PREPARE = {"progan": grown}       # a model put in the state it is timed in, before the weights are copied


def build_pair(torch, row, dtype, check, device=None):
    """(model, batch for train_step, twin, matched pairs, the twin's step(noise)); with ``device``
    (a ``Device``) both networks and the batch's images moved there after the weights are copied."""
    name, options, make_step, make_batch = ROWS[row]
    options = dict(options)
    if IMAGE_SIDE[0] != 8:
        options["image_shape"] = (1, IMAGE_SIDE[0], IMAGE_SIDE[0])
    if check and name in DROPOUT_MODELS:
        options["dropout"] = 0.0                        # each side would draw its own masks
    tinygen.manual_seed(0)
    model = tinygen.models.build(name, **options)
    model = PREPARE.get(name, lambda m: m)(model)
    twin = twin_of(name, model)
    if dtype == np.float64:
        model.double()
        twin.double()
    pairs = matched_parameters(model, twin)
    copy_weights(torch, pairs)
    ours_at, theirs_at = ("cpu", "cpu") if device is None else (device.tinygen, device.torch)
    if device is not None:
        model.to(ours_at)
        twin.to(theirs_at)
    x = make_batch(model.image_shape, model.default_batch_size, dtype)
    # images go to the device; token ids and lengths stay on the host on both sides (host-side bookkeeping)
    if isinstance(x, tuple):
        ours = tuple(tinygen.tensor(a, device=ours_at) if a.dtype.kind == "f" else a for a in x)
        theirs = tuple(torch.from_numpy(a).to(theirs_at) if a.dtype.kind == "f" else torch.from_numpy(a) for a in x)
    else:
        ours, theirs = tinygen.tensor(x, device=ours_at), torch.from_numpy(x).to(theirs_at)
    step = make_step(torch, model, twin, mirror_optimizers(torch, model, pairs), theirs)
    return model, ours, twin, pairs, step


def check_gradients(torch, row):
    """(max relative gradient difference of the first step in float64, the two first-phase losses)."""
    model, batch, twin, pairs, step = build_pair(torch, row, np.float64, check=True)
    calls = getattr(model, "n_critic", 1)        # a whole beat: the G step comes after the n-th D step
    with recording([]) as log:
        losses = [model.train_step(batch) for _ in range(calls)][-1]
    replay = Replay(torch, log)
    loss_theirs = [float(step(replay)) for _ in range(calls)][-1]
    assert not replay.log, f"{row}: the twin used {len(log) - len(replay.log)} of tinygen's {len(log)} draws"
    worst = 0.0
    for name, ours, theirs in pairs:
        if theirs.grad is None and ours.grad is None:
            continue
        assert ours.grad is not None and theirs.grad is not None, f"{row}: only one side has a gradient for {name}"
        g, h = np.asarray(ours.grad.data), theirs.grad.numpy()
        worst = max(worst, float(np.abs(g - h).max() / max(np.abs(h).max(), 1e-300)))
    loss_ours = next(iter(losses.values()))
    assert abs(loss_ours - loss_theirs) <= TOLERANCE * max(1.0, abs(loss_ours)), \
        f"{row}: first losses differ, {loss_ours!r} here, {loss_theirs!r} in torch"
    return worst, loss_ours, loss_theirs


# --- timing -------------------------------------------------------------------------------------------
def timed_steps(fn, count, sync=None):
    """Seconds of each of ``count`` calls of fn, the device synchronised after each (``sync``)."""
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        times.append(time.perf_counter() - t0)
    return times


SETTLE = [0.0]   # seconds of rest before each side's round (main: with more than one thread)


def alternate(ours, theirs, rounds, round_time=0.25, syncs=(None, None)):
    """(median s/step of ours, of theirs, minor page faults per step of ours, 10th percentile of
    ours, of theirs), the two alternating. On a shared machine whose speed changes by a fifth
    from one minute to the next, the 10th percentiles (each side's steps when the machine was
    at its fastest) move less than the medians. With several threads each side rests
    ``SETTLE`` seconds first: both libraries' idle worker threads spin for a while after their
    last call (OpenBLAS's about 0.1 s), and on a 2-core machine the spinning pool of the side
    that just ran took a core from the first steps of the other. ``syncs``: each side's device
    synchronisation, run inside each step's time (None on the CPU)."""
    warm = [timed_steps(f, 2, sync)[-1] for f, sync in zip((ours, theirs), syncs)]
    counts = [max(3, min(200, int(round_time / max(t, 1e-6)))) for t in warm]
    t_ours, t_theirs, faults = [], [], 0
    for _ in range(rounds):
        time.sleep(SETTLE[0])
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t_ours += timed_steps(ours, counts[0], syncs[0])
        faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        time.sleep(SETTLE[0])
        t_theirs += timed_steps(theirs, counts[1], syncs[1])
    return (float(np.median(t_ours)), float(np.median(t_theirs)), faults / len(t_ours),
            float(np.percentile(t_ours, 10)), float(np.percentile(t_theirs, 10)))


class Repeated:
    """``fn(arg)`` ``calls`` times: the unit that is timed (a whole n_critic beat of D steps and the G step)."""

    def __init__(self, fn, arg, calls):
        self.fn, self.arg, self.calls = fn, arg, calls

    def __call__(self):
        for _ in range(self.calls):
            self.fn(self.arg)


def time_row(torch, row, rounds, device=None):
    """(batch, s per train_step of tinygen, of the twin, minor faults per tinygen train_step, the ratio
    of the 10th percentiles), float32, on the CPU or on ``device`` (a ``Device``)."""
    import _twins
    model, batch, twin, pairs, step = build_pair(torch, row, np.float32, check=False, device=device)
    model.train()
    twin.train()
    calls = getattr(model, "n_critic", 1)
    syncs, at = ((None, None), "cpu") if device is None else (device.syncs, device.torch)
    # the twin's draws where its network is (not torch.set_default_device: its mode slows every op)
    t_ours, t_theirs, faults, p_ours, p_theirs = alternate(
        Repeated(model.train_step, batch, calls), Repeated(step, _twins.TorchNoise(at), calls), rounds, syncs=syncs)
    return model.default_batch_size, t_ours / calls, t_theirs / calls, faults / calls, p_ours / p_theirs


class Device:
    """A GPU for both sides (``--device cuda``): tinygen's name for it, PyTorch's, each side's
    synchronisation and a line about it; exits with status 2, in one line, where either side has none.
    TF32 is switched off in PyTorch, so that both sides multiply in IEEE float32 (CuPy's cuBLAS
    does unless told otherwise)."""

    def __init__(self, torch, name):
        try:
            self.tinygen = tinygen.backend.normalize_device(name)
        except (RuntimeError, ValueError) as error:
            raise SystemExit(f"benchmarks/models.py: {error}") from None
        import cupy
        index = 0 if self.tinygen == "cuda" else int(self.tinygen[5:])
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            print(f"benchmarks/models.py: PyTorch {torch.__version__} sees no {self.tinygen}", file=sys.stderr)
            raise SystemExit(2)
        cupy.cuda.Device(index).use()
        torch.cuda.set_device(index)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        self.torch = torch.device("cuda", index)
        self.syncs = (cupy.cuda.Device(index).synchronize, torch.cuda.synchronize)
        self.about = (f"{torch.cuda.get_device_name(index)}; CuPy {cupy.__version__}, "
                      f"CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}; cuDNN {torch.backends.cudnn.version()}")


# --- the command line ---------------------------------------------------------------------------------
def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--models", default=None, help="comma-separated models or rows (pixelrnn: both variants)")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--size", type=int, default=8,
                        help="image side (default 8, the digits); e.g. --size 28 --models nade,pixelcnn,pixelrnn")
    parser.add_argument("--device", default="cpu",
                        help="cpu (default) or cuda / cuda:N: both sides' steps timed on that GPU (the "
                             "gradient check stays on the CPU, in float64)")
    parser.add_argument("--no-check", action="store_true",
                        help="time only, without the float64 gradient check (already passed on the CPU)")
    return parser.parse_args()


def selected_rows(models):
    if models is None:
        return list(ROWS)
    wanted = [m.strip() for m in models.split(",") if m.strip()]
    rows = [r for r in ROWS if r in wanted or ROWS[r][0] in wanted]
    unknown = [m for m in wanted if m not in ROWS and all(ROWS[r][0] != m for r in ROWS)]
    if unknown:
        raise SystemExit(f"no benchmark row for {', '.join(unknown)}; rows: {', '.join(ROWS)}")
    return rows


def print_markdown(rows, headers):
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")


def main():
    args = parse_args()
    IMAGE_SIDE[0] = args.size
    import torch
    torch.set_num_threads(args.threads or os.cpu_count())
    if args.threads:
        limit_threads(args.threads, torch)
    SETTLE[0] = 0.3 if (args.threads or os.cpu_count()) > 1 else 0.0
    device = None if args.device == "cpu" else Device(torch, args.device)
    table, ratios, fast_ratios, failed = [], [], [], []
    rate_before = gemm_rate()
    for row in selected_rows(args.models):
        rel = None
        if not args.no_check:
            try:
                rel, loss_ours, loss_theirs = check_gradients(torch, row)
            except Exception as e:              # a twin that does not match: reported, not timed
                failed.append(f"{row} ({type(e).__name__}: {e})")
                continue
            print(f"{row}: first-step gradients max rel diff {rel:.2e} (loss {loss_ours:.10g} vs "
                  f"{loss_theirs:.10g})", file=sys.stderr)
            if not rel <= TOLERANCE:
                failed.append(f"{row} (rel {rel:.2e})")
                continue
        try:
            batch, t_ours, t_theirs, faults, fast_ratio = time_row(torch, row, args.rounds, device)
        except Exception as e:                  # on a GPU: a row whose step fails is named, the rest go on
            if device is None:
                raise
            failed.append(f"{row} (timing on {args.device}: {type(e).__name__}: {e})")
            continue
        ratios.append(t_ours / t_theirs)
        fast_ratios.append(fast_ratio)
        table.append([row, batch, f"{t_ours * 1e3:.2f}", f"{t_theirs * 1e3:.2f}", f"{t_ours / t_theirs:.2f}",
                      f"{fast_ratio:.2f}", f"{faults:.0f}", "-" if rel is None else f"{rel:.1e}"])
    covered = {ROWS[r][0] for r in ROWS}
    where = (f"{args.threads or os.cpu_count()} thread(s) on {os.cpu_count()} cores" if device is None
             else f"both sides on {args.device} ({device.about})")
    print(f"{where}; numpy {np.__version__} ({blas_kernels()}); "
          f"torch {torch.__version__}; {args.size}x{args.size} images; float32 steps, gradients checked in float64; "
          f"float32 GEMM (2048 square) {rate_before / 1e9:.0f} GFLOP/s before the rows, {gemm_rate() / 1e9:.0f} after")
    headers = ["model", "batch", "tinygen ms/step", "pytorch ms/step", "ratio", "ratio of p10",
               "minor faults/step", "grad rel diff"]
    (print_markdown if args.markdown else print_table)(table, headers)
    if ratios:
        print(f"median ratio {float(np.median(ratios)):.2f} over {len(ratios)} rows "
              f"(of the 10th percentiles: {float(np.median(fast_ratios)):.2f})")
    if failed:
        print("left out: " + ", ".join(failed))
    missing = [m for m in tinygen.models.registered() if m not in covered]
    if missing and args.models is None:
        print("no twin yet: " + ", ".join(missing))


if __name__ == "__main__":
    main()
