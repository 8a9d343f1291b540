"""FVSBN and NADE (sections 1 and 2 of the notes): the math, checked exactly where it can be.

- parameter counts: the notes' formulas, and the models' own counts measured by autograd
- normalisation: sum over all 2^D binary images of p(x) is 1, and breaks on a leaky copy
- causality: d l_i / d x_j is exactly 0 for j >= i, and the check catches a one-pixel leak
- sampling agrees with the density (chi-square at a fixed seed)
- NADE: the O(HD) loop and the one-pass matrix form agree to 1e-10
- what a logistic conditional can and cannot fit (D = 2: anything; D = 3: not XOR)
- training on binarized digits lowers the test NLL; bad input is refused clearly
"""
import itertools
import math

import numpy as np
import pytest
from scipy import stats

import tinygen
from tinygen import data, models
from tinygen.autograd.tensor import Tensor
from tinygen.models import counting

from training import train_for

SHAPES = [(1, 2, 2), (1, 3, 3), (1, 2, 4)]


def all_binary_images(shape, dtype=np.float64):
    d = int(np.prod(shape))
    bits = np.array(list(itertools.product([0, 1], repeat=d)), dtype=dtype)
    return bits.reshape((-1,) + tuple(shape))


def random_model(name, shape, seed=0, dtype=np.float64, **options):
    """A model with every parameter drawn N(0, 1.5^2), masked entries included (so a leak shows)."""
    tinygen.manual_seed(seed)
    if name == "nade":
        options.setdefault("hidden_size", 5)
    m = models.build(name, image_shape=shape, **options).astype(dtype)
    rng = np.random.default_rng(seed)
    for p in m.parameters():
        p.data[...] = 1.5 * rng.standard_normal(p.shape)
    return m


def leaky_copy(model):
    """The same model with its causal mask widened by the diagonal: x_i reaches its own logit."""
    d = model.d
    leak = np.tril(np.ones((d, d), dtype=model.W.dtype), k=0)
    if model.name == "fvsbn":
        model.mask = leak       # l_i = a_i + sum_{j<=i} W_ij x_j
    else:
        model.lag = 0           # a_d includes W[:, d] x_d: the off-by-one of the notes
    return model


def total_probability(model, shape):
    return float(np.exp(model.log_prob(all_binary_images(shape)).numpy()).sum())


def dependency_leaks(model, shape, n=4, seed=0):
    """Pairs (i, j), j >= i, where d l_i / d x_j is not exactly 0, and the count of pairs j < i
    that do depend (so an all-zero gradient cannot pass the check by accident)."""
    d = int(np.prod(shape))
    x0 = (np.random.default_rng(seed).random((n,) + shape) < 0.5).astype(np.float64)
    leaks, used = [], 0
    for i in range(d):
        x = Tensor(x0, requires_grad=True)
        model.logits(x)[:, i].sum().backward()
        g = np.abs(x.grad.numpy().reshape(n, d)).max(axis=0)
        leaks += [(i, j) for j in range(i, d) if g[j] != 0]
        used += int((g[:i] != 0).sum())
    return leaks, used


# --- parameter counts -----------------------------------------------------------------

def test_parameter_counts_match_the_notes():
    c64, c784 = counting.parameter_counts(64), counting.parameter_counts(784, H=500)
    assert c64["chain rule, logistic conditionals (fvsbn)"] == 2080
    assert c784["chain rule, logistic conditionals (fvsbn)"] == 307_720
    assert c784["nade (stored)"] == 785_284
    for D in (1, 2, 5, 64):
        c = counting.parameter_counts(D, H=3)
        assert c["full joint table"] == c["chain rule, tabular conditionals"] == 2 ** D - 1
        assert c["independent (bernoulli)"] == D and c["first-order Markov"] == 2 * D - 1
        assert c["nade (stored)"] == 2 * 3 * D + 3 + D and c["nade (free)"] == 2 * 3 * D + D
    assert "2,080" in counting.format_table(64) and "307,720" in counting.format_table(784)


def measured_free_parameters(model, shape, n=256, seed=0):
    """Parameter entries whose gradient is not exactly 0 on random binary images."""
    x = (np.random.default_rng(seed).random((n,) + shape) < 0.5).astype(np.float32)
    model.zero_grad()
    (-model.log_prob(x).mean()).backward()
    return sum(int((p.grad.numpy() != 0).sum()) for p in model.parameters())


@pytest.mark.parametrize("name,options,formula", [
    ("bernoulli", {}, "independent (bernoulli)"),
    ("fvsbn", {}, "chain rule, logistic conditionals (fvsbn)"),
    ("nade", {"hidden_size": 16}, "nade (free)"),
])
def test_models_have_the_counted_free_parameters(name, options, formula):
    shape = (1, 8, 8)
    m = random_model(name, shape, dtype=np.float32, **options)
    expected = counting.parameter_counts(64, H=options.get("hidden_size"))[formula]
    assert counting.free_parameter_count(m) == expected
    assert measured_free_parameters(m, shape) == expected      # autograd agrees entry by entry
    if name == "nade":   # the notes' 2HD + H + D is what NADE stores; W's last column is dead
        assert counting.stored_parameter_count(m) == counting.parameter_counts(64, H=16)["nade (stored)"]
        assert np.all(m.W.grad.numpy()[:, -1] == 0)


def test_fvsbn_count_at_28x28():
    m = models.build("fvsbn", image_shape=(1, 28, 28))
    assert counting.free_parameter_count(m) == 307_720


# --- normalisation ---------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["fvsbn", "nade"])
def test_probabilities_sum_to_one_exactly(name, shape):
    m = random_model(name, shape)
    assert abs(total_probability(m, shape) - 1) < 1e-6


@pytest.mark.parametrize("name", ["fvsbn", "nade"])
def test_a_leaky_copy_does_not_normalise(name):
    m = leaky_copy(random_model(name, (1, 2, 2)))
    assert abs(total_probability(m, (1, 2, 2)) - 1) > 1e-2


# --- causality -------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 3, 3), (1, 2, 4)])
@pytest.mark.parametrize("name", ["fvsbn", "nade"])
def test_conditional_i_never_sees_pixel_i_or_later(name, shape):
    leaks, used = dependency_leaks(random_model(name, shape), shape)
    d = int(np.prod(shape))
    assert leaks == []
    assert used == d * (d - 1) // 2          # and it does see every earlier pixel


@pytest.mark.parametrize("name", ["fvsbn", "nade"])
def test_the_causality_check_catches_a_one_pixel_leak(name):
    shape = (1, 3, 3)
    leaks, _ = dependency_leaks(leaky_copy(random_model(name, shape)), shape)
    assert leaks == [(i, i) for i in range(9)]   # each pixel sees itself, nothing later


def test_fvsbn_masked_weights_get_zero_gradient_and_never_move():
    tinygen.manual_seed(0)
    m = models.build("fvsbn", image_shape=(1, 3, 3))
    x = (np.random.default_rng(0).random((32, 1, 3, 3)) < 0.4).astype(np.float32)
    (-m.log_prob(x).mean()).backward()
    upper = np.triu(np.ones((9, 9), bool))
    assert np.all(m.W.grad.numpy()[upper] == 0) and np.any(m.W.grad.numpy()[~upper] != 0)
    for _ in range(20):
        m.train_step(x)
    assert np.all(m.W.numpy()[upper] == 0)


# --- sampling agrees with the density ------------------------------------------------------

@pytest.mark.parametrize("name", ["fvsbn", "nade"])
@pytest.mark.parametrize("shape", [(1, 2, 2), (1, 2, 3)])
def test_sample_frequencies_match_the_density(name, shape):
    m = random_model(name, shape, seed=1, dtype=np.float32)
    for p in m.parameters():   # milder parameters: no cell with an expected count near 0
        p.data *= 0.5
    n = 50_000
    tinygen.manual_seed(123)
    s = m.sample(n).numpy()
    assert s.shape == (n,) + shape and s.dtype == np.float32 and set(np.unique(s)) <= {0.0, 1.0}
    d = int(np.prod(shape))
    index = s.reshape(n, d).astype(np.int64) @ (2 ** np.arange(d - 1, -1, -1))   # image -> 0..2^D-1
    observed = np.bincount(index, minlength=2 ** d)
    p = np.exp(m.log_prob(all_binary_images(shape, np.float32)).numpy().astype(np.float64))
    expected = n * p / p.sum()
    rare = expected < 5                      # pool rare images into one cell (chi-square needs ~5 each)
    if rare.any():
        observed = np.append(observed[~rare], observed[rare].sum())
        expected = np.append(expected[~rare], expected[rare].sum())
    assert len(expected) > 2 ** d // 2
    assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_sampling_is_reproducible_from_the_seed():
    m = random_model("nade", (1, 2, 3), dtype=np.float32)
    tinygen.manual_seed(7)
    a = m.sample(16).numpy()
    tinygen.manual_seed(7)
    np.testing.assert_array_equal(a, m.sample(16).numpy())


# --- NADE: the loop and the one-pass form ----------------------------------------------------

def test_nade_loop_equals_one_pass_form():
    shape = (1, 3, 4)
    m = random_model("nade", shape, hidden_size=7)
    x = (np.random.default_rng(2).random((10,) + shape) < 0.5).astype(np.float64)
    fast, loop = m.logits(x), m.logits_sequential(x)
    np.testing.assert_allclose(fast.numpy(), loop.numpy(), rtol=0, atol=1e-10)
    # and the gradients of both forms agree too
    grads = []
    for form in (m.logits, m.logits_sequential):
        m.zero_grad()
        (form(x) ** 2).sum().backward()
        grads.append([p.grad.numpy().copy() for p in m.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


# --- what logistic conditionals can fit -------------------------------------------------------

def test_fvsbn_d2_recovers_any_two_bit_distribution():
    """D = 2: three parameters for a three-parameter family, so the MLE is the data distribution."""
    target = np.array([0.05, 0.15, 0.5, 0.3])                # p(00), p(01), p(10), p(11)
    counts = (target * 400).astype(int)
    images = all_binary_images((1, 1, 2), np.float32)
    x = np.repeat(images, counts, axis=0)
    tinygen.manual_seed(0)
    m = models.build("fvsbn", image_shape=(1, 1, 2), lr=0.05, weight_decay=0.0)
    for _ in range(1500):
        m.train_step(x)
    fitted = np.exp(m.log_prob(images).numpy())
    np.testing.assert_allclose(fitted, target, atol=2e-3)


def test_fvsbn_d3_cannot_fit_xor_but_nade_can():
    """x3 = x1 XOR x2: entropy 2 ln 2. A logistic p(x3 | x1, x2) is best at 1/2 (its MLE has
    W = 0 by symmetry), so FVSBN stays at 3 ln 2; NADE's hidden layer represents XOR."""
    x = np.array([[a, b, a ^ b] for a in (0, 1) for b in (0, 1)], np.float32).reshape(4, 1, 1, 3)
    entropy = 2 * math.log(2)
    tinygen.manual_seed(0)
    fv = models.build("fvsbn", image_shape=(1, 1, 3), lr=0.05, weight_decay=0.0)
    nade = models.build("nade", image_shape=(1, 1, 3), hidden_size=8, lr=0.05, weight_decay=0.0)
    for _ in range(1500):
        fv.train_step(x)
        nade.train_step(x)
    assert fv.evaluate(x)["nll_nats"] == pytest.approx(3 * math.log(2), abs=1e-3)
    assert nade.evaluate(x)["nll_nats"] < entropy + 0.05


# --- training on digits ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits01():
    ds = data.digits()
    return data.binarize(ds.train_images), data.binarize(ds.test_images)


@pytest.mark.parametrize("name,options", [("fvsbn", {}), ("nade", {"hidden_size": 32})])
def test_training_lowers_the_test_nll(digits01, name, options):
    train, test = digits01
    tinygen.manual_seed(0)
    m = models.build(name, image_shape=(1, 8, 8), **options)
    before = m.evaluate(test)["nll_nats"]
    train_for(m, data.DataLoader(train, batch_size=64, seed=0), 300)
    after = m.evaluate(test)["nll_nats"]
    assert before > 43 and after < 22          # from about D ln 2 = 44.4 nats to below bernoulli's 24.6


# --- checkpoints and bad input -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["fvsbn", "nade"])
def test_state_round_trips_without_the_constant_masks(tmp_path, name):
    x = (np.random.default_rng(0).random((16, 1, 2, 2)) < 0.5).astype(np.float32)
    a = random_model(name, (1, 2, 2), dtype=np.float32)
    assert not {"mask", "prefix"} & set(a.state_dict())
    tinygen.save(a.training_state(), tmp_path / "ckpt.npz")
    b = models.build(name, image_shape=(1, 2, 2), **({"hidden_size": 5} if name == "nade" else {}))
    b.load_training_state(tinygen.load(tmp_path / "ckpt.npz"))
    np.testing.assert_array_equal(a.log_prob(x).numpy(), b.log_prob(x).numpy())


@pytest.mark.parametrize("name", ["fvsbn", "nade"])
def test_bad_input_is_refused_clearly(name):
    m = models.build(name, image_shape=(1, 2, 2))
    with pytest.raises(ValueError, match="binarize"):
        m.log_prob(np.full((3, 1, 2, 2), 0.5, np.float32))
    with pytest.raises(ValueError, match=r"\(N, 1, 2, 2\).*\(3, 1, 3, 3\)"):
        m.log_prob(np.zeros((3, 1, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(N, 1, 2, 2\).*\(3, 4\)"):
        m.train_step(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="image_shape"):
        models.build(name, image_shape=(2, 2))


def test_nade_hidden_size_must_be_a_positive_integer():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="hidden_size"):
            models.build("nade", hidden_size=bad)


def test_registry_entries():
    for name, section in (("fvsbn", "1."), ("nade", "2.")):
        info = models.info(name)
        assert info.kind == "explicit" and info.section.startswith(section)
        assert info.cls.binary and info.cls.default_lr and info.cls.default_steps > 0
