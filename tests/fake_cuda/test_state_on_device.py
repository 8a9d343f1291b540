"""Modules, optimizers and checkpoints across devices on the stand-in: ``Module.to`` moves
parameters, buffers and gradients in place; SGD, Adam, AdamW, EMA, clip_grad_norm_ and the
schedulers step on "cuda" as on "cpu"; state saved from "cuda" loads on "cpu" and back, through
``tinygen.serialization`` files; a training run (``tinygen.train.train``) on "cuda" writes a
checkpoint that a run on "cpu" resumes, and the other way round."""
import numpy as np
import pytest

import fake_cupy
import tinygen
from tinygen import backend, nn, optim, serialization
from tinygen.autograd import Tensor
from tinygen.train import train

from device_checks import assert_close, host


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        # no bias before the norm: its gradient is exactly zero, so each device would hand Adam
        # only its own rounding noise (1e-8), which Adam scales up to whole steps
        self.conv = nn.Conv2d(1, 3, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3 * 4 * 4, 2)

    def forward(self, x):
        h = tinygen.functional.relu(self.norm(self.conv(x)))
        return self.fc(tinygen.functional.reshape(h, (x.shape[0], -1)))


def _net(device):
    tinygen.manual_seed(0)
    return Net().to(device)


def _batch(device, seed=0):
    return Tensor(np.random.default_rng(seed).standard_normal((4, 1, 4, 4)).astype(np.float32), device=device)


def test_module_to_moves_parameters_buffers_and_grads_in_place():
    net = _net("cpu")
    params = list(net.parameters())
    (net(_batch("cpu")) ** 2).sum().backward()
    assert net.to("cuda") is net and list(net.parameters()) == params    # the same Parameter objects
    for name, t in list(net.named_parameters()) + list(net.named_buffers()):
        assert t.device == "cuda", name
    assert all(p.grad.device == "cuda" for p in params)
    assert isinstance(net.norm.running_mean.data, fake_cupy.ndarray)
    out = net(_batch("cuda"))
    assert out.device == "cuda"
    net.cpu()
    assert {p.device for p in net.parameters()} == {"cpu"} and all(isinstance(p.data, np.ndarray) for p in params)


def test_a_cpu_tensor_beside_a_cuda_one_is_an_error_not_a_silent_copy():
    a, b = Tensor(np.ones(3), device="cuda"), Tensor(np.ones(3))
    with pytest.raises(RuntimeError, match="different devices"):
        a + b
    moved = b.to("cuda")
    assert moved.device == "cuda" and b.device == "cpu"
    assert_close(a + moved, (a.cpu() + b), what="a + b.to('cuda')")


def test_tensor_to_is_differentiable_across_the_move():
    x = Tensor(np.arange(3.0), requires_grad=True)
    y = (x.to("cuda") * 3.0).cpu().sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0, 3.0])


OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda ps: optim.Adam(ps, lr=1e-2, weight_decay=1e-3),
    "adamw": lambda ps: optim.AdamW(ps, lr=1e-2),
}


def _train(net, opt, device, steps, sched=None, ema=None):
    for step in range(steps):
        opt.zero_grad()
        loss = (net(_batch(device, step)) ** 2).mean()
        loss.backward()
        optim.clip_grad_norm_(net.parameters(), 0.5)
        opt.step()
        if sched is not None:
            sched.step()
        if ema is not None:
            ema.update()


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizers_step_on_cuda_as_on_cpu_and_their_state_crosses_devices(name, tmp_path):
    runs = {}
    for device in ("cuda", "cpu"):
        net = _net(device)
        opt = OPTIMIZERS[name](net.parameters())
        sched, ema = optim.StepLR(opt, 2, 0.5), optim.EMA(net, 0.9)
        _train(net, opt, device, 3, sched, ema)
        runs[device] = (net, opt, sched, ema)
    (gnet, gopt, gsched, gema), (cnet, copt, csched, cema) = runs["cuda"], runs["cpu"]
    for (k, g), c in zip(gnet.state_dict().items(), cnet.state_dict().values()):
        np.testing.assert_allclose(g, c, rtol=1e-5, atol=1e-6, err_msg=k)
    for s_gpu, s_cpu in zip(gopt.state, copt.state):
        for k in s_cpu:
            if isinstance(s_cpu[k], np.ndarray):
                assert_close(s_gpu[k], s_cpu[k], rtol=1e-5, atol=1e-7, what=f"{name} state {k}")

    # cuda -> file -> cpu: the cpu copy continues exactly as the cpu run does
    path = tmp_path / "state.npz"
    serialization.save({"model": gnet.state_dict(), "opt": gopt.state_dict(), "sched": gsched.state_dict(),
                        "ema": gema.state_dict()}, path)
    saved = serialization.load(path)
    net = _net("cpu")
    opt = OPTIMIZERS[name](net.parameters())
    sched, ema = optim.StepLR(opt, 2, 0.5), optim.EMA(net, 0.9)
    net.load_state_dict(saved["model"]), opt.load_state_dict(saved["opt"])
    sched.load_state_dict(saved["sched"]), ema.load_state_dict(saved["ema"])
    assert all(isinstance(v, np.ndarray) for s in opt.state for v in s.values() if not np.isscalar(v))

    # ... and back onto cuda: the state lives on the device again
    back = _net("cuda")
    bopt = OPTIMIZERS[name](back.parameters())
    back.load_state_dict(net.state_dict()), bopt.load_state_dict(opt.state_dict())
    assert {backend.device_of(v) for s in bopt.state for v in s.values() if hasattr(v, "shape")} <= {"cuda"}
    _train(net, opt, "cpu", 2, sched, ema)
    _train(cnet, copt, "cpu", 2, csched, cema)
    _train(back, bopt, "cuda", 2)
    for (k, a), b in zip(net.state_dict().items(), cnet.state_dict().values()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"resumed on cpu: {k}")
    ema.copy_to(net), cema.copy_to(cnet)
    for (k, a), b in zip(net.state_dict().items(), cnet.state_dict().values()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"EMA resumed on cpu: {k}")


def test_serialization_saves_device_arrays_as_host_arrays(tmp_path):
    a = fake_cupy.asarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    serialization.save({"a": a, "nested": [a[0], {"b": a.sum()}]}, tmp_path / "x.npz")
    back = serialization.load(tmp_path / "x.npz")
    assert isinstance(back["a"], np.ndarray) and back["a"].dtype == np.float32
    np.testing.assert_array_equal(back["a"], host(a))
    np.testing.assert_array_equal(back["nested"][0], [0, 1, 2])
    assert float(back["nested"][1]["b"]) == 15.0


TINY_DCGAN = {"width": 4, "latent_dim": 4}


@pytest.mark.parametrize("first, then", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_run_checkpointed_on_one_device_resumes_on_the_other(first, then, tmp_path):
    out = tmp_path / "run"
    common = dict(batch_size=8, seed=0, options=TINY_DCGAN, out=out, quiet=True)
    a = train("dcgan", steps=2, device=first, **common)
    ckpt = serialization.load(out / "checkpoint.npz")
    assert ckpt["step"] == 2
    arrays = [v for v in ckpt["state"]["model"].values()] if "model" in ckpt["state"] else []
    assert all(isinstance(v, np.ndarray) for v in arrays)
    b = train("dcgan", steps=3, device=then, resume=True, **{k: v for k, v in common.items() if k != "seed"})
    assert set(a) == set(b) and all(np.isfinite(v) for v in b.values() if isinstance(v, float))
    assert serialization.load(out / "checkpoint.npz")["step"] == 3


@pytest.mark.xfail(raises=ValueError, strict=True,
                   reason="tinygen moves tensors to 'cuda:N' but never makes device N current, and CuPy "
                          "refuses arrays of another device than the current one: ops on cuda:1 fail")
def test_a_module_on_a_second_gpu_computes_there(monkeypatch):
    monkeypatch.setattr(fake_cupy, "DEVICE_COUNT", 2)
    lin = nn.Linear(3, 2).to("cuda:1")
    assert {p.device for p in lin.parameters()} == {"cuda:1"}
    y = lin(Tensor(np.ones((2, 3), np.float32), device="cuda:1"))
    assert y.device == "cuda:1"
