"""Param groups: per-group options really used, add_param_group, frozen parameters, versions,
and state_dict round trips through tinygen.save."""
import numpy as np
import pytest

import tinygen
import tinygen.nn as nn
from tinygen import optim
from tinygen.autograd import Tensor


def _grad(p, g):
    """Give p the gradient g (through a backward of sum(g * p), so the engine sets it)."""
    p.grad = None
    (p * Tensor(np.asarray(g, dtype=p.dtype))).sum().backward()


def test_each_group_steps_with_its_own_lr_and_the_defaults_fill_in():
    a, b = nn.Parameter(np.array([1.0, 2.0])), nn.Parameter(np.array([[3.0], [4.0]]))
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.01}], lr=0.1, momentum=0.5)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    assert [g["momentum"] for g in opt.param_groups] == [0.5, 0.5]
    ga, gb = np.array([1.0, -2.0]), np.array([[0.5], [3.0]])
    _grad(a, ga)
    _grad(b, gb)
    opt.step()  # first step: the buffer is g, so theta <- theta - lr g
    np.testing.assert_array_equal(a.numpy(), np.array([1.0, 2.0]) - 0.1 * ga)
    np.testing.assert_array_equal(b.numpy(), np.array([[3.0], [4.0]]) - 0.01 * gb)


def test_group_options_are_read_at_step_time():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(2))
    opt = optim.SGD([{"params": [a]}, {"params": [b]}], lr=1.0)
    opt.param_groups[1]["lr"] = 0.25
    _grad(a, [1.0, 1.0])
    _grad(b, [1.0, 1.0])
    opt.step()
    np.testing.assert_array_equal(a.numpy(), [-1.0, -1.0])
    np.testing.assert_array_equal(b.numpy(), [-0.25, -0.25])


def test_adam_groups_with_different_betas_match_two_separate_optimizers():
    rng = np.random.default_rng(1)
    start = [rng.standard_normal(3), rng.standard_normal((2, 2))]
    grads = [[rng.standard_normal(s.shape) for s in start] for _ in range(4)]
    together = [nn.Parameter(s) for s in start]
    apart = [nn.Parameter(s) for s in start]
    opt = optim.Adam([{"params": [together[0]], "betas": (0.5, 0.9)},
                      {"params": [together[1]], "lr": 0.05, "weight_decay": 0.1}], lr=0.01)
    opts = [optim.Adam([apart[0]], lr=0.01, betas=(0.5, 0.9)),
            optim.Adam([apart[1]], lr=0.05, weight_decay=0.1)]
    for gs in grads:
        for p, q, g in zip(together, apart, gs):
            _grad(p, g)
            _grad(q, g)
        opt.step()
        for o in opts:
            o.step()
    for p, q in zip(together, apart):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def _quadratic_step(opt, params, targets):
    opt.zero_grad()
    sum(((p - Tensor(t)) ** 2).sum() for p, t in zip(params, targets)).backward()
    opt.step()


def test_add_param_group_keeps_the_moments_of_the_old_parameters():
    rng = np.random.default_rng(2)
    old0, new0 = rng.standard_normal((2, 3)), rng.standard_normal(4)
    t_old, t_new = rng.standard_normal((2, 3)), rng.standard_normal(4)

    alone = nn.Parameter(old0)
    opt = optim.Adam([alone], lr=0.1)
    for _ in range(6):
        _quadratic_step(opt, [alone], [t_old])

    old, new = nn.Parameter(old0), nn.Parameter(new0)
    grown = optim.Adam([old], lr=0.1)
    for _ in range(2):
        _quadratic_step(grown, [old], [t_old])
    grown.add_param_group({"params": [new], "lr": 0.05})
    for _ in range(4):
        _quadratic_step(grown, [old, new], [t_old, t_new])

    np.testing.assert_array_equal(old.numpy(), alone.numpy())
    assert grown.state[0]["step"] == 6 and grown.state[1]["step"] == 4
    assert grown.param_groups[1]["lr"] == 0.05 and grown.param_groups[1]["betas"] == (0.9, 0.999)
    # the new layer followed its own Adam from t = 1
    fresh = nn.Parameter(new0)
    fresh_opt = optim.Adam([fresh], lr=0.05)
    for _ in range(4):
        _quadratic_step(fresh_opt, [fresh], [t_new])
    np.testing.assert_array_equal(new.numpy(), fresh.numpy())


def test_add_param_group_errors_name_the_parameter():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones((3, 1)))
    opt = optim.Adam([a, b])
    with pytest.raises(ValueError, match=r"param group 1: parameter 1 \(shape \(3, 1\)\) is already in "
                                         r"param group 0 \(its parameter 1\)"):
        opt.add_param_group({"params": [nn.Parameter(np.ones(2)), b]})
    with pytest.raises(ValueError, match="unknown option 'learning_rate'; the options are lr, betas"):
        opt.add_param_group({"params": [nn.Parameter(np.ones(2))], "learning_rate": 0.1})
    with pytest.raises(TypeError, match="expected a dict with a 'params' entry"):
        opt.add_param_group([nn.Parameter(np.ones(2))])
    with pytest.raises(ValueError, match="the group has no parameters"):
        opt.add_param_group({"params": []})
    with pytest.raises(ValueError, match=r"param group 1: lr must be non-negative, got -0.5"):
        opt.add_param_group({"params": [nn.Parameter(np.ones(2))], "lr": -0.5})
    assert len(opt.param_groups) == 1 and len(opt.state) == 2  # nothing was added by the failures
    with pytest.raises(ValueError, match=r"parameter 1 \(shape \(2,\)\) is already in param group 0"):
        optim.SGD([{"params": [a]}, {"params": [b, a]}], lr=0.1)
    with pytest.raises(TypeError, match="a list mixes parameters and group dicts"):
        optim.SGD([a, {"params": [b]}], lr=0.1)
    with pytest.raises(TypeError, match="got one dict; wrap it in a list"):
        optim.SGD({"params": [a]}, lr=0.1)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
                                  lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1),
                                  lambda ps: optim.AdamW(ps, lr=0.1)])
def test_frozen_parameters_are_allowed_and_keep_values_version_and_state(make):
    live, frozen, stale = (nn.Parameter(np.ones(3)) for _ in range(3))
    _grad(stale, [1.0, 2.0, 3.0])   # a gradient from before it was frozen
    stale.requires_grad = False
    frozen.requires_grad = False
    opt = make([live, frozen, stale])
    versions = (frozen._version, stale._version)
    _grad(live, [1.0, 1.0, 1.0])
    opt.step()
    assert (live.numpy() < 1).all()
    for p in (frozen, stale):
        np.testing.assert_array_equal(p.numpy(), 1.0)
    assert (frozen._version, stale._version) == versions
    assert opt.state[1] == {} and opt.state[2] == {}
    stale.requires_grad = True  # unfrozen: it moves on the next step
    opt.step()
    assert (stale.numpy() < 1).all() and opt.state[2] != {}


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1),
                                  lambda ps: optim.Adam(ps), lambda ps: optim.AdamW(ps)])
def test_every_step_bumps_the_version_of_each_changed_parameter_once(make):
    used, unused = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = make([used, unused])
    _grad(used, [1.0, -1.0])
    for k in range(1, 4):
        opt.step()
        assert used._version == k and unused._version == 0


def test_a_loss_built_before_the_step_cannot_be_differentiated_after_it():
    p = nn.Parameter(np.array([1.0, 2.0]))
    opt = optim.SGD([p], lr=0.1)
    (p * p).sum().backward()
    stale = (p * p).sum()
    opt.step()
    with pytest.raises(RuntimeError, match="changed in place after the forward pass"):
        stale.backward()


def test_lr_attribute_reads_and_writes_every_group():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = optim.Adam([{"params": [a]}, {"params": [b]}], lr=0.1)
    assert opt.lr == 0.1 and opt.betas == (0.9, 0.999)
    opt.lr = 0.3
    assert [g["lr"] for g in opt.param_groups] == [0.3, 0.3]
    opt.param_groups[1]["lr"] = 0.01
    with pytest.raises(ValueError, match=r"Adam.lr: the param groups differ \(\[0.3, 0.01\]\)"):
        opt.lr
    with pytest.raises(ValueError, match="betas must be two numbers"):
        opt.betas = (0.9, 1.5)
    assert opt.betas == (0.9, 0.999)  # a rejected value changes no group
    with pytest.raises(AttributeError, match="no attribute 'momentum'"):
        opt.momentum


def _two_group_setup(seed):
    rng = np.random.default_rng(seed)
    params = [nn.Parameter(rng.standard_normal(s)) for s in [(2, 3), (3,), (1, 2)]]
    opt = optim.Adam([{"params": params[:2], "lr": 0.02, "betas": (0.8, 0.99)},
                      {"params": params[2:]}], lr=0.1, weight_decay=0.01)
    return params, opt


def _targets():
    rng = np.random.default_rng(7)
    return [rng.standard_normal(s) for s in [(2, 3), (3,), (1, 2)]]


def test_state_dict_round_trips_groups_through_a_file(tmp_path):
    targets = _targets()
    params, opt = _two_group_setup(0)
    for _ in range(3):
        _quadratic_step(opt, params, targets)
    opt.param_groups[1]["lr"] = 0.07  # e.g. set by a schedule
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0, 1] and sd["param_groups"][1]["params"] == [2]
    path = tmp_path / "opt.npz"
    tinygen.save({"optimizer": sd, "params": [p.numpy() for p in params]}, path)

    restored_params, restored = _two_group_setup(99)
    ckpt = tinygen.load(path)
    for p, v in zip(restored_params, ckpt["params"]):
        p.copy_(v)
    restored.load_state_dict(ckpt["optimizer"])
    assert [g["lr"] for g in restored.param_groups] == [0.02, 0.07]
    assert restored.param_groups[0]["betas"] == (0.8, 0.99)
    assert restored.defaults == opt.defaults
    for _ in range(3):
        _quadratic_step(opt, params, targets)
        _quadratic_step(restored, restored_params, targets)
    for p, q in zip(params, restored_params):
        np.testing.assert_array_equal(q.numpy(), p.numpy())


def test_load_state_dict_checks_the_groups_before_changing_anything():
    params, opt = _two_group_setup(0)
    _quadratic_step(opt, params, _targets())
    sd = opt.state_dict()
    one_group = optim.Adam([nn.Parameter(np.ones(s)) for s in [(2, 3), (3,), (1, 2)]])
    with pytest.raises(ValueError, match="the state has 2 param groups, this optimizer has 1"):
        one_group.load_state_dict(sd)
    ps = [nn.Parameter(np.ones(s)) for s in [(2, 3), (3,), (1, 2)]]
    regrouped = optim.Adam([{"params": ps[:1]}, {"params": ps[1:]}])
    with pytest.raises(ValueError, match=r"param group 0 holds parameters \[0, 1\] in the state, \[0\] here"):
        regrouped.load_state_dict(sd)
    bad = opt.state_dict()
    bad["param_groups"][1]["lr"] = -1.0
    target_params, target = _two_group_setup(5)
    with pytest.raises(ValueError, match="param group 1: lr must be non-negative, got -1.0"):
        target.load_state_dict(bad)
    assert target.state == [{}, {}, {}] and target.param_groups[1]["lr"] == 0.1
    del bad["param_groups"][0]["eps"]
    with pytest.raises(ValueError, match="param group 0: option 'eps' is missing"):
        target.load_state_dict(bad)


def test_a_state_without_param_groups_loads_as_one_group():
    p = nn.Parameter(np.ones(3))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    _grad(p, [1.0, 2.0, 3.0])
    opt.step()
    legacy = opt.state_dict()
    del legacy["param_groups"]
    legacy["hyperparameters"]["lr"] = 0.5
    other = optim.SGD([nn.Parameter(np.ones(3))], lr=0.1)
    other.load_state_dict(legacy)
    assert other.lr == 0.5 and other.momentum == 0.9
    np.testing.assert_array_equal(other.state[0]["momentum_buffer"], [1.0, 2.0, 3.0])
