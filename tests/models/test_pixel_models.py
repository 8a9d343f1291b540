"""PixelCNN and PixelRNN (Row LSTM, Diagonal BiLSTM): the masks, exact normalisation,
causality by autograd, sampling against the density, training, bad input.

The two strongest checks are exact: summing exp(log_prob) over EVERY binary image of a
tiny shape must give 1 (any pixel that sees itself or its future breaks this), and the
autograd gradient of the i-th logit w.r.t. pixel j must be exactly 0 for j >= i. Both
are also run on deliberately broken copies, to show that they would catch the bugs the
notes list (mask B in the first layer, a backward map not shifted down, an unmasked row
convolution).
"""
import itertools

import numpy as np
import pytest

import tinygen
from tinygen import functional as F
from tinygen import models
from tinygen.autograd.tensor import Tensor
from tinygen.data import binarize, digits
from tinygen.nn import masked
from tinygen.nn.masked import DiagonalBiLSTM, MaskedConv2d, RowLSTM, causal_mask

VARIANTS = [("pixelcnn", {}),
            ("pixelrnn", {"variant": "row_lstm"}),
            ("pixelrnn", {"variant": "diagonal_bilstm"})]
IDS = ["pixelcnn", "row_lstm", "diagonal_bilstm"]

# tiny networks: exactness does not depend on the size, and they keep the file fast
TINY = {"pixelcnn": dict(hidden=3, blocks=2, first_kernel=3, head=4),
        "pixelrnn": dict(hidden=3, layers=2, first_kernel=3, head=4)}


def all_binary_images(shape):
    d = int(np.prod(shape))
    bits = np.array(list(itertools.product([0, 1], repeat=d)), dtype=np.float64)
    return bits.reshape((-1,) + tuple(shape))


def tiny_model(name, options, shape, seed=0, scale=2.0):
    """A float64 model with random parameters, weights scaled up so every path matters,
    in evaluation mode (no dropout: every call is the same density)."""
    tinygen.manual_seed(seed)
    m = models.build(name, image_shape=shape, **TINY[name], **options).double()
    rng = np.random.default_rng(seed)
    for p in m.parameters():
        p.data[...] = scale * p.data + 0.1 * rng.standard_normal(p.shape)
    return m.eval()


def future_dependencies(model, shape, n=3, seed=0):
    """(leaks, seen): leaks[i, j] = 1 where d l_i / d x_j != 0 for some of n random images
    and j >= i (raster order); seen[i, j] = the same for every j (past included)."""
    d = int(np.prod(shape))
    x = Tensor((np.random.default_rng(seed).random((n,) + shape) < 0.5).astype(np.float64),
               requires_grad=True)
    dep = np.zeros((d, d), dtype=bool)
    for i in range(d):
        x.grad = None
        l = F.reshape(model.logits(x), (n, d))
        F.sum(l[:, i]).backward()       # images are independent: the sum keeps each one's gradient
        dep[i] = (x.grad.numpy().reshape(n, d) != 0).any(axis=0)
    return np.triu(dep), dep             # triu: j >= i, the pixel itself and its future


def total_probability(model, shape):
    return float(np.exp(model.log_prob(all_binary_images(shape)).numpy()).sum())


# --- the masks -------------------------------------------------------------------------

def test_masks_have_the_documented_patterns():
    np.testing.assert_array_equal(causal_mask((5, 5), "A"),
                                  [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0],
                                   [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(causal_mask((3, 3), "B"), [[1, 1, 1], [1, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(causal_mask((3, 3), "A"), [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(causal_mask((1, 3), "B"), [[1, 1, 0]])     # Row LSTM's K^is
    np.testing.assert_array_equal(causal_mask((1, 1), "B"), [[1]])            # 1x1 B: all ones
    np.testing.assert_array_equal(causal_mask((1, 1), "A"), [[0]])
    np.testing.assert_array_equal(causal_mask((3, 5), "A")[1], [1, 1, 0, 0, 0])
    with pytest.raises(ValueError, match="odd"):
        causal_mask((4, 4), "A")
    with pytest.raises(ValueError, match="'A'.*'B'"):
        MaskedConv2d(1, 2, 3, "C")


def test_masked_weights_get_exactly_zero_gradient_and_the_output_ignores_them():
    tinygen.manual_seed(0)
    conv = MaskedConv2d(2, 3, 5, "A").double()
    x = Tensor(np.random.default_rng(0).standard_normal((2, 2, 6, 6)))
    F.sum(conv(x) ** 2).backward()
    m = causal_mask((5, 5), "A")
    assert conv.weight.grad.shape == (3, 2, 5, 5)
    assert np.all(conv.weight.grad.numpy()[..., m == 0] == 0)
    assert np.all(conv.weight.grad.numpy()[..., m == 1] != 0)
    before = conv(x).numpy()
    conv.weight.data[..., m == 0] = 1e3                    # masked entries change nothing
    np.testing.assert_array_equal(conv(x).numpy(), before)
    assert conv.padding == (2, 2) and MaskedConv2d(1, 1, (1, 3), "B").padding == (0, 1)


# --- exactness ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,options", VARIANTS, ids=IDS)
@pytest.mark.parametrize("shape", [(1, 2, 2), (1, 3, 3), (1, 2, 4)])
def test_probabilities_of_all_binary_images_sum_to_one(name, options, shape):
    m = tiny_model(name, options, shape)
    assert abs(total_probability(m, shape) - 1) < 1e-6


@pytest.mark.parametrize("name,options", VARIANTS, ids=IDS)
def test_no_logit_depends_on_its_own_pixel_or_the_future(name, options):
    shape = (1, 4, 5)
    leaks, seen = future_dependencies(tiny_model(name, options, shape), shape)
    assert leaks.sum() == 0, f"{leaks.sum()} future dependencies: {np.argwhere(leaks).tolist()}"
    # ... and not because it is blind: every pixel sees its left neighbour
    d, w = 4 * 5, 5
    assert all(seen[i, i - 1] for i in range(d) if i % w)


@pytest.mark.parametrize("shape,k0", [((1, 4, 5), 3), ((1, 6, 6), 5)])
def test_diagonal_bilstm_sees_the_whole_past_but_one_pixel(shape, k0):
    """The notes' finding: the Diagonal BiLSTM reaches every past pixel except (r-1, W-1)
    from (r, c) with c < W-1-k0//2. x at (r-1, W-1) enters the map z only through the
    mask-A conv at row r, columns >= W-1-k0//2; from there the forward direction only
    moves right/down and the shifted backward direction only brings row r-1."""
    options = dict(hidden=3, layers=2, first_kernel=k0, head=4)
    tinygen.manual_seed(0)
    m = models.build("pixelrnn", image_shape=shape, variant="diagonal_bilstm", **options).double().eval()
    _, seen = future_dependencies(m, shape, n=16)   # 16 images: a ReLU dead on a few cannot hide a path
    H, W = shape[1:]
    missing = {((i // W, i % W), (j // W, j % W)) for i, j in np.argwhere(np.tril(~seen, -1))}
    expected = {((r, c), (r - 1, W - 1)) for r in range(1, H) for c in range(W - 1 - k0 // 2)}
    assert missing == expected


def _mask_b_first(m):
    m.first.mask.data[...] = causal_mask(m.first.kernel_size, "B")


def _unmasked_row_conv(m):
    for layer in m.lstms:
        layer.input_to_state.mask.data[...] = 1            # x_r at column c+1 leaks into h_r[c]


BROKEN = [("pixelcnn", {}, _mask_b_first, None),
          ("pixelrnn", {"variant": "row_lstm"}, _unmasked_row_conv, None),
          ("pixelrnn", {"variant": "diagonal_bilstm"}, _mask_b_first, None),
          ("pixelrnn", {"variant": "diagonal_bilstm"}, None, "no_shift")]


@pytest.mark.parametrize("name,options,breaker,patch", BROKEN,
                         ids=["pixelcnn-maskB-first", "row_lstm-unmasked-row", "diag-maskB-first",
                              "diag-backward-not-shifted"])
def test_the_checks_catch_a_deliberately_broken_copy(name, options, breaker, patch, monkeypatch):
    if patch == "no_shift":
        monkeypatch.setattr(masked, "_shift_down", lambda x: x)    # forget the down shift
    shape = (1, 3, 3)
    m = tiny_model(name, options, shape)
    if breaker is not None:
        breaker(m)
    leaks, _ = future_dependencies(m, shape)
    assert leaks.sum() > 0
    assert abs(total_probability(m, shape) - 1) > 1e-4


# --- sampling ------------------------------------------------------------------------------

@pytest.mark.parametrize("name,options", VARIANTS, ids=IDS)
def test_sample_frequencies_match_the_density(name, options):
    """Chi-square over the 16 images of shape (1, 2, 2), 20,000 ancestral samples."""
    from scipy.stats import chisquare
    shape = (1, 2, 2)
    m = tiny_model(name, options, shape, seed=1, scale=4.0)   # scaled: a far-from-uniform density
    tinygen.manual_seed(5)
    n = 20000
    s = m.sample(n).numpy()
    assert s.shape == (n,) + shape and s.dtype == np.float32 and set(np.unique(s)) <= {0.0, 1.0}
    index = (s.reshape(n, 4) @ (2 ** np.arange(3, -1, -1))).astype(int)   # same order as all_binary_images
    observed = np.bincount(index, minlength=16)
    p = np.exp(m.log_prob(all_binary_images(shape)).numpy())
    assert p.max() > 0.15            # (uniform would be 1/16): the test has something to find
    assert chisquare(observed, n * p / p.sum()).pvalue > 1e-3


def test_sampling_is_in_evaluation_mode_and_restores_the_mode():
    m = tiny_model("pixelcnn", {}, (1, 2, 2)).train()
    m.blocks[0].dropout = 0.9               # sampling must not drop anything
    tinygen.manual_seed(0)
    a = m.sample(50).numpy()
    assert m.training
    m.blocks[0].dropout = 0.0
    tinygen.manual_seed(0)
    np.testing.assert_array_equal(m.sample(50).numpy(), a)


# --- training -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def binary_digits():
    ds = digits()
    return binarize(ds.train_images), binarize(ds.test_images)


@pytest.mark.parametrize("name,options", VARIANTS, ids=IDS)
def test_training_on_digits_lowers_the_test_nll(name, options, binary_digits):
    train, test = binary_digits
    tinygen.manual_seed(0)
    m = models.build(name, image_shape=(1, 8, 8), hidden=4, head=8, lr=1e-2, **options)
    before = m.evaluate(test)["nll_nats"]
    rng = np.random.default_rng(0)
    for _ in range(25):
        m.train_step(train[rng.choice(len(train), 64, replace=False)])
    after = m.evaluate(test)["nll_nats"]
    assert after < before - 5, (before, after)      # from ~44 nats (coin flips) downwards


def test_state_dict_round_trip_gives_the_same_density():
    shape = (1, 3, 3)
    a = tiny_model("pixelrnn", {"variant": "diagonal_bilstm"}, shape, seed=0)
    b = tiny_model("pixelrnn", {"variant": "diagonal_bilstm"}, shape, seed=1)
    x = all_binary_images(shape)[:20]
    assert not np.allclose(a.log_prob(x).numpy(), b.log_prob(x).numpy())
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.log_prob(x).numpy(), b.log_prob(x).numpy())
    assert not any("mask" in k for k in a.state_dict())            # masks are rebuilt, not saved


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("name,options", VARIANTS, ids=IDS)
def test_bad_input_is_refused_clearly(name, options):
    m = models.build(name, image_shape=(1, 4, 4), **TINY[name], **options)
    with pytest.raises(ValueError, match="binarize"):
        m.log_prob(np.full((2, 1, 4, 4), 0.5, np.float32))
    with pytest.raises(ValueError, match=r"\(N, 1, 4, 4\).*\(2, 1, 5, 5\)"):
        m.log_prob(np.zeros((2, 1, 5, 5), np.float32))
    with pytest.raises(ValueError, match="one-channel"):
        models.build(name, image_shape=(3, 4, 4), **options)
    with pytest.raises(ValueError, match="first_kernel must be odd"):
        models.build(name, image_shape=(1, 4, 4), first_kernel=4, **options)
    with pytest.raises(ValueError, match=r"dropout must lie in \[0, 1\)"):
        models.build(name, image_shape=(1, 4, 4), dropout=1.0, **options)


def test_unknown_variant_lists_both():
    with pytest.raises(ValueError, match="'row_lstm', 'diagonal_bilstm'"):
        models.build("pixelrnn", variant="diagonal_lstm")


def test_layers_check_their_input():
    with pytest.raises(ValueError, match=r"\(N, 4, H, W\)"):
        RowLSTM(4, 2)(Tensor(np.zeros((1, 3, 4, 4), np.float32)))
    with pytest.raises(ValueError, match=r"\(N, 4, H, W\)"):
        DiagonalBiLSTM(4, 2)(Tensor(np.zeros((1, 3, 4, 4), np.float32)))
