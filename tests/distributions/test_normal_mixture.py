"""Normal and NormalMixture (tinygen/distributions/normal.py): scipy's densities, the
reparameterisation, sample moments, gradients and errors."""
import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as ss
from hypothesis import given
from hypothesis import strategies as st

import tinygen
from tinygen import backend
from tinygen.autograd import gradcheck, gradgradcheck
from tinygen.distributions import Bernoulli, Categorical, Normal, NormalMixture, kl_divergence
from tinygen.testing import arrays

from distribution_checks import FAST, SCALES, Z, mixture_logpdf_scipy, small_shapes, t64


# --- Normal --------------------------------------------------------------

@FAST
@given(st.tuples(small_shapes(), small_shapes()).flatmap(
    lambda s: st.tuples(arrays(s[0]), arrays(s[1], domain=SCALES), arrays(s[0]))))
def test_normal_log_prob_and_entropy_match_scipy(args):
    loc, scale, x = args
    try:
        np.broadcast_shapes(loc.shape, scale.shape)
    except ValueError:
        with pytest.raises(ValueError, match="do not broadcast"):
            Normal(loc, scale)
        return
    d = Normal(t64(loc), t64(scale))
    assert d.batch_shape == np.broadcast_shapes(loc.shape, scale.shape)
    np.testing.assert_allclose(d.log_prob(x).numpy(), ss.norm.logpdf(x, loc, scale), rtol=1e-12, atol=1e-12)
    expected_entropy = np.broadcast_to(ss.norm.entropy(loc, scale), d.batch_shape)
    np.testing.assert_allclose(d.entropy().numpy(), expected_entropy, rtol=1e-12)
    np.testing.assert_allclose(d.mean.numpy(), np.broadcast_to(loc, d.batch_shape))
    np.testing.assert_allclose(d.stddev.numpy(), np.broadcast_to(scale, d.batch_shape))
    np.testing.assert_allclose(d.variance.numpy(), np.broadcast_to(scale ** 2, d.batch_shape), rtol=1e-12)


def test_normal_sample_mean_and_variance():
    tinygen.manual_seed(3)
    loc, scale, n = np.array([-1.0, 0.0, 3.0]), np.array([0.5, 1.0, 2.0]), 40000
    x = Normal(loc, scale).sample(n).numpy()
    assert x.shape == (n, 3) and x.dtype == np.float64  # float64 arrays stay float64
    assert np.all(np.abs(x.mean(0) - loc) <= Z * scale / np.sqrt(n))
    assert np.all(np.abs(x.var(0) / scale ** 2 - 1) <= Z * np.sqrt(2 / (n - 1)))


def test_normal_from_log_var_uses_the_standard_deviation():
    # The notes' sampler check: Var(z) / exp(log_var) = 1 (exp(log_var) as the std gives 1.89, 0.51, ...).
    tinygen.manual_seed(4)
    log_var, n = np.array([0.64, -0.67, 1.2]), 40000
    z = Normal.from_log_var(np.zeros(3), log_var).sample(n).numpy()
    assert np.all(np.abs(z.var(0) / np.exp(log_var) - 1) <= Z * np.sqrt(2 / (n - 1)))


def test_rsample_is_the_reparameterisation_loc_plus_scale_eps():
    loc, scale = t64([0.5, -1.0, 2.0], True), t64([1.0, 0.3, 2.5], True)
    tinygen.manual_seed(5)
    x = Normal(loc, scale).rsample(7)
    tinygen.manual_seed(5)
    eps = backend.generator("cpu").standard_normal((7, 3))
    np.testing.assert_allclose(x.numpy(), loc.numpy() + scale.numpy() * eps, rtol=1e-15)
    x.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), 7.0)               # d/dloc of sum(loc + scale eps)
    np.testing.assert_allclose(scale.grad.numpy(), eps.sum(axis=0))  # d/dscale = sum of eps
    assert not Normal(loc, scale).sample(7).requires_grad


def test_rsample_gradcheck_with_a_fixed_seed():
    def draw(loc, scale):
        tinygen.manual_seed(11)  # every evaluation sees the same eps
        return Normal(loc, scale).rsample((2, 3))
    assert gradcheck(draw, [t64([0.1, -0.4, 1.0], True), t64([0.7, 1.3, 0.2], True)])


def test_normal_noise_does_not_depend_on_dtype():
    tinygen.manual_seed(6)
    a = Normal(np.zeros(4, np.float64), 1.0).sample(3).numpy()
    tinygen.manual_seed(6)
    b = Normal(np.zeros(4, np.float32), 1.0).sample(3).numpy()
    assert a.dtype == np.float64 and b.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_normal_gradients():
    x, loc, scale = np.array([0.3, -2.0, 1.0]), np.array([0.0, -1.0, 2.0]), np.array([0.5, 1.5, 2.0])
    assert gradcheck(lambda v, m, s: Normal(m, s).log_prob(v),
                     [t64(x, True), t64(loc, True), t64(scale, True)])
    assert gradcheck(lambda s: Normal(0.0, s).entropy(), [t64(scale, True)])
    assert gradcheck(lambda m, lv: Normal.from_log_var(m, lv).log_prob(x),
                     [t64(loc, True), t64([0.1, -1.0, 0.4], True)])


def test_second_derivatives():
    # log_prob and KL are built from Tensor ops, so they can be differentiated twice.
    assert gradgradcheck(lambda v, m, s: Normal(m, s).log_prob(v),
                         [t64([0.3, -1.0], True), t64([0.0, 0.5], True), t64([1.0, 2.0], True)])
    assert gradgradcheck(lambda l: Categorical(logits=l).log_prob([2, 0]),
                         [t64([[0.3, -1.0, 2.0], [0.0, 1.0, 0.5]], True)])
    assert gradgradcheck(lambda lp, lq: kl_divergence(Bernoulli(logits=lp), Bernoulli(logits=lq)),
                         [t64([0.3, -2.0], True), t64([1.0, 0.5], True)])


def test_normal_errors():
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="scale .* must be positive"):
            Normal(0.0, [1.0, bad])
    with pytest.raises(ValueError, match="loc must be finite"):
        Normal([np.nan], 1.0)
    with pytest.raises(ValueError, match=r"loc \(2,\), scale \(3,\)"):
        Normal(np.zeros(2), np.ones(3))
    with pytest.raises(ValueError, match="share one dtype"):
        Normal(tinygen.tensor([0.0]), t64([1.0]))
    with pytest.raises(ValueError, match="do not broadcast"):
        Normal(np.zeros(3), 1.0).log_prob(np.zeros(2))
    with pytest.raises(ValueError, match="negative size"):
        Normal(0.0, 1.0).sample(-1)


# --- mixtures ------------------------------------------------------------

def test_diagonal_mixture_log_prob_matches_scipy():
    rng = np.random.default_rng(0)
    locs, scales, w = rng.normal(size=(3, 2)), rng.uniform(0.3, 2.0, size=(3, 2)), np.array([0.2, 0.5, 0.3])
    x = rng.normal(size=(4, 5, 2))
    d = NormalMixture(t64(locs), t64(scales), weights=t64(w))
    assert d.batch_shape == () and d.event_shape == (2,) and d.num_components == 3
    expected = mixture_logpdf_scipy(x, locs, [np.diag(s ** 2) for s in scales], w)
    np.testing.assert_allclose(d.log_prob(x).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(d.mean.numpy(), w @ locs, rtol=1e-12)
    np.testing.assert_allclose(sp.softmax(d.component_log_prob(x).numpy(), -1).sum(-1), 1.0)


def test_elongated_ring_log_prob_matches_scipy_and_integrates_to_one():
    d = NormalMixture.ring(10, radius=1.4, std=0.5, tangential_std=0.05, dtype=np.float64)
    A = d.scales.numpy()
    pts = np.random.default_rng(1).normal(size=(50, 2))
    expected = mixture_logpdf_scipy(pts, d.locs.numpy(), A @ A.transpose(0, 2, 1), np.full(10, 0.1))
    np.testing.assert_allclose(d.log_prob(pts).numpy(), expected, rtol=1e-10)
    h = 0.02
    g = np.arange(-4.0, 4.0 + h / 2, h)
    grid = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1)
    assert abs(np.exp(d.log_prob(grid).numpy()).sum() * h * h - 1.0) < 1e-3


def test_mixture_samples_land_near_their_components_in_proportion():
    tinygen.manual_seed(8)
    locs = np.array([[0.0, 0.0], [5.0, 5.0], [-5.0, 3.0]])
    scales = np.array([[0.5, 1.0], [0.2, 0.2], [1.0, 2.0]])
    w = np.array([0.5, 0.3, 0.2])
    n = 20000
    x, k = NormalMixture(locs, scales, weights=w).sample(n, return_components=True)
    x, k = x.numpy(), k.numpy()
    assert x.shape == (n, 2) and k.shape == (n,)
    counts = np.bincount(k, minlength=3) / n
    assert np.all(np.abs(counts - w) <= Z * np.sqrt(w * (1 - w) / n)), counts
    for j in range(3):
        z = (x[k == j] - locs[j]) / scales[j]  # standardised by their own component
        m = len(z)
        assert np.all(np.abs(z.mean(0)) <= Z / np.sqrt(m))
        assert np.all(np.abs(z.var(0) - 1) <= Z * np.sqrt(2 / (m - 1)))


def test_aae_ring_prior_is_elongated_along_the_radius():
    # The AAE prior of the notes: 10 components at radius 1.4, std 0.5 along the radius, 0.05 across.
    tinygen.manual_seed(9)
    x, k = NormalMixture.ring(10, 1.4, 0.5, tangential_std=0.05).sample(20000, return_components=True)
    x, k = x.numpy().astype(np.float64), k.numpy()
    angle = 2 * np.pi * k / 10
    radial = np.stack([np.cos(angle), np.sin(angle)], -1)
    tangential = np.stack([-np.sin(angle), np.cos(angle)], -1)
    r, t = (x * radial).sum(-1) - 1.4, (x * tangential).sum(-1)
    n = len(r)
    assert abs(r.mean()) < Z * 0.5 / np.sqrt(n) and abs(t.mean()) < Z * 0.05 / np.sqrt(n)
    assert abs(r.std() / 0.5 - 1) < Z / np.sqrt(2 * n) and abs(t.std() / 0.05 - 1) < Z / np.sqrt(2 * n)


def test_ring_and_grid_centres():
    ring = NormalMixture.ring(8, radius=2.0, std=0.02)
    np.testing.assert_allclose(np.linalg.norm(ring.locs.numpy(), axis=1), 2.0, rtol=1e-6)
    np.testing.assert_allclose(ring.locs.numpy()[2], [0.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(ring.scales.numpy(), 0.02)
    grid = NormalMixture.grid()
    assert grid.num_components == 25
    assert sorted(set(grid.locs.numpy().ravel().tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    np.testing.assert_allclose(grid.locs.numpy()[:2], [[-4.0, -4.0], [-4.0, -2.0]])
    assert NormalMixture.grid(3, 1.0, 0.1, dim=3).locs.shape == (27, 3)
    assert NormalMixture.ring(4, dim=3).sample(5).shape == (5, 3)


def test_mixture_gradients():
    x = t64([[0.3, -0.2], [1.0, 2.0]], True)
    locs, scales = t64([[0.0, 0.0], [1.0, 1.5]], True), t64([[0.5, 1.0], [0.8, 0.3]], True)
    logits = t64([0.2, -0.3], True)
    assert gradcheck(lambda v, m, s, l: NormalMixture(m, s, logits=l).log_prob(v), [x, locs, scales, logits])
    assert gradcheck(lambda w: NormalMixture(locs.detach(), scales.detach(), weights=w).log_prob(x.detach()),
                     [t64([0.3, 0.9], True)])
    A = NormalMixture.ring(3, 1.0, 0.5, tangential_std=0.1, dtype=np.float64).scales.detach()
    locs3 = t64([[1.0, 0.0], [-0.5, 0.8], [-0.5, -0.8]], True)
    assert gradcheck(lambda v, m: NormalMixture(m, A).log_prob(v), [x, locs3])


def test_mixture_errors():
    locs = np.zeros((2, 3))
    with pytest.raises(ValueError, match="not both"):
        NormalMixture(locs, 1.0, weights=[0.5, 0.5], logits=[0.0, 0.0])
    with pytest.raises(ValueError, match=r"locs must have shape \(K, d\)"):
        NormalMixture(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match=r"scales of shape \(3, 3\) do not broadcast to \(K, d\) = \(2, 3\)"):
        NormalMixture(locs, np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"weights must have shape \(K,\) = \(2,\)"):
        NormalMixture(locs, 1.0, weights=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=">= 0"):
        NormalMixture(locs, 1.0, weights=[1.5, -0.5])
    with pytest.raises(ValueError, match="must be positive"):
        NormalMixture(locs, [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="invertible"):
        NormalMixture(locs, np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="cannot be learned"):
        NormalMixture(t64(locs), t64(np.stack([np.eye(3)] * 2), True))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 3\).*\(4, 2\)"):
        NormalMixture(locs, 1.0).log_prob(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="n_components must be an int >= 1"):
        NormalMixture.ring(0)
