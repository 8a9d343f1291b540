"""Optimizers against hand-written NumPy references, checkpoints, and a training run."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygen
import tinygen.functional as F
import tinygen.nn as nn
from tinygen import optim
from tinygen.autograd import Tensor

SHAPES = [(3, 2), (4,)]


@pytest.fixture(autouse=True)
def _seed():
    tinygen.manual_seed(0)


def _problem(seed=0):
    """Parameters and the quadratic L = sum_k 0.5 sum(a_k (p_k - c_k)^2), whose gradient is a_k (p_k - c_k)."""
    rng = np.random.default_rng(seed)
    start = [rng.standard_normal(s) for s in SHAPES]
    a = [rng.uniform(0.5, 2.0, s) for s in SHAPES]
    c = [rng.standard_normal(s) for s in SHAPES]
    return start, a, c


def _run(opt_factory, n_steps, seed=0, lr_schedule=None):
    """Optimise the quadratic with tinygen; returns the float64 parameter values after each step."""
    start, a, c = _problem(seed)
    params = [nn.Parameter(s) for s in start]
    opt = opt_factory(params)
    history = []
    for step in range(n_steps):
        if lr_schedule:
            opt.lr = lr_schedule(step)
        opt.zero_grad()
        loss = sum((0.5 * Tensor(ak) * (p - Tensor(ck)) ** 2).sum() for p, ak, ck in zip(params, a, c))
        loss.backward()
        opt.step()
        history.append([p.numpy().copy() for p in params])
    return history


def _sgd_reference(lr, momentum, weight_decay, nesterov, n_steps, seed=0, lr_schedule=None):
    start, a, c = _problem(seed)
    ps = [s.copy() for s in start]
    bufs = [None] * len(ps)
    history = []
    for step in range(n_steps):
        if lr_schedule:
            lr = lr_schedule(step)
        for k in range(len(ps)):
            g = a[k] * (ps[k] - c[k]) + weight_decay * ps[k]
            if momentum:
                bufs[k] = g.copy() if bufs[k] is None else momentum * bufs[k] + g
                d = g + momentum * bufs[k] if nesterov else bufs[k]
            else:
                d = g
            ps[k] = ps[k] - lr * d
        history.append([p.copy() for p in ps])
    return history


def _adam_reference(lr, betas, eps, weight_decay, n_steps, decoupled=False, seed=0):
    """The Adam update as written in the paper (plus L2 or decoupled decay)."""
    start, a, c = _problem(seed)
    ps = [s.copy() for s in start]
    ms = [np.zeros_like(p) for p in ps]
    vs = [np.zeros_like(p) for p in ps]
    b1, b2 = betas
    history = []
    for t in range(1, n_steps + 1):
        for k in range(len(ps)):
            g = a[k] * (ps[k] - c[k])
            if decoupled:
                ps[k] = ps[k] * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * ps[k]
            ms[k] = b1 * ms[k] + (1 - b1) * g
            vs[k] = b2 * vs[k] + (1 - b2) * g * g
            m_hat = ms[k] / (1 - b1 ** t)
            v_hat = vs[k] / (1 - b2 ** t)
            ps[k] = ps[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
        history.append([p.copy() for p in ps])
    return history


def _assert_histories_close(got, want, rtol=1e-10, atol=1e-12):
    for step, (g, w) in enumerate(zip(got, want)):
        for k, (gp, wp) in enumerate(zip(g, w)):
            np.testing.assert_allclose(gp, wp, rtol=rtol, atol=atol, err_msg=f"step {step}, param {k}")


# --- SGD ----------------------------------------------------------------------------

@pytest.mark.parametrize("momentum,weight_decay,nesterov", [(0.0, 0.0, False), (0.9, 0.0, False),
                                                            (0.9, 0.01, False), (0.8, 0.1, True)])
def test_sgd_matches_numpy_reference(momentum, weight_decay, nesterov):
    got = _run(lambda ps: optim.SGD(ps, lr=0.1, momentum=momentum, weight_decay=weight_decay,
                                    nesterov=nesterov), 6)
    want = _sgd_reference(0.1, momentum, weight_decay, nesterov, 6)
    _assert_histories_close(got, want)


@settings(max_examples=15, deadline=None)
@given(lr=st.floats(1e-3, 0.5), momentum=st.floats(0.0, 0.99), weight_decay=st.floats(0.0, 0.1),
       seed=st.integers(0, 100))
def test_sgd_matches_reference_for_any_hyperparameters(lr, momentum, weight_decay, seed):
    got = _run(lambda ps: optim.SGD(ps, lr=lr, momentum=momentum, weight_decay=weight_decay), 4, seed)
    _assert_histories_close(got, _sgd_reference(lr, momentum, weight_decay, False, 4, seed))


def test_lr_is_a_settable_attribute_for_schedules():
    schedule = lambda step: 0.2 * 0.5 ** step  # noqa: E731
    got = _run(lambda ps: optim.SGD(ps, lr=1.0, momentum=0.5), 5, lr_schedule=schedule)
    want = _sgd_reference(None, 0.5, 0.0, False, 5, lr_schedule=schedule)
    _assert_histories_close(got, want)


# --- Adam ---------------------------------------------------------------------------

@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_adam_matches_numpy_reference(weight_decay):
    got = _run(lambda ps: optim.Adam(ps, lr=0.05, weight_decay=weight_decay), 8)
    _assert_histories_close(got, _adam_reference(0.05, (0.9, 0.999), 1e-8, weight_decay, 8))


@settings(max_examples=15, deadline=None)
@given(lr=st.floats(1e-4, 0.1), b1=st.floats(0.0, 0.95), b2=st.floats(0.5, 0.9999),
       eps=st.sampled_from([1e-8, 1e-3]), weight_decay=st.floats(0.0, 0.1), seed=st.integers(0, 100))
def test_adam_matches_reference_for_any_hyperparameters(lr, b1, b2, eps, weight_decay, seed):
    got = _run(lambda ps: optim.Adam(ps, lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay), 4, seed)
    _assert_histories_close(got, _adam_reference(lr, (b1, b2), eps, weight_decay, 4, seed=seed),
                            rtol=1e-9, atol=1e-12)


def test_adamw_matches_reference():
    got = _run(lambda ps: optim.AdamW(ps, lr=0.05, weight_decay=0.1), 6)
    _assert_histories_close(got, _adam_reference(0.05, (0.9, 0.999), 1e-8, 0.1, 6, decoupled=True))


def test_first_adam_step_moves_each_value_by_lr():
    # with m_hat = g and v_hat = g^2 after one step, the update is lr * sign(g) (eps aside)
    p = nn.Parameter(np.array([3.0, -2.0, 0.5]))
    opt = optim.Adam([p], lr=0.1)
    (p * Tensor(np.array([10.0, -0.01, 1.0]))).sum().backward()
    opt.step()
    np.testing.assert_allclose(p.numpy(), [2.9, -1.9, 0.4], rtol=1e-6)


# --- behaviour shared by all optimizers ----------------------------------------------

@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps, lr=0.1)])
def test_step_is_in_place_and_skips_params_without_grad(make):
    used, unused = nn.Parameter(np.ones(3)), nn.Parameter(np.ones(2))
    opt = make([used, unused])
    arrays = (used.data, unused.data)
    (used * 2.0).sum().backward()
    opt.step()
    assert used.data is arrays[0] and unused.data is arrays[1]  # same arrays, updated in place
    assert (used.numpy() < 1).all()
    np.testing.assert_array_equal(unused.numpy(), 1)
    assert opt.state[1] == {}
    opt.zero_grad()
    assert used.grad is None


def test_step_leaves_grad_untouched():
    p = nn.Parameter(np.ones(3))
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.5)
    (p * 2.0).sum().backward()
    opt.step()
    opt.step()
    np.testing.assert_array_equal(p.grad.numpy(), 2.0)


def test_float32_parameters_stay_float32():
    lin = nn.Linear(3, 2)
    opt = optim.Adam(lin.parameters(), lr=0.01)
    lin(tinygen.randn(4, 3)).sum().backward()
    opt.step()
    assert all(p.dtype == np.float32 for p in lin.parameters())
    assert all(v.dtype == np.float32 for s in opt.state for k, v in s.items() if k != "step")


def test_constructor_errors():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="parameter 1 is a ndarray, not a Tensor/Parameter"):
        optim.Adam([nn.Parameter(np.ones(2)), np.ones(2)])
    with pytest.raises(ValueError, match=r"parameter 0 \(shape \(2,\)\) is not a leaf"):
        optim.Adam([nn.Parameter(np.ones(2)) * 2.0])  # frozen tensors are allowed (tests/optim)
    with pytest.raises(ValueError, match="appears twice"):
        p = nn.Parameter(np.ones(2))
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(TypeError, match="got a single Tensor; wrap it in a list"):
        optim.SGD(nn.Parameter(np.ones(2)), lr=0.1)
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        optim.SGD([nn.Parameter(np.ones(2))], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"betas must be two numbers in \[0, 1\)"):
        optim.Adam([nn.Parameter(np.ones(2))], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="lr must be non-negative"):
        optim.Adam([nn.Parameter(np.ones(2))], lr=-1)


def test_a_leaf_tensor_with_requires_grad_is_accepted():
    z = tinygen.tensor(np.ones(2), requires_grad=True)  # e.g. optimising a latent code
    opt = optim.SGD([z], lr=0.5)
    (z * z).sum().backward()
    opt.step()
    np.testing.assert_allclose(z.numpy(), 0.0)


# --- checkpoints ----------------------------------------------------------------------

def _mlp():
    return nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))


def _batches(n):
    rng = np.random.default_rng(5)
    return [(rng.standard_normal((16, 2)).astype(np.float32),
             rng.integers(0, 2, (16, 1)).astype(np.float32)) for _ in range(n)]


def _train(model, opt, batches):
    for x, y in batches:
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(model(tinygen.tensor(x)), tinygen.tensor(y)).backward()
        opt.step()


@pytest.mark.parametrize("make", [lambda ps: optim.Adam(ps, lr=0.01, weight_decay=1e-3),
                                  lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
                                  lambda ps: optim.AdamW(ps, lr=0.01)])
def test_resuming_from_a_checkpoint_continues_bitwise_identically(make, tmp_path):
    batches = _batches(6)
    tinygen.manual_seed(1)
    model = _mlp()
    opt = make(model.parameters())
    _train(model, opt, batches)
    uninterrupted = model.state_dict()

    tinygen.manual_seed(1)
    model = _mlp()
    opt = make(model.parameters())
    _train(model, opt, batches[:3])
    path = str(tmp_path / "ckpt.npz")
    tinygen.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)
    del model, opt

    tinygen.manual_seed(99)  # a different initialisation, overwritten by the checkpoint
    model = _mlp()
    opt = make(model.parameters())
    ckpt = tinygen.load(path)
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    _train(model, opt, batches[3:])
    resumed = model.state_dict()
    for k in uninterrupted:
        np.testing.assert_array_equal(resumed[k], uninterrupted[k], err_msg=k)


def test_state_dict_restores_hyperparameters_and_copies_state():
    p = nn.Parameter(np.ones(3))
    opt = optim.Adam([p], lr=0.01, betas=(0.5, 0.6))
    (p * p).sum().backward()
    opt.step()
    sd = opt.state_dict()
    assert sd["type"] == "Adam" and sd["hyperparameters"]["betas"] == (0.5, 0.6)
    assert sd["state"][0]["step"] == 1 and sd["state"][0]["exp_avg"].shape == (3,)
    sd["state"][0]["exp_avg"][...] = 42  # a copy: the optimizer is unaffected
    assert not (opt.state[0]["exp_avg"] == 42).any()
    other = optim.Adam([nn.Parameter(np.ones(3))], lr=0.5)
    other.load_state_dict(opt.state_dict())
    assert other.lr == 0.01 and other.betas == (0.5, 0.6)
    np.testing.assert_array_equal(other.state[0]["exp_avg_sq"], opt.state[0]["exp_avg_sq"])
    assert other.state[0]["exp_avg"] is not opt.state[0]["exp_avg"]


def test_load_state_dict_errors():
    ps = [nn.Parameter(np.ones((2, 3))), nn.Parameter(np.ones(3))]
    opt = optim.Adam(ps)
    sum((p * p).sum() for p in ps).backward()
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="the state has 2 parameters, this optimizer has 1"):
        optim.Adam(ps[:1]).load_state_dict(sd)
    swapped = optim.Adam([nn.Parameter(np.ones(3)), nn.Parameter(np.ones((2, 3)))])
    with pytest.raises(ValueError) as info:
        swapped.load_state_dict(sd)
    msg = str(info.value)
    assert "parameter 0: state 'exp_avg' has shape (2, 3), the parameter has shape (3,)" in msg
    assert "parameter 1: state 'exp_avg_sq' has shape (3,), the parameter has shape (2, 3)" in msg
    with pytest.raises(ValueError, match="the state was saved by Adam, not SGD"):
        optim.SGD(ps, lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="expected a dict with 'hyperparameters' and 'state'"):
        opt.load_state_dict({"lr": 0.1})


# --- training ------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda ps: optim.Adam(ps, lr=0.02),
                                  lambda ps: optim.SGD(ps, lr=0.2, momentum=0.9)])
def test_training_an_mlp_lowers_the_loss(make):
    rng = np.random.default_rng(0)
    # two Gaussian blobs, separable by a line
    x = np.concatenate([rng.normal(-1.5, 0.7, (64, 2)), rng.normal(1.5, 0.7, (64, 2))]).astype(np.float32)
    y = np.concatenate([np.zeros((64, 1)), np.ones((64, 1))]).astype(np.float32)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = make(model.parameters())
    xt, yt = tinygen.tensor(x), tinygen.tensor(y)

    def loss_value():
        with tinygen.no_grad():
            return F.binary_cross_entropy_with_logits(model(xt), yt).item()

    before = loss_value()
    for _ in range(60):
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(model(xt), yt).backward()
        opt.step()
    after = loss_value()
    assert after < 0.25 * before, (before, after)
    with tinygen.no_grad():
        accuracy = ((model(xt).numpy() > 0) == (y > 0.5)).mean()
    assert accuracy > 0.95
