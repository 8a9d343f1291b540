"""PyTorch twins of tinygen's networks, for the side-by-side benchmarks only (tinygen never imports torch).

A twin is the same network layer for layer, its parameters under the same names
where the two map one to one (``models.py`` copies tinygen's weights in by name and
asserts the names and counts equal), so that its first step's gradients can be
compared with tinygen's. The equations are the ones in each tinygen module's
docstring, written with PyTorch ops:

    binary density    log p(x) = sum_i [ x_i l_i - softplus(l_i) ]      (every explicit model)
    masked conv       y = conv2d(x, W * M) + b       M the raster mask A or B
    LSTM cell         [i f g o] = pre, c = sigmoid(f) c + sigmoid(i) tanh(g), h = sigmoid(o) tanh(c)
    Row LSTM          pre_r = x_proj[:, :, r] + conv1d(h_{r-1}, w_ss, padding 1)   over rows r
    Diagonal LSTM     pre_t = x_proj[..., t] + conv1d(pad_top(h_{t-1}), w_ss)      over skewed columns t
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class TorchNoise:
    """PyTorch's own draws, asked for as tinygen draws them: ``noise(shape, kind, low, high)`` with kind
    one of NumPy's generator methods (standard_normal, random, integers, uniform); float32, on ``device``."""

    def __init__(self, device="cpu"):
        self.numpy = np.random.default_rng(0)
        self.device = device

    def host(self):
        """The generator for host-side bookkeeping (NumPy's, as tinygen's)."""
        return self.numpy

    def __call__(self, shape, kind="standard_normal", low=0, high=1):
        at = self.device
        if kind == "integers":
            return torch.randint(low, high, shape, device=at)
        if kind == "uniform":
            return torch.empty(shape, device=at).uniform_(low, high)
        if kind == "permutation":
            return torch.randperm(shape[0], device=at)
        return torch.randn(shape, device=at) if kind == "standard_normal" else torch.rand(shape, device=at)


def bernoulli_log_prob(x, l):
    """log prod_i Bern(x_i; sigmoid(l_i)) per example (N,)."""
    return (x * l - F.softplus(l)).reshape(x.shape[0], -1).sum(1)


class Bernoulli(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(shape))

    def log_prob(self, x):
        return bernoulli_log_prob(x, self.logits)


class FVSBN(nn.Module):
    """l = a + x (W * M)^T, M strictly lower-triangular."""

    def __init__(self, d):
        super().__init__()
        self.a, self.W = nn.Parameter(torch.zeros(d)), nn.Parameter(torch.zeros(d, d))
        self.register_buffer("mask", torch.tril(torch.ones(d, d), diagonal=-1))

    def log_prob(self, x):
        flat = x.reshape(x.shape[0], -1)
        return bernoulli_log_prob(flat, F.linear(flat, self.W * self.mask, self.a))


class NADE(nn.Module):
    """a_d = c + sum_{j<d} x_j W[:, j] as a cumulative sum over shifted pixels (tinygen's ``logits``),
    l_d = b_d + V_d . sigmoid(a_d): O(N D H), PyTorch's cumsum."""

    def __init__(self, d, h):
        super().__init__()
        self.W, self.c = nn.Parameter(torch.zeros(h, d)), nn.Parameter(torch.zeros(h))
        self.V, self.b = nn.Parameter(torch.zeros(d, h)), nn.Parameter(torch.zeros(d))

    def log_prob(self, x):
        n, d = x.shape[0], self.b.shape[0]
        flat = x.reshape(n, d)
        x_before = F.pad(flat[:, :d - 1], (1, 0))                   # (N, D): x_{d-1}
        w_before = F.pad(self.W.t()[:d - 1], (0, 0, 1, 0))           # (D, H): W[:, d-1]
        A = torch.cumsum(x_before[:, :, None] * w_before, dim=1) + self.c
        l = (torch.sigmoid(A) * self.V).sum(2) + self.b
        return bernoulli_log_prob(flat, l)


def causal_mask(kh, kw, mask_type):
    m = np.zeros((kh, kw), dtype=np.float32)
    m[:kh // 2, :] = 1
    m[kh // 2, :kw // 2] = 1
    m[kh // 2, kw // 2] = mask_type == "B"
    return torch.from_numpy(m)[None, None]


class MaskedConv2d(nn.Conv2d):
    def __init__(self, cin, cout, kernel, mask_type):
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        super().__init__(cin, cout, (kh, kw), padding=(kh // 2, kw // 2))
        self.register_buffer("mask", causal_mask(kh, kw, mask_type))

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def lstm_cell(pre, c):
    """(h, c) from the pre-activations (N, 4h, S) [i | f | g | o] and the previous cell state."""
    i, f, g, o = pre.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def line_scan(lines, w_ss, pad):
    """h_t for t over ``lines`` (a list of (N, 4h, S)): pre_t = x_t + conv1d(pad(h_{t-1}), w_ss)."""
    n, hidden, s = lines[0].shape[0], w_ss.shape[1], lines[0].shape[2]
    h = c = lines[0].new_zeros(n, hidden, s)
    out = []
    for x in lines:
        h, c = lstm_cell(x + F.conv1d(F.pad(h, pad), w_ss), c)
        out.append(h)
    return out


class RowLSTM(nn.Module):
    def __init__(self, cin, hidden):
        super().__init__()
        self.input_to_state = MaskedConv2d(cin, 4 * hidden, (1, 3), "B")
        self.w_ss = nn.Parameter(torch.zeros(4 * hidden, hidden, 3))

    def forward(self, x):
        x_proj = self.input_to_state(x)                                  # (N, 4h, R, W)
        return torch.stack(line_scan(x_proj.unbind(2), self.w_ss, (1, 1)), dim=2)


def skew(x):
    """Row r shifted right by r: (N, C, H, W) -> (N, C, H, W + H - 1)."""
    H = x.shape[2]
    return torch.stack([F.pad(x[:, :, r], (r, H - 1 - r)) for r in range(H)], dim=2)


def unskew(y, width):
    return torch.stack([y[:, :, r, r:r + width] for r in range(y.shape[2])], dim=2)


class DiagonalLSTM(nn.Module):
    def __init__(self, cin, hidden):
        super().__init__()
        self.input_to_state = nn.Conv2d(cin, 4 * hidden, 1)
        self.w_ss = nn.Parameter(torch.zeros(4 * hidden, hidden, 2))

    def forward(self, x):
        x_proj = skew(self.input_to_state(x))                           # (N, 4h, R, Ws)
        h = torch.stack(line_scan(x_proj.unbind(3), self.w_ss, (1, 0)), dim=3)
        return unskew(h, x.shape[3])


class DiagonalBiLSTM(nn.Module):
    def __init__(self, cin, hidden):
        super().__init__()
        self.forward_dir, self.backward_dir = DiagonalLSTM(cin, hidden), DiagonalLSTM(cin, hidden)

    def forward(self, x):
        back = self.backward_dir(x.flip(3)).flip(3)
        return self.forward_dir(x) + F.pad(back[:, :, :-1], (0, 0, 1, 0))   # shifted down one row


class Raster(nn.Module):
    """The shared parts of PixelCNN and PixelRNN: mask-A first layer, 1x1 head, the density."""

    def __init__(self, hidden, first_kernel, head, dropout):
        super().__init__()
        self.first = MaskedConv2d(1, 2 * hidden, first_kernel, "A")
        self.head1, self.head2 = nn.Conv2d(2 * hidden, head, 1), nn.Conv2d(head, 1, 1)
        self.dropout = dropout

    def _head(self, z):
        return self.head2(F.relu(self.head1(F.relu(z))))

    def log_prob(self, x):
        return bernoulli_log_prob(x, self.logits(x))


class PixelCNNBlock(nn.Module):
    def __init__(self, hidden, dropout):
        super().__init__()
        self.reduce = nn.Conv2d(2 * hidden, hidden, 1)
        self.masked = MaskedConv2d(hidden, hidden, 3, "B")
        self.expand = nn.Conv2d(hidden, 2 * hidden, 1)
        self.dropout = dropout

    def forward(self, z):
        y = self.masked(F.relu(self.reduce(F.relu(z))))
        return z + self.expand(F.dropout(F.relu(y), self.dropout, self.training))


class PixelCNN(Raster):
    def __init__(self, hidden, blocks, first_kernel, head, dropout):
        super().__init__(hidden, first_kernel, head, dropout)
        self.blocks = nn.ModuleList([PixelCNNBlock(hidden, dropout) for _ in range(blocks)])

    def logits(self, x):
        z = self.first(x)
        for block in self.blocks:
            z = block(z)
        return self._head(z)


class PixelRNN(Raster):
    def __init__(self, variant, hidden, layers, first_kernel, head, dropout):
        super().__init__(hidden, first_kernel, head, dropout)
        layer = RowLSTM if variant == "row_lstm" else DiagonalBiLSTM
        self.lstms = nn.ModuleList([layer(2 * hidden, hidden) for _ in range(layers)])
        self.residual = nn.ModuleList([nn.Conv2d(hidden, 2 * hidden, 1) for _ in range(layers)])

    def logits(self, x):
        z = self.first(x)
        for lstm, back in zip(self.lstms, self.residual):
            z = z + back(F.dropout(lstm(z), self.dropout, self.training) if self.dropout else lstm(z))
        return self._head(z)


# --- the autoencoders ---------------------------------------------------------------------------
def mlp(sizes, activation):
    """Linear layers of ``sizes`` with ``activation()`` between them (none after the last)."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return layers


class VAE(nn.Module):
    """tinygen's arch="mlp": encoder D-h-h-2d, decoder d-h-h-D, tanh."""

    def __init__(self, image_shape, latent_dim, hidden):
        super().__init__()
        d_in = int(np.prod(image_shape))
        self.encoder = nn.Sequential(nn.Flatten(), *mlp([d_in, hidden, hidden, 2 * latent_dim], nn.Tanh))
        self.decoder = nn.Sequential(*mlp([latent_dim, hidden, hidden, d_in], nn.Tanh),
                                     nn.Unflatten(1, tuple(image_shape)))
        self.latent_dim = latent_dim

    def loss(self, x, eps):
        """-ELBO averaged over the batch: z = mu + sigma eps, closed-form KL, one draw (eps (1, N, d))."""
        out = self.encoder(x)
        mu, sigma = out[:, :self.latent_dim], torch.exp(0.5 * out[:, self.latent_dim:])
        z = (mu + sigma * eps).reshape(-1, self.latent_dim)
        reconstruction = bernoulli_log_prob(x, self.decoder(z))
        kl = (0.5 * (sigma ** 2 + mu ** 2 - 1) - torch.log(sigma)).sum(-1)
        return (kl - reconstruction).mean()


class LatentAutoencoder(nn.Module):
    """The AAE's and WAE's deterministic encoder and decoder (ReLU MLPs), and D for the AAE."""

    def __init__(self, image_shape, latent_dim, hidden, disc_hidden=None):
        super().__init__()
        pixels = int(np.prod(image_shape))
        self.encoder = nn.Sequential(nn.Flatten(), nn.Sequential(*mlp([pixels, hidden, hidden, latent_dim],
                                                                      nn.ReLU)))
        self.decoder = nn.Sequential(*mlp([latent_dim, hidden, hidden, pixels], nn.ReLU))
        if disc_hidden:
            self.discriminator = nn.Sequential(*mlp([latent_dim, disc_hidden, disc_hidden, 1], nn.ReLU))
        self.image_shape = tuple(image_shape)

    def reconstruction_cost(self, x, z):
        return -bernoulli_log_prob(x, self.decoder(z).reshape((-1,) + self.image_shape))


def imq_kernel(u, v, scales):
    """k(u_i, v_j) = sum_s C_s / (C_s + ||u_i - v_j||^2), C_s = 2 d s^2, r^2 clipped at 0 (tinygen.metrics)."""
    r2 = ((u * u).sum(1, keepdim=True) + (v * v).sum(1) - 2 * u @ v.T).clamp(min=0)
    return sum(2.0 * u.shape[1] * s * s / (2.0 * u.shape[1] * s * s + r2) for s in scales)


def off_diagonal_mean(k):
    n = k.shape[0]
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1))


def imq_mmd(a, b, scales):
    """The unbiased MMD_u^2 of ``tinygen.metrics.mmd`` with the IMQ kernel."""
    return (off_diagonal_mean(imq_kernel(a, a, scales)) + off_diagonal_mean(imq_kernel(b, b, scales))
            - 2.0 * imq_kernel(a, b, scales).mean())


# --- the GANs -----------------------------------------------------------------------------------
class MLPGAN(nn.Module):
    """tinygen's gan on images: G z -> h -> h -> D_x (ReLU, tanh), D D_x -> h -> h -> 1 (LeakyReLU 0.2)."""

    def __init__(self, image_shape, latent_dim, hidden):
        super().__init__()
        width = int(np.prod(image_shape))
        self.generator = nn.Sequential(*mlp([latent_dim, hidden, hidden, width], nn.ReLU), nn.Tanh(),
                                       nn.Unflatten(1, tuple(image_shape)))
        self.discriminator = nn.Sequential(nn.Flatten(), *mlp([width, hidden, hidden, 1],
                                                              lambda: nn.LeakyReLU(0.2)))


def dcgan_networks(latent_dim, image_shape, width):
    """DCGAN's G and D (tinygen.models.dcgan): projection + two 4s2p1 transposed convs; two 4s2p1 convs + linear."""
    (c, h, w), k = image_shape, width
    h0, w0 = h // 4, w // 4
    G = nn.Sequential(
        nn.Linear(latent_dim, 2 * k * h0 * w0, bias=False), nn.Unflatten(1, (2 * k, h0, w0)),
        nn.BatchNorm2d(2 * k), nn.ReLU(),
        nn.ConvTranspose2d(2 * k, k, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(k), nn.ReLU(),
        nn.ConvTranspose2d(k, c, 4, stride=2, padding=1), nn.Tanh())
    D = nn.Sequential(
        nn.Conv2d(c, k, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(k, 2 * k, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * k), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(2 * k * h0 * w0, 1))
    return G, D


class Players(nn.Module):
    """A generator and a discriminator under tinygen's attribute names."""

    def __init__(self, generator, discriminator):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator


def with_code(x, onehot):
    """x (N, C, H, W) ++ onehot (N, K) tiled over H x W."""
    return torch.cat([x, onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])], dim=1)


class CodedGenerator(nn.Module):
    """InfoGAN's G: DCGAN's three stages, onehot(c_cat) concatenated before each transposed conv."""

    def __init__(self, latent_dim, code, image_shape, width):
        super().__init__()
        (c, h, w), k, e = image_shape, width, code[1] - code[0]
        self.code = code
        self.project = nn.Sequential(nn.Linear(latent_dim, 2 * k * (h // 4) * (w // 4), bias=False),
                                     nn.Unflatten(1, (2 * k, h // 4, w // 4)), nn.BatchNorm2d(2 * k), nn.ReLU())
        self.up = nn.Sequential(nn.ConvTranspose2d(2 * k + e, k, 4, stride=2, padding=1, bias=False),
                                nn.BatchNorm2d(k), nn.ReLU())
        self.out = nn.Sequential(nn.ConvTranspose2d(k + e, c, 4, stride=2, padding=1), nn.Tanh())

    def forward(self, latent):
        onehot = latent[:, self.code[0]:self.code[1]]
        return self.out(with_code(self.up(with_code(self.project(latent), onehot)), onehot))


class SharedBodyDiscriminator(nn.Module):
    """InfoGAN's D: DCGAN's convolutions, a shared Linear-BN-LeakyReLU layer, then D's and Q's heads."""

    def __init__(self, image_shape, width, hidden, q_hidden, q_out):
        super().__init__()
        _, dcgan_d = dcgan_networks(1, image_shape, width)
        convs, features = list(dcgan_d)[:-1], dcgan_d[-1].in_features
        self.body = nn.Sequential(*convs, nn.Linear(features, hidden, bias=False), nn.BatchNorm1d(hidden),
                                  nn.LeakyReLU(0.2))
        self.d_head = nn.Linear(hidden, 1)
        self.q_head = nn.Sequential(nn.Linear(hidden, q_hidden, bias=False), nn.BatchNorm1d(q_hidden),
                                    nn.LeakyReLU(0.2), nn.Linear(q_hidden, q_out))

    def forward(self, x):
        return self.d_head(self.body(x))


# --- image translation (CycleGAN, StarGAN) ----------------------------------------------------------
SMALL = 16      # tinygen.models._translation.SMALL: smaller sides get the full-resolution generator


def padded_conv(cin, cout, kernel, pad, bias=False):
    """A stride-1 convolution that keeps H and W: reflection padding then the conv, or zero padding."""
    if pad == "reflect":
        return [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, bias=bias)]
    return [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=bias)]


class TranslationBlock(nn.Module):
    """x + IN(conv3(ReLU(IN(conv3(x))))), or without IN (and with biases) when not ``norm``."""

    def __init__(self, channels, pad, affine, norm=True):
        super().__init__()
        in_ = [nn.InstanceNorm2d(channels, affine=affine)] if norm else []
        self.body = nn.Sequential(*padded_conv(channels, channels, 3, pad, not norm), *in_, nn.ReLU(),
                                  *padded_conv(channels, channels, 3, pad, not norm),
                                  *([nn.InstanceNorm2d(channels, affine=affine)] if norm else []))

    def forward(self, x):
        return x + self.body(x)


def translation_generator(image_shape, cin, cout, width, blocks, pad, affine, small=None):
    """tinygen's ``translation_generator``: the ResNet generator, or (``small``; None: for small
    images) the one without resampling and instance norm."""
    w = width
    if small is None:
        small = min(image_shape[1:]) < SMALL
    if small:
        return nn.Sequential(*padded_conv(cin, w, 7, pad, True), nn.ReLU(),
                             *(TranslationBlock(w, pad, False, norm=False) for _ in range(blocks)),
                             *padded_conv(w, cout, 7, pad, True), nn.Tanh())
    return nn.Sequential(
        *padded_conv(cin, w, 7, pad), nn.InstanceNorm2d(w, affine=affine), nn.ReLU(),
        nn.Conv2d(w, 2 * w, 3, stride=2, padding=1, bias=False), nn.InstanceNorm2d(2 * w, affine=affine), nn.ReLU(),
        *(TranslationBlock(2 * w, pad, affine) for _ in range(blocks)),
        nn.ConvTranspose2d(2 * w, w, 3, stride=2, padding=1, output_padding=1, bias=False),
        nn.InstanceNorm2d(w, affine=affine), nn.ReLU(), *padded_conv(w, cout, 7, pad, True), nn.Tanh())


def patch_body(cin, width, strided, slope, instance_norm):
    """``strided`` 4s2p1 convolutions (w, 2w, ...), LeakyReLU, IN after all but the first: (layers, channels)."""
    layers, channels = [], cin
    for i in range(strided):
        out, norm = width * 2 ** i, instance_norm and i > 0
        layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1, bias=not norm)]
        layers += ([nn.InstanceNorm2d(out)] if norm else []) + [nn.LeakyReLU(slope)]
        channels = out
    return layers, channels


def cyclegan_discriminator(image_shape, width):
    """The PatchGAN D: the strided body, conv3 (no bias) IN LeakyReLU, then a 3x3 conv to one logit a position."""
    layers, ch = patch_body(image_shape[0], width, 1 if min(image_shape[1:]) < SMALL else 2, 0.2, True)
    return nn.Sequential(*layers, nn.Conv2d(ch, 2 * ch, 3, padding=1, bias=False), nn.InstanceNorm2d(2 * ch),
                         nn.LeakyReLU(0.2), nn.Conv2d(2 * ch, 1, 3, padding=1))


class CycleGAN(nn.Module):
    def __init__(self, image_shape, width, blocks, d_width):
        super().__init__()
        c = image_shape[0]
        self.g_ab = translation_generator(image_shape, c, c, width, blocks, "reflect", False)
        self.g_ba = translation_generator(image_shape, c, c, width, blocks, "reflect", False)
        self.d_a = cyclegan_discriminator(image_shape, d_width)
        self.d_b = cyclegan_discriminator(image_shape, d_width)


class ImagePool:
    """CycleGAN's buffer: the first ``size`` fakes stored and passed through, then a coin and a slot per image
    (``noise`` as in ``models.py``: (shape, kind, low, high) -> draws)."""

    def __init__(self, size):
        self.size, self.images, self.count = size, None, 0

    def query(self, x, noise):
        if self.images is None:
            self.images = x.new_zeros((self.size,) + tuple(x.shape[1:]))
        room = min(len(x), self.size - self.count)
        self.images[self.count:self.count + room] = x[:room]
        self.count += room
        out, rest = x.clone(), len(x) - room
        if rest:
            swap = noise((rest,), "random") < 0.5
            slots = noise((rest,), "integers", 0, self.size)[swap]
            rows = torch.arange(room, len(x), device=x.device)[swap]
            out[rows] = self.images[slots]
            self.images[slots] = x[rows]
        return out


# --- text to image (GAN-CLS) --------------------------------------------------------------------------
class BagEncoder(nn.Module):
    """phi(t) = the mean of the caption's word embeddings (tinygen's encoder="bag")."""

    def __init__(self, vocab_size, embed_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)

    def forward(self, tokens, lengths):
        e = self.embedding(torch.from_numpy(tokens).to(self.embedding.weight.device))   # (N, L, E)
        keep = np.arange(tokens.shape[1])[None, :] < lengths[:, None]
        weights = torch.from_numpy(keep / lengths[:, None]).to(e.device, e.dtype)[:, :, None]
        return (e * weights).sum(1)


class TextConditionedGenerator(nn.Module):
    """G(z, phi) = DCGAN's generator of [z ; LeakyReLU(Linear(phi))]."""

    def __init__(self, noise_dim, text_dim, text_proj, image_shape, width):
        super().__init__()
        self.project = nn.Sequential(nn.Linear(text_dim, text_proj), nn.LeakyReLU(0.2))
        self.net, _ = dcgan_networks(noise_dim + text_proj, image_shape, width)

    def forward(self, z, phi):
        return self.net(torch.cat([z, self.project(phi)], dim=1))


class TextConditionedDiscriminator(nn.Module):
    """D(x, phi): DCGAN's convolutions, ++ the projected text at every position, 1x1 conv BN LeakyReLU, Linear."""

    def __init__(self, encoder, text_proj, image_shape, width):
        super().__init__()
        self.encoder = encoder
        self.project = nn.Sequential(nn.Linear(encoder.embedding.embedding_dim, text_proj), nn.LeakyReLU(0.2))
        _, dcgan_d = dcgan_networks(1, image_shape, width)
        self.body = nn.Sequential(*list(dcgan_d)[:-2])                # up to the feature map (no Flatten)
        k = 2 * width
        self.joint = nn.Sequential(nn.Conv2d(k + text_proj, k, 1, bias=False), nn.BatchNorm2d(k), nn.LeakyReLU(0.2))
        self.head = nn.Linear(dcgan_d[-1].in_features, 1)

    def encode(self, tokens, lengths):
        return self.encoder(tokens, lengths)

    def forward(self, x, phi):
        h = self.body(x)
        p = self.project(phi)[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        return self.head(self.joint(torch.cat([h, p], dim=1)).flatten(1)).reshape(-1)


# --- Progressive GAN --------------------------------------------------------------------------------
class EqualizedLinear(nn.Linear):
    """y = x (c W)^T + b, c = gain / sqrt(in_features)."""

    def __init__(self, cin, cout, gain=math.sqrt(2)):
        super().__init__(cin, cout)
        self.scale = gain / math.sqrt(cin)

    def forward(self, x):
        return F.linear(x, self.weight * self.scale, self.bias)


class EqualizedConv2d(nn.Conv2d):
    """y = conv2d(x, c W) + b, c = gain / sqrt(C_in kh kw)."""

    def __init__(self, cin, cout, kernel, padding=0, gain=math.sqrt(2)):
        super().__init__(cin, cout, kernel, padding=padding)
        self.scale = gain / math.sqrt(cin * kernel * kernel)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class PixelNorm(nn.Module):
    def forward(self, x):
        return x / torch.sqrt((x * x).mean(1, keepdim=True) + 1e-8)


class MinibatchStd(nn.Module):
    """(N, C, H, W) -> (N, C + 1, H, W): row g M + m gets its group's mean standard deviation."""

    def __init__(self, group_size):
        super().__init__()
        self.group_size = group_size

    def forward(self, x):
        n, c, h, w = x.shape
        y = x.reshape(self.group_size, n // self.group_size, c, h, w)
        d = y - y.mean(0, keepdim=True)
        s = torch.sqrt((d * d).mean(0) + 1e-8).mean((1, 2, 3), keepdim=True)
        return torch.cat([x, s.repeat(self.group_size, 1, h, w)], dim=1)


def progan_channels(resolution, width):
    return max(1, min(width, width * 8 // resolution))


def lrelu():
    return nn.LeakyReLU(0.2)


class ProGenerator(nn.Module):
    def __init__(self, latent_dim, image_channels, width, stages):
        super().__init__()
        c = [progan_channels(4 * 2 ** s, width) for s in range(stages)]
        self.first = nn.Sequential(
            PixelNorm(), EqualizedLinear(latent_dim, 16 * c[0], gain=math.sqrt(2) / 4), nn.Unflatten(1, (c[0], 4, 4)),
            lrelu(), PixelNorm(), EqualizedConv2d(c[0], c[0], 3, padding=1), lrelu(), PixelNorm())
        self.blocks = nn.ModuleList([
            nn.Sequential(nn.Upsample(scale_factor=2), EqualizedConv2d(c[s - 1], c[s], 3, padding=1), lrelu(),
                          PixelNorm(), EqualizedConv2d(c[s], c[s], 3, padding=1), lrelu(), PixelNorm())
            for s in range(1, stages)])
        self.to_rgb = nn.ModuleList([EqualizedConv2d(c[s], image_channels, 1, gain=1.0) for s in range(stages)])

    def forward(self, z, stage):
        """At a stage's end (alpha = 1), the fade-in's other branch left out."""
        h = self.first(z)
        for block in self.blocks[:stage]:
            h = block(h)
        return self.to_rgb[stage](h)


class ProDiscriminator(nn.Module):
    def __init__(self, image_channels, width, group_size, stages):
        super().__init__()
        c = [progan_channels(4 * 2 ** s, width) for s in range(stages)]
        self.from_rgb = nn.ModuleList([nn.Sequential(EqualizedConv2d(image_channels, c[s], 1), lrelu())
                                       for s in range(stages)])
        self.blocks = nn.ModuleList([
            nn.Sequential(EqualizedConv2d(c[s], c[s], 3, padding=1), lrelu(),
                          EqualizedConv2d(c[s], c[s - 1], 3, padding=1), lrelu(), nn.AvgPool2d(2))
            for s in range(1, stages)])
        self.last = nn.Sequential(
            MinibatchStd(group_size), EqualizedConv2d(c[0] + 1, c[0], 3, padding=1), lrelu(), nn.Flatten(),
            EqualizedLinear(16 * c[0], c[0]), lrelu(), EqualizedLinear(c[0], 1, gain=1.0))

    def forward(self, x, stage):
        h = self.from_rgb[stage](x)
        for block in reversed(list(self.blocks[:stage])):
            h = block(h)
        return self.last(h).reshape(-1)


class ProGAN(nn.Module):
    """G, D and G_bar (the moving average of G, never trained) under tinygen's names."""

    def __init__(self, latent_dim, image_channels, width, group_size, stages):
        super().__init__()
        self.generator = ProGenerator(latent_dim, image_channels, width, stages)
        self.discriminator = ProDiscriminator(image_channels, width, group_size, stages)
        self.generator_ema = ProGenerator(latent_dim, image_channels, width, stages)
        self.generator_ema.requires_grad_(False)


class TwoHeadDiscriminator(nn.Module):
    """StarGAN's D: two 4s2p1 convs (LeakyReLU 0.01, no norm); D_src a 3x3 conv after the first
    ``src_depth`` stages, D_cls a conv over the whole last map to K logits."""

    def __init__(self, image_shape, width, attributes, src_depth=2):
        super().__init__()
        c, h, w = image_shape
        layers, channels = patch_body(c, width, 2, 0.01, False)
        self.body, self.split = nn.Sequential(*layers), 2 * src_depth
        self.src = nn.Conv2d(width * 2 ** (src_depth - 1) if src_depth else c, 1, 3, padding=1)
        self.cls = nn.Conv2d(channels, attributes, (h // 4, w // 4))

    def forward(self, x):
        low = self.body[:self.split](x)
        return self.src(low), self.cls(self.body[self.split:](low)).reshape(x.shape[0], -1)

    def critic(self, x):
        return self.src(self.body[:self.split](x)).reshape(x.shape[0], -1).mean(1)


class StarGAN(nn.Module):
    def __init__(self, image_shape, attributes, width, blocks, d_width, src_depth=2, small=False):
        super().__init__()
        c = image_shape[0]
        self.generator = translation_generator(image_shape, c + attributes, c, width, blocks, "zeros", True,
                                               small)
        self.discriminator = TwoHeadDiscriminator(image_shape, d_width, attributes, src_depth)

    def generate(self, x, c):
        tiled = c[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        return self.generator(torch.cat([x, tiled], dim=1))
