"""nn.LSTM: parameters and their initialisation, layouts, carried state, gradients."""
import numpy as np
import pytest

import tinygen
import tinygen.functional as F
from tinygen.autograd import Tensor
from tinygen.nn.module import Module
from tinygen.nn.recurrent import LSTM
from tinygen.optim import Adam


def test_parameters_shapes_and_init_bounds():
    m = LSTM(3, 16)
    names = [n for n, _ in m.named_parameters()]
    assert names == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
    assert shapes == {"weight_ih": (64, 3), "weight_hh": (64, 16), "bias_ih": (64,), "bias_hh": (64,)}
    bound = 1 / np.sqrt(16)
    for n, p in m.named_parameters():
        v = p.numpy()
        assert p.dtype == np.float32 and p.requires_grad, n
        assert np.abs(v).max() <= bound and np.abs(v).max() > 0.8 * bound, n
    assert abs(float(m.weight_hh.numpy().std()) - bound / np.sqrt(3)) < 0.02   # U(-b, b): std b / sqrt(3)


def test_init_is_reproducible_with_manual_seed():
    tinygen.manual_seed(5)
    a = LSTM(2, 4).state_dict()
    tinygen.manual_seed(5)
    b = LSTM(2, 4).state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_no_bias():
    m = LSTM(2, 3, bias=False)
    assert m.bias_ih is None and m.bias_hh is None
    assert [n for n, _ in m.named_parameters()] == ["weight_ih", "weight_hh"]
    x = tinygen.randn(4, 2, 2)
    y, _ = m(x)
    ref, _ = F.lstm(x, None, None, m.weight_ih, m.weight_hh)
    np.testing.assert_array_equal(y.numpy(), ref.numpy())


def test_forward_is_the_functional_scan_with_zero_state():
    m = LSTM(3, 5)
    x = tinygen.randn(6, 2, 3)
    y, (h, c) = m(x)
    zeros = tinygen.zeros((2, 5))
    ry, (rh, rc) = F.lstm(x, zeros, zeros, m.weight_ih, m.weight_hh, m.bias_ih, m.bias_hh)
    for a, b in [(y, ry), (h, rh), (c, rc)]:
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert y.shape == (6, 2, 5) and h.shape == (2, 5) and c.shape == (2, 5)


def test_batch_first_is_the_transposed_layout():
    m = LSTM(3, 4)
    mb = LSTM(3, 4, batch_first=True)
    mb.load_state_dict(m.state_dict())
    x = tinygen.randn(5, 2, 3)                     # (T, N, I)
    y, (h, c) = m(x)
    yb, (hb, cb) = mb(Tensor(np.ascontiguousarray(x.numpy().transpose(1, 0, 2))))
    assert yb.shape == (2, 5, 4)
    np.testing.assert_allclose(yb.numpy().transpose(1, 0, 2), y.numpy(), atol=1e-6)
    np.testing.assert_allclose(hb.numpy(), h.numpy(), atol=1e-6)
    np.testing.assert_allclose(cb.numpy(), c.numpy(), atol=1e-6)


def test_carried_state_equals_one_long_run():
    m = LSTM(2, 3).double()
    x = Tensor(np.random.default_rng(0).standard_normal((8, 2, 2)))
    y, (h, c) = m(x)
    y1, state = m(x[:5])
    y2, (h2, c2) = m(x[5:], state)
    np.testing.assert_allclose(np.concatenate([y1.numpy(), y2.numpy()]), y.numpy(), atol=1e-12)
    np.testing.assert_allclose(h2.numpy(), h.numpy(), atol=1e-12)
    np.testing.assert_allclose(c2.numpy(), c.numpy(), atol=1e-12)


class _Outputs(Module):
    """y, h_T and c_T of an LSTM joined into one tensor, for the parameter check."""

    def __init__(self, lstm):
        super().__init__()
        self.lstm = lstm

    def forward(self, x):
        y, (h, c) = self.lstm(x)
        return F.concat([F.reshape(y, (-1,)), F.reshape(h, (-1,)), F.reshape(c, (-1,))])


@pytest.mark.parametrize("batch_first", [False, True])
def test_parameter_gradients_central_differences(param_check, batch_first):
    m = _Outputs(LSTM(3, 4, batch_first=batch_first)).double()
    x = Tensor(np.random.default_rng(1).standard_normal((5, 2, 3)))
    param_check(m, [x])


def test_bad_input_and_state():
    m = LSTM(3, 4)
    with pytest.raises(ValueError, match=r"LSTM\(3, 4\): input has shape \(5, 2, 2\), expected \(T, N, I\) with I = 3"):
        m(tinygen.zeros((5, 2, 2)))
    with pytest.raises(ValueError, match=r"expected \(N, T, I\)"):
        LSTM(3, 4, batch_first=True)(tinygen.zeros((5, 3)))
    with pytest.raises(TypeError, match="state must be a pair"):
        m(tinygen.zeros((5, 2, 3)), tinygen.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"h0 has shape \(3, 4\), expected \(N, H\) = \(2, 4\)"):
        m(tinygen.zeros((5, 2, 3)), (tinygen.zeros((3, 4)), tinygen.zeros((2, 4))))
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        LSTM(3, 0)


def test_learns_to_remember_the_first_input():
    """A measured improvement: predict the sign of x_1 after 6 steps of noise."""
    tinygen.manual_seed(0)
    rng = np.random.default_rng(0)
    m = LSTM(1, 8)
    w = Tensor(rng.standard_normal((8, 1)).astype(np.float32) * 0.3, requires_grad=True)
    opt = Adam(list(m.parameters()) + [w], lr=0.03)

    def batch():
        x = rng.standard_normal((6, 32, 1)).astype(np.float32) * 0.2
        x[0, :, 0] = np.sign(rng.standard_normal(32))
        return Tensor(x), (x[0, :, :] > 0).astype(np.float32)

    def loss_of(x, t):
        _, (h, _) = m(x)
        return F.binary_cross_entropy_with_logits(F.matmul(h, w), Tensor(t))

    x_test, t_test = batch()
    before = float(loss_of(x_test, t_test).item())
    for _ in range(100):
        x, t = batch()
        loss = loss_of(x, t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = float(loss_of(x_test, t_test).item())
    assert before > 0.6 and after < 0.05, (before, after)   # from chance (log 2) to near certainty
