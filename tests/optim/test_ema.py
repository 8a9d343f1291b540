"""EMA: the averaging formula against a hand computation, buffers copied, copy_to, checkpoints."""
import numpy as np
import pytest

import tinygen
import tinygen.nn as nn
from tinygen import optim


def _net():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).double()


def _set(module, values):
    for p, v in zip(module.parameters(), values):
        p.copy_(v)


def _draws(module, n, seed=0):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(p.shape) for p in module.parameters()] for _ in range(n)]


def test_update_is_decay_times_shadow_plus_one_minus_decay_times_param():
    net = _net()
    start = [p.numpy().copy() for p in net.parameters()]
    ema = optim.EMA(net, decay=0.75)
    draws = _draws(net, 3)
    for values in draws:
        _set(net, values)
        ema.update()
    names = [n for n, _ in net.named_parameters()]
    for k, name in enumerate(names):
        s = start[k]
        for values in draws:  # theta_bar <- decay theta_bar + (1 - decay) theta, by hand
            s = 0.75 * s + (1 - 0.75) * values[k]
        np.testing.assert_array_equal(ema.params[name], s, err_msg=name)
        closed = 0.75 ** 3 * start[k] + 0.25 * sum(0.75 ** (3 - j) * draws[j - 1][k] for j in (1, 2, 3))
        np.testing.assert_allclose(ema.params[name], closed, rtol=1e-13, err_msg=name)
    assert ema.num_updates == 3


def test_decay_zero_copies_and_update_leaves_the_module_alone():
    net = _net()
    ema = optim.EMA(net, decay=0.0)
    _set(net, _draws(net, 1)[0])
    before = [(p.numpy().copy(), p._version) for p in net.parameters()]
    ema.update()
    for (name, p), (value, version) in zip(net.named_parameters(), before):
        np.testing.assert_array_equal(ema.params[name], p.numpy())
        np.testing.assert_array_equal(p.numpy(), value)
        assert p._version == version


def test_buffers_are_copied_not_averaged():
    net = _net()
    ema = optim.EMA(net, decay=0.9)
    net(tinygen.tensor(np.random.default_rng(1).standard_normal((16, 3)) * 3 + 1))  # moves the stats
    assert set(ema.buffers) == {"1.running_mean", "1.running_var"}
    ema.update()
    for name, b in net.named_buffers():
        np.testing.assert_array_equal(ema.buffers[name], b.numpy(), err_msg=name)


def test_copy_to_writes_the_averages_and_bumps_versions():
    net, target = _net(), _net()
    ema = optim.EMA(net, decay=0.5)
    _set(net, _draws(net, 1)[0])
    ema.update()
    versions = {n: t._version for n, t in [*target.named_parameters(), *target.named_buffers()]}
    arrays = [p.data for p in target.parameters()]
    ema.copy_to(target)
    for name, p in target.named_parameters():
        np.testing.assert_array_equal(p.numpy(), ema.params[name])
        assert p._version == versions[name] + 1
    for name, b in target.named_buffers():
        np.testing.assert_array_equal(b.numpy(), ema.buffers[name])
        assert b._version == versions[name] + 1
    assert all(p.data is a for p, a in zip(target.parameters(), arrays))  # written in place


def test_copy_to_a_module_that_does_not_fit_is_a_clear_error_and_writes_nothing():
    ema = optim.EMA(_net(), decay=0.5)
    wide = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 5)).double()
    before = [p.numpy().copy() for p in wide.parameters()]
    with pytest.raises(ValueError) as info:
        ema.copy_to(wide)
    assert "2.weight: the EMA has shape (2, 4), the module has (5, 4)" in str(info.value)
    assert "2.bias: the EMA has shape (2,), the module has (5,)" in str(info.value)
    for p, v in zip(wide.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), v)
    with pytest.raises(ValueError, match="1.running_mean: in the EMA, not in the module"):
        ema.copy_to(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 2)).double())
    with pytest.raises(TypeError, match="EMA.copy_to: expected a Module, got dict"):
        ema.copy_to({})


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5, float("nan")])
def test_decay_outside_zero_one_is_an_error_naming_it(decay):
    with pytest.raises(ValueError, match=f"decay must be in \\[0, 1\\), got {decay}"):
        optim.EMA(_net(), decay)


def test_constructor_type_errors():
    with pytest.raises(TypeError, match="decay must be a number in"):
        optim.EMA(_net(), "0.9")
    with pytest.raises(TypeError, match="EMA: expected a Module, got list"):
        optim.EMA([nn.Parameter(np.ones(2))], 0.9)


def test_a_growing_network_adds_its_new_layers_to_the_average():
    net = nn.Sequential(nn.Linear(2, 2)).double()
    ema = optim.EMA(net, decay=0.5)
    net.add_module("1", nn.Linear(2, 3).double())
    ema.update()
    np.testing.assert_array_equal(ema.params["1.weight"], net[1].weight.numpy())
    net[0].weight = nn.Parameter(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"0.weight: the EMA has shape \(2, 2\), the module has \(4, 2\)"):
        ema.update()


def test_state_dict_round_trips_through_a_file(tmp_path):
    net = _net()
    ema = optim.EMA(net, decay=0.9)
    for values in _draws(net, 2):
        _set(net, values)
        ema.update()
    tinygen.save({"ema": ema.state_dict()}, tmp_path / "ema.npz")
    other_net = _net()
    other = optim.EMA(other_net, decay=0.1)
    other.load_state_dict(tinygen.load(tmp_path / "ema.npz")["ema"])
    assert other.decay == 0.9 and other.num_updates == 2
    for name in ema.params:
        np.testing.assert_array_equal(other.params[name], ema.params[name])
    other_net.load_state_dict(net.state_dict())
    for e in (ema, other):  # and they continue alike
        e.update()
    for name in ema.params:
        np.testing.assert_array_equal(other.params[name], ema.params[name])
    small = optim.EMA(nn.Sequential(nn.Linear(3, 4)).double(), decay=0.5)
    with pytest.raises(ValueError, match="2.weight: in the state's params, not in the EMA"):
        small.load_state_dict(ema.state_dict())
    with pytest.raises(ValueError, match="decay must be in"):
        other.load_state_dict({**ema.state_dict(), "decay": 1.0})
    with pytest.raises(ValueError, match="expected a dict with type, decay"):
        other.load_state_dict({"decay": 0.5})


def test_float32_modules_keep_float32_averages():
    net = nn.Linear(3, 2)
    ema = optim.EMA(net, decay=0.99)
    ema.update()
    assert all(a.dtype == np.float32 for a in ema.params.values())
    sd = ema.state_dict()
    assert all(isinstance(a, np.ndarray) for a in sd["params"].values())
