"""What every GAN of the family shares: two players, their two optimizers, and the loop between them.

Section 7 of the notes. A generator G maps noise z ~ p(z) = N(0, I) to a sample
x_f = G(z); a discriminator (or critic) D maps a sample to one logit a = D(x). The
two are trained in turns on the losses of ``tinygen.functional.adversarial``
(``loss`` names the kind; a_r = D(x) on a real batch, a_f = D(G(z)) on fakes):

    D step   L_D = discriminator_loss(a_r, a_f, kind) [+ GP]       optimizers["discriminator"]
    G step   L_G = generator_loss(a_f, kind)                        optimizers["generator"]

and, with ``gp_weight`` lambda > 0, the gradient penalty

    GP = lambda * mean_n (||grad_x D(x_hat_n)|| - gp_target)^2,
    x_hat_n = alpha_n x_n + (1 - alpha_n) x_f,n,     alpha_n ~ U(0, 1)

(WGAN-GP with gp_target = 1; gp_target = 0 is the zero-centred penalty, which
pulls D towards flat, so that it cannot push the fakes by more than it must).

One ``train_step(batch)`` is one D step on that batch; every ``n_critic``-th call
is followed by one G step (the paper's k discriminator steps per generator step,
k = n_critic). The losses of a call are reported by name; a call without a G step
has no ``generator`` entry, and the training log averages each loss over the
steps that reported it. The order within a call, and why:

1. D step. The fakes are made under ``no_grad`` (detached): L_D must move D alone,
   and G's gradients must not fill up with a gradient nobody steps on (the peer
   bug of a D step that leaves G's .grad behind for the next G step).
2. G step. New fakes and a new D(G(z)): the logits of step 1 were computed with
   D's old weights, which the D optimizer has since changed in place, and the
   engine refuses to differentiate through them (``RuntimeError: ... changed in
   place ... compute the loss again``). D is frozen (``requires_grad_(False)``)
   for the step, so L_G's backward fills G's gradients and leaves D's untouched.

Optimizers. Adam for each player, ``lr`` for G and ``d_lr`` (default: ``lr``) for D,
``betas`` for both. With ``lr_half_life`` h > 0 both rates decay as

    lr_t = lr 2^(-t / h),     t = D steps taken (the ``critic_steps`` buffer)

set before each step from the count itself, so a resumed run continues on the same
schedule. A GAN at a constant rate never settles: its players chase each other, and
the samples wobble around the data by about what one step moves them. Halving the
rate every h steps lets the wobble die out (on the ring: from a blur around each
mode to samples within 3 std of it).

Data range. Images arrive in [0, 1]; a GAN works in [-1, 1], where the generator's
tanh output lives (x_model = 2 x - 1), and ``sample(n)`` maps back to [0, 1]. 2-D
points (``toy=NAME``, the sets of ``tinygen.data.toy``) are used as they are, and
the generator's last layer is linear.

Evaluation (``evaluate(batch)``) scores ``eval_samples`` samples drawn from a
noise batch of a fixed seed (``eval_seed``, its own NumPy generator), so two
evaluations of one model give the same numbers and the training stream of
random numbers is not touched at all:

    images (1, 8, 8)  frechet_distance   FD of the digits classifier's features of the
                                         samples vs the evaluated batch
                      frechet_floor      FD(train, test) of real digits, the floor to read it by
                      class_kl           KL(predicted-label histogram || uniform), nats
                      confident          share of samples the classifier gives p > 0.9
                                         (real test digits: 0.967)
    2-D points        frechet_distance   FD of the points themselves vs the batch
                      modes, high_quality  ``mode_coverage`` on ``toy_eval_samples`` (2500)
                                         samples, at the toy set's centres and std

Hooks for a subclass (InfoGAN adds a code c and a mutual-information term):
``latent(n)`` draws the generator's input, ``generate(latent)`` makes fakes from it,
``discriminate(x)`` gives D's logits (N,), ``adversarial_terms`` is L_D (with GP) from
D's logits, and ``discriminator_terms`` / ``generator_terms`` return the named loss
terms each step sums and reports. A term named in ``reported_only`` is reported but
not summed (an estimate a step computes on the way, such as InfoGAN's mutual
information).
"""
import numpy as np

from .. import backend, data as datasets
from .. import functional as F
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..functional.adversarial import KINDS
from ..imaging import scatter_array
from ..metrics import (class_histogram_kl, confident_fraction, digits_classifier, frechet_distance,
                       mode_coverage, sample_frechet_distance)
from ..optim import Adam
from .base import GenerativeModel, descend, frozen


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _positive(value, name, who, kind=int):
    if not _is_number(value) or not value > 0 or (kind is int and int(value) != value):
        what = "a positive whole number" if kind is int else "a positive number"
        raise ValueError(f"{who}: {name} must be {what}, got {value!r}")
    return kind(value)


def _not_negative(value, name, who, zero_means):
    if not _is_number(value) or not value >= 0:
        raise ValueError(f"{who}: {name} must be a number >= 0 (0: {zero_means}), got {value!r}")
    return float(value)


class AdversarialModel(GenerativeModel):
    """The two-player loop; a subclass builds ``self.generator`` and ``self.discriminator``."""
    default_batch_size = 64
    eval_samples = 1000          # samples behind the image metrics
    toy_eval_samples = 2500      # behind the 2-D ones (VEEGAN's protocol)
    eval_seed = 12345
    uses_batch_norm = False      # True: a training batch needs at least 2 examples
    reported_only = ()           # names of terms the steps report but do not train on

    def __init__(self, image_shape=None, toy=None, latent_dim=16, loss="nonsaturating", gp_weight=0.0,
                 gp_target=1.0, n_critic=1, lr=2e-4, d_lr=None, betas=(0.5, 0.999), lr_half_life=0):
        who = type(self).name or type(self).__name__
        if toy is not None and image_shape is not None:
            raise ValueError(f"{who}: give image_shape (images) or toy (2-D points), not both")
        super().__init__((1, 8, 8) if image_shape is None else image_shape)
        if toy is not None:
            if toy not in datasets.TOY_SETS:
                raise ValueError(f"{who}: unknown toy set {toy!r}; known: {', '.join(sorted(datasets.TOY_SETS))}")
            self.image_shape, self.data_kind = None, "toy"    # this model trains on points
        self.toy = toy
        self.data_shape = (2,) if toy is not None else self.image_shape
        if loss not in KINDS:
            raise ValueError(f"{who}: unknown loss kind {loss!r}; the kinds are {', '.join(map(repr, KINDS))}")
        self.loss, self.gp_target = loss, float(gp_target)
        self.gp_weight = _not_negative(gp_weight, "gp_weight", who, "no gradient penalty")
        self.latent_dim = _positive(latent_dim, "latent_dim", who)
        self.n_critic = _positive(n_critic, "n_critic", who)
        self.lr = _positive(lr, "lr", who, float)
        self.d_lr = self.lr if d_lr is None else _positive(d_lr, "d_lr", who, float)
        if not (isinstance(betas, tuple) and len(betas) == 2 and all(0 <= b < 1 for b in betas)):
            raise ValueError(f"{who}: betas must be two numbers in [0, 1), got {betas!r}")
        self.betas = tuple(float(b) for b in betas)
        self.lr_half_life = _not_negative(lr_half_life, "lr_half_life", who, "constant rates")
        # D steps taken so far: the G step comes after every n_critic-th (a buffer, so a resumed run keeps the beat)
        self.register_buffer("critic_steps", Tensor._make(np.zeros((), np.int64)))

    def make_optimizers(self):
        """Adam for each player (call once the networks exist)."""
        self.optimizers["generator"] = Adam(self.generator.parameters(), lr=self.lr, betas=self.betas)
        self.optimizers["discriminator"] = Adam(self.discriminator.parameters(), lr=self.d_lr, betas=self.betas)

    def set_learning_rates(self, t):
        """Both players' rates after t D steps: lr 2^(-t / lr_half_life) (and d_lr likewise), or constant."""
        factor = 0.5 ** (t / self.lr_half_life) if self.lr_half_life > 0 else 1.0
        for key, base in (("generator", self.lr), ("discriminator", self.d_lr)):
            for group in self.optimizers[key].param_groups:
                group["lr"] = base * factor

    # --- data in and out of the model's range -----------------------------------------
    def check_data(self, x):
        """A batch as the model's Tensor, checked against its kind: images (N, C, H, W) or points (N, 2)."""
        if self.toy is None:
            if getattr(x, "ndim", None) == 2:
                raise ValueError(f"{self.name}: this model was built for images of shape {self.image_shape}, "
                                 f"got 2-D points of shape {tuple(x.shape)} (build it with toy=NAME for points)")
            return self.check_images(x)
        if not isinstance(x, Tensor):
            x = Tensor(x, dtype=self._dtype(), device=self._device())
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"{self.name}: this model was built for 2-D points (toy={self.toy!r}), expected "
                             f"shape (N, 2), got {tuple(x.shape)}")
        return x

    def to_model_range(self, x):
        """[0, 1] images -> [-1, 1]; points unchanged."""
        return x if self.toy is not None else 2 * x - 1

    def to_data_range(self, x):
        return x if self.toy is not None else (x + 1) * 0.5

    def _dtype(self):
        return next(iter(self.parameters())).dtype

    def _device(self):
        return next(iter(self.parameters())).device

    # --- hooks --------------------------------------------------------------------------
    def latent(self, n, rng=None):
        """The generator's input for n samples: z ~ N(0, I) (n, latent_dim), from ``rng`` or tinygen's generator."""
        rng = backend.generator(self._device()) if rng is None else rng
        z = rng.standard_normal((n, self.latent_dim)).astype(self._dtype())
        return Tensor._make(backend.to_device(z, self._device()))

    def generate(self, latent):
        """Fakes G(latent) in the model's range."""
        return self.generator(latent)

    def discriminate(self, x):
        """D's logits, one per sample: (N,)."""
        return F.reshape(self.discriminator(x), (x.shape[0],))

    def discriminator_terms(self, real, fake, latent):
        """The named terms of L_D (summed by the D step)."""
        return self.adversarial_terms(self.discriminate(real), self.discriminate(fake), real, fake)

    def adversarial_terms(self, real_logits, fake_logits, real, fake):
        """L_D from D's logits on the two batches, and GP (on ``real`` and ``fake``) when on."""
        terms = {"discriminator": F.discriminator_loss(real_logits, fake_logits, self.loss)}
        if self.gp_weight > 0:
            terms["gradient_penalty"] = F.gradient_penalty(self.discriminate, real, fake, weight=self.gp_weight,
                                                           target=self.gp_target)
        return terms

    def generator_terms(self, fake, latent):
        """The named terms of L_G (summed by the G step)."""
        return {"generator": F.generator_loss(self.discriminate(fake), self.loss)}

    # --- the two phases -------------------------------------------------------------------
    def discriminator_step(self, real):
        """One step of D on L_D, against fakes made without a graph (``real`` in the model's range)."""
        latent = self.latent(real.shape[0])
        with no_grad():
            fake = self.generate(latent)
        return _step(self.optimizers["discriminator"], self.discriminator_terms(real, fake, latent),
                     self.reported_only)

    def generator_step(self, n):
        """One step of G on L_G over n new fakes, D frozen."""
        with frozen(self.discriminator):
            latent = self.latent(n)
            return _step(self.optimizers["generator"], self.generator_terms(self.generate(latent), latent),
                         self.reported_only)

    def train_step(self, batch):
        x = self.check_data(batch)
        return self.take_turns(x.shape, lambda: self.discriminator_step(self.to_model_range(x)),
                               lambda: self.generator_step(x.shape[0]))

    def take_turns(self, shape, discriminator_step, generator_step):
        """One call of the loop for a batch of ``shape``: the rates set from the D steps taken,
        ``discriminator_step()``, then ``generator_step()`` after every n_critic-th; their losses."""
        if self.uses_batch_norm and shape[0] < 2:
            raise ValueError(f"{self.name}: batch norm needs a batch of at least 2 to estimate its statistics, "
                             f"got a batch of {shape[0]} (shape {tuple(shape)})")
        self.set_learning_rates(int(self.critic_steps.data))    # from the step count: a resumed run agrees
        losses = discriminator_step()
        done = int(self.critic_steps.data) + 1
        self.critic_steps.data[...] = done
        self.critic_steps._bump_version()
        if done % self.n_critic == 0:
            losses.update(generator_step())
        return losses

    # --- sampling ---------------------------------------------------------------------------
    def sample(self, n):
        """n samples in the data's range: images in [0, 1], or points; G in evaluation mode."""
        return self._sample(self.latent(n))

    def _sample(self, latent):
        was = self.training
        self.eval()
        try:
            with no_grad():
                return self.to_data_range(self.generate(latent))
        finally:
            self.train(was)

    def eval_sample(self, n):
        """n samples from noise of the fixed seed ``eval_seed``: the same every call, the training stream untouched."""
        return self._sample(self.latent(n, rng=np.random.default_rng(self.eval_seed)))

    # --- evaluation ---------------------------------------------------------------------------
    def toy_modes(self):
        """(centres, std) of the toy mixture, or None (images, or a set without modes)."""
        return None if self.toy is None else datasets.toy_modes(self.toy)

    def evaluate(self, batch):
        x = self.check_data(batch)
        if x.shape[0] < 2:
            raise ValueError(f"{self.name}.evaluate: the Frechet distance needs at least 2 test examples "
                             f"to estimate a covariance, got {x.shape[0]}")
        if self.toy is not None:
            return self._toy_metrics(x.numpy())
        if self.image_shape != (1, 8, 8):
            return {}       # the shipped classifier scores 8x8 digits only
        state = backend.get_rng_state()     # loading the classifier builds layers, which draw their init
        try:
            return self._image_metrics(x.numpy())
        finally:
            backend.set_rng_state(state)

    def _image_metrics(self, images):
        samples = self.eval_sample(self.eval_samples).numpy()
        return {"frechet_distance": sample_frechet_distance(samples, images),
                "frechet_floor": float(digits_classifier().info["fd_train_test"]),
                "class_kl": class_histogram_kl(samples), "confident": confident_fraction(samples)}

    def _toy_metrics(self, points):
        samples = self.eval_sample(self.toy_eval_samples).numpy().astype(np.float64)
        out = {"frechet_distance": frechet_distance(samples, points.astype(np.float64))}
        modes = self.toy_modes()
        if modes is not None:
            coverage = mode_coverage(samples, *modes)
            out.update(modes=float(coverage.modes), high_quality=coverage.high_quality)
        return out

    # --- pictures -------------------------------------------------------------------------------
    def pictures(self, batch, labels=None):
        """For points, {"scatter": a scatter of ``toy_eval_samples`` samples over the batch (grey),
        the mode centres marked}, uint8 (H, W, 3); for images none of its own (the run's
        samples.png shows them)."""
        x = self.check_data(batch)
        if self.toy is None:
            return {}
        modes = self.toy_modes()
        title = f"{self.name}: samples over the data (grey)" + (", centres +" if modes else "")
        return {"scatter": scatter_array(self.eval_sample(self.toy_eval_samples).numpy(), reference=x.numpy(),
                                       title=title, centers=None if modes is None else modes[0])}


def _step(optimizer, terms, reported_only=()):
    """Sum the named loss terms (all but ``reported_only``), step ``optimizer`` on the sum,
    report each term as a float."""
    values = [term for name, term in terms.items() if name not in reported_only]
    loss = values[0]
    for term in values[1:]:
        loss = loss + term
    descend(optimizer, loss)
    return {name: term.item() for name, term in terms.items()}

