"""Learning-rate schedulers: the lr sequences pinned exactly, per-group base lrs, and exact resume."""
import numpy as np
import pytest

import tinygen
import tinygen.functional as F
import tinygen.nn as nn
from tinygen import optim
from tinygen.autograd import Tensor


def _opt(*lrs):
    groups = [{"params": [nn.Parameter(np.ones(2))], "lr": lr} for lr in lrs]
    return optim.SGD(groups, lr=1.0)


def _lrs(scheduler, n):
    """The lrs of every group at e = 0, 1, ..., n - 1 (one scheduler.step() between)."""
    out = [scheduler.get_last_lr()]
    for _ in range(n - 1):
        scheduler.step()
        out.append(scheduler.get_last_lr())
    return out


def test_step_lr_sequence():
    opt = _opt(0.1, 0.4)
    got = _lrs(optim.StepLR(opt, step_size=3, gamma=0.5), 8)
    # gamma^floor(e / 3): halving is exact, so these are the very floats
    assert [g[0] for g in got] == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025]
    assert [g[1] for g in got] == [0.4, 0.4, 0.4, 0.2, 0.2, 0.2, 0.1, 0.1]
    assert [g["lr"] for g in opt.param_groups] == [0.025, 0.1]


def test_linear_decay_lr_is_constant_then_a_line_to_zero():
    # T = 10, D = 6: f(e) = 1 for e <= 6, (10 - e) / 4 for 6 <= e <= 10, then 0
    got = [g[0] for g in _lrs(optim.LinearDecayLR(_opt(0.2), total_steps=10, decay_start=6), 13)]
    assert got[:7] == [0.2] * 7
    np.testing.assert_allclose(got[7:10], [0.15, 0.1, 0.05], rtol=1e-15)
    assert got[10:] == [0.0, 0.0, 0.0]
    assert got == [0.2 * min(1.0, max(0.0, (10 - e) / 4)) for e in range(13)]


def test_linear_decay_lr_with_cyclegans_numbers():
    scheduler = optim.LinearDecayLR(_opt(2e-4), total_steps=200, decay_start=100)
    got = [g[0] for g in _lrs(scheduler, 201)]
    assert got[:101] == [2e-4] * 101
    assert got[150] == pytest.approx(1e-4, rel=1e-15) and got[199] == pytest.approx(2e-6, rel=1e-12)
    assert got[200] == 0.0
    assert all(a >= b for a, b in zip(got, got[1:]))


def test_lambda_lr_one_function_or_one_per_group():
    opt = _opt(0.1, 0.2)
    got = _lrs(optim.LambdaLR(opt, lambda e: 0.9 ** e), 5)
    assert got == [[0.1 * 0.9 ** e, 0.2 * 0.9 ** e] for e in range(5)]
    opt = _opt(0.1, 0.2)
    got = _lrs(optim.LambdaLR(opt, [lambda e: 1.0 / (e + 1), lambda e: e]), 4)
    assert got == [[0.1 * (1.0 / (e + 1)), 0.2 * e] for e in range(4)]


def test_the_scheduled_lr_is_the_one_the_optimizer_steps_with():
    p = nn.Parameter(np.zeros(3))
    opt = optim.SGD([p], lr=0.8)
    scheduler = optim.StepLR(opt, step_size=1, gamma=0.25)
    expected = np.zeros(3)
    for e in range(4):
        opt.zero_grad()
        (p * Tensor(np.array([1.0, 2.0, -1.0]))).sum().backward()
        opt.step()
        expected -= 0.8 * 0.25 ** e * np.array([1.0, 2.0, -1.0])
        scheduler.step()
    np.testing.assert_array_equal(p.numpy(), expected)


def _mlp():
    return nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 1))


def _batches(n):
    rng = np.random.default_rng(3)
    return [(rng.standard_normal((8, 3)).astype(np.float32),
             rng.standard_normal((8, 1)).astype(np.float32)) for _ in range(n)]


def _make(kind, model):
    opt = optim.Adam([{"params": model[0].parameters()},
                      {"params": model[2].parameters(), "lr": 0.003}], lr=0.01)
    if kind == "step":
        return opt, optim.StepLR(opt, step_size=2, gamma=0.7)
    if kind == "linear":
        return opt, optim.LinearDecayLR(opt, total_steps=8, decay_start=3)
    return opt, optim.LambdaLR(opt, lambda e: 1.0 / (1.0 + 0.3 * e))


def _train(model, opt, scheduler, batches):
    lrs = []
    for x, y in batches:
        opt.zero_grad()
        F.mse_loss(model(tinygen.tensor(x)), tinygen.tensor(y)).backward()
        opt.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr())
    return lrs


@pytest.mark.parametrize("kind", ["step", "linear", "lambda"])
@pytest.mark.parametrize("load_scheduler_first", [False, True])
def test_resume_gives_bit_identical_lrs_and_parameters(kind, load_scheduler_first, tmp_path):
    batches = _batches(8)
    tinygen.manual_seed(1)
    model = _mlp()
    opt, scheduler = _make(kind, model)
    lrs = _train(model, opt, scheduler, batches)
    uninterrupted = model.state_dict()

    tinygen.manual_seed(1)
    model = _mlp()
    opt, scheduler = _make(kind, model)
    first = _train(model, opt, scheduler, batches[:5])
    path = tmp_path / "ckpt.npz"
    tinygen.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                  "scheduler": scheduler.state_dict()}, path)

    tinygen.manual_seed(2)
    model = _mlp()
    opt, scheduler = _make(kind, model)
    ckpt = tinygen.load(path)
    model.load_state_dict(ckpt["model"])
    loads = [lambda: opt.load_state_dict(ckpt["optimizer"]),
             lambda: scheduler.load_state_dict(ckpt["scheduler"])]
    for load in (loads[::-1] if load_scheduler_first else loads):
        load()
    assert scheduler.last_epoch == 5
    second = _train(model, opt, scheduler, batches[5:])
    assert first + second == lrs
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, uninterrupted[k], err_msg=k)


def test_state_dict_holds_the_settings():
    scheduler = optim.StepLR(_opt(0.1), step_size=4, gamma=0.5)
    scheduler.step()
    assert scheduler.state_dict() == {"type": "StepLR", "last_epoch": 1, "base_lrs": [0.1],
                                      "step_size": 4, "gamma": 0.5}
    other = optim.StepLR(_opt(0.3), step_size=1)
    other.load_state_dict(scheduler.state_dict())
    assert (other.step_size, other.gamma, other.base_lrs) == (4, 0.5, [0.1])
    assert other.optimizer.param_groups[0]["lr"] == 0.1
    assert optim.LambdaLR(_opt(0.1), lambda e: 1.0).state_dict() == {
        "type": "LambdaLR", "last_epoch": 0, "base_lrs": [0.1]}


def test_scheduler_errors():
    p = nn.Parameter(np.ones(2))
    with pytest.raises(TypeError, match="StepLR: expected an Optimizer .* got list"):
        optim.StepLR([p], step_size=2)
    with pytest.raises(TypeError, match="LambdaLR: expected an Optimizer .* got Sequential"):
        optim.LambdaLR(_mlp(), lambda e: 1.0)
    with pytest.raises(ValueError, match="step_size must be a positive integer, got 0"):
        optim.StepLR(_opt(0.1), step_size=0)
    with pytest.raises(ValueError, match="gamma must be a finite positive number, got -0.5"):
        optim.StepLR(_opt(0.1), step_size=1, gamma=-0.5)
    with pytest.raises(ValueError, match=r"decay_start must be an integer in \[0, total_steps\), "
                                         r"got decay_start=10 with total_steps=10"):
        optim.LinearDecayLR(_opt(0.1), total_steps=10, decay_start=10)
    with pytest.raises(ValueError, match="got 1 lr_lambdas for an optimizer with 2 param groups"):
        optim.LambdaLR(_opt(0.1, 0.2), [lambda e: 1.0])
    with pytest.raises(TypeError, match="lr_lambda must be a function of the epoch, got float"):
        optim.LambdaLR(_opt(0.1), 0.5)
    with pytest.raises(ValueError, match=r"the lr factor at epoch 0 \(param group 0\) is -1.0"):
        optim.LambdaLR(_opt(0.1), lambda e: -1.0)
    with pytest.raises(TypeError, match=r"lr_lambda\(0\) returned None, not a number"):
        optim.LambdaLR(_opt(0.1), lambda e: None)


def test_loading_another_kind_or_group_count_is_an_error():
    step = optim.StepLR(_opt(0.1), step_size=2)
    linear = optim.LinearDecayLR(_opt(0.1), total_steps=5, decay_start=2)
    with pytest.raises(ValueError, match="the state was saved by StepLR, not LinearDecayLR"):
        linear.load_state_dict({**step.state_dict(), "total_steps": 5, "decay_start": 2})
    with pytest.raises(ValueError, match="expected a dict with type, last_epoch, base_lrs, total_steps, "
                                         "decay_start"):
        linear.load_state_dict(step.state_dict())
    two = optim.StepLR(_opt(0.1, 0.2), step_size=2)
    with pytest.raises(ValueError, match="the state is for 1 param groups, the optimizer has 2"):
        two.load_state_dict(step.state_dict())
    with pytest.raises(ValueError, match="last_epoch must be a non-negative integer, got -3"):
        step.load_state_dict({**step.state_dict(), "last_epoch": -3})
    assert step.last_epoch == 0


def test_a_group_added_after_the_scheduler_is_a_clear_error():
    opt = _opt(0.1)
    scheduler = optim.StepLR(opt, step_size=2)
    opt.add_param_group({"params": [nn.Parameter(np.ones(2))]})
    with pytest.raises(RuntimeError, match="the optimizer has 2 param groups, this scheduler was built for 1"):
        scheduler.step()
    assert scheduler.last_epoch == 0
