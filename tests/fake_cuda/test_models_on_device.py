"""Every registered model on "cuda" (the stand-in) against the same seed on the CPU: a few
``train_step`` calls, ``sample`` and ``evaluate`` on tiny networks and 8x8 digits, built,
fed and scored exactly as the command line does it (``build_model``, ``DataLoader(device=...)``,
``tinygen.train.evaluate``).

The CUDA run gets the CPU's random stream (``share_cpu_noise``), so the two runs see the
same noise and may differ only in summation order (conv as im2col GEMMs on the GPU, other
layouts on the CPU; the emulated kernels' own sums): losses, samples and metrics agree to
about 1e-5, the trained parameters to 1e-4 (5e-5 absolute: a
parameter whose gradient is near zero moves by up to lr per Adam step, whichever its sign).
"""
import numpy as np
import pytest

import fake_cupy
import tinygen
from tinygen import models
from tinygen.data import DataLoader, head
from tinygen.run_config import build_model
from tinygen.run_data import load_data
from tinygen.train import evaluate

from device_checks import assert_close, share_cpu_noise

TINY = {
    "bernoulli": {}, "fvsbn": {}, "nade": dict(hidden_size=8),
    "pixelrnn": dict(hidden=3, layers=2, first_kernel=3, head=4),
    "pixelrnn_row": dict(variant="row_lstm", hidden=3, layers=2, first_kernel=3, head=4),
    "pixelcnn": dict(hidden=3, blocks=2, first_kernel=3, head=4),
    "vae": dict(hidden_size=16, latent_dim=4), "vae_conv": dict(arch="conv", latent_dim=4),
    "aae": dict(hidden_size=16, disc_hidden=8), "wae": dict(hidden_size=8),
    "gan": dict(hidden_size=16), "gan_toy": dict(hidden_size=16, toy="ring"), "dcgan": dict(width=8, latent_dim=8),
    "dcgan_wgan_gp": dict(width=8, latent_dim=8, loss="wgan", gp_weight=10.0),
    "infogan": dict(width=16, noise_dim=8, continuous=1, continuous_weight=1.0, shared_hidden=32),
    "text2image": dict(width=16, noise_dim=8, embed_dim=16, text_proj=16),
    "cyclegan": dict(width=4, blocks=1, d_width=4), "stargan": dict(width=4, blocks=1, d_width=4),
    "progan": dict(latent_dim=8, width=8, fade_images=16, stable_images=16),
}
DATA = {"gan_toy": "toy:ring"}   # the rest train on 8x8 digits
STEPS, BATCH, ROWS = 2, 8, 16


def _model_name(case):
    return case.split("_")[0] if case not in models.available() else case


def _samples(model, name, test, device):
    """``[sample(4)]``, or for the translation models (which draw nothing from noise) translations."""
    if name not in ("cyclegan", "stargan"):
        return [model.sample(4)]
    batch = [tinygen.tensor(a, device=device) for a in test]
    if name == "cyclegan":
        return [model.translate(batch[0], "AB"), model.translate(batch[2], "BA")]
    return [model.translate(batch[0], batch[1])]


_LOADED = {}   # case -> its Data, loaded once for both devices


def run(case, device, steps=STEPS):
    """(model, the losses of ``steps`` train_step calls, samples, test metrics) on ``device``."""
    name, options = _model_name(case), TINY[case]
    info = models.info(name)
    if case not in _LOADED:
        _LOADED[case] = load_data(DATA.get(case, "digits"), info, options)
    data = _LOADED[case]
    tinygen.manual_seed(0)
    if device == "cuda":
        share_cpu_noise()
    model = build_model(info, data.shape, options, device)
    loader = DataLoader(head(data.train, ROWS), batch_size=BATCH, shuffle=True, seed=1, device=device)
    losses = [model.train_step(batch) for batch, _ in zip(loader, range(steps))]
    samples = _samples(model, name, head(data.test, 4), device)
    metrics = evaluate(model, head(data.test, ROWS), device)
    return model, losses, samples, metrics


def test_every_model_has_a_case():
    assert set(models.available()) <= {_model_name(c) for c in TINY}


@pytest.mark.parametrize("case", list(TINY))
def test_model_trains_samples_and_evaluates_on_cuda_as_on_cpu(case):
    compare(case, STEPS)


def test_images_and_points_given_as_arrays_go_to_the_model_s_device():
    model = run("vae", "cuda", steps=0)[0]
    for images in (np.zeros((2, 1, 8, 8), np.float32), fake_cupy.zeros((2, 1, 8, 8), np.float32)):
        x = model.check_images(images, binary=True)
        assert x.device == "cuda" and x.dtype == np.float32
    toy = run("gan_toy", "cuda", steps=0)[0]
    for points in (np.zeros((3, 2)), fake_cupy.zeros((3, 2))):
        x = toy.check_data(points)
        assert x.device == "cuda" and x.dtype == np.float32


def compare(case, steps):
    """``run`` on both devices; the results agree to summation order."""
    gpu, gpu_losses, gpu_samples, gpu_metrics = run(case, "cuda", steps)
    assert {p.device for p in gpu.parameters()} == {"cuda"}
    cpu, cpu_losses, cpu_samples, cpu_metrics = run(case, "cpu", steps)
    assert len(gpu_losses) == steps and [set(d) for d in gpu_losses] == [set(d) for d in cpu_losses]
    for step, (g, c) in enumerate(zip(gpu_losses, cpu_losses)):
        for k in c:
            np.testing.assert_allclose(g[k], c[k], rtol=1e-5, atol=1e-6, err_msg=f"{case} step {step} {k}")
    assert len(gpu_samples) == len(cpu_samples)
    for g, c in zip(gpu_samples, cpu_samples):
        assert_close(g, c, rtol=1e-4, atol=1e-5, what=f"{case} sample")
    assert set(gpu_metrics) == set(cpu_metrics)
    for k in cpu_metrics:
        np.testing.assert_allclose(gpu_metrics[k], cpu_metrics[k], rtol=1e-4, atol=1e-5, err_msg=f"{case} {k}")
    gpu_state, cpu_state = gpu.state_dict(), cpu.state_dict()
    assert list(gpu_state) == list(cpu_state)
    for k in cpu_state:   # Adam's step is lr * m / sqrt(v): of a gradient near 0, summation order moves it
        np.testing.assert_allclose(np.asarray(gpu_state[k]), np.asarray(cpu_state[k]), rtol=1e-4, atol=5e-5,
                                   err_msg=f"{case} parameter {k} after {steps} steps")


def test_cyclegan_pictures_of_images_alone_on_cuda():
    """Found by the stand-in: domain B's images were made on the CPU beside a model on cuda."""
    model = models.build("cyclegan", **TINY["cyclegan"]).to("cuda")
    images = np.random.default_rng(0).random((16, 1, 8, 8)).astype(np.float32)
    assert "translations" in model.pictures(images)
