"""Every mistake a careless user makes gets one line on stderr and a non-zero status (issue 9).

Each case runs ``python -m tinygen ...`` in a subprocess and checks the exit status
and the words of the one line: contradictory learning rates, --set values of the
wrong kind, folders that cannot hold a run, picture names of unknown formats,
checkpoints whose arrays or run information do not fit, data with an empty split.
Runs that train are a few steps of the smallest models on the bundled digits.
"""
import os

import numpy as np
import pytest

import tinygen
from tinygen.data import write_idx

from test_cli import _check_usage_error, _tiny_mnist, cli


@pytest.fixture(scope="module")
def cwd(tmp_path_factory):
    """A folder with a trained nade run, a plain file, and an MNIST folder whose test split is empty."""
    cwd = tmp_path_factory.mktemp("errors")
    cli(["train", "nade", "--steps", 2, "--log-every", 2, "--out", "run", "-q"], cwd)
    (cwd / "file.txt").write_text("not a folder\n")
    empty = cwd / "mnist0"
    _tiny_mnist(empty, side=8)
    write_idx(empty / "t10k-images-idx3-ubyte", np.zeros((0, 8, 8), np.uint8))
    write_idx(empty / "t10k-labels-idx1-ubyte", np.zeros(0, np.uint8))
    return cwd


CKPT = "run/checkpoint.npz"
BAD = [
    # the learning rate: given once, positive and finite, whichever way it is written
    (["train", "nade", "--lr", 0.1, "--set", "lr=0.5"], ["--lr 0.1", "--set lr=0.5", "disagree"]),
    (["train", "nade", "--set", "lr=0"], ["--set lr", "positive", "0"]),
    (["train", "nade", "--set", "lr=inf"], ["--set lr", "positive"]),
    # every option of the kind its default is
    (["train", "nade", "--set", "weight_decay=abc"], ["weight_decay", "a number", "'abc'"]),
    (["train", "pixelcnn", "--set", "hidden=2.5"], ["hidden", "a whole number", "2.5"]),
    # the run folder
    (["train", "nade", "--out", ""], ["--out is empty"]),
    (["train", "nade", "--out", "file.txt"], ["file.txt is a file, not a folder"]),
    (["train", "nade", "--out", "/proc/tinygen-run"], ["/proc/tinygen-run", "cannot create"]),
    (["train", "nade", "--out", "run", "--resume", "--overwrite"], ["--resume", "--overwrite", "not both"]),
    (["train", "nade", "--out", "run", "--steps", 3], ["run already holds a run", "--resume", "--overwrite"]),
    # data
    (["train", "bernoulli", "--data", "mnist:/etc/passwd"], ["/etc/passwd", "is a file, not a folder"]),
    (["train", "bernoulli", "--data", "mnist:mnist0"], ["0 images", "test split is empty"]),
    # sample: the picture it writes
    (["sample", "nade", "--checkpoint", CKPT, "--out", "x.gif"], ["x.gif", "unknown picture format", ".jpg"]),
    (["sample", "nade", "--checkpoint", CKPT, "--out", "run"], ["--out run is a folder"]),
    (["sample", "nade", "--checkpoint", CKPT, "--n", 100000000], ["--n 100000000", "at most 10000"]),
    # the zoo
    (["zoo", "--models", ","], ["--models ','", "names no model"]),
]


@pytest.mark.parametrize("args,wanted", BAD, ids=[" ".join(map(str, a)) for a, _ in BAD])
def test_one_line_and_status_2(cwd, args, wanted):
    _check_usage_error(cli(args, cwd, status=2), wanted)


def test_sample_writes_the_format_its_name_asks_for(cwd):
    for name, magic in (("s.jpg", b"\xff\xd8\xff"), ("s.JPEG", b"\xff\xd8\xff"), ("s.png", b"\x89PNG")):
        cli(["sample", "nade", "--checkpoint", CKPT, "--n", 4, "--out", name], cwd)
        assert (cwd / name).read_bytes()[:len(magic)] == magic, name
    assert not [f for f in os.listdir(cwd) if f.endswith(".tmp")]


# --- checkpoints that do not fit: one line naming what differs ----------------------------

def _altered(cwd, name, change):
    """A copy of the trained run's checkpoint with ``change(state)`` applied."""
    state = tinygen.load(cwd / CKPT)
    change(state)
    path = cwd / name / "checkpoint.npz"
    tinygen.save(state, path)
    return path


def _reshape_weight(state):
    params = state["state"]["model"]
    key = next(k for k, v in params.items() if v.ndim == 2)
    params[key] = np.zeros((3, 5), params[key].dtype)


def test_a_checkpoint_whose_arrays_do_not_fit_names_the_entry_and_both_shapes(cwd):
    path = _altered(cwd, "shape", _reshape_weight)
    for args in (["sample", "nade", "--checkpoint", path, "--out", "shape.png"],
                 ["eval", "nade", "--checkpoint", path],
                 ["train", "nade", "--out", path.parent, "--resume", "--steps", 4, "-q"]):
        _check_usage_error(cli(args, cwd, status=2), ["shape mismatch", "(3, 5)", "the module has ("])


def test_a_checkpoint_with_damaged_run_information_names_the_field(cwd):
    path = _altered(cwd, "options", lambda s: s["config"].update(options=[1, 2]))
    _check_usage_error(cli(["sample", "nade", "--checkpoint", path], cwd, status=2),
                       ["config/options", "[1, 2]", "a dict"])
    path = _altered(cwd, "epoch", lambda s: s.update(epoch=-1))
    _check_usage_error(cli(["train", "nade", "--out", path.parent, "--resume", "-q"], cwd, status=2),
                       ["epoch is -1"])
    # (tests/test_run_safety.py checks every other field through the same read_checkpoint)
