"""The adversarial and Wasserstein autoencoders (section 5 of the notes): properties, not smoke.

- AAE: each of the three phases changes exactly its own parameter set, bitwise, and
  train_step is those three phases in the paper's order
- the D phase labels prior draws "real": its loss is softplus(-D(z')) + softplus(D(Q(x)))
  with z' the prior's draws, and stepping it raises D on prior draws, lowers it on encodings
- priors: the paper's mixture and swiss-roll geometry; a user's sampler object and a
  tinygen distribution serve as priors; bad priors are one clear error
- WAE-MMD: the penalty averages 0 when the encodings are prior draws and grows with a shift;
  its gradient reaches the encoder
- evaluate: reconstruction_nats against a NumPy reference; training lowers the latent MMD,
  and with labels=True puts the test encodings in their label's component
- sample and pictures give arrays of the right kind
"""
import math

import numpy as np
import pytest

import tinygen
from tinygen import data, models
from tinygen.autograd.tensor import Tensor
from tinygen.distributions import Normal, NormalMixture
from tinygen.imaging import PALETTE, REFERENCE_GREY

SHAPE = (1, 8, 8)
SMALL = dict(hidden_size=16, disc_hidden=8)


def digits():
    ds = data.digits()
    return (data.binarize(ds.train_images), ds.train_labels,
            data.binarize(ds.test_images), ds.test_labels)


def batch(n=32, seed=0):
    x, y, _, _ = digits()
    idx = np.random.default_rng(seed).choice(len(x), n, replace=False)
    return Tensor(x[idx]), Tensor(y[idx])


def snapshot(module):
    return [p.data.copy() for p in module.parameters()]


def changed(module, before):
    return [not np.array_equal(a, p.data) for a, p in zip(before, module.parameters())]


def softplus(a):
    return np.logaddexp(0.0, a)


class FixedSampler:
    """A user's prior: sample(n) returns the first n rows of a fixed (1000, d) array (NumPy)."""

    def __init__(self, points):
        self.points = np.asarray(points, dtype=np.float32)

    def sample(self, n):
        return self.points[:n]


# --- the three phases -------------------------------------------------------------

@pytest.mark.parametrize("labels", [False, True])
def test_each_phase_changes_only_its_own_parameters(labels):
    tinygen.manual_seed(0)
    m = models.build("aae", image_shape=SHAPE, labels=labels, **SMALL)
    x, y = batch()
    nets = {"encoder": m.encoder, "decoder": m.decoder, "discriminator": m.discriminator}
    phases = [("reconstruction", lambda: m.reconstruction_phase(x), {"encoder", "decoder"}),
              ("discriminator", lambda: m.discriminator_phase(x, y.data), {"discriminator"}),
              ("generator", lambda: m.generator_phase(x, y.data), {"encoder"})]
    for name, run, moves in phases:
        before = {k: snapshot(net) for k, net in nets.items()}
        losses = run()
        assert set(losses) == {name} and math.isfinite(losses[name])
        for k, net in nets.items():
            flags = changed(net, before[k])
            if k in moves:
                assert all(flags), f"phase {name} left some of {k} unchanged"
            else:
                assert not any(flags), f"phase {name} changed {k}"


def test_train_step_is_the_three_phases_in_order():
    x, y = batch()
    tinygen.manual_seed(1)
    a = models.build("aae", image_shape=SHAPE, **SMALL)
    tinygen.manual_seed(1)
    b = models.build("aae", image_shape=SHAPE, **SMALL)
    tinygen.manual_seed(2)
    losses = a.train_step((x, y))
    tinygen.manual_seed(2)
    expected = {**b.reconstruction_phase(x), **b.discriminator_phase(x), **b.generator_phase(x)}
    assert losses == expected and list(losses) == ["reconstruction", "discriminator", "generator"]
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    # the order matters: the G phase first (before the reconstruction step) ends elsewhere
    tinygen.manual_seed(1)
    c = models.build("aae", image_shape=SHAPE, **SMALL)
    tinygen.manual_seed(2)
    c.generator_phase(x), c.reconstruction_phase(x), c.discriminator_phase(x)
    assert not all(np.array_equal(p.data, q.data) for p, q in zip(a.encoder.parameters(), c.encoder.parameters()))


def test_discriminator_phase_labels_prior_draws_real():
    rng = np.random.default_rng(0)
    points = 3.0 + 0.1 * rng.standard_normal((1000, 2))        # prior draws far from the encodings
    tinygen.manual_seed(0)
    m = models.build("aae", image_shape=SHAPE, prior=FixedSampler(points), disc_lr=0.01, encoder_lr=0.01, **SMALL)
    x, _ = batch()
    real = Tensor(points[:32].astype(np.float32))
    a_real = m.discriminate(real).numpy().astype(np.float64)
    a_fake = m.discriminate(m.encode(x)).numpy().astype(np.float64)
    expected = softplus(-a_real).mean() + softplus(a_fake).mean()
    got = m.discriminator_phase(x)["discriminator"]
    assert got == pytest.approx(expected, rel=1e-5)
    # the swapped labelling gives a different number here, so the check above has teeth
    assert abs((softplus(a_real).mean() + softplus(-a_fake).mean()) - expected) > 1e-3
    for _ in range(60):
        m.discriminator_phase(x)
    up, down = m.discriminate(real).numpy(), m.discriminate(m.encode(x)).numpy()
    assert up.mean() > a_real.mean() + 0.5 and up.min() > 0          # prior draws: "real", sigma(D) > 1/2
    assert down.mean() < a_fake.mean() - 0.5 and down.max() < 0      # encodings: "fake"


def test_generator_phase_is_non_saturating_and_pushes_encodings_towards_real():
    rng = np.random.default_rng(1)
    tinygen.manual_seed(0)
    m = models.build("aae", image_shape=SHAPE, prior=FixedSampler(3.0 + 0.1 * rng.standard_normal((1000, 2))),
                     disc_lr=0.01, encoder_lr=0.01, **SMALL)
    x, _ = batch()
    for _ in range(30):
        m.discriminator_phase(x)
    a = m.discriminate(m.encode(x)).numpy().astype(np.float64)
    got = m.generator_phase(x)["generator"]
    assert got == pytest.approx(softplus(-a).mean(), rel=1e-5)     # -log sigma(D(Q(x)))
    after = m.discriminate(m.encode(x)).numpy().mean()
    assert after > a.mean()


# --- priors ---------------------------------------------------------------------------

def test_mixture_prior_has_the_papers_geometry():
    tinygen.manual_seed(0)
    m = models.build("aae", image_shape=SHAPE, prior="mixture", **SMALL)
    assert m.latent_dim == 2 and m.prior.num_components == 10
    n = 4000
    for k in (0, 3, 7):
        z = m.prior.sample_components(np.full(n, k)).numpy().astype(np.float64)
        t = 2 * np.pi * k / 10
        radial, across = np.array([np.cos(t), np.sin(t)]), np.array([-np.sin(t), np.cos(t)])
        np.testing.assert_allclose(z.mean(axis=0), 1.4 * radial, atol=4 * 0.5 / np.sqrt(n))
        assert (z @ radial).std() == pytest.approx(0.5, rel=0.05)
        assert (z @ across).std() == pytest.approx(0.05, rel=0.05)
        assert (m.prior.component_of(Tensor(z.astype(np.float32))) == k).mean() > 0.9


def test_swiss_roll_prior_segments():
    tinygen.manual_seed(0)
    m = models.build("aae", image_shape=SHAPE, prior="swiss_roll", **SMALL)
    for k in (0, 4, 9):
        z = m.prior.sample_components(np.full(500, k)).numpy().astype(np.float64)
        r = np.hypot(z[:, 0], z[:, 1])
        assert r.min() >= 3 * np.sqrt(k / 10) - 1e-5 and r.max() <= 3 * np.sqrt((k + 1) / 10) + 1e-5
        theta = 4 * np.pi * r / 3                                       # r = 3 sqrt(u), theta = 4 pi sqrt(u)
        np.testing.assert_allclose(z, r[:, None] * np.stack([np.cos(theta), np.sin(theta)], 1), atol=1e-4)
        assert (m.prior.component_of(Tensor(z.astype(np.float32))) == k).mean() > 0.97
    whole = np.hypot(*m.prior.sample(4000).numpy().T) ** 2 / 9         # u = r^2 / 9 ~ U[0, 1)
    assert abs(whole.mean() - 0.5) < 0.02 and abs(whole.var() - 1 / 12) < 0.01


def test_user_sampler_and_distribution_work_as_priors():
    rng = np.random.default_rng(0)
    points = rng.standard_normal((1000, 3))
    tinygen.manual_seed(0)
    m = models.build("aae", image_shape=SHAPE, prior=FixedSampler(points), **SMALL)
    assert m.latent_dim == 3                                  # taken from the sampler's draws
    np.testing.assert_array_equal(m.prior.sample(5).numpy(), points[:5].astype(np.float32))
    x, y = batch()
    losses = m.train_step((x, y))
    assert set(losses) == {"reconstruction", "discriminator", "generator"}
    assert m.sample(7).shape == (7,) + SHAPE
    normal = Normal(np.zeros(2, np.float32), np.full(2, 0.5, np.float32))
    w = models.build("wae", image_shape=SHAPE, prior=normal, hidden_size=16)
    assert w.latent_dim == 2 and w.prior.sample(4000).numpy().std() == pytest.approx(0.5, rel=0.05)
    assert math.isfinite(w.train_step(x)["mmd"])
    # a NormalMixture brings its components: usable with labels=True
    mix = NormalMixture.ring(10, radius=2.0, std=0.1)
    lab = models.build("aae", image_shape=SHAPE, prior=mix, labels=True, **SMALL)
    z = lab.prior_sample(32, y.data).numpy()
    np.testing.assert_allclose(z, mix.locs.numpy()[y.data], atol=0.5)


class NoSample:
    pass


class Changing:
    """Right width when probed, wrong width afterwards."""

    def __init__(self):
        self.calls = 0

    def sample(self, n):
        self.calls += 1
        return np.zeros((n, 2 if self.calls == 1 else 5), np.float32)


@pytest.mark.parametrize("name", ["aae", "wae"])
def test_bad_priors_are_clear_errors(name):
    build = lambda **o: models.build(name, image_shape=SHAPE, hidden_size=8, **o)  # noqa: E731
    with pytest.raises(TypeError, match="sample"):
        build(prior=NoSample())
    with pytest.raises(ValueError, match=r"\(2, 3\).*expected \(2, 4\)"):
        build(prior=FixedSampler(np.zeros((10, 3))), latent_dim=4)
    with pytest.raises(ValueError, match="'gaussian', 'mixture', 'swiss_roll'|gaussian, mixture, swiss_roll"):
        build(prior="uniform")
    for prior in ("mixture", "swiss_roll"):
        with pytest.raises(ValueError, match="latent_dim must be 2, got 8"):
            build(prior=prior, latent_dim=8)
    with pytest.raises(ValueError, match="latent_dim"):
        build(latent_dim=0)
    m = build(prior=Changing())
    with pytest.raises(ValueError, match=r"returned shape \(32, 5\), expected \(32, 2\)"):
        m.train_step(batch()[0])


def test_labels_need_components_and_labelled_data():
    with pytest.raises(ValueError, match="components"):
        models.build("aae", image_shape=SHAPE, prior="gaussian", labels=True)
    m = models.build("aae", image_shape=SHAPE, labels=True, **SMALL)
    x, y = batch()
    with pytest.raises(ValueError, match="labelled data"):
        m.train_step(x)
    with pytest.raises(ValueError, match=r"0\.\.9"):
        m.train_step((x, Tensor(np.full(32, 12))))
    with pytest.raises(ValueError, match="0 or 1"):
        m.train_step((x * 0.5, y))


@pytest.mark.parametrize("args,wanted", [
    (["aae", "--set", "prior=uniform"], ["unknown prior 'uniform'", "gaussian, mixture, swiss_roll"]),
    (["wae", "--set", "prior=swiss_roll", "latent_dim=3"], ["latent_dim must be 2, got 3"]),
    (["aae", "--set", "labels=true", "prior=gaussian"], ["labels=True", "components"]),
    (["aae", "--set", "labels=true", "--data", "toy:ring"], ["labelled images", "2-D points"]),
    (["wae", "--set", "latent_dim=0"], ["latent_dim must be a positive integer"]),
])
def test_command_line_refuses_bad_options_in_one_line(tmp_path, capsys, args, wanted):
    from tinygen.__main__ import main
    assert main(["train", *args, "--steps", "1", "--out", str(tmp_path / "run"), "-q"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in wanted), lines


# --- WAE-MMD ----------------------------------------------------------------------------

def test_wae_penalty_zero_under_the_prior_and_grows_with_a_shift():
    tinygen.manual_seed(0)
    m = models.build("wae", image_shape=SHAPE, hidden_size=8)
    repeats, n = 200, 64
    means = []
    for shift in (0.0, 0.25, 0.5, 1.0):
        v = np.array([m.latent_penalty(m.prior.sample(n) + shift).item() for _ in range(repeats)])
        means.append((v.mean(), v.std(ddof=1) / np.sqrt(repeats)))
    (m0, se0) = means[0]
    assert abs(m0) < 3 * se0                                         # unbiased: E = 0 under the null
    for (a, sa), (b, sb) in zip(means, means[1:]):
        assert b - a > 3 * math.hypot(sa, sb)                        # and increasing in the shift


def test_wae_penalty_gradient_reaches_the_encoder_only_through_z():
    tinygen.manual_seed(0)
    m = models.build("wae", image_shape=SHAPE, hidden_size=8)
    x, _ = batch()
    m.latent_penalty(m.encode(x)).backward()
    assert all(p.grad is not None and np.abs(p.grad.numpy()).max() > 0 for p in m.encoder.parameters())
    assert all(p.grad is None for p in m.decoder.parameters())
    losses = m.train_step(x)
    assert losses["loss"] == pytest.approx(losses["reconstruction"] + 10.0 * losses["mmd"], rel=1e-5)


# --- evaluation, training ------------------------------------------------------------------

def test_reconstruction_nats_matches_numpy_reference():
    tinygen.manual_seed(0)
    m = models.build("aae", image_shape=SHAPE, labels=True, **SMALL)
    x, y = batch(50)
    metrics = m.evaluate((x, y))
    logits = m.decode(m.encode(x)).numpy().astype(np.float64).reshape(50, -1)
    xs = x.numpy().reshape(50, -1)
    nll = -(xs * logits - softplus(logits)).sum(axis=1).mean()
    assert metrics["reconstruction_nats"] == pytest.approx(nll, rel=1e-5)
    k = m.prior.component_of(m.encode(x))
    assert metrics["label_component_accuracy"] == pytest.approx((k == y.data).mean())
    assert {"latent_mmd", "frechet_distance", "class_kl"} <= set(metrics)
    assert 0 <= metrics["class_kl"] <= math.log(10) + 1e-9


def train(name, steps, seed=0, **options):
    x, y, xt, yt = digits()
    tinygen.manual_seed(seed)
    m = models.build(name, image_shape=SHAPE, **options)
    test = (Tensor(xt), Tensor(yt))
    before = m.evaluate(test)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        idx = rng.integers(0, len(x), 64)
        m.train_step((Tensor(x[idx]), Tensor(y[idx])) if m.data_kind == "labelled" else Tensor(x[idx]))
    return before, m.evaluate(test)


def test_aae_training_lowers_the_latent_mmd():
    # measured: latent MMD 1.62 -> 0.080 after 400 steps, reconstruction 44.5 -> 19.9 nats
    before, after = train("aae", 400, hidden_size=64)
    assert after["latent_mmd"] < 0.25 * before["latent_mmd"]
    assert after["reconstruction_nats"] < before["reconstruction_nats"] - 10


def test_wae_penalty_pulls_the_encodings_to_the_prior():
    # measured at 400 steps: latent MMD 0.005 with lambda = 10 against 2.6 with lambda = 0,
    # reconstruction 19.2 and 19.7 nats (from 44.5)
    _, with_penalty = train("wae", 400, hidden_size=64)
    _, without = train("wae", 400, hidden_size=64, penalty=0.0)
    assert with_penalty["latent_mmd"] < 0.05 * without["latent_mmd"]
    assert with_penalty["reconstruction_nats"] < 25 and without["reconstruction_nats"] < 25


def test_aae_with_labels_puts_encodings_in_their_labels_component():
    # measured: 0.067 -> 0.833 after 1500 steps (0.86-0.88 after the default 6000)
    before, after = train("aae", 1500, labels=True, hidden_size=64)
    assert before["label_component_accuracy"] < 0.3
    assert after["label_component_accuracy"] >= 0.8


# --- sampling and pictures ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["aae", "wae"])
def test_samples_are_binary_images(name):
    tinygen.manual_seed(0)
    m = models.build(name, image_shape=(1, 4, 6), hidden_size=8)
    s = m.sample(9).numpy()
    assert s.shape == (9, 1, 4, 6) and set(np.unique(s)) <= {0.0, 1.0}


def test_gaussian_encoder_draws_around_its_mean():
    tinygen.manual_seed(0)
    m = models.build("aae", image_shape=SHAPE, encoder="gaussian", **SMALL)
    x, _ = batch(8)
    z1, z2, mu = m.encode(x).numpy(), m.encode(x).numpy(), m.encode_mean(x).numpy()
    assert not np.allclose(z1, z2)
    sigma = np.exp(0.5 * m.encoder(x).numpy()[:, 2:])
    assert np.abs((z1 - mu) / sigma).max() < 6


def test_pictures():
    tinygen.manual_seed(0)
    m = models.build("aae", image_shape=SHAPE, labels=True, **SMALL)
    x, y = batch(40)
    pics = m.pictures(x, y)
    assert set(pics) == {"reconstructions", "latent", "manifold"}
    assert all(p.dtype == np.uint8 for p in pics.values())
    assert pics["reconstructions"].shape == (4 * 33 + 1, 8 * 33 + 1)      # 2 x (8 images, 8 reconstructions)
    assert pics["manifold"].shape == (12 * 33 + 1, 12 * 33 + 1)
    latent = pics["latent"]
    assert latent.ndim == 3 and latent.shape[2] == 3
    for digit in set(y.data[:5].tolist()):                                 # each digit's colour is drawn
        assert (latent == np.array(PALETTE[digit], np.uint8)).all(axis=2).sum() > 0
    grey = (latent == np.array(REFERENCE_GREY, np.uint8)).all(axis=2).sum()
    assert grey > 100                                                       # the prior draws
    wide = models.build("wae", image_shape=SHAPE, latent_dim=3, hidden_size=8)
    assert set(wide.pictures(x)) == {"reconstructions"}
