"""The adversarial autoencoder (Makhzani et al. 2016): an autoencoder whose code is made to look like prior draws.

Section 5 of the notes. The encoder z = Q(x) and the decoder's Bernoulli logits
l = G(z) are an ordinary autoencoder; a discriminator D on the latent space makes
the aggregated posterior q(z) = E_{x ~ p_d} Q(z|x) match a prior p(z). Unlike the
VAE's KL term, this needs no density of p(z), only samples: any prior with
``sample(n)`` works (``_priors.py``: "gaussian", the paper's 10-component "mixture",
"swiss_roll", a ``tinygen.distributions`` distribution, or a user's sampler object).

Each ``train_step`` runs the paper's three phases in order, each with its own
optimizer over its own parameters (a = D(z) is a logit, sigma(a) the probability
that z came from the prior):

    1. reconstruction  (encoder Q, decoder G; optimizers["autoencoder"])
           L_rec = mean_n c(x_n, Q(x_n)),    c(x, z) = -sum_i [x_i l_i - softplus(l_i)],  l = G(z)
    2. regularization-D  (discriminator D; optimizers["discriminator"])
       prior draws are "real", encodings "fake":
           L_D = mean_n softplus(-D(z'_n)) + mean_n softplus(D(Q(x_n))),    z'_n ~ p(z)
         = -mean log sigma(D(z')) - mean log(1 - sigma(D(Q(x))))
    3. regularization-G  (encoder Q only; optimizers["encoder"]), non-saturating:
           L_G = mean_n softplus(-D(Q(x_n)))  = -mean log sigma(D(Q(x)))

The phases are three losses and three steps, not one weighted sum: the decoder
never sees the adversarial gradient, and D is held fixed (frozen) in phase 3 and
receives no gradient in phase 1. Each phase is a method (``reconstruction_phase``,
``discriminator_phase``, ``generator_phase``), so a test can run one and watch which
parameters move; phase 2 encodes under ``no_grad``, so it touches Q's gradients not at all.

With ``labels=True`` (the paper's "incorporating label information", section 2.3)
the prior is a mixture with one component per class. The prior draw paired with
image n comes from the component of its label y_n, and D sees the one-hot label
beside z: D([z, onehot(y)]). D can then tell an encoding from the wrong component,
so Q learns to put each class in its own component. ``label_component_accuracy``
(``evaluate``) is the fraction of test encodings the prior assigns to their label's
component.

Learning rates: ``lr`` (phase 1, default 1e-3), ``disc_lr`` and ``encoder_lr`` (phases
2 and 3, default lr; Adam with beta_1 = 0.5 for both adversarial phases, as GANs
usually are). The two adversarial rates must stay in step: with the G phase at
0.3 lr the encoder of the labelled AAE could no longer follow D (after 6,000 steps
L_D = 0.10, L_G = 23, label accuracy 0.23 instead of 0.86), and with both at 0.2 lr
the unlabelled AAE's D won as well (L_G = 24, latent MMD 2.5 after 6,000 steps).

The AAE reads as a Wasserstein autoencoder whose latent divergence is estimated by
a GAN (``wae.py``). Defaults for 8x8 digits (notes: 64-128-128-2, the mirrored
decoder, D 2-64-64-1, no BatchNorm in D): ``latent_dim`` 2, ``hidden_size`` 128.

Measured on the binarized digits test set after the default 6,000 steps (batch 64,
``tinygen train aae [--set ...]``, seed 0, 30 to 50 s on one CPU core):

    prior          reconstruction_nats  latent_mmd  frechet_distance  class_kl  label acc.
    gaussian            19.96             0.035         37.0            0.055
    mixture             16.50             0.017         20.0            0.012
    swiss_roll          18.30             0.138         76.4            0.127
    mixture, labels     17.83             0.013         22.0            0.012      0.855

(frechet_distance: compare 10.4 between the classifier's training and test images.)
The final L_D of the Gaussian run, 1.387, is log 4: by the optimal-discriminator
argument (``wae.py``) D is at chance and the estimated JSD(p || q) is near 0. The
noiseless swiss roll is a curve, easy for D to tell from anything off it: there D
wins (L_D = 0.67) and q(z) matches it least well.

Why ``data_kind = "labelled"``: the command line reads a model's data kind from its
class before it is built, so it cannot depend on the ``labels`` option. The AAE
therefore always receives (images, labels) from the command line (digits and MNIST
have labels) and uses the labels only when ``labels=True``; through the API,
``train_step(images)`` works for the unsupervised model and
``train_step((images, labels))`` for both.
"""
from .. import functional as F
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..optim import Adam
from . import register
from ._autoencoder import LatentAutoencoder, mlp, positive_int
from .base import descend, frozen


@register("aae", kind="implicit", section="5. AAE and WAE",
          summary="autoencoder + latent discriminator, three phases; any samplable prior (gaussian, mixture, ...)",
          tested="each of the three phases changes only its own parameters; D labels prior draws real; "
                 "training lowers the latent MMD; labelled encodings land in their component")
class AAE(LatentAutoencoder):
    data_kind = "labelled"        # labels used only with labels=True (see the module docstring)
    default_steps = 6000
    default_batch_size = 64
    default_lr = 1e-3
    default_disc_hidden = 64

    def __init__(self, image_shape=(1, 8, 8), latent_dim=None, hidden_size=None, prior=None,
                 encoder="deterministic", labels=False, disc_hidden=None, lr=None, disc_lr=None, encoder_lr=None):
        if not isinstance(labels, bool):
            raise TypeError(f"aae: labels must be True or False, got {labels!r}")
        super().__init__(image_shape, latent_dim, hidden_size,
                         ("mixture" if labels else "gaussian") if prior is None else prior, encoder)
        self.labels = labels
        self.num_classes = self._label_components() if labels else 0
        dh = positive_int(self.default_disc_hidden if disc_hidden is None else disc_hidden, "disc_hidden", "aae")
        self.discriminator = mlp([self.latent_dim + self.num_classes, dh, dh, 1])
        self.lr = self.default_lr if lr is None else float(lr)
        disc_lr = self.lr if disc_lr is None else float(disc_lr)
        encoder_lr = self.lr if encoder_lr is None else float(encoder_lr)
        self.optimizers["autoencoder"] = Adam(list(self.encoder.parameters()) + list(self.decoder.parameters()),
                                              lr=self.lr)
        self.optimizers["discriminator"] = Adam(self.discriminator.parameters(), lr=disc_lr, betas=(0.5, 0.999))
        self.optimizers["encoder"] = Adam(self.encoder.parameters(), lr=encoder_lr, betas=(0.5, 0.999))

    def _label_components(self):
        k = getattr(self.prior, "num_components", None)
        if not (hasattr(self.prior, "sample_components") and hasattr(self.prior, "component_of")) or not k:
            raise ValueError(f"aae: labels=True draws each image's prior sample from its label's component, "
                             f"so the prior needs components; {self.prior!r} has none (use prior='mixture' "
                             f"or 'swiss_roll', or a NormalMixture)")
        return int(k)

    # --- the discriminator ------------------------------------------------------------
    def discriminate(self, z, y=None):
        """Logit a = D(z) (N,), or D([z, onehot(y)]) with labels: large when z looks like a prior draw."""
        if self.labels:
            if y is None:
                raise ValueError("aae: with labels=True the discriminator needs each code's label y")
            z = F.concat([z, F.one_hot(y, self.num_classes, dtype=z.dtype)], axis=1)
        return F.reshape(self.discriminator(z), (z.shape[0],))

    def prior_sample(self, n, y=None):
        """n draws of p(z); with labels given, z_n from the component of label y_n."""
        if self.labels and y is not None:
            return self.as_model_dtype(self.prior.sample_components(y.data if isinstance(y, Tensor) else y))
        return super().prior_sample(n)

    # --- the three phases ---------------------------------------------------------------
    def reconstruction_phase(self, x):
        """Phase 1: one step of Q and G on L_rec = mean c(x, Q(x))."""
        loss = F.mean(self.reconstruction_cost(x, self.encode(x)))
        return {"reconstruction": descend(self.optimizers["autoencoder"], loss)}

    def discriminator_phase(self, x, y=None):
        """Phase 2: one step of D on L_D = mean softplus(-D(z')) + mean softplus(D(Q(x))), z' ~ p."""
        with no_grad():
            fake = self.encode(x)
        real = self.prior_sample(x.shape[0], y)
        loss = F.discriminator_loss(self.discriminate(real, y), self.discriminate(fake, y), "nonsaturating")
        return {"discriminator": descend(self.optimizers["discriminator"], loss)}

    def generator_phase(self, x, y=None):
        """Phase 3: one step of the encoder alone on L_G = mean softplus(-D(Q(x))), D held fixed."""
        with frozen(self.discriminator):
            loss = F.generator_loss(self.discriminate(self.encode(x), y), "nonsaturating")
            return {"generator": descend(self.optimizers["encoder"], loss)}

    def train_step(self, batch):
        x, y = self.split_batch(batch)
        if self.labels:
            self._require_labels(y)
        losses = self.reconstruction_phase(x)
        losses.update(self.discriminator_phase(x, y))
        losses.update(self.generator_phase(x, y))
        return losses

    def _require_labels(self, y):
        if y is None:
            raise ValueError("aae: labels=True needs labelled data: pass train_step((images, labels))")
        if y.size and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            raise ValueError(f"aae: labels must lie in 0..{self.num_classes - 1} (one per prior component), "
                             f"got values in {int(y.min())}..{int(y.max())}")

    # --- evaluation --------------------------------------------------------------------
    def _metrics(self, x, y):
        out = super()._metrics(x, y)
        if self.labels:
            self._require_labels(y)
            k = self.prior.component_of(self.encode_mean(x))
            out["label_component_accuracy"] = float((k == y).mean())
        return out
