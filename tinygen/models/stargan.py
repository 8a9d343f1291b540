"""StarGAN (Choi et al. 2018): one generator for translations between many domains, the target chosen by the user.

Section 7 of the notes. A domain is an attribute vector c in {0, 1}^K (here
thick, thin, rotated, inverted: ``tinygen.data.ATTRIBUTES``). One generator takes
an image and the attributes it should have, x_f = G(x, c'), and one discriminator
has two heads on a shared body: D_src(x), a PatchGAN grid of critic values, and
D_cls(x), K attribute logits. With c the attributes of the real x:

    L_adv   = mean D_src(x_f) - mean D_src(x)  +  lambda_gp GP          (WGAN-GP, D minimizes it)
    L_cls^r = 1/N sum_n sum_k BCE(D_cls(x)_nk, c_nk)                     D learns the attributes on real images
    L_cls^f = 1/N sum_n sum_k BCE(D_cls(x_f)_nk, c'_nk)                  G is paid for fakes D reads as c'
    L_rec   = mean |G(G(x, c'), c) - x|                                  the way back keeps the content

    L_idt   = mean |G(x, c) - x|                                         asked for what x has, G keeps x

    L_D = L_adv + lambda_cls L_cls^r
    L_G = -mean D_src(x_f) + lambda_cls L_cls^f + lambda_rec L_rec + lambda_idt L_idt

with lambda_cls = ``cls_weight`` = 1, lambda_rec = ``rec_weight`` = 10, lambda_gp =
``gp_weight`` = 10 (BCE summed over the attributes and averaged over the batch, as
in the reference code). L_idt is not in the paper (``identity_weight`` = 0 gives
the paper's L_G); it is CycleGAN's identity term, with its weight 5. Without it
nothing ties G(x, c') to x pixel by pixel: L_rec only asks that the way there and
back cancel, so a G that shifts or redraws the digit on the way there and undoes
it on the way back pays nothing, and the weak critic (a 2x2 grid on 8x8 digits)
does not see it. Measured (seed 0, 3000 steps, lr 5e-4, n_critic 5, the full-resolution
G): without L_idt G(x, c) is
0.20 from x, and flipping thick or thin gives 1.4 and 1.2 times the identity
map's error (worse than changing nothing); with it, 0.76 and 0.67.

GP is ``F.gradient_penalty``, the penalty of the critic
f(x) = the mean of D_src(x) over its grid (the quantity L_adv averages); it is
differentiated in D's weights, so D's convolutions are differentiated twice.
(The reference code takes the gradient of the grid's *sum*, which on its 2x2
grid is 4 f: the same penalty on a critic four times steeper.)

D learns to classify on real images only: a fake carries the attributes G was
asked for, not the ones it has, and a D taught that fakes have c' would learn
to agree with G, whatever G drew (the peer bug, yunjey/stargan#129).

Targets c' are a permutation of the batch's own attribute vectors (the reference
code's ``label_org[rand_idx]``): each row a vector some real image has, so the
targets are distributed as the data's attributes are, and never an impossible
combination (thick and thin together, which random bits would give).

One ``train_step((x, c))`` is one D step on L_D (fakes made without a graph); every
``n_critic`` = 3rd is followed by one G step on L_G with the same x and c' (D
frozen): 1000 G steps in 3000, where the reference code's 5 leaves G 600. Adam
(betas (0.5, 0.999)) for both, the rate constant for the first half of the run and
then linearly to zero (``_translation.py``). The rate is 5e-4,
not the reference code's 1e-4, which is for 200000 steps; here there are 3000.

Why zero padding (the InstanceNorm trap). c reaches G as K extra input channels,
c_k tiled over the image: channel k is the constant c_k. With reflection
padding a constant channel is still constant after padding, so the first
convolution adds to each output channel o the same number at every pixel,
sum_ij W[o, C + k, i, j] c_k. The instance norm that follows subtracts each
channel's mean over the pixels, which removes exactly that number: G's output
does not depend on c at all (dG/dc = 0), and no amount of training can change
it. With zero padding the border pixels see fewer of the constant's taps than
the inner ones, so the label adds a pattern, not a constant, and the pattern
survives the normalization (``tests/models/test_stargan.py`` shows both). The
reference code warns of this in its model file.

Networks (``_translation.py``). G (``generator`` = "resnet"): the ResNet generator
with zero padding and instance norm with an affine step (input C + K channels,
width 32, 3 residual blocks at half resolution), on the 8x8 digits too (8 -> 4 -> 8).
"small" is the full-resolution generator without IN that CycleGAN gets on 8x8
(``small_generator``). On the pairs (a, dilate(a)) alone the small one is better
(``_translation.py``: IN over 64 pixels divides out the ink mass), but StarGAN's G
is told only the target c', so it must also read from x which attributes x already
has, and the half-resolution blocks see the whole digit. In the GAN (seed 0,
defaults otherwise) translation / identity error for thick, thin, rotated,
inverted is 0.69, 0.57, 0.58, 0.43 with "resnet" against 0.73, 0.63, 0.60, 0.42
with "small". D: two convolutions 4s2p1 (32, 64 channels) with
LeakyReLU(0.01) and no normalization (the critic of WGAN-GP must not couple the
samples of a batch); D_src: a 3x3 convolution to 1 channel (a 2x2 grid on 8x8
digits, 7x7 on 28x28); D_cls: a convolution whose kernel is the whole last map,
to K logits.

Evaluation (the "attributes_truth" kind: images, attributes, sources, labels). The
images are made from their sources by known transforms
(``tinygen.data.apply_attributes``), so the right answer for any target is known.
For each attribute k the target flips it, c' = c with c'_k = 1 - c_k (turning on
one of the mutually exclusive thick and thin turns the other off):

    translation_error_<k> = mean |G(x, c') - apply_attributes(source, c')|
    identity_error_<k>    = mean |x - apply_attributes(source, c')|       the map that changes nothing
    translation_error, identity_error    their means over the K attributes
    translation_error_any, identity_error_any    targets drawn uniformly over the valid vectors
    reconstruction_error  = mean over k of mean |G(G(x, c'), c) - x|
    attribute_accuracy    = share of the entries of D_cls(G(x, c')) > 0 that agree with c' (over all k)
    attribute_accuracy_real   the same share on the real images against c, for comparison

all on the [0, 1] scale of the data.

Defaults and what they give (8x8 digits, ``tinygen train stargan``): batch 16, 3000
steps (1000 G steps), about 1.5 minutes on one shared CPU core; attribute_accuracy
1.00 (0.99 on the real images). Per attribute flipped, translation / identity error
for seeds 0, 1, 2: thick 0.69, 0.69, 0.70; thin 0.57, 0.57, 0.57; rotated 0.58,
0.58, 0.59; inverted 0.43, 0.43, 0.43 (with the small G and n_critic 5, seed 0:
0.76, 0.67, 0.61, 0.42). Thick and thin stay above half the identity map's error,
and most of that is out of any G's reach: G is told only c', and flipping thick
means dilating a plain image, undoing a dilation (lossy) or dilating an eroded one
(erosion loses the thin strokes). A rule told x's attributes (dilate, erode, or
twice, on the ink) is at 0.59 for thick and 0.55 for thin. G trained *on the true
pairs* with L1 (3000 steps, lr 1e-3, random valid targets) reaches 0.64, 0.55, 0.25,
0.11 (thick, thin, rotated, inverted); the small G 0.73, 0.65, 0.34, 0.13 (0.65,
0.53, 0.33, 0.10 when also told x's attributes; 0.66, 0.57 for thick and thin at width
64). The GAN is near that ceiling for the strokes; the quarter turn and the inversion
are short of it. Nothing in L_G tells one turn from the other (D_cls reads both as
rotated, L_rec accepts either pair), and G hedges (seed 0, the old defaults: its turn
is 0.211 from the true one and 0.209 from the opposite one), also when asked only to
invert (0.30 from 1 - x, 0.28 from the mean of 1 - x and its quarter turn). No gain on the
turn from a 4x4 critic grid (src head after one downsampling: 0.64), identity_weight
1, 2 or 10, cls_weight 3, rec_weight 5 or 20, gp_weight 1, d_width 64, width 48,
blocks 5, lr 1e-3 or 6000 steps (all 0.59 to 0.62, seed 0, small G).
"""
import numpy as np

from .. import backend, data as datasets
from .. import functional as F
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..data.domains import EXCLUSIVE
from ..imaging import make_grid
from ..nn import Conv2d, Module
from . import register
from ._adversarial import _not_negative, _positive, _step
from ._translation import (TranslationModel, check_even_sides, patch_body, patch_head, translation_generator,
                           whole_number)
from .base import frozen


GENERATORS = ("resnet", "small")
"""The generators StarGAN can use (module docstring): ``resnet_generator`` or ``small_generator``."""


class TwoHeadDiscriminator(Module):
    """D's shared body with the source head (a grid of critic values) and the attribute head (K logits)."""

    def __init__(self, image_shape, width, attributes):
        super().__init__()
        c, h, w = image_shape
        self.body, channels = patch_body(c, width, 2, 0.01, instance_norm=False)
        self.src = patch_head(channels)
        self.cls = Conv2d(channels, attributes, (h // 4, w // 4))   # the whole last map: one logit each

    def forward(self, x):
        """(D_src(x) (N, 1, h, w), D_cls(x) (N, K))."""
        h = self.body(x)
        return self.src(h), F.reshape(self.cls(h), (x.shape[0], -1))

    def critic(self, x):
        """f(x): the mean of D_src(x) over its grid, one value per image (N,)."""
        return F.mean(F.reshape(self.src(self.body(x)), (x.shape[0], -1)), axis=1)


@register("stargan", kind="implicit", section="7. GAN",
          summary="one generator G(x, c) for every attribute target c (tiled label channels, zero padding), "
                  "a critic with an attribute head, WGAN-GP, classification, reconstruction and identity terms",
          tested="the label reaches G with zero padding and is cancelled with reflection padding; targets "
                 "permute the batch's labels; D classifies real images only; the penalty reaches D's weights")
class StarGAN(TranslationModel):
    default_steps = 3000
    default_batch_size = 16
    data_kind = "attributes"
    eval_data_kind = "attributes_truth"
    eval_seed = 12345
    pictures_take_eval_batch = True   # the run folder's pictures show the single-attribute changes

    def __init__(self, image_shape=(1, 8, 8), attribute_names=datasets.ATTRIBUTES, width=32, blocks=3,
                 d_width=32, generator="resnet", cls_weight=1.0, rec_weight=10.0, identity_weight=5.0,
                 gp_weight=10.0, n_critic=3, lr=5e-4,
                 betas=(0.5, 0.999), total_steps=None, decay_start=None):
        super().__init__(image_shape, lr, betas, total_steps, decay_start)
        try:
            datasets.attribute_combinations(attribute_names)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"stargan: {exc}") from None
        self.attribute_names = tuple(attribute_names)
        if "rotated" in self.attribute_names and self.image_shape[1] != self.image_shape[2]:
            raise ValueError(f"stargan: the attribute 'rotated' turns images a quarter, which needs square "
                             f"images, got image_shape {self.image_shape}")
        check_even_sides(self.image_shape, 2, "stargan")
        self.width, self.d_width = _positive(width, "width", "stargan"), _positive(d_width, "d_width", "stargan")
        self.blocks = whole_number(blocks, "blocks", "stargan", "no residual blocks")
        self.cls_weight = _not_negative(cls_weight, "cls_weight", "stargan", "no classification term")
        self.rec_weight = _not_negative(rec_weight, "rec_weight", "stargan", "no reconstruction term")
        self.identity_weight = _not_negative(identity_weight, "identity_weight", "stargan", "no identity term")
        self.gp_weight = _not_negative(gp_weight, "gp_weight", "stargan", "no gradient penalty")
        self.n_critic = _positive(n_critic, "n_critic", "stargan")
        if generator not in GENERATORS:
            raise ValueError(f"stargan: generator must be one of {', '.join(GENERATORS)}, got {generator!r}")
        self.generator_kind = generator
        c, k = self.image_shape[0], len(self.attribute_names)
        self.generator = translation_generator(self.image_shape, c + k, c, self.width, self.blocks, pad="zeros",
                                               affine=True, small=generator == "small")
        self.discriminator = TwoHeadDiscriminator(self.image_shape, self.d_width, k)
        self.make_optimizers({"generator": [self.generator], "discriminator": [self.discriminator]})

    # --- the generator's input: the image and the tiled attributes ----------------------
    def generate(self, x, c):
        """G(x, c): x (N, C, H, W) in [-1, 1], c a Tensor (N, K) -> (N, C, H, W) in [-1, 1]."""
        n, k = c.shape
        tiled = F.expand(F.reshape(c, (n, k, 1, 1)), (n, k) + tuple(x.shape[2:]))
        return self.generator(F.concat([x, tiled], axis=1))

    def target_attributes(self, c):
        """c' = the rows of c in a random order (tinygen's generator): the batch's own vectors.

        The order is drawn on the CPU generator, whatever c's device: CuPy's Generator has
        no permutation (found by the CuPy stand-in, tests/fake_cuda)."""
        order = backend.generator("cpu").permutation(c.shape[0])
        return c[backend.to_device(order, c.device)]

    def classification_loss(self, logits, c):
        """1/N sum_n sum_k BCE(logits_nk, c_nk)."""
        return F.binary_cross_entropy_with_logits(logits, c, reduction="sum") / logits.shape[0]

    # --- the two players' terms (x in the model's range) ----------------------------------
    def discriminator_terms(self, x, c, fake):
        """L_D's named terms; D_cls is trained on the real images only."""
        src_real, cls_real = self.discriminator(x)
        src_fake, _ = self.discriminator(fake)
        terms = {"discriminator": F.discriminator_loss(src_real, src_fake, "wgan"),
                 "classification_real": self.cls_weight * self.classification_loss(cls_real, c)}
        if self.gp_weight > 0:
            terms["gradient_penalty"] = F.gradient_penalty(self.discriminator.critic, x, fake,
                                                           weight=self.gp_weight)
        return terms

    def generator_terms(self, x, c, target):
        """L_G's named terms, on new fakes G(x, c') that keep their graph."""
        fake = self.generate(x, target)
        src_fake, cls_fake = self.discriminator(fake)
        terms = {"generator": F.generator_loss(src_fake, "wgan"),
                 "classification_fake": self.cls_weight * self.classification_loss(cls_fake, target),
                 "reconstruction": self.rec_weight * F.l1_loss(self.generate(fake, c), x)}
        if self.identity_weight > 0:
            terms["identity"] = self.identity_weight * F.l1_loss(self.generate(x, c), x)
        return terms

    # --- the two phases -------------------------------------------------------------------------
    def discriminator_step(self, x, c, target):
        """One step of D on L_D, against fakes G(x, c') made without a graph."""
        with no_grad():
            fake = self.generate(x, target)
        return _step(self.optimizers["discriminator"], self.discriminator_terms(x, c, fake))

    def generator_step(self, x, c, target):
        """One step of G on L_G, D frozen."""
        with frozen(self.discriminator):
            return _step(self.optimizers["generator"], self.generator_terms(x, c, target))

    def train_step(self, batch):
        x, c = self.check_batch(batch, "train_step")
        x, target = self.to_model_range(x), self.target_attributes(c)
        losses = self.discriminator_step(x, c, target)
        if (self.steps_taken + 1) % self.n_critic == 0:     # after every n_critic-th D step
            losses.update(self.generator_step(x, c, target))
        self.end_step()
        return losses

    # --- checking what users pass -------------------------------------------------------------
    def check_batch(self, batch, op):
        """(images, attributes) as Tensors: images of the model's shape, attributes (N, K) of valid 0/1 vectors."""
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(f"stargan.{op}: expected (images, attributes), got {type(batch).__name__}")
        x = self.check_images(batch[0])
        return x, self.check_attributes(batch[1], x.shape[0], op)

    def check_attributes(self, attributes, n, op):
        """Attribute vectors (K,) or (n, K) as an (n, K) Tensor of the model's dtype and device."""
        try:
            c = datasets.check_attributes(attributes, self.attribute_names)
        except ValueError as exc:
            raise ValueError(f"stargan.{op}: {exc}") from None
        if c.ndim == 1:
            c = np.broadcast_to(c, (n, c.shape[0]))
        if c.shape[0] != n:
            raise ValueError(f"stargan.{op}: {c.shape[0]} attribute vectors for {n} images")
        return Tensor._make(backend.to_device(np.array(c, dtype=self._dtype()), self._device()))

    # --- translating -------------------------------------------------------------------------
    def translate(self, x, attributes):
        """Images x in [0, 1] with the ``attributes`` ((K,) for all, or (N, K)) in ``attribute_names``' order."""
        x = self.check_images(x)
        c = self.check_attributes(attributes, x.shape[0], "translate")
        with self.evaluating():
            return self.to_data_range(self.generate(self.to_model_range(x), c))

    def read_attributes(self, x):
        """D_cls's logits (N, K) on images x in [0, 1]."""
        x = self.check_images(x)
        with self.evaluating():
            return self.discriminator(self.to_model_range(x))[1]

    # --- evaluation --------------------------------------------------------------------------
    def single_changes(self, c):
        """{name: c with that attribute flipped} for (N, K) arrays c (an exclusive partner turned off)."""
        names, out = self.attribute_names, {}
        for k, name in enumerate(names):
            target = c.copy()
            target[:, k] = 1 - c[:, k]
            for pair in EXCLUSIVE:
                if name in pair and (other := pair[1 - pair.index(name)]) in names:
                    target[target[:, k] == 1, names.index(other)] = 0
            out[name] = target
        return out

    def evaluate(self, batch):
        """The errors and accuracies of the module docstring on (images, attributes, sources, labels)."""
        if not isinstance(batch, (tuple, list)) or len(batch) < 3:
            raise ValueError("stargan.evaluate: expected the 'attributes_truth' kind, (images, attributes, "
                             "sources, labels)")
        x, c = self.check_batch(batch, "evaluate")
        sources = self.check_images(batch[2]).numpy()
        images, c = x.numpy(), c.numpy()
        out, rec, right = {}, [], []
        for name, target in self.single_changes(c).items():
            errors = self._scores(x, images, sources, target)
            out[f"translation_error_{name}"], out[f"identity_error_{name}"] = errors[:2]
            rec.append(float(np.abs(self.translate(errors[2], c).numpy() - images).mean()))
            right.append(errors[3])
        out["translation_error"] = float(np.mean([out[f"translation_error_{n}"] for n in self.attribute_names]))
        out["identity_error"] = float(np.mean([out[f"identity_error_{n}"] for n in self.attribute_names]))
        combos = datasets.attribute_combinations(self.attribute_names)
        anything = combos[np.random.default_rng(self.eval_seed).integers(len(combos), size=len(images))]
        out["translation_error_any"], out["identity_error_any"] = self._scores(x, images, sources, anything)[:2]
        out["reconstruction_error"] = float(np.mean(rec))
        out["attribute_accuracy"] = float(np.mean(right))
        out["attribute_accuracy_real"] = float(np.mean((self.read_attributes(x).numpy() > 0) == (c == 1)))
        return out

    def _scores(self, x, images, sources, target):
        """(translation error, identity error, the translations, D_cls's accuracy on them) for ``target``."""
        truth = datasets.apply_attributes(sources, target, self.attribute_names)
        y = self.translate(x, target)
        right = float(np.mean((self.read_attributes(y).numpy() > 0) == (target == 1)))
        return float(np.abs(y.numpy() - truth).mean()), float(np.abs(images - truth).mean()), y, right

    # --- pictures ------------------------------------------------------------------------------
    def pictures(self, batch, labels=None, rows=8):
        """{"translations": a grid of test images and their translations}, uint8.

        Given the evaluation tuple (images, attributes, sources, ...), as the run folder
        passes it (``pictures_take_eval_batch``): two rows per image, the image and its K
        single-attribute changes G(x, c'_k) (``single_changes``, in ``attribute_names``'
        order), and under them its source and the true images apply_attributes(source, c'_k).
        Given images alone (their attributes unknown): a row per image, the image and its
        translation to every valid attribute vector (``tinygen.data.attribute_combinations``,
        binary counting order: all off first)."""
        if isinstance(batch, (tuple, list)) and len(batch) >= 3:
            return self._grid(self._single_change_cells(batch, rows), len(self.attribute_names) + 1)
        x = self.check_images(batch[0] if isinstance(batch, (tuple, list)) else batch)[:rows]
        combos = datasets.attribute_combinations(self.attribute_names)
        n, m = x.shape[0], len(combos)
        repeated = Tensor(np.repeat(x.numpy(), m, axis=0))
        translated = self.translate(repeated, np.tile(combos, (n, 1))).numpy().reshape((n, m) + self.image_shape)
        return self._grid(np.concatenate([x.numpy()[:, None], translated], axis=1), m + 1)

    def _single_change_cells(self, batch, rows):
        """(2 n, K + 1, C, H, W): per image [x, G(x, c'_k) ...] over [source, truth_k ...]."""
        x, c = self.check_batch((batch[0][:rows], batch[1][:rows]), "pictures")
        sources = self.check_images(batch[2][:rows]).numpy()
        made, true = [x.numpy()], [sources]
        for target in self.single_changes(c.numpy()).values():
            made.append(self.translate(x, target).numpy())
            true.append(datasets.apply_attributes(sources, target, self.attribute_names))
        return np.stack([np.stack(made, 1), np.stack(true, 1)], 1).reshape((-1, len(made)) + self.image_shape)

    def _grid(self, cells, columns):
        grid = make_grid(cells.reshape((-1,) + self.image_shape), nrow=columns,
                         scale=max(1, 32 // max(self.image_shape[1:])))
        return {"translations": grid[..., 0] if grid.shape[2] == 1 else grid}
