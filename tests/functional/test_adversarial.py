"""The adversarial losses and the gradient penalty: their theory and the known peer bugs.

- On a discrete support, a tabular discriminator trained on L_D reaches D* = p / (p + q),
  and there V(D*) = -L_D = -log 4 + 2 JSD(p || q).
- The saturating generator loss has a vanishing gradient where D rejects the fakes.
- WGAN-GP: exact values on linear critics, per-sample weights and norms, gradients to the
  critic's weights that match finite differences, no nan for a flat critic.
"""
import math

import numpy as np
import pytest

import tinygen
import tinygen.functional as F
import tinygen.nn as nn
from tinygen.autograd import Tensor, gradcheck
from tinygen.metrics import jensen_shannon, optimal_discriminator
from tinygen.optim import SGD

KINDS = ["minimax", "nonsaturating", "lsgan", "wgan"]


def t64(values, requires_grad=False):
    return Tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


# --- the losses -----------------------------------------------------------------

def _softplus(a):
    return np.logaddexp(0.0, a)


@pytest.mark.parametrize("kind", KINDS)
def test_losses_match_their_formulas(kind):
    rng = np.random.default_rng(0)
    ar, af = rng.normal(size=7) * 3, rng.normal(size=5) * 3
    want_d = {"minimax": _softplus(-ar).mean() + _softplus(af).mean(),
              "nonsaturating": _softplus(-ar).mean() + _softplus(af).mean(),
              "lsgan": 0.5 * ((ar - 1) ** 2).mean() + 0.5 * (af ** 2).mean(),
              "wgan": af.mean() - ar.mean()}[kind]
    want_g = {"minimax": -_softplus(af).mean(), "nonsaturating": _softplus(-af).mean(),
              "lsgan": 0.5 * ((af - 1) ** 2).mean(), "wgan": -af.mean()}[kind]
    assert F.discriminator_loss(t64(ar), t64(af), kind).item() == pytest.approx(want_d, rel=1e-12)
    assert F.generator_loss(t64(af), kind).item() == pytest.approx(want_g, rel=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_are_finite_with_finite_gradients_at_logit_100(kind, dtype):
    a = Tensor(np.array([100.0, -100.0], dtype=dtype), requires_grad=True)
    d = F.discriminator_loss(a, a, kind)
    g = F.generator_loss(a, kind)
    (d + g).backward()
    assert np.isfinite(d.item()) and np.isfinite(g.item())
    assert np.isfinite(a.grad.numpy()).all()
    assert d.dtype == dtype


def test_saturating_generator_gradient_vanishes_where_the_nonsaturating_one_does_not():
    grads = {}
    for kind in ("minimax", "nonsaturating"):
        a = t64([-8.0], requires_grad=True)
        F.generator_loss(a, kind).backward()
        grads[kind] = a.grad.item()
    s = 1 / (1 + math.exp(8.0))
    assert grads["minimax"] == pytest.approx(-s, rel=1e-12)            # -3.4e-4
    assert grads["nonsaturating"] == pytest.approx(-(1 - s), rel=1e-12)  # about -1
    assert abs(grads["minimax"]) < 4e-4 and abs(grads["nonsaturating"]) > 0.99


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(ValueError, match="unknown loss kind 'hinge'.*'minimax', 'nonsaturating', 'lsgan', 'wgan'"):
        F.generator_loss(t64([0.0]), "hinge")
    with pytest.raises(TypeError, match="real_logits must be a Tensor"):
        F.discriminator_loss(np.zeros(3), t64([0.0]))


# --- the theory on a discrete support ----------------------------------------------

P = np.array([0.4, 0.3, 0.2, 0.1, 0.0])
Q = np.array([0.1, 0.1, 0.2, 0.2, 0.4])


def _batch_of(probs, copies=20):
    """The support points repeated in proportion to probs: the batch mean is the expectation."""
    return np.repeat(np.arange(len(probs)), np.round(probs * copies).astype(int))


def test_a_tabular_discriminator_converges_to_the_optimal_one():
    logits = nn.Parameter(np.zeros(len(P)))
    opt = SGD([logits], lr=2.0)
    real, fake = _batch_of(P), _batch_of(Q)
    for _ in range(4000):
        opt.zero_grad()
        F.discriminator_loss(logits[real], logits[fake]).backward()
        opt.step()
    d = 1 / (1 + np.exp(-logits.numpy()))
    support = (P + Q) > 0
    want = optimal_discriminator(P, Q)
    np.testing.assert_allclose(d[support & (P > 0)], want[support & (P > 0)], atol=1e-4)
    assert d[4] < 0.05          # p = 0 there: D* = 0, approached as the logit goes to -inf


@pytest.mark.parametrize("p,q", [(P, Q), (P, P), (np.array([0.5, 0.5, 0, 0]), np.array([0, 0, 0.5, 0.5]))])
def test_the_value_at_the_optimum_is_minus_log_4_plus_twice_the_jsd(p, q):
    d_star = optimal_discriminator(p, q)
    with np.errstate(divide="ignore"):
        a = np.log(d_star) - np.log1p(-d_star)               # logit(D*), +-inf where one side is 0
    real, fake = _batch_of(p), _batch_of(q)
    value = -F.discriminator_loss(t64(a[real]), t64(a[fake])).item()
    assert value == pytest.approx(-math.log(4) + 2 * jensen_shannon(p, q), abs=1e-12)
    if np.array_equal(p, q):
        assert value == pytest.approx(-math.log(4), abs=1e-12)
    if not (p * q).any():
        assert value == pytest.approx(0.0, abs=1e-12)


# --- the gradient penalty ----------------------------------------------------------

def _linear_critic(w):
    return lambda x: F.reshape(x, (x.shape[0], -1)) @ w


@pytest.mark.parametrize("scale,want", [(1.0, 0.0), (2.0, 10.0), (0.5, 2.5)])
def test_penalty_of_a_linear_critic(scale, want):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(12, 1))
    w = t64(w / np.linalg.norm(w) * scale, requires_grad=True)
    real, fake = t64(rng.normal(size=(4, 1, 3, 4))), t64(rng.normal(size=(4, 1, 3, 4)))
    gp = F.gradient_penalty(_linear_critic(w), real, fake)
    assert gp.item() == pytest.approx(want, abs=1e-12)     # weight 10 * (||w|| - 1)^2


def test_norms_are_per_sample_and_alpha_is_per_sample():
    # sample n's score is w_n . x_n with ||w_0|| = 1 and ||w_1|| = 3: per-sample norms give
    # 10 * (0 + 4) / 2 = 20; a norm over the batch axis, or over everything, gives another number
    w = np.zeros((2, 6))
    w[0, 0], w[1, 1] = 1.0, 3.0
    seen = []

    def critic(x):
        seen.append(x.numpy().copy())
        return F.sum(F.reshape(x, (2, 6)) * t64(w), axis=1)

    rng = np.random.default_rng(2)
    real, fake = t64(rng.normal(size=(2, 2, 3))), t64(rng.normal(size=(2, 2, 3)))
    gp = F.gradient_penalty(critic, real, fake)
    assert gp.item() == pytest.approx(20.0, abs=1e-12)
    ratio = (seen[0] - fake.numpy()) / (real.numpy() - fake.numpy())   # alpha, element by element
    for n in range(2):
        assert np.ptp(ratio[n]) < 1e-12              # one alpha per sample ...
        assert 0.0 <= ratio[n].flat[0] <= 1.0
    assert abs(ratio[0].flat[0] - ratio[1].flat[0]) > 1e-6   # ... drawn for each sample


def test_the_penalty_gradient_reaches_the_critic_and_matches_finite_differences():
    rng = np.random.default_rng(3)
    real, fake = t64(rng.normal(size=(3, 4))), t64(rng.normal(size=(3, 4)))
    alpha = np.array([0.2, 0.5, 0.9])
    w2 = t64(rng.normal(size=(5, 1)))

    def penalty(w1):                                  # a tanh MLP critic: second derivatives matter
        return F.gradient_penalty(lambda x: F.tanh(x @ w1) @ w2, real, fake, alpha=alpha)

    w1 = t64(rng.normal(size=(4, 5)), requires_grad=True)
    assert gradcheck(penalty, (w1,))
    penalty(w1).backward()
    assert np.abs(w1.grad.numpy()).max() > 1e-3


def test_a_flat_critic_gives_no_nan():
    w = t64(np.zeros((4, 1)), requires_grad=True)
    real, fake = t64(np.ones((3, 4))), t64(np.zeros((3, 4)))
    gp = F.gradient_penalty(_linear_critic(w), real, fake)
    gp.backward()
    assert gp.item() == pytest.approx(10.0)           # (0 - 1)^2 per sample
    assert np.isfinite(w.grad.numpy()).all()


def test_the_penalty_is_on_the_critic_given_not_on_a_sigmoid_of_it():
    # a critic returning logits 2 x: the penalty sees ||2|| = 2, not sigmoid's smaller slope
    real, fake = t64([[0.0], [1.0]]), t64([[3.0], [-2.0]])
    gp = F.gradient_penalty(lambda x: 2.0 * x, real, fake, alpha=[0.5, 0.5])
    assert gp.item() == pytest.approx(10.0)


def test_bad_critics_and_bad_alphas_are_named():
    real, fake = t64(np.ones((3, 4))), t64(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="do not depend on its input"):
        F.gradient_penalty(lambda x: F.sum(t64(np.ones((3, 4))), axis=1), real, fake)
    with pytest.raises(ValueError, match=r"one score per sample, shape \(3,\) or \(3, 1\), got \(3, 4\)"):
        F.gradient_penalty(lambda x: x * 2.0, real, fake)
    with pytest.raises(ValueError, match=r"alpha must hold one weight per sample.*got shape \(3, 4\)"):
        F.gradient_penalty(lambda x: F.sum(x, axis=1), real, fake, alpha=np.full((3, 4), 0.5))
    with pytest.raises(ValueError, match="real and fake must be batches"):
        F.gradient_penalty(lambda x: F.sum(x, axis=1), real, t64(np.zeros((2, 4))))


def test_drawn_alphas_follow_the_seed():
    real, fake = t64(np.ones((4, 2))), t64(np.zeros((4, 2)))
    seen = []

    def critic(x):
        seen.append(x.numpy()[:, 0].copy())
        return F.sum(x, axis=1)

    for _ in range(2):
        tinygen.manual_seed(7)
        F.gradient_penalty(critic, real, fake)
    np.testing.assert_array_equal(seen[0], seen[1])
