"""The command line, end to end: each test runs ``python -m tinygen ...`` in a subprocess.

What users rely on (issue 5): train writes every file it promises, with sensible
content; --resume continues a run to the bit; Ctrl-C leaves a loadable
checkpoint; every bad argument gives one line on stderr and exit status 2; list,
sample, eval and zoo work on a trained run. Runs are tiny (digits, tens of steps)
so the file stays well under a minute on two cores.
"""
import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinygen
from tinygen import backend, models

REPO = Path(__file__).resolve().parents[1]
TINYGEN = [sys.executable, "-m", "tinygen"]


def env(*extra_paths):
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(REPO), *map(str, extra_paths)])
    e.pop("COLUMNS", None)
    return e


def cli(args, cwd, status=0, command=TINYGEN, extra_paths=()):
    """Run the CLI; check its exit status; return the finished process (text output)."""
    p = subprocess.run(command + [str(a) for a in args], cwd=cwd, env=env(*extra_paths),
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == status, f"exit {p.returncode} (wanted {status})\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def flatten(tree, prefix=""):
    """A loaded checkpoint as {path: leaf}, for comparing two of them leaf by leaf."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    out = {}
    for k, v in items:
        path = f"{prefix}/{k}"
        if isinstance(v, (dict, list, tuple)) and not (isinstance(v, tuple) and not v):
            out.update(flatten(v, path))
        else:
            out[path] = v
    return out


def assert_same_checkpoint(a, b, ignore=("/seconds", "/spent_seconds")):
    fa, fb = flatten(tinygen.load(a)), flatten(tinygen.load(b))
    assert set(fa) == set(fb)
    for key in fa:
        if key in ignore:
            continue
        x, y = fa[key], fb[key]
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, key
            assert x.tobytes() == y.tobytes(), f"{key} differs"   # to the bit, not to a tolerance
        else:
            assert x == y, f"{key}: {x!r} != {y!r}"


def grid_size(n, nrow=8, side=8, scale=4, padding=1):
    """The PNG size save_grid gives n images of side x side pixels."""
    cols, rows = min(n, nrow), math.ceil(n / nrow)
    cell = side * scale + padding
    return cols * cell + padding, rows * cell + padding


# --- a trained run shared by several tests ----------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("trained")
    p = cli(["train", "bernoulli", "--steps", 30, "--log-every", 10, "--out", "run"], cwd)
    return cwd, cwd / "run", p


def test_train_writes_every_file_with_sensible_content(trained):
    cwd, run, p = trained
    for name in ("checkpoint.npz", "samples.png", "metrics.json", "losses.png", "log.csv"):
        assert (run / name).is_file(), name
    with Image.open(run / "samples.png") as im:
        assert im.size == grid_size(64)          # 64 samples of 8x8 digits, 8 a row, scaled x4
        px = np.asarray(im)
    assert set(np.unique(px)) - {0, 128, 255} == set()   # binary samples on a grey border
    with Image.open(run / "losses.png") as im:
        assert im.size == (640, 400)
        assert len(np.unique(np.asarray(im).reshape(-1, 3), axis=0)) > 3   # axes, line, legend: not blank
    for step in (10, 20, 30):                    # a sample grid at every log row
        assert (run / "samples" / f"step-{step:06d}.png").is_file()

    with open(run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [10, 20, 30]
    assert {"epoch", "seconds", "nll", "test_nll_nats", "test_bits_per_dim"} <= set(rows[0])
    assert float(rows[-1]["nll"]) < float(rows[0]["nll"])

    m = json.loads((run / "metrics.json").read_text())
    assert m["model"] == "bernoulli" and m["kind"] == "explicit" and m["step"] == 30
    assert m["interrupted"] is False
    # measured improvement: the untrained model (all logits 0) scores 64 ln 2 nats per image
    assert 0 < m["nll_nats"] < 64 * math.log(2) - 5
    assert m["bits_per_dim"] == pytest.approx(m["nll_nats"] / (64 * math.log(2)))

    ckpt = tinygen.load(run / "checkpoint.npz")
    assert ckpt["model"] == "bernoulli" and ckpt["step"] == 30
    assert list(ckpt["data_shape"]) == [1, 8, 8] and ckpt["config"]["seed"] == 0
    assert "training bernoulli" in p.stdout and "done: step 30" in p.stdout


def test_list_shows_each_model_with_kind_and_section(tmp_path):
    out = cli(["list"], tmp_path).stdout
    line = next(l for l in out.splitlines() if l.split()[0] == "bernoulli")
    assert "explicit" in line and models.info("bernoulli").section in line
    assert len(out.splitlines()) == len(models.available())


def test_the_readme_model_table_is_the_markdown_listing_and_says_what_the_tests_prove(tmp_path):
    listing = cli(["list", "--markdown"], tmp_path).stdout.splitlines()
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text().splitlines()
    assert [line for line in listing if line not in readme] == []   # regenerate the README's table
    assert len(listing) == 2 + len(models.available())
    assert all(models.info(n).tested for n in models.registered())


def test_sample_and_eval_a_checkpoint(trained):
    cwd, run, _ = trained
    cli(["sample", "bernoulli", "--checkpoint", run / "checkpoint.npz", "--n", 16, "--out", "s.png"], cwd)
    with Image.open(cwd / "s.png") as im:
        assert im.size == grid_size(16)
    out = cli(["eval", "bernoulli", "--checkpoint", run / "checkpoint.npz", "--json"], cwd).stdout
    got = json.loads(out)
    saved = json.loads((run / "metrics.json").read_text())
    assert got["nll_nats"] == saved["nll_nats"] and got["test_examples"] == 359
    text = cli(["eval", "bernoulli", "--checkpoint", run / "checkpoint.npz"], cwd).stdout
    assert "nll_nats" in text and "bits_per_dim" in text


# --- exact resume -----------------------------------------------------------------

# A test model whose training step, evaluation and sampler all draw random numbers,
# so the checkpoint's generator state and the monitoring-aside rule are exercised
# (the Bernoulli baseline's train_step draws none).
NOISY_MODEL = textwrap.dedent('''
    import numpy as np
    import tinygen
    from tinygen import backend, functional as F
    from tinygen.models import register
    from tinygen.models.bernoulli import BernoulliPixels

    @register("noisy_test", kind="explicit", section="test", summary="Bernoulli pixels, noisy steps")
    class Noisy(BernoulliPixels):
        def train_step(self, batch):
            noise = backend.generator("cpu").standard_normal(self.image_shape).astype(np.float32)
            loss = -F.mean(self.log_prob(batch)) + 0.5 * F.sum(self.logits * tinygen.tensor(noise))
            opt = self.optimizers["main"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            return {"loss": loss.item()}

        def evaluate(self, batch):
            metrics = super().evaluate(batch)
            metrics["draw"] = float(backend.generator("cpu").random())
            return metrics
''')
NOISY_DRIVER = [sys.executable, "-c",
                "import sys, noisy_test_model; from tinygen.__main__ import main; sys.exit(main(sys.argv[1:]))"]


@pytest.mark.parametrize("model", ["bernoulli", "noisy_test"])
def test_resume_continues_to_the_bit(tmp_path, model):
    """200 steps in one go == 100 steps, then --resume to 200 (in new processes)."""
    command, extra = TINYGEN, ()
    if model == "noisy_test":
        (tmp_path / "noisy_test_model.py").write_text(NOISY_MODEL)
        command, extra = NOISY_DRIVER, (tmp_path,)
    common = ["--seed", 7, "--batch-size", 32]
    cli(["train", model, "--steps", 200, "--out", "whole", "--log-every", 40, *common], tmp_path,
        command=command, extra_paths=extra)
    # The first half evaluates and samples at other steps (30, 60, 90, 100): monitoring must
    # not touch the training stream. Resuming at 100, which is not a log step, takes the
    # rest of the configuration from the checkpoint.
    cli(["train", model, "--steps", 100, "--out", "split", "--log-every", 30, *common], tmp_path,
        command=command, extra_paths=extra)
    p = cli(["train", model, "--steps", 200, "--out", "split", "--resume", "--log-every", 40], tmp_path,
            command=command, extra_paths=extra)
    assert f"resuming {model} at step 100" in p.stdout

    whole, split = tmp_path / "whole", tmp_path / "split"
    assert_same_checkpoint(whole / "checkpoint.npz", split / "checkpoint.npz")
    # sampling after the resume draws the same numbers as after the uninterrupted run
    assert (whole / "samples.png").read_bytes() == (split / "samples.png").read_bytes()
    mw, ms = (json.loads((d / "metrics.json").read_text()) for d in (whole, split))
    assert mw["nll_nats"] == ms["nll_nats"] and mw["step"] == ms["step"] == 200

    def rows(d):
        with open(d / "log.csv", newline="") as f:
            return {r["step"]: {k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)}
    rw, rs = rows(whole), rows(split)
    assert list(rs) == ["30", "60", "90", "100", "120", "160", "200"]   # the stop at 100 has its own row
    assert all(rs[s] == rw[s] for s in ("120", "160", "200"))   # means over the same steps


# --- 2-D toy data ------------------------------------------------------------------

TOY_MODEL = textwrap.dedent('''
    import math
    import numpy as np
    import tinygen
    from tinygen import backend, functional as F
    from tinygen.autograd.grad_mode import no_grad
    from tinygen.nn import Parameter
    from tinygen.optim import Adam
    from tinygen.models import GenerativeModel, register

    @register("gauss2d_test", kind="explicit", section="test", summary="one 2-D Gaussian")
    class Gauss2D(GenerativeModel):
        data_kind = "toy"            # trained on --data toy:NAME, built without image_shape

        def __init__(self, lr=0.05):
            super().__init__(image_shape=(1, 1, 2))
            self.mu = Parameter(np.zeros(2, np.float32))
            self.log_sigma = Parameter(np.zeros(2, np.float32))
            self.optimizers["main"] = Adam(self.parameters(), lr=lr)

        def log_prob(self, x):
            z = (x - self.mu) * F.exp(-self.log_sigma)
            return F.sum(-0.5 * z * z - self.log_sigma - 0.5 * math.log(2 * math.pi), axis=1)

        def evaluate(self, batch):
            return {"nll_nats": -float(self.log_prob(batch).data.mean())}

        def train_step(self, batch):
            loss = -F.mean(self.log_prob(batch))
            opt = self.optimizers["main"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            return {"nll": loss.item()}

        def sample(self, n):
            with no_grad():
                e = backend.generator("cpu").standard_normal((n, 2)).astype(np.float32)
                return tinygen.tensor(self.mu.data + np.exp(self.log_sigma.data) * e)
''')
TOY_DRIVER = [sys.executable, "-c",
              "import sys, toy_test_model; from tinygen.__main__ import main; sys.exit(main(sys.argv[1:]))"]


def test_toy_data_models_train_on_points_and_refuse_images(tmp_path):
    (tmp_path / "toy_test_model.py").write_text(TOY_MODEL)
    run = dict(command=TOY_DRIVER, extra_paths=(tmp_path,))
    cli(["train", "gauss2d_test", "--data", "toy:ring", "--steps", 40, "--log-every", 20], tmp_path, **run)
    out = tmp_path / "runs" / "gauss2d_test"
    with Image.open(out / "samples.png") as im:
        assert im.size == (400, 400)                  # a scatter plot, not an image grid
    assert json.loads((out / "metrics.json").read_text())["data_shape"] == [2]
    _check_usage_error(cli(["train", "gauss2d_test", "--steps", 1], tmp_path, status=2, **run),
                       ["2-D points", "toy:NAME"])


# --- Ctrl-C -------------------------------------------------------------------------

def _sigint_as_at_a_terminal():
    # a Ctrl-C reaches a terminal's foreground job; a shell's background job (a CI script's `cmd &`)
    # inherits SIGINT ignored, which the run rightly keeps (test_cli_safety), so the child starts from
    # the terminal's default whatever the test runner's own disposition
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigint_stops_after_the_step_and_leaves_a_loadable_checkpoint(tmp_path):
    proc = subprocess.Popen(TINYGEN + ["train", "bernoulli", "--steps", str(10**9), "--log-every", "500",
                                       "--out", "run"],
                            cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_sigint_as_at_a_terminal)
    try:
        first = proc.stdout.readline()    # printed once the SIGINT handler is in place
        assert first.startswith("training bernoulli"), first
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err      # 128 + SIGINT: stopped, not finished
    assert "Traceback" not in err and "--resume" in out

    run = tmp_path / "run"
    ckpt = tinygen.load(run / "checkpoint.npz")
    step = ckpt["step"]
    assert 0 < step < 10**9
    m = json.loads((run / "metrics.json").read_text())
    assert m["interrupted"] is True and m["step"] == step
    with open(run / "log.csv", newline="") as f:
        assert int(list(csv.DictReader(f))[-1]["step"]) == step
    Image.open(run / "samples.png").verify()
    # and the run goes on from there
    p = cli(["train", "bernoulli", "--out", "run", "--resume", "--steps", step + 5, "-q"], tmp_path)
    assert tinygen.load(run / "checkpoint.npz")["step"] == step + 5 and p.stdout == ""


# --- bad arguments: one line on stderr, exit status 2 ---------------------------------

def _tiny_mnist(folder, side):
    from tinygen.data import write_idx
    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 10)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, side, side)).astype(np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8))


def _other_model():
    others = [m for m in models.available() if m != "bernoulli"]
    return others[0] if others else None


BAD = [
    (["train", "bernouli"], ["unknown model 'bernouli'", "bernoulli"]),
    (["train", "bernoulli", "--data", "mnist:nowhere"], ["train-images-idx3-ubyte", "yann.lecun.com"]),
    (["train", "bernoulli", "--data", "mnist:half"], ["t10k-images-idx3-ubyte", "missing"]),
    (["train", "bernoulli", "--steps", 10, "--minutes", 1], ["--steps", "--minutes"]),
    (["train", "bernoulli", "--steps", 0], ["--steps", "positive"]),
    (["train", "bernoulli", "--minutes", -1], ["--minutes", "positive"]),
    (["train", "bernoulli", "--batch-size", 0], ["--batch-size", "positive"]),
    (["train", "bernoulli", "--lr", "nan"], ["--lr", "positive"]),
    (["sample", "bernoulli", "--checkpoint", "x.npz", "--n", "-3"], ["--n", "positive"]),
    (["train", "bernoulli", "--data", "toy:ring"], ["2-D points", "bernoulli"]),
    (["train", "bernoulli", "--data", "cifar"], ["digits", "mnist:DIR", "toy:NAME"]),
    (["train", "bernoulli", "--set", "nosuch=1"], ["no option 'nosuch'", "lr"]),
    (["train", "pixelrnn", "--set", "variant=bogus"], ["pixelrnn: unknown variant 'bogus'", "row_lstm"]),
    (["train", "bernoulli", "--resume", "--out", "empty"], ["no checkpoint"]),
    (["eval", "bernoulli", "--checkpoint", "missing.npz"], ["no checkpoint", "missing.npz"]),
    (["zoo", "--minutes", 0], ["--minutes", "positive"]),
    (["zoo", "--models", "bernoulli,nosuch"], ["unknown model 'nosuch'"]),
]


@pytest.fixture(scope="module")
def bad_cwd(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("bad")
    (cwd / "half").mkdir()
    (cwd / "half" / "train-images-idx3-ubyte").write_bytes(b"")
    return cwd


def _check_usage_error(p, wanted):
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr                  # one clear line, no traceback, no usage dump
    assert not re.search(r"(\w+): \1:", lines[0]), lines[0]   # no name said twice ("nade: nade: ...")
    for w in wanted:
        assert w in lines[0], (w, lines[0])


@pytest.mark.parametrize("args,wanted", BAD, ids=[" ".join(map(str, a)) for a, _ in BAD])
def test_bad_arguments_give_one_line_and_status_2(bad_cwd, args, wanted):
    _check_usage_error(cli(args, bad_cwd, status=2), wanted)


@pytest.mark.skipif(backend.cuda_available(), reason="this machine has CuPy and a GPU")
def test_cuda_without_cupy_or_gpu_says_what_is_missing(tmp_path):
    p = cli(["train", "bernoulli", "--device", "cuda", "--steps", 1], tmp_path, status=2)
    _check_usage_error(p, ["cuda", "CuPy" if not backend.cupy_available() else "GPU"])


def test_checkpoint_of_another_model_or_shape_names_both(trained, tmp_path):
    cwd, run, _ = trained
    ckpt = run / "checkpoint.npz"
    other = _other_model()
    if other is not None:
        for args in (["sample", other, "--checkpoint", ckpt], ["eval", other, "--checkpoint", ckpt],
                     ["train", other, "--resume", "--out", run]):
            _check_usage_error(cli(args, cwd, status=2), ["'bernoulli'", f"'{other}'"])
    _tiny_mnist(tmp_path / "mnist", side=12)
    p = cli(["eval", "bernoulli", "--checkpoint", ckpt, "--data", f"mnist:{tmp_path / 'mnist'}"], cwd, status=2)
    _check_usage_error(p, ["(1, 8, 8)", "(1, 12, 12)"])
    p = cli(["train", "bernoulli", "--resume", "--out", run, "--seed", 3], cwd, status=2)
    _check_usage_error(p, ["--seed 0", "not 3"])


# --- the zoo ---------------------------------------------------------------------------

def test_zoo_writes_index_and_results(tmp_path):
    p = cli(["zoo", "--minutes", 0.2, "--models", "bernoulli", "--out", "zoo"], tmp_path)
    zoo = tmp_path / "zoo"
    assert "[1/1] bernoulli" in p.stdout
    index = (zoo / "index.html").read_text()
    assert "<h2>bernoulli</h2>" in index and "nll_nats" in index
    for link in ("bernoulli/samples.png", "bernoulli/losses.png", "gallery.png", "results.md"):
        assert f"'{link}'" in index and (zoo / link).is_file(), link   # relative links that resolve
    table = (zoo / "results.md").read_text().splitlines()
    assert "| model | section | test NLL (nats) | bits/dim | steps | training time |" in table
    row = next(l for l in table if l.startswith("| bernoulli |"))
    nll = json.loads((zoo / "bernoulli" / "metrics.json").read_text())["nll_nats"]
    assert f"| {nll:.2f} |" in row


@pytest.mark.parametrize("given, expected", [({}, "1"), ({"OMP_NUM_THREADS": "2"}, "2")])
def test_the_command_line_runs_one_blas_thread_unless_told(given, expected):
    """Set before NumPy loads: the command line's BLAS has one thread, or the number the user set."""
    import subprocess
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                              "MKL_NUM_THREADS")}
    env.update(given)
    code = ("import os, sys; from tinygen.__main__ import main; main(['list']); "
            "print(os.environ['OMP_NUM_THREADS'], 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout
    assert out.split()[-2] == expected
