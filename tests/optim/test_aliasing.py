"""Nothing an optimizer or a module holds aliases an array the user handed in or can see.

After any optimizer step, every array the user gave or can read is unchanged: ``p.grad``,
the dict given to ``load_state_dict``, a ``state_dict()`` taken earlier (for optimizers and
for modules). A buffer that aliased ``p.grad`` (SGD's momentum made from the gradient
without a copy) or a load that kept references to the loaded arrays would change them."""
import copy

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinygen import nn
from tinygen.autograd.tensor import Tensor
from tinygen.optim import SGD, Adam, AdamW

OPTIMIZERS = {
    "sgd": lambda ps: SGD(ps, lr=0.1),
    "sgd_momentum": lambda ps: SGD(ps, lr=0.1, momentum=0.9),
    "sgd_nesterov_decay": lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda ps: Adam(ps, lr=0.01),
    "adam_decay": lambda ps: Adam(ps, lr=0.01, weight_decay=0.1),
    "adamw": lambda ps: AdamW(ps, lr=0.01),
}


def _params(rng, shapes):
    return [nn.Parameter(rng.standard_normal(s).astype(np.float32)) for s in shapes]


def _give_grads(params, rng):
    """Fresh gradients: [(the gradient Tensor, a copy of its values as the user saw them)]."""
    given = []
    for p in params:
        p.grad = Tensor(rng.standard_normal(p.shape).astype(np.float32))
        given.append((p.grad, p.grad.numpy().copy()))
    return given


def _arrays(tree):
    """Every array in a nested dict/list, in order."""
    if isinstance(tree, dict):
        return [a for k in sorted(tree, key=str) for a in _arrays(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [a for v in tree for a in _arrays(v)]
    return [tree] if isinstance(tree, np.ndarray) else []


shapes = st.lists(st.tuples(st.integers(1, 4), st.integers(1, 3)), min_size=1, max_size=3)


@settings(max_examples=10, deadline=None)
@given(st.sampled_from(sorted(OPTIMIZERS)), shapes, st.integers(0, 2 ** 16))
def test_a_step_leaves_every_gradient_the_user_sees_unchanged(name, sizes, seed):
    rng = np.random.default_rng(seed)
    params = _params(rng, sizes)
    opt = OPTIMIZERS[name](params)
    given = []
    for _ in range(3):   # the first step makes the state (momentum from g), later ones update it
        given += _give_grads(params, rng)
        opt.step()
        for grad, seen in given:   # this step's gradients, and the earlier ones the user may hold
            np.testing.assert_array_equal(grad.numpy(), seen)


@settings(max_examples=10, deadline=None)
@given(st.sampled_from(sorted(OPTIMIZERS)), shapes, st.integers(0, 2 ** 16))
def test_a_state_dict_taken_earlier_and_a_loaded_one_never_change(name, sizes, seed):
    rng = np.random.default_rng(seed)
    params = _params(rng, sizes)
    opt = OPTIMIZERS[name](params)
    _give_grads(params, rng)
    opt.step()
    taken = opt.state_dict()
    taken_then = copy.deepcopy(taken)
    given_dict = copy.deepcopy(taken)
    other = OPTIMIZERS[name](params)
    other.load_state_dict(given_dict)
    for _ in range(2):
        _give_grads(params, rng)
        opt.step()
        other.step()
    for a, b in zip(_arrays(taken), _arrays(taken_then)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(_arrays(given_dict), _arrays(taken_then)):
        np.testing.assert_array_equal(a, b)
    assert len(_arrays(taken)) == len(_arrays(taken_then))


def test_a_module_state_dict_taken_or_loaded_never_follows_training():
    rng = np.random.default_rng(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    taken = net.state_dict()
    taken_then = {k: np.array(v, copy=True) for k, v in taken.items()}
    fresh = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    given_dict = {k: np.array(v, copy=True) for k, v in taken.items()}
    fresh.load_state_dict(given_dict)
    for model in (net, fresh):
        opt = Adam(model.parameters(), lr=0.1)
        for _ in range(3):   # parameters move and batch norm's running statistics too
            opt.zero_grad()
            (model(Tensor(rng.standard_normal((8, 3)).astype(np.float32))) ** 2).sum().backward()
            opt.step()
    for k in taken_then:
        np.testing.assert_array_equal(taken[k], taken_then[k], err_msg=k)
        np.testing.assert_array_equal(given_dict[k], taken_then[k], err_msg=k)
    assert not np.array_equal(net.state_dict()["0.weight"], taken_then["0.weight"])   # it did train


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_the_arrays_the_user_built_parameters_from_are_never_written(name):
    rng = np.random.default_rng(1)
    start = rng.standard_normal((3, 2)).astype(np.float32)
    kept = start.copy()
    p = nn.Parameter(start)
    opt = OPTIMIZERS[name]([p])
    _give_grads([p], rng)
    opt.step()
    np.testing.assert_array_equal(start, kept)
    assert not np.array_equal(p.numpy(), kept)
