"""The training loop and the model surface through the API, for the cases of issue 9.

tests/test_cli_safety.py and tests/test_cli_errors.py drive the command line; these
call ``tinygen.train.train``, ``read_checkpoint``, the models and the loader directly:
the explicit learning rate of every model with a ``default_lr``, a run stopped by a
signal after its last step (complete) or before (interrupted), a non-finite loss,
metrics that are not finite (valid JSON all the same), a full disk, the folder lock,
damaged run information, and the arguments every model checks alike.
"""
import errno
import json
import os
import signal
import stat
import threading

import numpy as np
import pytest

import tinygen
from tinygen import data as datasets, models, serialization
from tinygen.__main__ import main
from tinygen.models.bernoulli import BernoulliPixels
from tinygen.run_config import UsageError, build_model, check_arguments, model_info, new_config
from tinygen.run_checkpoint import read_checkpoint
from tinygen.run_folder import FolderLock
from tinygen.run_stop import Diverged
from tinygen.train import train
from tinygen.zoo import zoo


@pytest.fixture
def register_model(monkeypatch):
    """Register test models in a copy of the registry, so they vanish after the test."""
    models.available()
    monkeypatch.setattr(models, "_REGISTRY", dict(models._REGISTRY))

    def add(name, cls):
        return models.register(name, kind="explicit", section="test", summary="a model of the tests")(cls)
    return add


def strict_json(path):
    def refuse(name):
        raise ValueError(f"{path}: {name} is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


# --- the learning rate ----------------------------------------------------------------

@pytest.mark.parametrize("name", ["nade", "fvsbn", "pixelcnn", "pixelrnn"])
@pytest.mark.parametrize("how", ["--lr", "--set"])
def test_an_explicit_lr_beats_default_lr(name, how):
    info = model_info(name)
    assert info.cls.default_lr not in (None, 0.5)
    given = check_arguments(lr=0.5 if how == "--lr" else None)
    config, _ = new_config(info, given, "digits", {"lr": 0.5} if how == "--set" else {})
    assert config["lr"] == 0.5 and config["options"]["lr"] == 0.5
    model = build_model(info, (1, 8, 8), config["options"], "cpu")
    assert [g["lr"] for g in model.optimizers["main"].param_groups] == [0.5]


def test_without_an_explicit_lr_the_default_lr_is_used():
    info = model_info("nade")
    config, _ = new_config(info, check_arguments(), "digits", {})
    assert config["lr"] == config["options"]["lr"] == info.cls.default_lr


# --- stopping: signals, the last step, non-finite losses ---------------------------------

class SignalAt(BernoulliPixels):
    """Bernoulli pixels that send SIGTERM to their own process during step ``at``."""
    at = 3

    def train_step(self, batch):
        losses = super().train_step(batch)
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return losses


@pytest.mark.parametrize("at,interrupted", [(5, False), (2, True)])
def test_a_signal_during_the_last_step_leaves_a_complete_run(tmp_path, register_model, at, interrupted):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("the loop installs its signal handlers only in the main thread")
    cls = type("SignalAtTest", (SignalAt,), {"at": at})
    register_model("signal_test", cls)
    before = signal.getsignal(signal.SIGTERM)
    r = train("signal_test", steps=5, log_every=10, out=tmp_path / "run", quiet=True)
    assert signal.getsignal(signal.SIGTERM) is before          # the handler is put back
    assert r.interrupted is interrupted and r.step == (5 if not interrupted else 2)
    m = strict_json(tmp_path / "run" / "metrics.json")
    assert m["interrupted"] is interrupted and m.get("signal") == ("SIGTERM" if interrupted else None)


class NanAt(BernoulliPixels):
    """Bernoulli pixels whose loss is NaN from step 7 on (the parameters themselves stay fine)."""

    def train_step(self, batch):
        losses = super().train_step(batch)
        self.calls = getattr(self, "calls", 0) + 1
        return {"nll": float("nan")} if self.calls >= 7 else losses


def test_a_non_finite_loss_raises_diverged_and_keeps_the_last_good_checkpoint(tmp_path, register_model):
    register_model("nan_test", NanAt)
    with pytest.raises(Diverged, match="nll loss is nan at step 7.*keeps step 5") as info:
        train("nan_test", steps=20, log_every=5, out=tmp_path / "run", quiet=True)
    assert (info.value.step, info.value.name) == (7, "nll")
    assert tinygen.load(tmp_path / "run" / "checkpoint.npz")["step"] == 5


class InfiniteNLL(BernoulliPixels):
    def evaluate(self, batch):
        return {"nll_nats": float("inf"), "bits_per_dim": float("nan")}


def test_metrics_json_is_valid_json_when_a_metric_is_not_finite(tmp_path, register_model):
    register_model("inf_test", InfiniteNLL)
    train("inf_test", steps=2, log_every=2, out=tmp_path / "run", quiet=True)
    m = strict_json(tmp_path / "run" / "metrics.json")
    assert m["nll_nats"] is None and m["bits_per_dim"] is None
    assert any("nll_nats was inf" in n for n in m["notes"]) and any("bits_per_dim was nan" in n for n in m["notes"])


# --- the folder: the lock, a full disk -----------------------------------------------------

def test_a_locked_folder_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with FolderLock(out):
        with pytest.raises(UsageError, match=f"is in use by process {os.getpid()}"):
            train("bernoulli", steps=1, out=out, quiet=True)
    assert os.listdir(out) == [".lock"]   # nothing written by the refused run
    train("bernoulli", steps=1, out=out, quiet=True)   # released: the folder is free again


def test_a_folder_that_cannot_be_written_is_a_usage_error(tmp_path, monkeypatch):
    real_open = os.open

    def no_lock_file(path, *args, **kwargs):   # as for a read-only folder, which root could write
        if os.path.basename(path) == ".lock":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(os, "open", no_lock_file)
    with pytest.raises(UsageError, match="cannot write in the run folder .*run .Permission denied"):
        train("bernoulli", steps=1, out=tmp_path / "run", quiet=True)


def test_a_full_disk_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch, capsys):
    write = serialization._write_npz
    calls = []

    def second_write_fails(f, members, compress):
        calls.append(1)
        if len(calls) >= 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write(f, members, compress)
    monkeypatch.setattr(serialization, "_write_npz", second_write_fails)
    run = tmp_path / "run"
    status = main(["train", "bernoulli", "--steps", "4", "--log-every", "2", "--out", str(run), "-q"])
    assert status == 1
    line, = capsys.readouterr().err.strip().splitlines()
    assert "No space left on device" in line and "kept" in line, line
    assert tinygen.load(run / "checkpoint.npz")["step"] == 2
    assert not [p for p in run.rglob("*.tmp")]   # no temporary file left behind


def test_an_empty_list_of_zoo_models_is_refused(tmp_path):
    with pytest.raises(UsageError, match="empty"):
        zoo(minutes=0.1, out=tmp_path / "zoo", names=[], quiet=True)
    assert not (tmp_path / "zoo").exists()


# --- damaged run information: named before any array is read -------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "run"
    train("bernoulli", steps=2, log_every=2, out=out, quiet=True)
    return tinygen.load(out / "checkpoint.npz")


DAMAGE = [
    ("options", lambda s: s["config"].update(options="lr=1"), "config/options is 'lr=1'"),
    ("batch text", lambda s: s["config"].update(batch_size="64"), "config/batch_size is '64'"),
    ("batch zero", lambda s: s["config"].update(batch_size=0), "config/batch_size is 0"),
    ("epoch", lambda s: s.update(epoch=-1), "epoch is -1"),
    ("step", lambda s: s.update(step=2.5), "step is 2.5"),
    ("huge shape", lambda s: s.update(data_shape=[1, 2**20, 2**20]), "data_shape is"),
    ("no config", lambda s: s["config"].pop("seed"), "has no config/seed"),
    ("config list", lambda s: s.update(config=[1]), "config is"),
    ("lr", lambda s: s["config"].update(lr=-1.0), "config/lr is -1.0"),
]


@pytest.mark.parametrize("name,change,wanted", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damaged_run_information_is_named(tmp_path, checkpoint, name, change, wanted):
    state = {**checkpoint, "config": dict(checkpoint["config"])}   # what the changes touch, copied
    change(state)
    path = tmp_path / "c.npz"
    tinygen.save(state, path)
    with pytest.raises(UsageError, match="damaged") as info:
        read_checkpoint(path, model="bernoulli")
    assert wanted in str(info.value) and str(path) in str(info.value)


# --- what every model checks alike ------------------------------------------------------------

@pytest.mark.parametrize("name", ["bernoulli", "nade"])
def test_sample_wants_a_whole_number_of_at_least_one(name):
    model = models.build(name)
    for n, error in ((-1, ValueError), (0, ValueError), (2.5, TypeError), (True, TypeError), ("3", TypeError)):
        with pytest.raises(error, match=f"{name}.sample: n must"):
            model.sample(n)
    assert tuple(model.sample(np.int64(2)).shape) == (2, 1, 8, 8)


@pytest.mark.parametrize("name", ["bernoulli", "nade"])
def test_no_images_is_a_clear_error(name):
    model = models.build(name)
    empty = tinygen.tensor(np.zeros((0, 1, 8, 8), np.float32))
    for method in ("log_prob", "evaluate", "train_step"):
        with pytest.raises(ValueError, match=rf"{name}.{method}: got 0 examples \(shape \(0, 1, 8, 8\)\)"):
            getattr(model, method)(empty)


def test_a_dataloader_on_rows_in_a_list_says_to_make_an_array():
    with pytest.raises(TypeError, match="array 0 is a list.*numpy.asarray"):
        datasets.DataLoader([[1.0, 2.0], [3.0, 4.0]], batch_size=1)


# --- tinygen.save -----------------------------------------------------------------------------

def test_save_onto_a_folder_or_of_a_structure_that_contains_itself_is_refused(tmp_path):
    with pytest.raises(serialization.CheckpointError, match="is a folder"):
        tinygen.save({"a": 1}, tmp_path)
    loop = {"a": [1]}
    loop["a"].append(loop)
    with pytest.raises(serialization.CheckpointError, match="contains itself at 'a/1'"):
        tinygen.save(loop, tmp_path / "loop.npz")
    assert os.listdir(tmp_path) == []
    shared = [1, 2]
    tinygen.save({"x": shared, "y": shared}, tmp_path / "shared.npz")   # shared, not circular: fine


def test_save_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    path = tmp_path / "c.npz"
    tinygen.save({"a": 1}, path)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~mask   # a new file: as open() would make it
    for mode in (0o640, 0o604):
        os.chmod(path, mode)
        tinygen.save({"a": 2}, path)
        assert stat.S_IMODE(os.stat(path).st_mode) == mode
