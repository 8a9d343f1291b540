"""CycleGAN (Zhu, Park, Isola & Efros 2017): translation between two domains without paired examples.

Section 7 of the notes. Two sets of images, A and B, with no image of A paired with
one of B. Two generators translate, G: A -> B and F: B -> A, and two discriminators
judge, D_B real b against G(a) and D_A real a against F(b). On their own the
adversarial terms only ask G(a) to look like *some* b; the cycle terms ask that
the translation can be undone, which keeps the content (here: the digit) of a:

    L_GAN(G, D_B) = 1/2 mean (D_B(b) - 1)^2 + 1/2 mean D_B(G(a))^2       (D_B minimizes it)
    L_G(G)        = mean (D_B(G(a)) - 1)^2                               (G minimizes it)
    L_cyc(G, F)   = mean |F(G(a)) - a| + mean |G(F(b)) - b|              (L1, per pixel)
    L_idt(G, F)   = mean |G(b) - b| + mean |F(a) - a|

and the same with the roles of A and B swapped. The generators' joint loss is

    L = L_G(G) + L_G(F) + lambda L_cyc + lambda_idt L_idt,   lambda = ``cycle_weight`` = 10,
                                                             lambda_idt = ``identity_weight`` = 5

Least squares in place of the log-loss (LSGAN, "lsgan" in
``tinygen.functional.adversarial``): the mean over D's whole grid of patch logits
(``_translation.patch_head``). ``F.generator_loss(.., "lsgan")`` is 1/2 mean (a - 1)^2;
the reference code's G loss has no 1/2, so it is taken twice. The identity term
(the reference code's ``lambda_identity`` = 0.5 of lambda) asks a generator to
leave an image that already is of its output domain alone; it keeps G from
changing what T leaves unchanged (the background, here) and costs little.

One ``train_step((a, b))``, in the reference code's order:

1. G step: G(a), F(b), the two reconstructions and the two identity images;
   D_A and D_B frozen (``frozen``), so L fills the generators' gradients only;
   one Adam step over G and F together (``optimizers["generator"]``).
2. D step: D_A on real a against F(b) and D_B on real b against G(a), both fakes
   from step 1, detached, passed through the fake-image buffer first; one Adam
   step over D_A and D_B (``optimizers["discriminator"]``).

The fake-image buffer (``ImagePool``, Shrivastava et al. 2017) shows D a fake drawn
from the last few dozen generator states rather than only the newest, so D does
not chase G's latest change (and G cannot undo it at once to escape). It holds
at most ``pool_size`` = 50 images per domain. Each fake that arrives while the
buffer is not yet full is stored and passed through. After that, with
probability 1/2 it is returned itself, and otherwise it replaces a stored image
drawn uniformly, and the stored image is returned in its place. It stores copies
of the values only (no graph), and its contents are buffers of the model, so a
checkpoint holds them and a resumed run draws the same images.

Adam (beta1 = 0.5) for both optimizers, the rate constant for the first half of
the run and then linearly to zero (``_translation.py``). The rate is 5e-4, not the
reference code's 2e-4: that one is for batch 1 over 200 epochs, and on the digits
(batch 8, 2000 steps, 22 epochs) it leaves translation_error at 0.061 where 5e-4
reaches 0.050 (seed 0).

Networks (``_translation.py``): G and F are ResNet generators with reflection
padding and instance norm (width 32, 3 residual blocks at half resolution) on
images of 16 pixels or more; on the 8x8 digits, the full-resolution generator
without instance norm (``small_generator``; ``_translation.py`` says why: the
8 -> 4 -> 8 generator with IN holds dilation only to 0.057 even when trained on
the true pairs). D_A and D_B are PatchGANs: conv 4s2p1 (32),
LeakyReLU(0.2), one more stride-2 layer on images of 16 pixels or more, then
conv 3x3 (2x channels), IN, LeakyReLU(0.2), and the 3x3 head: a 4x4 grid of
logits on 8x8 digits, 7x7 on 28x28.

Evaluation (the "unpaired_truth" kind: A, T(A), B and the sources of B). The data
are made by a known map T (``tinygen.data.unpaired_domains``), so a translation
can be scored against the right answer, beside the map that changes nothing:

    translation_error_ab = mean |G(a) - T(a)|     identity_error_ab = mean |a - T(a)|
    translation_error_ba = mean |F(b) - T^-1(b)|  identity_error_ba = mean |b - T^-1(b)|
    translation_error, identity_error            the means of the two directions
    cycle_error = 1/2 (mean |F(G(a)) - a| + mean |G(F(b)) - b|)

all on the [0, 1] scale of the data. On 8x8 digits, ``label_preservation`` is the
share of translations in which the digits classifier reads the digit it reads in
the A-side image (a itself for A -> B, the source T^-1(b) for B -> A), and
``label_preservation_truth`` the same share for T itself, the ceiling. It is
counted only in the directions whose output the classifier can read
(``READABLE``): dilated digits it reads (0.94 of the test digits right, 0.99
as they are), but a quarter-turned digit it reads no better than chance (0.12),
so for "upright2rotated" only B -> A, whose output is upright, counts.

Defaults and what they give (8x8 digits, thin2thick, seed 0, ``tinygen train cyclegan``):
batch 8, 2000 steps, about 4.5 minutes on one shared CPU core: translation_error 0.050
(0.050 A -> B, 0.050 B -> A) against the identity map's 0.117 (0.43 of it),
cycle_error 0.036, label_preservation 0.97 (the true map scores 0.98). On the way:
the same run with the 8 -> 4 -> 8 generator gave 0.073 (lr 2e-4, 1000 steps); the
small generator 0.068 (lr 2e-4, 1000 steps), 0.061 (2e-4, 2000), 0.059 (5e-4,
1000). One gray level of the digits is 1/16 = 0.0625: the translations are within
a gray level on average.
"""
import numpy as np

from .. import backend, data as datasets
from .. import functional as F
from ..autograd.tensor import Tensor
from ..imaging import make_grid
from ..metrics import classify
from ..nn import Conv2d, InstanceNorm2d, LeakyReLU, Module, Sequential
from . import register
from ._adversarial import _not_negative, _positive, _step
from ._translation import (TranslationModel, check_even_sides, patch_body, patch_head, translation_generator,
                           whole_number)
from .base import frozen

DIRECTIONS = ("AB", "BA")
READABLE = {"thin2thick": ("AB", "BA"), "upright2rotated": ("BA",)}
"""The directions whose output the digits classifier reads (see the module docstring)."""


# --- the fake-image buffer ----------------------------------------------------------

class ImagePool(Module):
    """The buffer of the module docstring: at most ``size`` images of ``image_shape``, in buffers."""

    def __init__(self, size, image_shape):
        super().__init__()
        self.size = int(size)
        self.register_buffer("images", Tensor._make(np.zeros((self.size,) + tuple(image_shape), np.float32)))
        self.register_buffer("count", Tensor._make(np.zeros((), np.int64)))

    def query(self, fakes):
        """``fakes`` (N, C, H, W) -> N images, each the fake itself or a stored one (no graph).

        Fakes that arrive while there is room are stored and passed through. For the
        others one coin and one slot each are drawn at once (no loop over the batch):
        heads returns the stored image of the slot and stores the fake there. Two
        fakes of one batch that draw the same slot both return its old image, and
        the later one is kept."""
        x = fakes.data
        if self.size == 0:
            return Tensor._make(x)
        xp = backend.get_array_module(x)
        count = int(self.count.data)
        room = min(len(x), self.size - count)
        self.images.data[count:count + room] = x[:room]
        out = xp.array(x)                      # a copy: the caller's fakes are never written to
        rest = len(x) - room
        if rest:
            rng = backend.generator(fakes.device)
            swap = backend.to_device(rng.random(rest) < 0.5, fakes.device)
            slots = backend.to_device(rng.integers(0, self.size, rest), fakes.device)[swap]
            rows = xp.arange(room, len(x))[swap]
            out[rows] = self.images.data[slots]
            self.images.data[slots] = x[rows]
        self.count.data[...] = count + room
        self.images._bump_version()
        self.count._bump_version()
        return Tensor._make(out)

    def extra_repr(self):
        return f"size={self.size}, holds={int(self.count.data)}"


# --- the discriminator --------------------------------------------------------------

def cyclegan_discriminator(image_shape, width):
    """The PatchGAN D of the module docstring: (N, C, H, W) -> a grid of logits (N, 1, h, w)."""
    strided = 1 if min(image_shape[1:]) < 16 else 2
    body, channels = patch_body(image_shape[0], width, strided, 0.2, instance_norm=True)
    return Sequential(*body, Conv2d(channels, 2 * channels, 3, padding=1, bias=False),
                      InstanceNorm2d(2 * channels), LeakyReLU(0.2), patch_head(2 * channels))


# --- the model ---------------------------------------------------------------------

@register("cyclegan", kind="implicit", section="7. GAN",
          summary="unpaired translation A <-> B: two ResNet generators, two PatchGAN discriminators, "
                  "least squares, cycle and identity L1 terms, a buffer of 50 fakes",
          tested="cycle loss 0 for identities and an invertible pair; the buffer's first 50 pass, then swap "
                 "with p = 1/2, stored detached; the rate schedule survives a resume; beats the identity map")
class CycleGAN(TranslationModel):
    default_steps = 2000
    default_batch_size = 8
    data_kind = "unpaired"
    eval_data_kind = "unpaired_truth"
    pictures_take_eval_batch = True   # the run folder's pictures show real images of B

    def __init__(self, image_shape=(1, 8, 8), domains="thin2thick", width=32, blocks=3, d_width=32,
                 cycle_weight=10.0, identity_weight=5.0, pool_size=50, lr=5e-4, betas=(0.5, 0.999),
                 total_steps=None, decay_start=None):
        super().__init__(image_shape, lr, betas, total_steps, decay_start)
        try:
            datasets.domain_transform(domains)
        except ValueError as exc:
            raise ValueError(f"cyclegan: {exc}") from None
        if domains == "upright2rotated" and self.image_shape[1] != self.image_shape[2]:
            raise ValueError(f"cyclegan: 'upright2rotated' turns images a quarter, which needs square "
                             f"images, got image_shape {self.image_shape}")
        self.domains = domains
        check_even_sides(self.image_shape, 1, "cyclegan")
        self.width, self.d_width = _positive(width, "width", "cyclegan"), _positive(d_width, "d_width", "cyclegan")
        self.blocks = whole_number(blocks, "blocks", "cyclegan", "no residual blocks")
        self.cycle_weight = _not_negative(cycle_weight, "cycle_weight", "cyclegan", "no cycle term")
        self.identity_weight = _not_negative(identity_weight, "identity_weight", "cyclegan", "no identity term")
        size = whole_number(pool_size, "pool_size", "cyclegan", "no buffer")
        c = self.image_shape[0]
        shape, w, n = self.image_shape, self.width, self.blocks
        self.g_ab = translation_generator(shape, c, c, w, n, pad="reflect", affine=False)  # G
        self.g_ba = translation_generator(shape, c, c, w, n, pad="reflect", affine=False)  # F
        self.d_a = cyclegan_discriminator(self.image_shape, self.d_width)
        self.d_b = cyclegan_discriminator(self.image_shape, self.d_width)
        self.pool_a, self.pool_b = ImagePool(size, self.image_shape), ImagePool(size, self.image_shape)
        self.make_optimizers({"generator": [self.g_ab, self.g_ba], "discriminator": [self.d_a, self.d_b]})

    # --- the losses (images in the model's range [-1, 1]) ----------------------------
    def cycle_loss(self, a, b):
        """L_cyc = mean |F(G(a)) - a| + mean |G(F(b)) - b| (unweighted)."""
        return F.l1_loss(self.g_ba(self.g_ab(a)), a) + F.l1_loss(self.g_ab(self.g_ba(b)), b)

    def identity_loss(self, a, b):
        """L_idt = mean |G(b) - b| + mean |F(a) - a| (unweighted)."""
        return F.l1_loss(self.g_ab(b), b) + F.l1_loss(self.g_ba(a), a)

    def generator_terms(self, a, b):
        """The named, weighted terms of L, and the fakes (F(b), G(a)) for the D step."""
        fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        terms = {"generator_ab": 2 * F.generator_loss(self.d_b(fake_b), "lsgan"),
                 "generator_ba": 2 * F.generator_loss(self.d_a(fake_a), "lsgan"),
                 "cycle": self.cycle_weight * (F.l1_loss(self.g_ba(fake_b), a) + F.l1_loss(self.g_ab(fake_a), b))}
        if self.identity_weight > 0:
            terms["identity"] = self.identity_weight * self.identity_loss(a, b)
        return terms, fake_a, fake_b

    def discriminator_terms(self, a, b, fake_a, fake_b):
        """L_GAN of each D, on real images against buffered fakes (detached by the buffer)."""
        fake_a, fake_b = self.pool_a.query(fake_a), self.pool_b.query(fake_b)
        return {"discriminator_a": F.discriminator_loss(self.d_a(a), self.d_a(fake_a), "lsgan"),
                "discriminator_b": F.discriminator_loss(self.d_b(b), self.d_b(fake_b), "lsgan")}

    # --- the two phases -----------------------------------------------------------------
    def generator_step(self, a, b):
        """Step 1: one step of G and F on L, D_A and D_B frozen; (losses, F(b), G(a))."""
        with frozen(self.d_a), frozen(self.d_b):
            terms, fake_a, fake_b = self.generator_terms(a, b)
            return _step(self.optimizers["generator"], terms), fake_a, fake_b

    def discriminator_step(self, a, b, fake_a, fake_b):
        """Step 2: one step of D_A and D_B on step 1's fakes, through the buffers."""
        return _step(self.optimizers["discriminator"], self.discriminator_terms(a, b, fake_a, fake_b))

    def train_step(self, batch):
        a, b = (self.to_model_range(x) for x in self.check_pair(batch, "train_step"))
        losses, fake_a, fake_b = self.generator_step(a, b)
        losses.update(self.discriminator_step(a, b, fake_a, fake_b))
        self.end_step()
        return losses

    def check_pair(self, batch, op):
        """(images of A, images of B) as Tensors of the model's image shape."""
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            what = f"a tuple of {len(batch)}" if isinstance(batch, (tuple, list)) else type(batch).__name__
            raise ValueError(f"cyclegan.{op}: expected a pair (images of A, images of B), got {what}")
        return tuple(self.check_images(x) for x in batch)

    # --- translating ----------------------------------------------------------------------
    def translate(self, x, direction="AB"):
        """Images x in [0, 1] of domain A (direction "AB", through G) or B ("BA", through F), translated."""
        if direction not in DIRECTIONS:
            raise ValueError(f"cyclegan.translate: direction must be 'AB' or 'BA', got {direction!r}")
        x = self.check_images(x)
        net = self.g_ab if direction == "AB" else self.g_ba
        with self.evaluating():
            return self.to_data_range(net(self.to_model_range(x)))

    # --- evaluation ----------------------------------------------------------------------
    def evaluate(self, batch):
        """The errors of the module docstring on (A, T(A), B, T^-1(B)), and on 8x8 digits label_preservation."""
        if not isinstance(batch, (tuple, list)) or len(batch) != 4:
            raise ValueError("cyclegan.evaluate: expected the 'unpaired_truth' kind, (images_a, truth_ab, "
                             "images_b, truth_ba)")
        a, truth_ab, b, truth_ba = (self.check_images(x) for x in batch)
        fake_b, fake_a = self.translate(a, "AB"), self.translate(b, "BA")
        back_a, back_b = self.translate(fake_b, "BA"), self.translate(fake_a, "AB")
        a, truth_ab, b, truth_ba, fake_a, fake_b, back_a, back_b = (
            t.numpy() for t in (a, truth_ab, b, truth_ba, fake_a, fake_b, back_a, back_b))
        out = {"translation_error_ab": _l1(fake_b, truth_ab), "translation_error_ba": _l1(fake_a, truth_ba),
               "identity_error_ab": _l1(a, truth_ab), "identity_error_ba": _l1(b, truth_ba),
               "cycle_error": 0.5 * (_l1(back_a, a) + _l1(back_b, b))}
        out["translation_error"] = 0.5 * (out["translation_error_ab"] + out["translation_error_ba"])
        out["identity_error"] = 0.5 * (out["identity_error_ab"] + out["identity_error_ba"])
        if self.image_shape == (1, 8, 8):
            out.update(self._label_preservation({"AB": (a, fake_b, truth_ab), "BA": (truth_ba, fake_a, truth_ba)}))
        return out

    def _label_preservation(self, triples):
        """Per readable direction: P[classify(translation) = classify(A-side image)], and for T."""
        state = backend.get_rng_state()     # loading the classifier builds layers, which draw their init
        try:
            kept, truth = {}, []
            for direction in READABLE[self.domains]:
                source, translated, true = triples[direction]
                digit = classify(source)
                kept[f"label_preservation_{direction.lower()}"] = float(np.mean(classify(translated) == digit))
                truth.append(float(np.mean(classify(true) == digit)))
        finally:
            backend.set_rng_state(state)
        kept["label_preservation"] = float(np.mean(list(kept.values())))
        kept["label_preservation_truth"] = float(np.mean(truth))
        return kept

    # --- pictures ---------------------------------------------------------------------------
    def pictures(self, batch, labels=None, columns=8):
        """{"translations": rows A, G(A), F(G(A)), B, F(B), G(F(B))} of ``columns`` test images, uint8.

        ``batch`` is the evaluation tuple (as the run folder passes it: real test images of
        both domains), or the test images of A alone, and then B is T applied to the next
        ``columns`` of them: images of B whose A-side sources do not appear above."""
        if isinstance(batch, (tuple, list)):
            a, b = self.check_images(batch[0])[:columns], self.check_images(batch[2])[:columns]
        else:
            x = self.check_images(batch)
            a = x[:columns]
            rest = x.numpy()[columns:2 * columns] if len(x) > columns else x.numpy()[:columns]
            b = Tensor(datasets.domain_transform(self.domains)(rest), device=x.device)
        fake_b, fake_a = self.translate(a, "AB"), self.translate(b, "BA")
        rows = [a, fake_b, self.translate(fake_b, "BA"), b, fake_a, self.translate(fake_a, "AB")]
        n = min(len(a), len(b))
        grid = make_grid(np.concatenate([r.numpy()[:n] for r in rows]), nrow=n,
                         scale=max(1, 32 // max(self.image_shape[1:])))
        return {"translations": grid[..., 0] if grid.shape[2] == 1 else grid}


def _l1(x, y):
    return float(np.abs(x - y).mean())
