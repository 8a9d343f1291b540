"""Text-to-image GAN (Reed et al. 2016): GAN-CLS with GAN-INT, on captioned digits.

Section 7 of the notes. A caption t ("a thick seven leaning right") is read by a text
encoder into phi(t) (``_text_encoder.py``: the mean of the caption's word embeddings,
or an LSTM over them; why the bag is the default is explained there). Both players
are conditioned on it, each through its own projection of it:

    G(z, t)   [z ; P_G(phi(t))] -> DCGAN's generator -> image in [-1, 1]
              z ~ N(0, I) (noise_dim),  P_G = Linear -> LeakyReLU(0.2) (text_proj)
    D(x, t)   DCGAN's convolutions -> feature map (2w, H/4, W/4)
              ++ P_D(phi(t)) replicated over its H/4 x W/4 positions (channel concat)
              -> Conv 1x1 -> BN -> LeakyReLU(0.2) -> Linear -> one logit a

GAN-CLS. D must tell not only real from fake but matching from mismatching text.
With s = sigmoid(a) and, for a batch of real images x with their captions t,

    s_r = D(x, t)            real image, right text
    s_w = D(x, t_hat)        real image, wrong text: t_hat the caption of another image
                             of the batch whose digit differs from x's (never the same digit)
    s_f = D(G(z, t), t)      fake image, right text

D maximizes log s_r + 1/2 [log(1 - s_w) + log(1 - s_f)], i.e. minimizes, on logits
(log s = -softplus(-a), log(1 - s) = -softplus(a)), averaged over the batch:

    L_D = softplus(-a_r) + 1/2 [softplus(a_w) + softplus(a_f)]

A D that ignores the text has a_w = a_r exactly and cannot lower the wrong-text term;
reading the text is the only way down. The "class" of a caption is the digit it names
(``tinygen.data.caption_meaning``: the data's own label, written in the words);
training reads nothing else off the captions. Where a batch has no image of another
digit (it holds one digit only), the wrong caption is written for it: a random
phrasing of a different digit.

GAN-INT. G is also trained on embeddings between two captions of the batch,

    phi_int = beta phi(t_1) + (1 - beta) phi(t_2),    beta = 1/2

which come from no image, so D never sees them (they occur in the G step only):

    L_G = softplus(-D(G(z, t), t)) + interp_weight softplus(-D(G(z', phi_int), phi_int))

over the batch and a half-batch of interpolations (interp_weight 1, the reference
code's). The space between captions is filled with images D still finds plausible for
their text, which smooths what G makes of phi.

Who trains the text encoder. The paper pre-trains it (a joint embedding of images and
text) and keeps it fixed. Here it is a part of D: D's optimizer steps it on L_D, and
its only teacher is the wrong-text term (to tell t from t_hat given x, phi(t) must
carry what x shows). G reads phi through its own projection and never trains the
encoder (D, encoder and all, is frozen in the G step), so each phase moves only its
own player. On these captions the jointly trained encoder needs no pre-training: D's
``text_margin`` (mean a_r - a_w, reported, not trained on) grows from 0 to about 2 in
the first 750 steps, and G's samples follow (caption_accuracy 0.75 by step 1000).

The thickness and slant a caption states are taught by the fake term alone: the
wrong caption always names another digit, so it never contrasts thick with thin.
D can still tell a thin image under "thick" from the real pairs (real pairs always
agree), which is enough for thickness; slant, a finer feature of 8x8 digits, is
learned less well.

Evaluation (``evaluate``, on "captioned_truth": the test images with their captions,
digits and measured attributes) draws one image per test caption from noise of the
fixed seed ``eval_seed`` and measures it as the captions were measured:

    caption_accuracy    the digits classifier reads the caption's digit in the image
    attribute_accuracy  the image's thickness (ink mass against the digit's median in
                        the training split, ``digits_caption_attributes``) is the caption's
    slant_accuracy      likewise its slant category (left / upright / right); chance 1/3
    frechet_distance    FD of the classifier's features, generated vs the test images,
    frechet_floor       beside FD(train, test) of real digits

For images other than 8x8 the shipped classifier does not apply (as for every GAN
here): only the attribute accuracies are reported, with thresholds fitted on the
evaluated batch. ``sample(n, captions=[...])`` gives n images per caption;
``sample(n)`` alone draws n random captions and one image each.

Defaults for 8x8 digits: the bag encoder (embed_dim 32), text_proj 32, noise_dim 16,
width 32, batch 64, 2500 steps; Adam with betas (0.5, 0.999), G at lr 1e-3 and D (with
the encoder) at 2e-4, both halved every 1500 steps. G learns the conditioning late, so
its rate matters most: with the LSTM encoder (seed 0), DCGAN's 2e-4 for both, halved
every 1000 steps, read only 0.34 of the captions' digits after 2000 steps; G at 1e-3
and constant rates read 0.92.
Measured with ``tinygen train text2image --data digits --seed S`` (about 2.5 minutes
of training on 2 shared CPU cores; chance is 0.1, 0.5 and 1/3; FD floor 10.4):

    seed                caption_accuracy  attribute_accuracy  slant_accuracy  frechet_distance
    0                   0.975             0.886               0.766           25.3
    1                   0.889             0.766               0.688           13.6
    2                   0.950             0.852               0.808           16.8
    0, encoder=lstm     0.911             0.858               0.699           14.7

(the Frechet distance still wobbles by several units from one evaluation to the next
at the end of the run; the accuracies are steadier).
"""
import numpy as np

from .. import backend
from .. import functional as F
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..data import CAPTION_VOCABULARY, CaptionAttributes, caption_meaning, digits_caption_attributes
from ..imaging import _font, _text_size, make_grid
from ..metrics import classify, digits_classifier, sample_frechet_distance
from ..nn import BatchNorm2d, Conv2d, LeakyReLU, Linear, Module, Sequential
from . import register
from ._adversarial import AdversarialModel, _not_negative, _positive, _step
from ._text_encoder import (NUM_DIGITS, TextEncoder, check_tokens, encode_captions, join_tokens,
                            random_captions)
from .base import frozen
from .dcgan import dcgan_discriminator_body, dcgan_generator, dcgan_init

BETA = 0.5   # GAN-INT's interpolation weight

PICTURE_CAPTIONS = ("a thin zero upright", "a thick zero upright", "a slim three leaning left",
                    "a bold three leaning right", "the digit 5, light and standing straight",
                    "the digit 5, heavy and standing straight", "a thin seven tilted left",
                    "a thick seven tilted right", "an eight in thin strokes, upright",
                    "an eight in thick strokes, upright")
INTERPOLATIONS = (("a thin zero upright", "a thick zero upright"),
                  ("a thick one leaning left", "a thick one leaning right"),
                  ("a thin one upright", "a thick eight upright"))


# --- the two players -----------------------------------------------------------------

class TextConditionedGenerator(Module):
    """G(z, phi) = DCGAN's generator of [z ; P_G(phi)]."""

    def __init__(self, noise_dim, text_dim, text_proj, image_shape, width):
        super().__init__()
        self.project = Sequential(Linear(text_dim, text_proj), LeakyReLU(0.2))
        self.net = dcgan_generator(noise_dim + text_proj, image_shape, width)

    def forward(self, z, phi):
        return self.net(F.concat([z, self.project(phi)], axis=1))


class TextConditionedDiscriminator(Module):
    """D(x, phi): one logit per image, (N,); owns the text encoder (``encode``)."""

    def __init__(self, encoder, text_proj, image_shape, width):
        super().__init__()
        self.encoder = encoder
        self.project = Sequential(Linear(encoder.dim, text_proj), LeakyReLU(0.2))
        body, features = dcgan_discriminator_body(image_shape, width)
        self.body = Sequential(*list(body)[:-1])        # DCGAN's body up to its feature map (no Flatten)
        k = 2 * width
        self.joint = Sequential(Conv2d(k + text_proj, k, 1, bias=False), BatchNorm2d(k), LeakyReLU(0.2))
        self.head = Linear(features, 1)

    def encode(self, tokens, lengths):
        return self.encoder(tokens, lengths)

    def forward(self, x, phi):
        h = self.body(x)                                              # (N, 2w, H/4, W/4)
        n, _, rows, cols = h.shape
        p = self.project(phi)
        p = F.expand(F.reshape(p, (n, p.shape[1], 1, 1)), (n, p.shape[1], rows, cols))
        h = self.joint(F.concat([h, p], axis=1))
        return F.reshape(self.head(F.reshape(h, (n, -1))), (n,))


# --- the losses ------------------------------------------------------------------------

def gan_cls_discriminator_loss(a_r, a_w, a_f):
    """L_D = mean softplus(-a_r) + 1/2 [mean softplus(a_w) + mean softplus(a_f)] (module docstring)."""
    return F.mean(F.softplus(-a_r)) + 0.5 * (F.mean(F.softplus(a_w)) + F.mean(F.softplus(a_f)))


def mismatched_partners(digits, rng):
    """For each row n, a row m with digits[m] != digits[n], uniform among those; -1 where there is none."""
    n = len(digits)
    scores = rng.random((n, n))
    scores[digits[:, None] == digits[None, :]] = -1.0         # never the same digit (nor itself)
    partner = scores.argmax(axis=1)
    return np.where(scores[np.arange(n), partner] >= 0, partner, -1)


def interpolation_pairs(n, rng):
    """(a, b): max(2, n // 2) pairs of distinct rows of a batch of n >= 2, a random permutation's neighbours."""
    order = rng.permutation(n)
    k = min(n, max(2, n // 2))
    return order[:k], np.roll(order, -1)[:k]


@register("text2image", kind="implicit", section="7. GAN",
          summary="GAN-CLS/GAN-INT: a text encoder conditions DCGAN players on captions; D also learns "
                  "to reject real images with wrong text; G trains on interpolated captions",
          tested="the wrong caption is never of the same digit; a text-blind D scores right and wrong text "
                 "alike; interpolated embeddings reach G's step only; D's loss is the GAN-CLS objective")
class Text2Image(AdversarialModel):
    default_steps = 2500
    default_batch_size = 64
    uses_batch_norm = True
    data_kind = "captioned"
    eval_data_kind = "captioned_truth"
    reported_only = ("text_margin",)

    def __init__(self, image_shape=(1, 8, 8), encoder="bag", embed_dim=32, text_dim=64, text_proj=32,
                 noise_dim=16, width=32, interp_weight=1.0, n_critic=1, lr=1e-3, d_lr=2e-4,
                 betas=(0.5, 0.999), lr_half_life=1500):
        super().__init__(image_shape=image_shape, latent_dim=noise_dim, loss="nonsaturating", n_critic=n_critic,
                         lr=lr, d_lr=d_lr, betas=betas, lr_half_life=lr_half_life)
        _, h, w = self.image_shape
        if h % 4 or w % 4:
            raise ValueError(f"text2image: image height and width must be divisible by 4 (two stride-2 stages), "
                             f"got image_shape {self.image_shape}")
        who = "text2image"
        self.width = _positive(width, "width", who)
        self.interp_weight = _not_negative(interp_weight, "interp_weight", who, "no GAN-INT")
        text = TextEncoder(len(CAPTION_VOCABULARY), _positive(embed_dim, "embed_dim", who),
                           _positive(text_dim, "text_dim", who), kind=encoder)
        text_proj = _positive(text_proj, "text_proj", who)
        self.generator = TextConditionedGenerator(self.latent_dim, text.dim, text_proj, self.image_shape,
                                                  self.width)
        self.discriminator = TextConditionedDiscriminator(text, text_proj, self.image_shape, self.width)
        dcgan_init(self)            # conv and linear layers; the embedding and the LSTM keep their own init
        self.make_optimizers()

    # --- batches --------------------------------------------------------------------------
    def check_batch(self, batch, fields=3):
        """(images Tensor, tokens, lengths[, labels, thickness, slant]) of a captioned batch."""
        if not (isinstance(batch, (tuple, list)) and len(batch) in (3, 6)):
            raise ValueError(f"text2image: a batch is (images, tokens, lengths), or for evaluate also "
                             f"(labels, thickness, slant) after them; got "
                             f"{type(batch).__name__} of {len(batch) if isinstance(batch, (tuple, list)) else 1}")
        if len(batch) < fields:
            raise ValueError(f"text2image: this needs {fields} fields (data kind 'captioned_truth'), "
                             f"got {len(batch)}")
        x = self.check_images(batch[0])
        tokens, lengths = check_tokens(batch[1], batch[2], x.shape[0], "text2image")
        rest = [np.asarray(backend.to_device(a.data if isinstance(a, Tensor) else a, "cpu")).astype(np.int64)
                for a in batch[3:fields]]
        if any(r.shape != (x.shape[0],) for r in rest):
            raise ValueError(f"text2image: labels, thickness and slant need one entry per image "
                             f"({x.shape[0]}), got shapes {[r.shape for r in rest]}")
        return (x, tokens, lengths, *rest)

    def wrong_captions(self, tokens, lengths, rng):
        """(tokens, lengths) of a caption of another digit for each row (``mismatched_partners``;
        a written caption where the batch has none)."""
        digits = caption_meaning(tokens).digit
        partner = mismatched_partners(digits, rng)
        wrong_tokens, wrong_lengths = tokens[partner], lengths[partner]
        alone = np.flatnonzero(partner < 0)
        if alone.size:
            other = (digits[alone] + rng.integers(1, NUM_DIGITS, size=alone.size)) % NUM_DIGITS
            written, written_lengths = CAPTION_VOCABULARY.encode_batch(random_captions(other, rng))
            width = max(tokens.shape[1], written.shape[1])
            wrong_tokens = np.pad(wrong_tokens, ((0, 0), (0, width - tokens.shape[1])))
            wrong_tokens[alone] = np.pad(written, ((0, 0), (0, width - written.shape[1])))
            wrong_lengths[alone] = written_lengths
        return wrong_tokens, wrong_lengths

    # --- the two phases -----------------------------------------------------------------------
    def discriminator_step(self, real, tokens, lengths):
        """One step of D (and its text encoder) on L_D; the fakes made without a graph."""
        n, rng = real.shape[0], backend.generator("cpu")
        both = join_tokens((tokens, lengths), self.wrong_captions(tokens, lengths, rng))
        phi_both = self.discriminator.encode(*both)               # one encoder pass: right ++ wrong
        phi, phi_wrong = phi_both[:n], phi_both[n:]
        z = self.latent(n)
        with no_grad():
            fake = self.generator(z, phi.detach())
        a_r, a_w = self.discriminator(real, phi), self.discriminator(real, phi_wrong)
        a_f = self.discriminator(fake, phi)
        terms = {"discriminator": gan_cls_discriminator_loss(a_r, a_w, a_f), "text_margin": F.mean(a_r - a_w)}
        return _step(self.optimizers["discriminator"], terms, self.reported_only)

    def generator_step(self, tokens, lengths):
        """One step of G on L_G: fakes of the batch's captions and of interpolated ones; D frozen."""
        n = tokens.shape[0]
        with frozen(self.discriminator):
            phi = self.discriminator.encode(tokens, lengths)
            a_f = self.discriminator(self.generator(self.latent(n), phi), phi)
            terms = {"generator": F.generator_loss(a_f, self.loss)}
            if self.interp_weight > 0:
                first, second = (backend.to_device(i, phi.device)
                                 for i in interpolation_pairs(n, backend.generator("cpu")))
                phi_int = BETA * phi[first] + (1 - BETA) * phi[second]
                a_i = self.discriminator(self.generator(self.latent(first.shape[0]), phi_int), phi_int)
                terms["generator_interpolated"] = self.interp_weight * F.generator_loss(a_i, self.loss)
            return _step(self.optimizers["generator"], terms, self.reported_only)

    def train_step(self, batch):
        x, tokens, lengths = self.check_batch(batch)
        return self.take_turns(x.shape, lambda: self.discriminator_step(self.to_model_range(x), tokens, lengths),
                               lambda: self.generator_step(tokens, lengths))

    # --- sampling ---------------------------------------------------------------------------------
    def generate_for(self, tokens, lengths, z):
        """Images in [0, 1] of G(z, phi(t)), row n from caption n and z[n]; evaluation mode, no graph."""
        was = self.training
        self.eval()
        try:
            with no_grad():
                return self.to_data_range(self.generator(z, self.discriminator.encode(tokens, lengths)))
        finally:
            self.train(was)

    def sample(self, n, captions=None):
        """With ``captions`` (a list of str): n images per caption, caption-major
        (rows k n .. (k + 1) n - 1 are caption k's); without: n random captions, one image each."""
        if captions is None:
            digits = backend.generator("cpu").integers(NUM_DIGITS, size=n)
            captions, n = random_captions(digits, backend.generator("cpu")), 1
        tokens, lengths = encode_captions(captions, "text2image.sample")
        tokens, lengths = np.repeat(tokens, n, axis=0), np.repeat(lengths, n)
        return self.generate_for(tokens, lengths, self.latent(len(lengths)))

    def eval_generate(self, tokens, lengths):
        """One image per caption from noise of the fixed seed ``eval_seed`` (the training stream untouched)."""
        return self.generate_for(tokens, lengths, self.latent(len(lengths), rng=np.random.default_rng(self.eval_seed)))

    def interpolate(self, first, second, steps, z):
        """Images of phi = beta phi(first) + (1 - beta) phi(second) for beta from 1 to 0 in ``steps``,
        each with the noise z (1, noise_dim) (evaluation mode)."""
        tokens, lengths = encode_captions([first, second], "text2image.interpolate")
        was = self.training
        self.eval()
        try:
            with no_grad():
                phi = self.discriminator.encode(tokens, lengths)
                beta = Tensor._make(backend.to_device(np.linspace(1, 0, steps)[:, None].astype(phi.dtype),
                                                      phi.device))
                mixed = beta * phi[0:1] + (1 - beta) * phi[1:2]
                return self.to_data_range(self.generator(F.expand(z, (steps, z.shape[1])), mixed))
        finally:
            self.train(was)

    # --- evaluation ---------------------------------------------------------------------------------
    def evaluate(self, batch):
        """The metrics of the module docstring on a "captioned_truth" batch."""
        x, tokens, lengths, labels, thickness, slant = self.check_batch(batch, fields=6)
        images = x.numpy()
        samples = self.eval_generate(tokens, lengths).numpy()
        digits = self.image_shape == (1, 8, 8)
        state = backend.get_rng_state()     # loading the classifier builds layers, which draw their init
        try:
            attributes = digits_caption_attributes() if digits else CaptionAttributes.fit(images, labels)
            thick, slanted = attributes.measure(samples, labels)
            metrics = {"attribute_accuracy": float(np.mean(thick == thickness)),
                       "slant_accuracy": float(np.mean(slanted == slant))}
            if digits:
                if x.shape[0] < 2:
                    raise ValueError(f"text2image.evaluate: the Frechet distance needs at least 2 test "
                                     f"examples to estimate a covariance, got {x.shape[0]}")
                metrics = {"caption_accuracy": float(np.mean(classify(samples) == labels)), **metrics,
                           "frechet_distance": sample_frechet_distance(samples, images),
                           "frechet_floor": float(digits_classifier().info["fd_train_test"])}
            return metrics
        finally:
            backend.set_rng_state(state)

    # --- pictures ---------------------------------------------------------------------------------------
    def pictures(self, batch, labels=None):
        """``captions``: a row of 8 images per caption of ``PICTURE_CAPTIONS`` (the caption beside it;
        column j has the same noise in every row, so rows differ by their caption only);
        ``interpolation``: each pair of ``INTERPOLATIONS`` with the embedding moving from the first
        caption to the second along the row, one noise for the whole row."""
        cols, rng = 8, np.random.default_rng(self.eval_seed)
        z = self.latent(cols, rng=rng)
        tokens, lengths = encode_captions(list(PICTURE_CAPTIONS), "text2image.pictures")
        rows = len(PICTURE_CAPTIONS)
        tokens, lengths = np.repeat(tokens, cols, axis=0), np.repeat(lengths, cols)
        grid = self.generate_for(tokens, lengths, F.concat([z] * rows, axis=0)).numpy()
        z1 = self.latent(1, rng=rng)
        mixed = np.concatenate([self.interpolate(a, b, cols, z1).numpy() for a, b in INTERPOLATIONS])
        scale = max(1, 32 // max(self.image_shape[1:]))
        return {"captions": labelled_rows(grid, list(PICTURE_CAPTIONS), cols, scale),
                "interpolation": labelled_rows(mixed, [f"{a}  ->  {b}" for a, b in INTERPOLATIONS], cols, scale)}


def labelled_rows(images, labels, cols, scale):
    """A grid of ``cols`` images per row with ``labels[r]`` written left of row r: uint8 (H, W, 3)."""
    from PIL import Image, ImageDraw
    grid = make_grid(images, nrow=cols, scale=scale)
    grid = np.repeat(grid, 3, axis=2) if grid.shape[2] == 1 else grid
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = _font()
    text_w = max(_text_size(probe, label, font)[0] for label in labels) + 12
    canvas = Image.new("RGB", (text_w + grid.shape[1], grid.shape[0]), (255, 255, 255))
    canvas.paste(Image.fromarray(grid), (text_w, 0))
    draw, step = ImageDraw.Draw(canvas), images.shape[2] * scale + 1       # row height with padding 1
    for r, label in enumerate(labels):
        _, th = _text_size(draw, label, font)
        draw.text((6, 1 + r * step + (step - th) / 2 - 1), label, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)
