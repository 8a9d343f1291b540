"""Atomicity tested the way it fails: writers killed (SIGKILL, no clean-up) at random moments.

- ``tinygen.save`` of a checkpoint-sized file, killed again and again while it rewrites the
  file in a loop: the file is always a complete one, the last or the one before, never a
  partial one (a save that wrote in place would leave a truncated or mixed file);
- ``tinygen train``, killed at random moments while it writes a log row, a sample grid and a
  checkpoint every step, then resumed: every file in the run folder is whole (the checkpoint
  loads, the JSON parses, every PNG decodes, every log row is complete) after every kill,
  and the resumed runs go on from the checkpoint.
"""
import csv
import json
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import tinygen

from test_cli import TINYGEN, env

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL and POSIX renames")

SAVER = """
import sys, numpy as np, tinygen
path, version = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
while True:   # rewrite the file without pause: a kill lands inside a save almost always
    version += 1
    tinygen.save({"version": version, "w": np.full(2_000_000, version, np.float32),
                  "tail": np.full(1000, version, np.int64)}, path)
"""


def _check_checkpoint(path):
    ckpt = tinygen.load(path)
    v = ckpt["version"]
    assert (ckpt["w"] == v).all() and (ckpt["tail"] == v).all() and ckpt["w"].shape == (2_000_000,)
    return v


def test_a_checkpoint_killed_while_it_is_saved_is_always_a_whole_one(tmp_path):
    path = tmp_path / "ckpt.npz"
    tinygen.save({"version": 0, "w": np.zeros(2_000_000, np.float32), "tail": np.zeros(1000, np.int64)}, path)
    rng, version, kills = random.Random(0), 0, 0
    while kills < 8:
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(path), str(version)], env=env(),
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        kills += 1
        now = _check_checkpoint(path)
        assert now >= version   # never an older file than the last one seen
        version = now
    assert version > 0         # the children did write (and were killed while writing)


def _check_run_folder(run):
    """Every file ``tinygen train`` writes in ``run`` is whole; returns the checkpoint's step."""
    step = tinygen.load(run / "checkpoint.npz")["step"]
    with open(run / "log.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows and all(len(r) == len(rows[0]) for r in rows), rows[-3:]   # no half-written row
    for png in [p for p in run.rglob("*.png")]:
        with Image.open(png) as im:
            im.load()          # decodes the whole image: a truncated PNG fails here
    if (run / "metrics.json").exists():
        json.loads((run / "metrics.json").read_text())
    return step


def _checkpoint_time(run):
    """The checkpoint's modification time in ns (each save replaces the file), or None."""
    try:
        return (run / "checkpoint.npz").stat().st_mtime_ns
    except FileNotFoundError:
        return None


def test_a_training_run_killed_at_random_moments_leaves_only_whole_files(tmp_path):
    run, rng = tmp_path / "run", random.Random(1)
    steps = []
    for kill in range(5):
        extra = ["--resume"] if kill else []
        before = _checkpoint_time(run)
        proc = subprocess.Popen(TINYGEN + ["train", "bernoulli", "--steps", str(10 ** 9), "--log-every", "1",
                                           "--out", "run", "-q", *extra],
                                cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # wait for this process's own first checkpoint (a resume starts beside the last one's:
        # on a loaded machine its start alone can outlast the random delay below)
        deadline = time.monotonic() + 60
        while _checkpoint_time(run) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.3, 1.2))   # every step writes a row, a grid and a checkpoint
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        steps.append(_check_run_folder(run))
    assert steps == sorted(steps) and steps[-1] > steps[0] > 0   # each resume went on from the last
