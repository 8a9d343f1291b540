"""The command line's device path on the stand-in: ``tinygen train --device cuda`` for every
model (a few steps that log, evaluate, draw their sample grids and pictures, and checkpoint at
every step), then ``tinygen sample`` and ``tinygen eval --device cuda`` on the checkpoint it
wrote, in this process (``tinygen.__main__.main``) so that the stand-in is the ``cupy`` it sees.

The data are cut to 64 training and 16 test examples (``load_data`` is wrapped), sample grids
to 8 images, and the VAE scores with 8 importance samples, not 1000: the emulated kernels are
slow by design."""
import json

import pytest

import tinygen.run_data
import tinygen.run_files
import tinygen.train
from tinygen.data import head
from tinygen.__main__ import main

from test_models_on_device import DATA, TINY, _model_name

STEPS = 2
FAST = {"vae": dict(eval_samples=8), "vae_conv": dict(eval_samples=8)}


@pytest.fixture(autouse=True)
def small_data(monkeypatch):
    load = tinygen.run_data.load_data

    def small(spec, info, options=None):
        d = load(spec, info, options)
        labels = None if d.test_labels is None else d.test_labels[:16]
        return tinygen.run_data.Data(d.spec, d.kind, head(d.train, 64), head(d.test, 16), d.note, labels, d.info)
    monkeypatch.setattr(tinygen.run_data, "load_data", small)
    monkeypatch.setattr(tinygen.train, "load_data", small)
    save = tinygen.run_files.save_samples
    monkeypatch.setattr(tinygen.train, "save_samples", lambda model, path, data, n=8: save(model, path, data, n))


def _set(options):
    return [f"{k}={v}" for k, v in options.items()]


@pytest.mark.parametrize("case", list(TINY))
def test_train_sample_and_eval_on_cuda(case, tmp_path, capsys):
    name, out = _model_name(case), tmp_path / "run"
    args = ["train", name, "--device", "cuda", "--steps", STEPS, "--batch-size", 8, "--log-every", 1,
            "--out", out, "--quiet", "--data", DATA.get(case, "digits")]
    options = {**TINY[case], **FAST.get(case, {})}
    if options:
        args += ["--set", *_set(options)]
    assert main([str(a) for a in args]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.png")), "no pictures written"
    ckpt = str(out / "checkpoint.npz")
    assert main(["sample", name, "--checkpoint", ckpt, "--device", "cuda", "--n", "4",
                 "--out", str(tmp_path / "s.png")]) == 0, capsys.readouterr().err
    assert (tmp_path / "s.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["eval", name, "--checkpoint", ckpt, "--device", "cuda", "--json"]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["step"] == STEPS


def test_the_zoo_on_cuda_trains_and_writes_its_pages(tmp_path, capsys):
    """``tinygen zoo --device cuda``: two models (a density and a GAN), their pages and the gallery."""
    out = tmp_path / "zoo"
    assert main(["zoo", "--device", "cuda", "--minutes", "0.05", "--models", "bernoulli,dcgan",
                 "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    results = (out / "results.md").read_text()
    assert "| bernoulli |" in results and "| dcgan |" in results and "failed" not in results
    assert "on cuda" in results and (out / "gallery.png").stat().st_size > 0
