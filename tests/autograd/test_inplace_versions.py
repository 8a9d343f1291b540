"""In-place changes are detected: a backward never runs on values changed after its forward.

Every Tensor has a version counter, bumped by every in-place change of its data
(optimizer steps, copy_, load_state_dict, EMA). An op records the versions of the
inputs its backward reads; a backward that finds a newer version raises, naming
the tensor, the op and both versions. The motivating bug is the GAN one: reuse
D(G(z)) for the generator's loss after the discriminator's optimizer step.
"""
import numpy as np
import pytest

import tinygen
import tinygen.functional as F
import tinygen.nn as nn
from tinygen.autograd import Function, Tensor, no_grad
from tinygen.optim import SGD


def _gan(seed=0):
    tinygen.manual_seed(seed)
    G = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    D = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
    return G, D, SGD(G.parameters(), lr=0.1), SGD(D.parameters(), lr=0.1)


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    return (Tensor(rng.normal(size=(16, 3)).astype(np.float32)),
            Tensor(rng.normal(size=(16, 2)).astype(np.float32)))


def test_reusing_d_of_g_after_stepping_d_is_refused():
    G, D, opt_g, opt_d = _gan()
    z, real = _batch()
    fake = G(z)
    d_fake = D(fake)                                   # the bug: kept for the generator's loss
    loss_d = F.softplus(-D(real)).mean() + F.softplus(d_fake).mean()
    opt_d.zero_grad()
    loss_d.backward(retain_graph=True)
    opt_d.step()                                       # D's weights change in place
    loss_g = F.softplus(-d_fake).mean()
    with pytest.raises(RuntimeError) as info:
        loss_g.backward()
    msg = str(info.value)
    assert "weight (1, 8) saved by linear was changed in place" in msg
    assert "version 0, now 1" in msg
    assert "compute the loss again after the optimizer step" in msg


def test_the_correct_order_passes():
    G, D, opt_g, opt_d = _gan()
    z, real = _batch()
    loss_d = F.softplus(-D(real)).mean() + F.softplus(D(G(z).detach())).mean()
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    opt_d.zero_grad()
    D.requires_grad_(False)
    loss_g = F.softplus(-D(G(z))).mean()              # D(G(z)) computed again, after the step
    opt_g.zero_grad()
    loss_g.backward()
    assert all(p.grad is not None for p in G.parameters())
    assert all(p.grad is None for p in D.parameters())


def test_conv_weight_named_in_the_message():
    x = Tensor(np.ones((1, 32, 5, 4), dtype=np.float32))
    w = nn.Parameter(np.full((64, 32, 3, 3), 0.01, dtype=np.float32))
    for _ in range(3):
        w._bump_version()
    y = F.conv2d(x, w, padding=1).sum()
    w.copy_(w.data * 2)
    with pytest.raises(RuntimeError, match=r"the weight \(64, 32, 3, 3\) saved by conv2d was changed "
                                           r"in place after the forward pass \(version 3, now 4\)"):
        y.backward()


def test_ops_whose_backward_reads_no_values_allow_changes():
    # add's gradient is 1 whatever its inputs hold: changing one of them is harmless
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    y = (a + b).sum()
    a.copy_([10.0, 20.0])
    y.backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 1.0])


def test_mul_reads_its_inputs_so_a_change_is_refused():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    y = (a * b).sum()
    b.copy_([0.0, 0.0])
    with pytest.raises(RuntimeError, match=r"input 1 \(2,\) saved by mul.*version 0, now 1"):
        y.backward()


def test_a_changed_output_that_backward_reads_is_refused():
    x = Tensor(np.array([0.5, 1.0]), requires_grad=True)
    e = F.exp(x)                                       # exp's backward reads its output
    y = e.sum()                                        # sum reads no values
    e.copy_([0.0, 0.0])
    with pytest.raises(RuntimeError, match=r"the output \(2,\) of exp .* changed in place"):
        y.backward()


def test_every_in_place_change_bumps_the_version():
    lin = nn.Linear(2, 3)
    w = lin.weight
    v = w._version
    lin.load_state_dict(lin.state_dict())
    assert w._version == v + 1
    w.copy_(np.zeros((3, 2)))
    assert w._version == v + 2
    lin.double()
    assert w._version == v + 3
    w.grad = Tensor(np.ones((3, 2)))
    SGD([w], lr=0.1).step()
    assert w._version == v + 4


def test_copy_checks_the_shape():
    t = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"copy_: source has shape \(3, 2\), this tensor has shape \(2, 3\)"):
        t.copy_(np.zeros((3, 2)))
    assert t._version == 0


# --- forward knows which gradients are needed -----------------------------------

class _Spy(Function):
    seen = []

    def forward(self, a, b):
        _Spy.seen.append(self.needs_input_grad)
        return a * b

    def backward(self, g):
        a, b = self.inputs
        return g * b, g * a


def test_needs_input_grad_is_set_before_forward():
    _Spy.seen = []
    a = Tensor(np.ones(2), requires_grad=True)
    b = Tensor(np.ones(2))
    _Spy.apply(a, b)
    _Spy.apply(b, a)
    _Spy.apply(b, b)
    with no_grad():
        _Spy.apply(a, a)
    assert _Spy.seen == [(True, False), (False, True), (False, False), (False, False)]


def test_conv_with_frozen_weight_keeps_no_patches():
    x = Tensor(np.random.default_rng(0).normal(size=(2, 3, 6, 5)), requires_grad=True)
    w = nn.Parameter(np.random.default_rng(1).normal(size=(4, 3, 3, 3)))
    y = F.conv2d(x, w, padding=1)
    assert y.creator.cols is not None                 # the weight gradient will need them
    w.requires_grad_(False)
    y_frozen = F.conv2d(x, w, padding=1)
    assert y_frozen.creator.cols is None
    # and the input gradient is unchanged by the saving
    y_frozen.sum().backward()
    gx_frozen = x.grad.numpy().copy()
    x.grad = None
    w.requires_grad_(True)
    F.conv2d(x, w, padding=1).sum().backward()
    np.testing.assert_array_equal(gx_frozen, x.grad.numpy())
