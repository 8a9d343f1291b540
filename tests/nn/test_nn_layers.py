"""Linear, Embedding, Dropout, activation and shape layers."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygen
import tinygen.functional as F
import tinygen.nn as nn
from tinygen.autograd import gradcheck
from tinygen.testing import arrays


# --- Linear -------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(batch=st.lists(st.integers(1, 4), min_size=0, max_size=2), n_in=st.integers(1, 6),
       n_out=st.integers(1, 6), bias=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_linear_matches_numpy(batch, n_in, n_out, bias, seed):
    tinygen.manual_seed(seed)
    lin = nn.Linear(n_in, n_out, bias=bias)
    x = np.random.default_rng(seed).standard_normal(tuple(batch) + (n_in,)).astype(np.float32)
    expected = x @ lin.weight.numpy().T + (lin.bias.numpy() if bias else 0)
    y = lin(tinygen.tensor(x))
    assert y.shape == tuple(batch) + (n_out,)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_linear_shapes_and_init_bounds():
    lin = nn.Linear(50, 40)
    assert lin.weight.shape == (40, 50) and lin.bias.shape == (40,)
    bound = 1 / np.sqrt(50)
    for p in (lin.weight, lin.bias):
        assert np.abs(p.numpy()).max() <= bound
    assert np.abs(lin.weight.numpy()).max() > 0.9 * bound  # it fills the interval
    # the variance of U(-c, c) is c^2 / 3
    assert abs(lin.weight.numpy().var() / (bound ** 2 / 3) - 1) < 0.1
    assert nn.Linear(3, 2, bias=False).bias is None
    assert [n for n, _ in nn.Linear(3, 2, bias=False).named_parameters()] == ["weight"]


def test_linear_init_is_reproducible_with_manual_seed():
    tinygen.manual_seed(7)
    a = nn.Linear(4, 3)
    tinygen.manual_seed(7)
    b = nn.Linear(4, 3)
    c = nn.Linear(4, 3)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    assert not np.array_equal(b.weight.numpy(), c.weight.numpy())


def test_linear_gradcheck_functional():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal(2)
    assert gradcheck(F.linear, [x, w, b])
    assert gradcheck(F.linear, [rng.standard_normal((2, 3, 4)), w, b])  # leading batch axes


def test_linear_module_gradients_in_float64(param_check):
    lin = nn.Linear(4, 3).double()
    x = tinygen.tensor(np.random.default_rng(1).standard_normal((5, 4)))
    param_check(lin, [x])
    # and the exact formulas: dL/dW = g^T x, dL/db = sum_n g
    g = np.random.default_rng(2).standard_normal((5, 3))
    lin.zero_grad()
    (lin(x) * tinygen.tensor(g)).sum().backward()
    np.testing.assert_allclose(lin.weight.grad.numpy(), g.T @ x.numpy(), rtol=1e-12)
    np.testing.assert_allclose(lin.bias.grad.numpy(), g.sum(0), rtol=1e-12)


def test_linear_errors():
    with pytest.raises(ValueError, match=r"Linear\(3, 2\): input has shape \(4, 5\), expected \(\.\.\., 3\)"):
        nn.Linear(3, 2)(tinygen.randn(4, 5))
    with pytest.raises(ValueError, match="in_features must be a positive integer, got 0"):
        nn.Linear(0, 2)


# --- Embedding ----------------------------------------------------------------

def test_embedding_lookup_and_shape():
    emb = nn.Embedding(6, 3)
    idx = np.array([[0, 5], [2, 2]])
    y = emb(idx)
    assert y.shape == (2, 2, 3)
    np.testing.assert_array_equal(y.numpy(), emb.weight.numpy()[idx])
    assert emb(tinygen.tensor(idx)).shape == (2, 2, 3)
    assert emb([1, 2]).shape == (2, 3)


@settings(max_examples=25, deadline=None)
@given(idx=st.lists(st.integers(0, 4), min_size=1, max_size=12), dim=st.integers(1, 3))
def test_embedding_gradient_scatter_adds_repeated_indices(idx, dim):
    emb = nn.Embedding(5, dim)
    idx = np.array(idx)
    g = np.random.default_rng(len(idx)).standard_normal((len(idx), dim)).astype(np.float32)
    (emb(idx) * tinygen.tensor(g)).sum().backward()
    expected = np.zeros((5, dim), dtype=np.float32)
    np.add.at(expected, idx, g)  # row r gets the sum of the gradients at every position holding r
    np.testing.assert_allclose(emb.weight.grad.numpy(), expected, rtol=1e-6, atol=1e-6)


def test_embedding_repeated_index_by_hand():
    emb = nn.Embedding(3, 2)
    emb(np.array([1, 1, 1, 0])).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy(), [[1, 1], [3, 3], [0, 0]])


def test_embedding_errors():
    emb = nn.Embedding(4, 2)
    with pytest.raises(IndexError, match=r"indices must lie in \[0, 4\), got values from 0 to 4"):
        emb(np.array([0, 4]))
    with pytest.raises(IndexError, match="from -1 to 1"):
        emb(np.array([-1, 1]))
    with pytest.raises(TypeError, match="indices must be integers, got float32"):
        emb(np.array([0.0, 1.0], dtype=np.float32))


# --- Dropout ----------------------------------------------------------------------

def test_dropout_train_and_eval():
    drop = nn.Dropout(0.25)
    x = tinygen.ones((200, 50))
    y = drop(x).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)  # inverted dropout keeps the mean
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\), got 1"):
        nn.Dropout(1)


def test_dropout_follows_the_parent_mode():
    seq = nn.Sequential(nn.Identity(), nn.Dropout(0.5))
    x = tinygen.ones((10, 10))
    seq.eval()
    np.testing.assert_array_equal(seq(x).numpy(), 1)
    seq.train()
    assert (seq(x).numpy() == 0).any()


def test_dropout_is_reproducible():
    tinygen.manual_seed(3)
    a = nn.Dropout(0.5)(tinygen.ones((4, 4))).numpy()
    tinygen.manual_seed(3)
    b = nn.Dropout(0.5)(tinygen.ones((4, 4))).numpy()
    np.testing.assert_array_equal(a, b)


# --- activations and shapes ---------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(x=arrays((3, 4), dtype=np.float32))
def test_activation_modules_match_numpy(x):
    t = tinygen.tensor(x)
    cases = [
        (nn.ReLU(), np.maximum(x, 0)),
        (nn.LeakyReLU(), np.where(x > 0, x, 0.2 * x)),
        (nn.LeakyReLU(0.1), np.where(x > 0, x, 0.1 * x)),
        (nn.ELU(), np.where(x > 0, x, np.expm1(x))),
        (nn.Sigmoid(), 1 / (1 + np.exp(-x))),
        (nn.Tanh(), np.tanh(x)),
        (nn.Softplus(), np.log1p(np.exp(x))),
        (nn.Identity(), x),
    ]
    for module, expected in cases:
        np.testing.assert_allclose(module(t).numpy(), expected, rtol=1e-5, atol=1e-6,
                                   err_msg=repr(module))


def test_activation_modules_have_no_parameters():
    for m in (nn.ReLU(), nn.LeakyReLU(), nn.ELU(), nn.Sigmoid(), nn.Tanh(), nn.Softplus()):
        assert list(m.parameters()) == []
    assert repr(nn.LeakyReLU()) == "LeakyReLU(negative_slope=0.2)"


def test_flatten_unflatten_reshape():
    x = tinygen.randn(2, 3, 4, 5)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(2)(x).shape == (2, 3, 20)
    assert nn.Unflatten(1, (3, 20))(nn.Flatten()(x)).shape == (2, 3, 20)
    assert nn.Reshape(6, 10)(x).shape == (2, 6, 10)
    assert nn.Reshape((4, -1))(x).shape == (2, 4, 15)
    np.testing.assert_array_equal(nn.Unflatten(1, (3, 4, 5))(nn.Flatten()(x)).numpy(), x.numpy())
    with pytest.raises(ValueError, match="axis 1 of input \\(2, 60\\) has size 60, which is not 7 x 9"):
        nn.Unflatten(1, (7, 9))(nn.Flatten()(x))
