"""The generative adversarial network (Goodfellow et al. 2014), with two MLPs.

Section 7 of the notes. The GAN is an implicit model: G(z), z ~ N(0, I), has no
density to write down, only samples. It is trained against a discriminator
D(x) = sigmoid(a(x)) on the value

    V(D, G) = E_{x ~ p_data} log D(x) + E_z log(1 - D(G(z)))

which D maximizes and G minimizes. For a fixed G with sample density p_g, V is
maximized pointwise in D(x) (a log y + b log(1 - y) peaks at y = a / (a + b)):

    D*(x) = p_data(x) / (p_data(x) + p_g(x))

and substituted back,

    V(D*, G) = E_data log (p_data / (p_data + p_g)) + E_g log (p_g / (p_data + p_g))
             = -log 4 + KL(p_data || m) + KL(p_g || m),      m = (p_data + p_g) / 2
             = -log 4 + 2 JSD(p_data || p_g)

so a G trained against the best D minimizes the Jensen-Shannon divergence, whose
minimum -log 4 is reached only at p_g = p_data (tests/functional/test_adversarial.py
checks all three on discrete supports). In practice D is never at its optimum: it
takes ``n_critic`` gradient steps per G step, and G descends -log D(G(z)) (the
non-saturating loss, ``loss="nonsaturating"``) rather than log(1 - D(G(z))), whose
gradient vanishes exactly when D rejects the fakes confidently, early in training.
The loop itself, the other loss kinds and the gradient penalty are in
``_adversarial.py``.

The networks, sized from the data (``image_shape`` for images in [0, 1], or
``toy=NAME`` for the 2-D points of ``--data toy:NAME``):

    G   z (latent_dim) -> h -> h -> D_x        ReLU; tanh at the output for images
                                               (the model works in [-1, 1]), linear for points
    D   x (D_x) -> h -> h -> 1 logit           LeakyReLU(0.2), no normalization

with D_x = C*H*W pixels or 2 coordinates. Images are flattened for D and reshaped
after G.

Defaults (the options left at None; ``defaults`` below), batch 256, Adam with
betas (0.5, 0.999). What decides the ring of 8 (std 0.02, radius 2) is how sharp
the samples get, not whether the modes are found: an MLP GAN finds all 8 within a
few hundred steps, but a sample is "high quality" only within 3 std = 0.06 of its
mode, and at a constant learning rate the players' chase keeps the samples in a
blur around each mode and along the ring between them. Three things sharpen them:

- the rates decay (``lr_half_life`` 1500 steps), so the chase dies out;
- D learns 3x faster than G (``d_lr`` 3e-3, ``lr`` 1e-3), so it resolves the
  0.02-wide modes and pushes the fakes into them;
- no gradient penalty: a penalty on ||grad D|| is a penalty on exactly the
  steepness D needs at that scale (a zero-centred one halved the high-quality
  fraction here).

With them the defaults (7000 steps, about half a minute on one core) capture 8 of 8
modes with 83-84% high-quality samples for seeds 0, 1 and 2 (VEEGAN's table: GAN
1 mode, unrolled GAN 7.6 modes at 35.6%, VEEGAN 8 at 52.9%).

The grid of 25 is the other way round: the modes are wide (std 0.05) but many.
Without a penalty G settles on about 20 of them; the zero-centred penalty
(``gp_weight`` 0.1, ``gp_target`` 0) keeps D from growing steep around the modes G
already covers, so the pull towards the empty ones stays. The other lever is the
noise: with ``latent_dim`` 2 (G maps a plane onto the plane) G held 24, 23 and 25
of the 25 modes for seeds 0, 1, 2, with 8 or 32 noise dimensions 23 and 21 (seed 0).
A slower decay (``lr_half_life`` 2000) leaves G longer to spread before the rates
freeze it: the defaults capture 25, 24 and 25 modes (30-42% high quality: the
samples also lie along the lattice's lines between the modes).

Images: ``hidden_size`` 128, ``latent_dim`` 32, Adam 1e-3 for both players, constant
rates, no penalty.
"""
import numpy as np

from .. import functional as F
from ..nn import Flatten, LeakyReLU, Linear, ReLU, Sequential, Tanh
from . import register
from ._adversarial import AdversarialModel, _positive


def mlp(sizes, activation):
    """Linear layers of ``sizes`` with ``activation()`` between them (none after the last)."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return layers


@register("gan", kind="implicit", section="7. GAN",
          summary="MLP generator vs MLP discriminator; minimax / non-saturating / LSGAN / WGAN(-GP) losses; "
                  "images or 2-D toy points",
          tested="each phase touches only its own player; n_critic beat and rate schedule survive a resume; on"
                 " the ring more modes than the initial G")
class GAN(AdversarialModel):
    default_steps = 7000
    default_batch_size = 256
    data_kinds = ("image", "toy")       # the same model trains on images and on 2-D points
    # the options left at None take these, by what the model is built for (images or a toy set)
    _points = dict(latent_dim=8, hidden_size=128, lr=1e-3, d_lr=3e-3, gp_weight=0.0, gp_target=0.0,
                   lr_half_life=1500)
    defaults = {"image": dict(latent_dim=32, hidden_size=128, lr=1e-3, d_lr=None, gp_weight=0.0, gp_target=1.0,
                              lr_half_life=0),
                "ring": _points, "swiss_roll": _points,
                "grid": dict(_points, latent_dim=2, gp_weight=0.1, lr_half_life=2000)}

    def __init__(self, image_shape=None, toy=None, latent_dim=None, hidden_size=None, loss="nonsaturating",
                 gp_weight=None, gp_target=None, n_critic=1, lr=None, d_lr=None, betas=(0.5, 0.999),
                 lr_half_life=None):
        given = dict(latent_dim=latent_dim, hidden_size=hidden_size, lr=lr, d_lr=d_lr, gp_weight=gp_weight,
                     gp_target=gp_target, lr_half_life=lr_half_life)
        defaults = self.defaults.get("image" if toy is None else toy, self._points)   # an unknown toy: refused below
        o = {k: defaults[k] if v is None else v for k, v in given.items()}
        if d_lr is None and lr is not None and defaults["d_lr"] is not None:   # keep the default ratio d_lr / lr
            o["d_lr"] = lr * defaults["d_lr"] / defaults["lr"]
        h = o.pop("hidden_size")
        super().__init__(image_shape=image_shape, toy=toy, loss=loss, n_critic=n_critic, betas=betas, **o)
        h = self.hidden_size = _positive(h, "hidden_size", "gan")
        width = int(np.prod(self.data_shape))
        out = [] if self.toy is not None else [Tanh()]
        self.generator = Sequential(*mlp([self.latent_dim, h, h, width], ReLU), *out)
        self.discriminator = Sequential(Flatten(), *mlp([width, h, h, 1], lambda: LeakyReLU(0.2)))
        self.make_optimizers()

    def generate(self, latent):
        x = self.generator(latent)
        return x if self.toy is not None else F.reshape(x, (x.shape[0],) + self.image_shape)
