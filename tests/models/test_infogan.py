"""InfoGAN (section 7 of the notes): the information bound, measured, not smoke.

- the categorical estimate I_cat = ln K - CE is at most ln K for any Q, near 0 for an
  untrained Q, and in [0, ln 10] once trained
- softmax is applied once: I_cat equals ln K minus a hand-computed cross-entropy on the
  logits, not on softmax(logits) (the PyTorch-GAN#84 bug)
- the fakes are not detached for Q: L_I alone puts a gradient on G's weights
- each phase touches only its own player (Q's head is the discriminator's)
- after short training on digits, Q's argmax on G(z, c) recovers c far above chance
- evaluate scores cluster_accuracy only when given labels; the codes picture is a
  K x 8 grid whose rows differ and whose columns sweep a continuous code
- InfoGAN with no code, or bad codes, is one clear error, also on the command line
"""
import math

import numpy as np
import pytest

import tinygen
from tinygen import data, models
from tinygen.autograd.tensor import Tensor
from tinygen.models import _adversarial

from gan_checks import digits_batch, moved, snapshot, unchanged

SMALL = dict(width=16, noise_dim=8, continuous=1, continuous_weight=1.0, shared_hidden=32)   # c_1 read soon
LN10 = math.log(10)


def fake_code_accuracy(m, n=500):
    """Q's argmax on G(z, c) against the c that went in (fixed codes, one per class in turn)."""
    c = np.arange(n) % m.categories
    logits, _ = m.infer_codes(m.sample(n, codes={"categorical": c}))
    return float((logits.numpy().argmax(axis=1) == c).mean())


@pytest.fixture(scope="module")
def trained():
    """A small InfoGAN after 300 steps on digits, with its accuracy on fakes before training."""
    tinygen.manual_seed(0)
    m = models.build("infogan", **SMALL)
    before = fake_code_accuracy(m)
    images = data.digits().train_images
    rng = np.random.default_rng(0)
    reports = [m.train_step(Tensor(images[rng.choice(len(images), 32, replace=False)])) for _ in range(300)]
    return m, before, reports


def test_the_categorical_estimate_is_at_most_ln_k_and_near_zero_untrained():
    tinygen.manual_seed(0)
    m = models.build("infogan", **SMALL)
    latent = m.latent(64)
    big = Tensor(np.random.default_rng(1).normal(0, 30, (64, 10)).astype(np.float32))
    i_cat, _ = m.information(big, Tensor(np.zeros((64, 1), np.float32)), latent)
    assert i_cat.item() <= LN10 + 1e-6
    first = m.train_step(digits_batch())["mutual_information"]     # Q's logits start near 0: uniform
    assert abs(first) < 0.1, first        # against ln 10 = 2.3 once Q reads the code


def test_the_trained_estimate_lies_in_0_ln10_and_rises(trained):
    m, _, reports = trained
    mi = np.array([r["mutual_information"] for r in reports])
    assert np.all(mi <= LN10 + 1e-6)
    late = mi[-50:]
    assert np.all(late >= 0) and late.mean() > 0.8 * LN10, late.mean()
    assert {"discriminator", "generator", "discriminator_information", "generator_information"} <= set(reports[-1])


def test_softmax_is_applied_once_cross_entropy_on_the_logits():
    tinygen.manual_seed(0)
    m = models.build("infogan", **SMALL)
    latent = m.latent(16)
    c, u = m.split_latent(latent)
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 3, (16, 10))
    means = rng.normal(0, 1, (16, 1))
    i_cat, i_cont = m.information(Tensor(logits.astype(np.float32)), Tensor(means.astype(np.float32)), latent)
    log_softmax = logits - logits.max(1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(1, keepdims=True))
    ce = -log_softmax[np.arange(16), c].mean()
    np.testing.assert_allclose(i_cat.item(), LN10 - ce, rtol=1e-5)
    p = np.exp(log_softmax)                     # the bug: softmax, then a cross-entropy that softmaxes again
    twice = p - np.log(np.exp(p).sum(1, keepdims=True))
    assert abs((LN10 + twice[np.arange(16), c].mean()) - i_cat.item()) > 0.1
    d = u.numpy() - means                       # std-1 Gaussian: -log Q = 1/2 d^2 + 1/2 ln 2 pi; H(U(-1, 1)) = ln 2
    expected = math.log(2) - 0.5 * math.log(2 * math.pi) - 0.5 * (d ** 2).sum(1).mean()
    np.testing.assert_allclose(i_cont.item(), expected, rtol=1e-5)


def test_the_information_gradient_reaches_the_generator():
    tinygen.manual_seed(0)
    m = models.build("infogan", **SMALL)
    m.discriminator.requires_grad_(False)
    latent = m.latent(32)
    info, _ = m.information_loss(m.discriminator.body(m.generate(latent)), latent)
    info.backward()
    grads = [p.grad for p in m.generator.parameters()]
    assert all(g is not None for g in grads) and sum(float(np.abs(g.data).sum()) for g in grads) > 0
    assert all(p.grad is None for p in m.discriminator.parameters())


def test_each_phase_touches_only_its_own_player():
    tinygen.manual_seed(0)
    m = models.build("infogan", **SMALL)
    x = digits_batch()
    m.train_step(x)
    q = m.discriminator.q_head
    assert all(any(p is r for r in m.optimizers["discriminator"].param_groups[0]["params"]) for p in q.parameters())
    g, d = snapshot(m.generator), snapshot(m.discriminator)
    qs = snapshot(q)
    m.discriminator_step(m.to_model_range(x))
    assert unchanged(m.generator, g) and moved(m.discriminator, d) and moved(q, qs)
    g, d = snapshot(m.generator), snapshot(m.discriminator)
    m.generator_step(x.shape[0])
    assert unchanged(m.discriminator, d) and moved(m.generator, g)


def test_q_recovers_the_code_from_the_generator_far_above_chance(trained):
    m, before, _ = trained
    after = fake_code_accuracy(m)
    assert before < 0.25 and after > 0.6, (before, after)     # chance is 0.1; 0.87 to 0.94 over seeds 0-2


def test_evaluate_scores_cluster_accuracy_only_with_labels(trained):
    m = trained[0]
    ds = data.digits()
    images, labels = Tensor(ds.test_images[:300]), Tensor(ds.test_labels[:300])
    plain = m.evaluate(images)
    both = m.evaluate((images, labels))
    assert "cluster_accuracy" not in plain and set(plain) <= set(both)
    assert 0.1 < both["cluster_accuracy"] <= 1 and m.training
    with pytest.raises(ValueError, match="one entry per image"):
        m.evaluate((images, labels[:10]))


def test_the_codes_picture_sweeps_a_continuous_code_per_category(trained):
    m = trained[0]
    pics = m.pictures(digits_batch())
    img = pics["codes"]
    h = 8 * 4 + 1                                # 8x8 digits drawn 4x, one pixel of padding
    assert img.dtype == np.uint8 and img.shape == (10 * h + 1, 8 * h + 1)
    cells = np.stack([img[1 + r * h:r * h + h, 1 + k * h:k * h + h] for r in range(10) for k in range(8)])
    cells = cells.reshape(10, 8, -1).astype(float) / 255
    assert np.abs(cells[0, 0] - cells[0, -1]).max() > 0.1       # the sweep changes the sample
    rows = cells.mean(axis=1)
    assert min(np.abs(rows[i] - rows[j]).mean() for i in range(10) for j in range(i)) > 0.01


def test_sample_takes_codes_and_refuses_bad_ones():
    tinygen.manual_seed(0)
    m = models.build("infogan", **SMALL)
    s = m.sample(3, codes={"categorical": np.array([0, 4, 9]), "continuous": np.zeros((3, 1))})
    assert s.shape == (3, 1, 8, 8) and s.numpy().min() >= 0 and s.numpy().max() <= 1
    logits, means = m.infer_codes(s)
    assert logits.shape == (3, 10) and means.shape == (3, 1)
    with pytest.raises(ValueError, match=r"whole numbers in \[0, 10\)"):
        m.sample(2, codes={"categorical": np.array([3, 10])})
    with pytest.raises(ValueError, match=r"shape \(2, 1\), got \(2, 3\)"):
        m.sample(2, codes={"continuous": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="'categorical' and 'continuous'"):
        m.sample(2, codes={"label": [1, 2]})


def test_infogan_with_no_code_is_a_clear_error(tmp_path, monkeypatch, capsys):
    with pytest.raises(ValueError, match="categories >= 2.*no code at all"):
        models.build("infogan", categories=0, continuous=0)
    with pytest.raises(ValueError, match="continuous"):
        models.build("infogan", continuous=-1)
    from tinygen.__main__ import main
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["train", "infogan", "--set", "categories=0", "--set", "continuous=0",
                 "--steps", "2", "--out", "bad", "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no code at all" in err, err


def test_the_reported_estimate_is_not_trained_on_and_the_gradient_penalty_is_kept():
    """``mutual_information`` is reported but not summed: the D step's gradient is that of
    L_D + GP - lambda L_I alone; with gp_weight > 0 InfoGAN's D step adds the penalty."""
    tinygen.manual_seed(0)
    m = models.build("infogan", gp_weight=10.0, **SMALL)
    real = m.to_model_range(digits_batch())
    latent = m.latent(real.shape[0])
    with tinygen.no_grad():
        fake = m.generate(latent)
    terms = m.discriminator_terms(real, fake, latent)
    assert set(terms) == {"discriminator", "gradient_penalty", "discriminator_information", "mutual_information"}
    assert float(terms["gradient_penalty"].item()) > 0
    trained_on = terms["discriminator"] + terms["gradient_penalty"] + terms["discriminator_information"]
    params = list(m.discriminator.parameters())
    expected = tinygen.grad(trained_on, params, retain_graph=True)
    m.optimizers["discriminator"].zero_grad()
    reports = _adversarial._step(_NoStep(params), terms, m.reported_only)
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p.grad.numpy(), e.numpy(), rtol=1e-6, atol=1e-7)
    assert reports["mutual_information"] == pytest.approx(float(terms["mutual_information"].item()))


class _NoStep:
    """An optimizer that keeps the gradients and moves nothing (to read what a step would train on)."""

    def __init__(self, params):
        self.params = params

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        pass


def test_the_categorical_code_enters_every_stage_of_the_generator():
    """G's later stages read onehot(c) tiled over their input: with the projection blind to
    the code (its columns zeroed), G(z, c) still changes with c; the tiled channels are onehot(c)."""
    from tinygen.models.infogan import with_code
    tinygen.manual_seed(0)
    m = models.build("infogan", **SMALL)
    x = Tensor(np.random.default_rng(0).random((3, 5, 2, 4)).astype(np.float32))
    onehot = Tensor(np.eye(4, dtype=np.float32)[[0, 2, 3]])
    joined = with_code(x, onehot).numpy()
    assert joined.shape == (3, 9, 2, 4)
    np.testing.assert_array_equal(joined[:, :5], x.numpy())
    np.testing.assert_array_equal(joined[:, 5:], np.broadcast_to(onehot.numpy()[:, :, None, None], (3, 4, 2, 4)))
    k0 = m.noise_dim
    m.generator.project[0].weight.data[:, k0:k0 + m.categories] = 0
    z = np.zeros((2, m.noise_dim))
    images = m._sample(m.join_latent(z, np.array([0, 1]), np.zeros((2, m.continuous)))).numpy()
    assert np.abs(images[0] - images[1]).max() > 1e-3


@pytest.mark.parametrize("info_weight, continuous_weight", [(1.0, 0.1), (2.0, 1.0), (1.0, 0.0)])
def test_the_information_loss_weighs_the_two_bounds_as_documented(info_weight, continuous_weight):
    """-lambda (I_cat + mu_c I_cont), pinned against the two parts computed separately."""
    tinygen.manual_seed(0)
    options = dict(SMALL, info_weight=info_weight, continuous_weight=continuous_weight)
    m = models.build("infogan", **options)
    latent = m.latent(16)
    h = m.discriminator.body(m.generate(latent))
    i_cat, i_cont = m.information(*m.q_parameters(h), latent)
    loss, reported = m.information_loss(h, latent)
    expected = -info_weight * (i_cat.item() + continuous_weight * i_cont.item())
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert reported.item() == pytest.approx(i_cat.item(), rel=1e-6)
