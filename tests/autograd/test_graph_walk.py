"""The graph walk: accumulation, retain_graph, long chains, grad(), no_grad, retain_grad."""
import sys

import numpy as np
import pytest

import tinygen
import tinygen.functional as F
from tinygen.autograd import Tensor, enable_grad, grad, no_grad, set_grad_enabled, is_grad_enabled


def t64(values, requires_grad=True):
    return Tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


# --- accumulation ----------------------------------------------------------

def test_tensor_used_twice_accumulates():
    x = t64([1.0, -2.0, 3.0])
    y = (x * x + x).sum()                   # dy/dx = 2x + 1
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 1)


def test_same_tensor_as_both_operands():
    x = t64([1.5, -0.5])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy())
    x.grad = None
    (x / x).sum().backward()                # constant 1: gradient 0
    np.testing.assert_allclose(x.grad.numpy(), 0.0, atol=1e-12)


def test_diamond_graph():
    # x -> a = 2x, b = x^2 -> c = a * b = 2 x^3 -> dc/dx = 6 x^2; the node x is reached twice
    x = t64([0.5, -1.0, 2.0])
    a = x * 2.0
    b = x ** 2
    c = (a * b).sum()
    c.backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.numpy() ** 2)


def test_diamond_with_shared_intermediate():
    # h = exp(x) feeds two branches that meet again: y = h*h + h/2 -> dy/dx = 2 e^(2x) + e^x / 2
    x = t64([0.1, -0.3])
    h = F.exp(x)
    y = (h * h + h / 2.0).sum()
    y.backward()
    e = np.exp(x.numpy())
    np.testing.assert_allclose(x.grad.numpy(), 2 * e * e + e / 2)


OUTPUT_READERS = {   # ops whose backward reads their own output (a weak reference on the op)
    "exp": F.exp, "sqrt": F.sqrt, "tanh": F.tanh, "sigmoid": F.sigmoid, "elu": F.elu,
    "softmax": F.softmax, "log_softmax": F.log_softmax, "logsumexp": lambda t: F.logsumexp(t, 0, True),
    "div": lambda t: 1.0 / t, "pow": lambda t: t ** t,
}


@pytest.mark.parametrize("name", list(OUTPUT_READERS))
def test_unnamed_intermediate_outputs_survive_a_plain_backward(name):
    # op(x) is held only by the Mul that consumes it; the walk releases that Mul before it
    # reaches op, and op's backward must still find its output.
    op = OUTPUT_READERS[name]
    x = t64([0.5, 1.5])
    (op(x) * x).sum().backward()
    ref = t64([0.5, 1.5])
    y = op(ref)
    (y * ref).sum().backward(retain_graph=True)   # the same graph, kept alive by a name
    np.testing.assert_allclose(x.grad.numpy(), ref.grad.numpy())


def test_grad_accumulates_across_backward_calls():
    x = t64([1.0, 2.0])
    (x * 3.0).sum().backward()
    (x * 4.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [7.0, 7.0])


def test_backward_twice_with_retain_graph_accumulates_exactly_twice():
    x = t64([0.5, 1.5, -2.0])
    y = (F.tanh(x) * x).sum()
    y.backward(retain_graph=True)
    once = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * once, rtol=0, atol=1e-15)
    t = np.tanh(x.numpy())
    np.testing.assert_allclose(once, (1 - t * t) * x.numpy() + t)


def test_second_backward_without_retain_graph_raises():
    x = t64([1.0, 2.0])
    y = (F.exp(x) * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_later_graph_through_a_freed_part_raises():
    x = t64([1.0, 2.0])
    z = x * x
    z.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (z * 2.0).sum().backward()


def test_backward_on_leaf():
    x = t64(3.0)
    x.backward()
    assert x.grad is not None and x.grad.item() == 1.0
    y = t64([1.0, 2.0])
    y.backward(np.array([3.0, 4.0]))
    np.testing.assert_allclose(y.grad.numpy(), [3.0, 4.0])


def test_identity_ops_that_return_their_input_still_backprop():
    # pow(x, 1), reshape to the same shape, ... return x itself: backward must still reach x.
    x = t64(2.0)
    y = x ** 1
    y.backward()
    assert x.grad.item() == 1.0


def test_leaf_gradients_are_independent_writable_arrays():
    # An optimizer may scale or clip p.grad.data in place: that must not touch another leaf's
    # gradient (add sends the same gradient to both inputs) nor fail on a read-only broadcast view.
    a, b = t64([1.0, 2.0]), t64([3.0, 4.0])
    (a + b).sum().backward()
    assert a.grad.data is not b.grad.data
    a.grad.data *= 10.0
    np.testing.assert_allclose(b.grad.numpy(), [1.0, 1.0])
    c = t64([[1.0, 2.0], [3.0, 4.0]])
    c.sum().backward()
    c.grad.data[0, 0] = 5.0                 # writable, and only that element changes
    np.testing.assert_allclose(c.grad.numpy(), [[5.0, 1.0], [1.0, 1.0]])
    s = t64(2.0)                            # a 0-d parameter gets a 0-d array, not a NumPy scalar
    (s * s).backward()
    assert isinstance(s.grad.data, np.ndarray)
    s.grad.data[...] = 0.0


# --- long chains: the walk is iterative ------------------------------------

def test_ten_thousand_step_chain():
    assert sys.getrecursionlimit() < 10_000  # a recursive walk would fail here
    x0 = t64(1.0)
    x = x0
    for _ in range(10_000):
        x = x * 1.0001 + 0.0
    np.testing.assert_allclose(x.item(), 1.0001 ** 10_000, rtol=1e-9)
    x.backward()
    np.testing.assert_allclose(x0.grad.item(), 1.0001 ** 10_000, rtol=1e-9)


def test_long_chain_with_retained_graph_can_be_dropped():
    # Dropping a retained 10,000-step graph must not overflow the C stack either.
    x0 = t64([1.0, 2.0])
    x = x0
    for _ in range(10_000):
        x = F.tanh(x) + x0
    x.sum().backward(retain_graph=True)
    assert np.isfinite(x0.grad.numpy()).all()
    del x


# --- grad() ------------------------------------------------------------------

def test_grad_leaves_dot_grad_untouched():
    x = t64([1.0, 2.0])
    y = (x ** 3).sum()
    (g,) = grad(y, x)
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2)
    assert x.grad is None
    x.grad = t64([7.0, 7.0], requires_grad=False)
    grad((x ** 2).sum(), [x])
    np.testing.assert_allclose(x.grad.numpy(), [7.0, 7.0])


def test_grad_with_respect_to_non_leaf():
    x = t64([1.0, -2.0])
    h = x * 3.0
    z = (h * h).sum()
    gh, gx = grad(z, [h, x])
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())
    np.testing.assert_allclose(gx.numpy(), 18 * x.numpy())
    assert h.grad is None and x.grad is None


def test_grad_with_respect_to_an_output_itself():
    x = t64([1.0, 2.0])
    y = x * 2.0
    (g,) = grad(y, y, grad_outputs=np.array([3.0, 4.0]))
    np.testing.assert_allclose(g.numpy(), [3.0, 4.0])


def test_grad_create_graph_gives_second_derivative():
    x = t64([0.5, -1.0, 2.0])
    (g,) = grad((x ** 3).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2)
    assert g.requires_grad
    (gg,) = grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), 6 * x.numpy())
    # and through backward into .grad as well
    g2 = grad((x * x * x).sum(), x, create_graph=True)[0]
    g2.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.numpy())


def test_grad_without_create_graph_is_detached():
    x = t64([1.0, 2.0])
    (g,) = grad((x ** 2).sum(), x)
    assert not g.requires_grad and g.creator is None


def test_grad_allow_unused():
    x, u = t64([1.0]), t64([2.0])
    y = (x * 2.0).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        grad(y, [x, u], retain_graph=True)
    gx, gu = grad(y, [x, u], allow_unused=True)
    assert gu is None
    np.testing.assert_allclose(gx.numpy(), [2.0])


def test_grad_of_several_outputs_sums():
    x = t64([1.0, 2.0])
    y1, y2 = (x * x).sum(), (x * 3.0).sum()
    (g,) = grad([y1, y2], x)
    np.testing.assert_allclose(g.numpy(), 2 * x.numpy() + 3)


def test_grad_rejects_non_scalar_without_grad_outputs():
    x = t64([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"\(2,\)"):
        grad(x * 2.0, x)


def test_grad_argument_errors():
    x = t64([1.0, 2.0])
    with pytest.raises(ValueError, match="requires_grad"):
        grad((x * 2.0).sum(), t64([1.0], requires_grad=False))
    with pytest.raises(ValueError, match="does not require a gradient"):
        grad(t64(1.0, requires_grad=False) * 2.0, x)
    with pytest.raises(ValueError, match="2 outputs but 1 grad_outputs"):
        grad([x.sum(), x.sum()], x, grad_outputs=[None])


def test_gradient_penalty_pattern():
    # WGAN-GP: d/dw of (||d(w.x)/dx||^2) = d/dw ||w||^2 = 2w
    w = t64([0.3, -0.4, 1.2])
    x = t64([1.0, 2.0, 3.0])
    d = (w * F.tanh(x)).sum()
    (gx,) = grad(d, x, create_graph=True)
    penalty = (gx * gx).sum()
    penalty.backward()
    s = 1 - np.tanh(x.numpy()) ** 2
    np.testing.assert_allclose(w.grad.numpy(), 2 * w.numpy() * s * s)


# --- retain_grad and non-scalar backward ------------------------------------

def test_retain_grad_on_non_leaf():
    x = t64([1.0, 2.0])
    h = x * 2.0
    h.retain_grad()
    y = (h * h + h).sum()                   # h used twice
    y.backward()
    np.testing.assert_allclose(h.grad.numpy(), 2 * h.numpy() + 1)
    np.testing.assert_allclose(x.grad.numpy(), 2 * (2 * h.numpy() + 1))
    g = x * 5.0                             # without retain_grad a non-leaf keeps no .grad
    g.sum().backward()
    assert g.grad is None


def test_retain_grad_accumulates_across_backward_calls():
    x = t64([1.0, 2.0])
    h = x * 3.0
    h.retain_grad()
    y = (h * h).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(h.grad.numpy(), 2 * (2 * h.numpy()))


def test_retain_grad_on_root():
    x = t64([1.0, 2.0])
    y = (x * x).sum()
    y.retain_grad()
    y.backward()
    assert y.grad.item() == 1.0


def test_backward_on_non_scalar_needs_grad():
    x = t64([[1.0, 2.0], [3.0, 4.0]])
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"\(2, 2\).*not a scalar"):
        y.backward()
    y.backward(np.array([[1.0, 0.0], [0.0, 2.0]]))
    np.testing.assert_allclose(x.grad.numpy(), [[2.0, 0.0], [0.0, 4.0]])
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 2\)"):
        (x * 2.0).backward(np.ones(3))


def test_backward_without_graph_raises():
    x = Tensor(np.ones(3))
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        (x * 2.0).sum().backward()


# --- grad modes --------------------------------------------------------------

def test_no_grad_builds_no_graph():
    x = t64([1.0, 2.0])
    with no_grad():
        y = F.exp(x * 2.0).sum()
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert y.creator is None and not y.requires_grad
    np.testing.assert_allclose(y.item(), np.exp(2 * x.numpy()).sum())
    with pytest.raises(RuntimeError):
        y.backward()


def test_no_grad_decorator_and_nesting():
    x = t64([1.0])

    @no_grad()
    def f(t):
        return t * 2.0
    assert f(x).creator is None
    with no_grad():
        with enable_grad():
            assert (x * 2.0).requires_grad
        assert not (x * 2.0).requires_grad
    with set_grad_enabled(False):
        assert not (x * 2.0).requires_grad
    assert (x * 2.0).requires_grad


def test_no_grad_restored_after_exception():
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert is_grad_enabled()


def test_ordinary_backward_builds_no_second_graph():
    x = t64([1.0, 2.0])
    (x ** 3).sum().backward()
    assert x.grad.creator is None and not x.grad.requires_grad


def test_detach_cuts_the_graph():
    x = t64([1.0, 2.0])
    y = (x.detach() * x).sum()              # only the second factor is differentiated
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), x.numpy())


def test_partial_requires_grad():
    x, c = t64([1.0, 2.0]), t64([3.0, 4.0], requires_grad=False)
    (x * c).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), c.numpy())
    assert c.grad is None


def test_multi_output_op_with_unused_outputs():
    x = t64(np.arange(6.0))
    a, b, c = F.split(x, 3)
    (b * 2.0).sum().backward()              # a and c unused: their gradients are zeros
    np.testing.assert_allclose(x.grad.numpy(), [0, 0, 2, 2, 0, 0])


def test_manual_seed_reproducible():
    tinygen.manual_seed(3)
    a = tinygen.randn(4).numpy()
    tinygen.manual_seed(3)
    np.testing.assert_array_equal(a, tinygen.randn(4).numpy())
