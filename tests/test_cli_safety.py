"""Runs that never lose or clobber work (issue 9), driven as a user would, in subprocesses.

- an explicit learning rate beats the model's ``default_lr``;
- a new run refuses a folder that holds a run unless ``--overwrite``, which replaces it;
- two runs on one folder: the second is refused by the folder's lock, naming the first's
  process, and the first's files stay whole;
- SIGTERM and SIGHUP stop a run as Ctrl-C does (checkpoint, files, exit 128 + signal), and a
  SIGINT the parent chose to ignore stays ignored;
- a loss that stops being finite ends the run at once with one line, exit 1, and the last
  good checkpoint kept;
- a Ctrl-C while the program starts up is one line, never a traceback.
"""
import csv
import json
import re
import signal
import subprocess
import time

import pytest

import tinygen

from test_cli import TINYGEN, _check_usage_error, _sigint_as_at_a_terminal, cli, env


def _strict_json(path):
    def refuse(name):
        raise ValueError(f"{path}: {name} is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


def _log_steps(run):
    with open(run / "log.csv", newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


def test_an_explicit_lr_beats_the_models_default(tmp_path):
    cli(["train", "nade", "--set", "lr=0.5", "--steps", 1, "--out", "run", "-q"], tmp_path)
    ckpt = tinygen.load(tmp_path / "run" / "checkpoint.npz")
    assert ckpt["config"]["lr"] == 0.5 and ckpt["config"]["options"]["lr"] == 0.5
    groups = ckpt["state"]["optimizers"]["main"]["param_groups"]
    assert [g["lr"] for g in groups] == [0.5] * len(groups)      # what the optimiser really used


def test_a_folder_holding_a_run_is_refused_unless_overwrite(tmp_path):
    cli(["train", "bernoulli", "--steps", 4, "--log-every", 2, "--out", "run", "-q"], tmp_path)
    run = tmp_path / "run"
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    p = cli(["train", "bernoulli", "--steps", 3, "--out", "run", "-q"], tmp_path, status=2)
    _check_usage_error(p, ["run already holds a run", "checkpoint.npz", "--resume", "--overwrite"])
    assert {p: p.read_bytes() for p in before} == before         # not one byte changed

    cli(["train", "bernoulli", "--steps", 3, "--log-every", 3, "--out", "run", "-q", "--overwrite"], tmp_path)
    assert _log_steps(run) == [3] and tinygen.load(run / "checkpoint.npz")["step"] == 3
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-000003.png"]   # old grids gone


def _start(tmp_path, *args, preexec_fn=None):
    """A long bernoulli run in ``run``, returned once its first line says the loop has begun."""
    proc = subprocess.Popen(TINYGEN + ["train", "bernoulli", "--steps", str(10**9), "--out", "run", *map(str, args)],
                            cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=preexec_fn)
    first = proc.stdout.readline()
    assert first.startswith("training bernoulli"), (first, proc.stderr.read() if proc.poll() else "")
    return proc


def _stop(proc, sig):
    proc.send_signal(sig)
    try:
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


def _assert_stopped_cleanly(run, proc, out, err, sig):
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and "--resume" in out and signal.Signals(sig).name in out
    step = tinygen.load(run / "checkpoint.npz")["step"]
    m = _strict_json(run / "metrics.json")
    assert m["interrupted"] is True and m["signal"] == signal.Signals(sig).name and m["step"] == step > 0
    steps = _log_steps(run)
    assert steps == sorted(set(steps)) and steps[-1] == step   # one run's rows, in order, up to the end


def test_a_second_run_on_a_folder_is_refused_and_sigterm_stops_the_first_cleanly(tmp_path):
    first = _start(tmp_path, "--log-every", 20)
    try:
        time.sleep(0.5)
        for extra in (["--overwrite"], ["--resume"]):   # neither may touch the folder in use
            p = cli(["train", "bernoulli", "--steps", 5, "--out", "run", *extra], tmp_path, status=2)
            if extra == ["--resume"] and "no checkpoint" in p.stderr:
                continue   # the first run has not written its first checkpoint yet: refused anyway
            _check_usage_error(p, [f"run is in use by process {first.pid}"])
        time.sleep(0.3)
    finally:
        out, err = _stop(first, signal.SIGTERM)
    _assert_stopped_cleanly(tmp_path / "run", first, out, err, signal.SIGTERM)


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_an_ignored_sigint_stays_ignored_and_sighup_stops_the_run(tmp_path):
    proc = _start(tmp_path, "--log-every", 500, preexec_fn=_ignore_sigint)
    try:
        proc.send_signal(signal.SIGINT)
        time.sleep(0.7)
        assert proc.poll() is None, "a SIGINT the parent ignores must not stop the run"
    finally:
        out, err = _stop(proc, signal.SIGHUP)
    _assert_stopped_cleanly(tmp_path / "run", proc, out, err, signal.SIGHUP)


def test_a_loss_that_stops_being_finite_ends_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    # lr 1e308: the first step is finite, the second has infinite logits and a NaN loss
    p = cli(["train", "bernoulli", "--set", "lr=1e308", "--steps", 50, "--log-every", 1, "--out", "run"],
            tmp_path, status=1)
    line, = p.stderr.strip().splitlines()
    assert re.search(r"diverged: its nll loss is (nan|inf) at step 2;.*keeps step 1", line), line
    run = tmp_path / "run"
    assert tinygen.load(run / "checkpoint.npz")["step"] == 1
    assert _log_steps(run) == [1]
    assert not (run / "metrics.json").exists()


@pytest.mark.parametrize("args", [["train", "bernoulli", "--steps", 1], ["list"]])
def test_a_sigint_while_starting_up_gives_one_line(tmp_path, args, monkeypatch, capsys):
    """A Ctrl-C before the loop's handler is in place (parsing, importing the modules) is one line, 130."""
    from tinygen import __main__ as cli_main

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli_main, "_run", interrupted)
    assert cli_main.main([str(a) for a in args]) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"tinygen {args[0]}: interrupted"]


@pytest.mark.parametrize("delay", [0.3, 0.6])
def test_a_real_sigint_soon_after_the_start_gives_one_line(tmp_path, delay):
    """`import tinygen` loads nothing until asked, so the command line's own handling is in place
    a few milliseconds after Python starts; a Ctrl-C while NumPy and the models load is one line."""
    p = subprocess.Popen(TINYGEN + ["train", "bernoulli", "--steps", "1", "--out", str(tmp_path / "run")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
                         preexec_fn=_sigint_as_at_a_terminal)
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert "Traceback" not in err, err
    if p.returncode != 0:   # not already finished
        assert p.returncode in (130, -signal.SIGINT) and "interrupted" in err, (p.returncode, err)


def test_a_minutes_budget_is_shared_by_an_interrupted_run_and_its_resume(tmp_path):
    """--minutes M, stopped part-way and resumed without --minutes: the resume trains for what is
    left of M, so the training time summed over both is M (not M more)."""
    budget = 4.0
    proc = subprocess.Popen(TINYGEN + ["train", "bernoulli", "--minutes", str(budget / 60), "--out", "run",
                                       "--log-every", "50"],
                            cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("training bernoulli")
    time.sleep(1.5)
    _stop(proc, signal.SIGTERM)
    first = tinygen.load(tmp_path / "run" / "checkpoint.npz")["spent_seconds"]
    assert 0 < first < budget - 1.0          # stopped well inside the budget
    cli(["train", "bernoulli", "--resume", "--out", "run", "-q"], tmp_path)
    ckpt = tinygen.load(tmp_path / "run" / "checkpoint.npz")
    total = ckpt["spent_seconds"]            # the loop's time, its logs and checkpoints included
    assert abs(total - budget) < 0.5, (first, total)      # the rest of the budget, not another one
    assert 0 < ckpt["seconds"] <= total      # of which training steps
    assert _strict_json(tmp_path / "run" / "metrics.json")["train_seconds"] == pytest.approx(ckpt["seconds"], abs=0.01)
