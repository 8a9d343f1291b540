"""The fused LSTM scan F.lstm: against a per-step reference built from Tensor ops.

The reference runs the same equations with F.matmul, F.sigmoid and F.tanh, one graph
node per operation and step, so the ordinary graph walk gives reference gradients. The
fused op must match it (forward and every gradient) to 1e-10 in float64, pass central
difference checks, accept gradients of any subset of its outputs, and refuse clearly to
be differentiated twice.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen
import tinygen.functional as F
from tinygen.autograd import Tensor, grad, gradcheck, gradgradcheck

from strategies import fast

NAMES = ["x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"]


def reference_lstm(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """The LSTM step by step, from differentiable Tensor ops (gate order i, f, g, o)."""
    H = w_hh.shape[1]
    ys = []
    for t in range(x.shape[0]):
        pre = F.matmul(x[t], w_ih.T) + F.matmul(h, w_hh.T)
        if b_ih is not None:
            pre = pre + b_ih
        if b_hh is not None:
            pre = pre + b_hh
        i = F.sigmoid(pre[:, :H])
        f = F.sigmoid(pre[:, H:2 * H])
        g = F.tanh(pre[:, 2 * H:3 * H])
        o = F.sigmoid(pre[:, 3 * H:])
        c = f * c + i * g
        h = o * F.tanh(c)
        ys.append(h)
    return F.stack(ys), (h, c)


def make_inputs(T, N, I, H, seed=0, bias=(True, True), dtype=np.float64):
    """float64 leaves x, h0, c0, w_ih, w_hh, b_ih, b_hh (None for an absent bias)."""
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(H)
    shapes = [(T, N, I), (N, H), (N, H), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,)]
    scales = [1.0, 0.5, 0.5, 2 * k, 2 * k, k, k]
    out = []
    for j, (s, a) in enumerate(zip(shapes, scales)):
        if j >= 5 and not bias[j - 5]:
            out.append(None)
        else:
            out.append(Tensor((a * rng.standard_normal(s)).astype(dtype), requires_grad=True))
    return out


def flat(result):
    y, (h, c) = result
    return y, h, c


def all_grads(fn, inputs, cotangents):
    """Gradients of sum_k <v_k, output_k> with respect to every input that is present."""
    present = [t for t in inputs if t is not None]
    outs = flat(fn(*inputs))
    loss = sum((o * Tensor(v)).sum() for o, v in zip(outs, cotangents))
    gs = grad(loss, present)
    return [o.numpy() for o in outs], [g.numpy() for g in gs]


sizes = st.tuples(st.integers(1, 5), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4))
BIASES = [(True, True), (False, False), (True, False), (False, True)]


@fast(30)
@given(sizes, st.sampled_from(BIASES), st.integers(0, 2 ** 16))
def test_matches_per_step_reference(size, bias, seed):
    T, N, I, H = size
    inputs = make_inputs(T, N, I, H, seed, bias)
    rng = np.random.default_rng(seed + 1)
    vs = [rng.standard_normal(s) for s in [(T, N, H), (N, H), (N, H)]]
    outs, grads = all_grads(F.lstm, inputs, vs)
    ref_outs, ref_grads = all_grads(reference_lstm, inputs, vs)
    for a, b in zip(outs, ref_outs):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    names = [n for n, t in zip(NAMES, inputs) if t is not None]
    for name, a, b in zip(names, grads, ref_grads):
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10, err_msg=f"gradient of {name}")


def test_edge_sizes_match_reference():
    for size in [(1, 1, 1, 1), (1, 3, 2, 4), (6, 1, 3, 2), (3, 2, 5, 1)]:
        inputs = make_inputs(*size)
        rng = np.random.default_rng(1)
        T, N, I, H = size
        vs = [rng.standard_normal(s) for s in [(T, N, H), (N, H), (N, H)]]
        outs, grads = all_grads(F.lstm, inputs, vs)
        ref_outs, ref_grads = all_grads(reference_lstm, inputs, vs)
        for a, b in zip(outs + grads, ref_outs + ref_grads):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


@fast(20)
@given(sizes, st.sampled_from(BIASES), st.integers(0, 2 ** 16))
def test_gradcheck_all_inputs(size, bias, seed):
    inputs = [t for t in make_inputs(*size, seed=seed, bias=bias)]
    present = [j for j, t in enumerate(inputs) if t is not None]

    def fn(*args):
        full = list(inputs)
        for j, a in zip(present, args):
            full[j] = a
        return flat(F.lstm(*full))
    assert gradcheck(fn, [inputs[j] for j in present])


def test_output_shapes_and_last_step():
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = make_inputs(4, 3, 2, 5)
    y, (h, c) = F.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    assert y.shape == (4, 3, 5) and h.shape == (3, 5) and c.shape == (3, 5)
    np.testing.assert_array_equal(y.numpy()[-1], h.numpy())
    # h_T = o tanh(c_T) with o in (0, 1): |h| < |tanh(c)|
    assert (np.abs(h.numpy()) <= np.abs(np.tanh(c.numpy()))).all()


def test_empty_sequence_returns_the_initial_state():
    inputs = make_inputs(0, 2, 3, 4)
    y, (h, c) = F.lstm(*inputs)
    assert y.shape == (0, 2, 4)
    np.testing.assert_array_equal(h.numpy(), inputs[1].numpy())
    gs = grad((h * h).sum() + c.sum(), inputs)
    np.testing.assert_array_equal(gs[1].numpy(), 2 * inputs[1].numpy())
    np.testing.assert_array_equal(gs[2].numpy(), np.ones((2, 4)))
    assert all(not g.numpy().any() for g in gs[3:])


def test_default_state_is_zero():
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = make_inputs(3, 2, 2, 3)
    zeros = Tensor(np.zeros((2, 3)))
    a = flat(F.lstm(x, None, None, w_ih, w_hh, b_ih, b_hh))
    b = flat(F.lstm(x, zeros, zeros, w_ih, w_hh, b_ih, b_hh))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u.numpy(), v.numpy())


def test_float32_stays_float32_and_is_close():
    inputs64 = make_inputs(5, 4, 3, 6, seed=3)
    inputs32 = [Tensor(t.numpy().astype(np.float32), requires_grad=True) for t in inputs64]
    y32, (h32, c32) = F.lstm(*inputs32)
    assert y32.dtype == h32.dtype == c32.dtype == np.float32
    y64, _ = F.lstm(*inputs64)
    np.testing.assert_allclose(y32.numpy(), y64.numpy(), atol=1e-5)
    y32.sum().backward()
    for t32, t64 in zip(inputs32, inputs64):
        assert t32.grad.dtype == np.float32
    g64 = grad(y64.sum(), inputs64)
    for t32, g in zip(inputs32, g64):
        np.testing.assert_allclose(t32.grad.numpy(), g.numpy(), atol=1e-4)


def test_cell_functions_follow_the_kernel_contract():
    """_cell_forward / _cell_backward: the per-step math that tinygen.cuda's kernels share."""
    from tinygen.functional._scan_arrays import _cell_backward, _cell_forward
    rng = np.random.default_rng(4)
    N, H = 3, 5
    pre, c_prev = 2 * rng.standard_normal((N, 4 * H)), rng.standard_normal((N, H))
    dh, dc = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    h, c, gates = _cell_forward(pre.copy(), c_prev)
    sig = 1 / (1 + np.exp(-pre))
    i, f, g, o = sig[:, :H], sig[:, H:2 * H], np.tanh(pre[:, 2 * H:3 * H]), sig[:, 3 * H:]
    np.testing.assert_allclose(gates, np.concatenate([i, f, g, o], axis=1), atol=1e-14)
    np.testing.assert_allclose(c, f * c_prev + i * g, atol=1e-14)
    np.testing.assert_allclose(h, o * np.tanh(c), atol=1e-14)
    dpre, dc_prev = _cell_backward(gates, c_prev, c, dh, dc)
    dct = dc + dh * o * (1 - np.tanh(c) ** 2)
    want = np.concatenate([dct * g * i * (1 - i), dct * c_prev * f * (1 - f), dct * i * (1 - g * g),
                           dh * np.tanh(c) * o * (1 - o)], axis=1)
    np.testing.assert_allclose(dpre, want, atol=1e-14)
    np.testing.assert_allclose(dc_prev, dct * f, atol=1e-14)



@given(N=st.integers(1, 9), H=st.integers(1, 6), dtype=st.sampled_from([np.float32, np.float64]))
@fast(20)
def test_cell_in_gate_rows_is_the_transposed_cell(N, H, dtype):
    """The PixelRNN scans' layout (a ``gate_rows`` workspace: pre (4H, N), each gate H whole rows) runs
    the same arithmetic as the (N, 4H) cell on the transposed arrays: bit for bit, forward and backward."""
    from tinygen.functional._scan_arrays import _Workspace, _cell_backward, _cell_forward
    rng = np.random.default_rng(N * 7 + H)
    pre, c_prev, dh, dc = (rng.standard_normal(s).astype(dtype) for s in ((N, 4 * H), (N, H), (N, H), (N, H)))
    h, c, gates = _cell_forward(pre.copy(), c_prev)
    dpre, dc_prev = _cell_backward(gates, c_prev, c, dh, dc.copy())
    ws = _Workspace(np, N, H, dtype, gate_rows=True)
    h_r, c_r, gates_r = _cell_forward(pre.T.copy(), c_prev.T.copy(), ws=ws)
    dpre_r, dc_prev_r = _cell_backward(gates_r, c_prev.T.copy(), c_r, dh.T.copy(), dc.T.copy(), ws=ws)
    for rows, cols in ((h_r, h), (c_r, c), (gates_r, gates), (dpre_r, dpre), (dc_prev_r, dc_prev)):
        assert rows.shape == cols.shape[::-1]
        np.testing.assert_array_equal(rows, cols.T)

# --- gradients of a subset of the outputs ------------------------------------------

@pytest.mark.parametrize("which", [0, 1, 2])
def test_gradient_of_one_output_only(which):
    inputs = make_inputs(4, 2, 3, 3, seed=5)
    out = flat(F.lstm(*inputs))[which]
    ref = flat(reference_lstm(*inputs))[which]
    gs = grad(out.sum(), inputs)
    ref_gs = grad(ref.sum(), inputs)
    for name, a, b in zip(NAMES, gs, ref_gs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-10, err_msg=name)


def test_backward_from_h_only_fills_leaf_grads():
    inputs = make_inputs(3, 2, 2, 4, seed=6)
    _, (h, _) = F.lstm(*inputs)
    (h * h).sum().backward()
    for name, t in zip(NAMES, inputs):
        assert t.grad is not None and t.grad.shape == t.shape, name


def test_only_some_inputs_require_grad():
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = make_inputs(3, 2, 2, 3, seed=7)
    x_const = Tensor(x.numpy())  # no gradient wanted for the input or the state
    h_const, c_const = Tensor(h0.numpy()), Tensor(c0.numpy())
    y, _ = F.lstm(x_const, h_const, c_const, w_ih, w_hh, b_ih, b_hh)
    y.sum().backward()
    assert x_const.grad is None and h_const.grad is None
    ref_y, _ = reference_lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    ref = grad(ref_y.sum(), [w_ih, w_hh, b_ih, b_hh])
    for t, r in zip([w_ih, w_hh, b_ih, b_hh], ref):
        np.testing.assert_allclose(t.grad.numpy(), r.numpy(), rtol=0, atol=1e-10)


def test_no_graph_without_grad():
    inputs = make_inputs(2, 2, 2, 2)
    with tinygen.no_grad():
        y, (h, c) = F.lstm(*inputs)
    assert not y.requires_grad and y.creator is None


# --- buffers reused between scans never leak into live results ---------------------

def test_retain_graph_and_interleaved_scans():
    a = make_inputs(5, 3, 2, 4, seed=8)
    b = make_inputs(5, 3, 2, 4, seed=9)
    ya, _ = F.lstm(*a)
    yb, _ = F.lstm(*b)                    # same shapes: may reuse a's freed buffers later
    ya_before = ya.numpy().copy()
    ga1 = grad(ya.sum(), a, retain_graph=True)
    ga2 = grad(ya.sum(), a)              # releases a's buffers
    yc, _ = F.lstm(*a)                    # takes them again
    gb = grad(yb.sum(), b)
    ref_a = grad(reference_lstm(*a)[0].sum(), a)
    ref_b = grad(reference_lstm(*b)[0].sum(), b)
    np.testing.assert_array_equal(ya.numpy(), ya_before)
    np.testing.assert_array_equal(yc.numpy(), ya_before)
    for g1, g2, r in zip(ga1, ga2, ref_a):
        np.testing.assert_allclose(g1.numpy(), r.numpy(), rtol=0, atol=1e-10)
        np.testing.assert_array_equal(g1.numpy(), g2.numpy())
    for g, r in zip(gb, ref_b):
        np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=0, atol=1e-10)


# --- second derivatives ------------------------------------------------------------

@pytest.mark.parametrize("T, N, I, H", [(3, 2, 2, 3), (1, 1, 3, 2), (4, 3, 1, 1)])
def test_second_derivatives_through_the_scan(T, N, I, H):
    """Under create_graph the backward replays the steps in Tensor ops: gradgradcheck passes
    (float64), and its first derivatives equal the fused array backward's."""
    inputs = make_inputs(T, N, I, H)
    assert gradgradcheck(lambda *a: flat(F.lstm(*a)), inputs)
    y, (h, c) = F.lstm(*inputs)
    loss = (y * y).sum() + (h * c).sum()
    fused = grad(loss, inputs)
    y, (h, c) = F.lstm(*inputs)
    graphed = grad((y * y).sum() + (h * c).sum(), inputs, create_graph=True)
    for a, b in zip(fused, graphed):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-10, atol=1e-12)
    assert graphed[0].requires_grad   # a graph: differentiable again


# --- bad input ---------------------------------------------------------------------

def _bad(T=3, N=2, I=4, H=5, **shapes):
    base = dict(x=(T, N, I), h0=(N, H), c0=(N, H), w_ih=(4 * H, I), w_hh=(4 * H, H),
                b_ih=(4 * H,), b_hh=(4 * H,))
    base.update(shapes)
    return [Tensor(np.zeros(base[n])) for n in NAMES]


@pytest.mark.parametrize("shapes, message", [
    (dict(x=(3, 4)), r"input must be 3-D \(T, N, I\), got shape \(3, 4\)"),
    (dict(x=(3, 2, 7)), r"input has 7 features but w_ih expects 4 \(input \(3, 2, 7\), w_ih \(20, 4\)\)"),
    (dict(w_hh=(20, 4)), r"w_hh must have shape \(4H, H\), got \(20, 4\)"),
    (dict(w_hh=(20,)), r"w_hh must have shape \(4H, H\), got \(20,\)"),
    (dict(w_ih=(16, 4)), r"w_ih must have shape \(4H, I\) = \(20, I\) for hidden size H = 5 .*got \(16, 4\)"),
    (dict(h0=(2, 4)), r"h0 has shape \(2, 4\), expected \(N, H\) = \(2, 5\)"),
    (dict(c0=(3, 5)), r"c0 has shape \(3, 5\), expected \(N, H\) = \(2, 5\)"),
    (dict(b_ih=(5,)), r"b_ih has shape \(5,\), expected \(4H,\) = \(20,\)"),
    (dict(b_hh=(20, 1)), r"b_hh has shape \(20, 1\), expected \(4H,\) = \(20,\)"),
])
def test_bad_shapes_name_the_shapes(shapes, message):
    with pytest.raises(ValueError, match=message):
        F.lstm(*_bad(**shapes))


# --- against PyTorch, when it is installed -----------------------------------------

def test_matches_torch_lstm():
    torch = pytest.importorskip("torch")
    T, N, I, H = 6, 3, 4, 5
    inputs = make_inputs(T, N, I, H, seed=11)
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = inputs
    m = torch.nn.LSTM(I, H).double()
    with torch.no_grad():
        for p, t in zip([m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0], [w_ih, w_hh, b_ih, b_hh]):
            p.copy_(torch.from_numpy(t.numpy()))
    tx = torch.from_numpy(x.numpy()).requires_grad_()
    th = torch.from_numpy(h0.numpy()[None]).requires_grad_()
    tc = torch.from_numpy(c0.numpy()[None]).requires_grad_()
    rng = np.random.default_rng(12)
    vs = [rng.standard_normal(s) for s in [(T, N, H), (N, H), (N, H)]]
    ty, (thT, tcT) = m(tx, (th, tc))
    loss = sum((o * torch.from_numpy(v)).sum() for o, v in zip([ty, thT[0], tcT[0]], vs))
    loss.backward()
    outs, grads = all_grads(F.lstm, inputs, vs)
    for a, b in zip(outs, [ty, thT[0], tcT[0]]):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=0, atol=1e-12)
    torch_grads = [tx.grad, th.grad[0], tc.grad[0], m.weight_ih_l0.grad, m.weight_hh_l0.grad,
                   m.bias_ih_l0.grad, m.bias_hh_l0.grad]
    for name, a, b in zip(NAMES, grads, torch_grads):
        np.testing.assert_allclose(a, b.numpy(), rtol=0, atol=1e-12, err_msg=name)


# --- the GPU path (tinygen's CUDA cell kernels), where there is a GPU ----------------

@pytest.mark.gpu
@pytest.mark.skipif(not tinygen.cuda_available(), reason="needs CuPy and a CUDA GPU")
def test_cuda_matches_cpu():
    inputs = make_inputs(7, 5, 3, 8, seed=13, dtype=np.float32)
    gpu = [Tensor(t.numpy(), requires_grad=True, device="cuda") for t in inputs]
    rng = np.random.default_rng(14)
    vs = [rng.standard_normal(s).astype(np.float32) for s in [(7, 5, 8), (5, 8), (5, 8)]]
    outs, grads = all_grads(F.lstm, inputs, vs)
    g_outs = flat(F.lstm(*gpu))
    loss = sum((o * Tensor(v, device="cuda")).sum() for o, v in zip(g_outs, vs))
    g_grads = grad(loss, gpu)
    for a, b in zip(outs + grads, [o.numpy() for o in g_outs] + [g.numpy() for g in g_grads]):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
