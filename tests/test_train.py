"""The training loop in process: losses reported on some steps, labelled data, unknown data kinds.

tests/test_cli.py drives the command line in subprocesses (every file, resume to
the bit, Ctrl-C); these tests call ``tinygen.train.train`` and ``tinygen.zoo.zoo``
directly with small models registered only for the test:

- a model that reports its "generator" loss only on every 5th step from step 15
  on: log.csv holds that loss's mean over the steps that reported it (never NaN),
  gets a column for it although the header was written before it appeared, and
  a run resumed before it appeared writes the same rows;
- a conditional model (``data_kind = "labelled"``) receives ``(images, labels)``
  in train_step and evaluate, every label the true label of its image, from
  ``train``, ``tinygen eval`` and the zoo alike;
- a model whose ``data_kind`` tinygen cannot provide is refused by name.
"""
import csv
import json

import numpy as np
import pytest

import tinygen
from tinygen import backend, data as datasets, functional as F, models
from tinygen.__main__ import main
from tinygen.autograd.grad_mode import no_grad
from tinygen.autograd.tensor import Tensor
from tinygen.models import GenerativeModel, register
from tinygen.models.base import bernoulli_log_prob
from tinygen.models.bernoulli import BernoulliPixels
from tinygen.nn import Parameter
from tinygen.optim import Adam
from tinygen.run_config import UsageError
from tinygen.train import EVAL_SUBSET, evaluate, train
from tinygen.zoo import zoo


@pytest.fixture
def register_model(monkeypatch):
    """Register test models in a copy of the registry, so they vanish after the test."""
    models.available()   # the real models register themselves in the real registry first
    monkeypatch.setattr(models, "_REGISTRY", dict(models._REGISTRY))

    def add(name, cls):
        return register(name, kind="explicit", section="test", summary="a model of the tests")(cls)
    return add


def read_log(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def strict_json(path):
    """metrics.json parsed with NaN and infinities refused (they are not JSON)."""
    def refuse(name):
        raise ValueError(f"{path}: {name} is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


# --- losses reported on some steps only ----------------------------------------------

class Partial(BernoulliPixels):
    """Bernoulli pixels whose "critic" loss comes every step, the "generator" loss every 5th from 15.

    The generator's "loss" is the step number itself, so each window's mean is known exactly.
    """

    def __init__(self, image_shape=(1, 8, 8), lr=0.05):
        super().__init__(image_shape, lr)
        self.register_buffer("calls", np.zeros((), np.int64))   # in the checkpoint, so resume counts on

    def train_step(self, batch):
        n = int(self.calls.numpy()) + 1
        self.calls = np.asarray(n, np.int64)
        losses = {"critic": super().train_step(batch)["nll"]}
        if n >= 15 and n % 5 == 0:
            losses["generator"] = float(n)
        return losses


def test_a_loss_reported_on_some_steps_is_averaged_over_them_and_gets_a_late_column(tmp_path, register_model):
    register_model("partial_test", Partial)
    common = dict(log_every=10, batch_size=32, seed=3, quiet=True)
    result = train("partial_test", steps=30, out=tmp_path / "whole", **common)

    header, rows = read_log(tmp_path / "whole" / "log.csv")
    # the late loss sits with the other losses, before the test metrics
    assert header == ["step", "epoch", "seconds", "critic", "generator", "test_nll_nats", "test_bits_per_dim"]
    assert all(len(r) == len(header) for r in rows)
    by_step = {r[0]: dict(zip(header, r)) for r in rows}
    assert list(by_step) == ["10", "20", "30"]
    assert by_step["10"]["generator"] == ""                  # no step of 1..10 reported it: empty, not NaN
    assert float(by_step["20"]["generator"]) == (15 + 20) / 2   # the mean over the steps that reported it
    assert float(by_step["30"]["generator"]) == (25 + 30) / 2
    assert all(np.isfinite(float(v)) for r in rows for v in r if v != "")
    assert result.losses == {"critic": pytest.approx(float(by_step["30"]["critic"]), rel=1e-5),
                             "generator": 27.5}
    assert strict_json(tmp_path / "whole" / "metrics.json")["losses"]["generator"] == 27.5

    # stopped at 12, before the generator first reported, then resumed: the header widens in the
    # resumed file, the earlier rows get empty cells, and the rows after the resume are the same
    train("partial_test", steps=12, out=tmp_path / "split", **common)
    train("partial_test", steps=30, out=tmp_path / "split", resume=True, quiet=True)
    split_header, split_rows = read_log(tmp_path / "split" / "log.csv")
    assert split_header == header and all(len(r) == len(header) for r in split_rows)
    split = {r[0]: dict(zip(header, r)) for r in split_rows}
    assert list(split) == ["10", "12", "20", "30"] and split["12"]["generator"] == ""
    for step in ("20", "30"):
        assert {k: v for k, v in split[step].items() if k != "seconds"} == \
            {k: v for k, v in by_step[step].items() if k != "seconds"}
    whole_h, split_h = (tinygen.load(tmp_path / d / "checkpoint.npz")["history"] for d in ("whole", "split"))
    for name in ("critic", "generator"):
        for part in ("step", "value"):
            assert whole_h[name][part].tobytes() == split_h[name][part].tobytes(), (name, part)
    np.testing.assert_array_equal(whole_h["generator"]["step"], [15, 20, 25, 30])


# --- labelled data --------------------------------------------------------------------

class Labelled(GenerativeModel):
    """A class-conditional Bernoulli model, p(x | y) = prod_i Bern(x_i; sigmoid(l_{y,i})),
    that records every batch it is handed: its structure, and whether each label is its image's."""

    data_kind = "labelled"
    default_steps = 20
    seen = []           # (where, got a pair, N of images, N of labels, label dtype, labels true)
    label_of = {}       # image bytes -> label, over the digits train and test sets

    def __init__(self, image_shape=(1, 8, 8), lr=0.05, num_classes=10):
        super().__init__(image_shape)
        self.num_classes = num_classes
        self.logits = Parameter(np.zeros((num_classes, int(np.prod(self.image_shape))), np.float32))
        self.optimizers["main"] = Adam(self.parameters(), lr=lr)

    def _record(self, where, batch):
        pair = isinstance(batch, tuple) and len(batch) == 2
        images, labels = batch if pair else (batch, batch)
        y = labels.numpy()
        true = [self.label_of.get(img.tobytes()) for img in images.numpy()]
        self.seen.append((where, pair, images.shape[0], labels.shape, y.dtype, list(y) == true))
        return images, labels

    def log_prob(self, images, labels):
        onehot = tinygen.tensor(np.eye(self.num_classes, dtype=np.float32)[labels.numpy()])
        x = F.reshape(images, (images.shape[0], -1))
        return bernoulli_log_prob(x, F.matmul(onehot, self.logits))   # each image under its class's logits

    def train_step(self, batch):
        images, labels = self._record("train_step", batch)
        loss = -F.mean(self.log_prob(images, labels))
        opt = self.optimizers["main"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"nll": loss.item()}

    def evaluate(self, batch):
        images, labels = self._record("evaluate", batch)
        with no_grad():
            return {"nll_nats": -float(self.log_prob(images, labels).data.mean())}

    def sample(self, n):
        with no_grad():
            y = np.arange(n) % self.num_classes
            p = 1 / (1 + np.exp(-self.logits.data[y]))
            u = backend.generator("cpu").random(p.shape)
            return Tensor._make((u < p).astype(np.float32).reshape((n,) + self.image_shape))


@pytest.fixture
def labelled(register_model):
    d = datasets.digits()
    images = np.concatenate([d.train_images, d.test_images])
    labels = np.concatenate([d.train_labels, d.test_labels])
    Labelled.label_of = {img.tobytes(): int(y) for img, y in zip(images, labels)}
    Labelled.seen = []
    register_model("labelled_test", Labelled)
    return Labelled


def check_seen(seen, where, sizes):
    got = [s for s in seen if s[0] == where]
    assert [s[2] for s in got] == sizes, where
    for _, pair, n_images, label_shape, dtype, true in got:
        assert pair and label_shape == (n_images,) and dtype == np.int64 and true, where


def test_a_labelled_model_gets_images_with_their_labels(tmp_path, labelled, capsys):
    result = train("labelled_test", steps=20, log_every=10, batch_size=32, out=tmp_path / "run", quiet=True)
    check_seen(labelled.seen, "train_step", [32] * 20)
    n_test = len(datasets.digits().test_images)
    subset = min(EVAL_SUBSET, n_test)
    check_seen(labelled.seen, "evaluate", [subset, subset, n_test])   # two log rows, then the whole test set
    # a measured improvement: each class's pixel frequencies beat the untrained 64 ln 2 nats
    assert result.nll_nats < 64 * np.log(2) - 5

    labelled.seen.clear()
    assert main(["eval", "labelled_test", "--checkpoint", str(tmp_path / "run" / "checkpoint.npz"),
                 "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["test_examples"] == n_test and got["nll_nats"] == result.nll_nats
    check_seen(labelled.seen, "evaluate", [n_test])

    labelled.seen.clear()
    [r] = zoo(minutes=0.2, out=tmp_path / "zoo", names=["labelled_test"], quiet=True, log_every=10)
    assert not r.get("error") and r["data"] == "digits" and r["step"] == 20
    check_seen(labelled.seen, "train_step", [64] * 20)
    assert (tmp_path / "zoo" / "gallery.png").is_file()


class ScoredAgainstLabels(Labelled):
    """Trains on images alone (InfoGAN's way) but is scored with the labels: ``eval_data_kind``."""
    data_kind = "image"
    eval_data_kind = "labelled"

    def train_step(self, batch):
        self.seen.append(("train_step", isinstance(batch, tuple), batch.shape[0], None, None, True))
        return {"nll": 0.0}


def test_eval_data_kind_hands_evaluate_the_labels_and_train_step_none(tmp_path, labelled, register_model):
    register_model("scored_test", ScoredAgainstLabels)
    ScoredAgainstLabels.seen = []
    train("scored_test", steps=4, log_every=2, batch_size=16, out=tmp_path / "run", quiet=True)
    steps = [s for s in ScoredAgainstLabels.seen if s[0] == "train_step"]
    assert [(pair, n) for _, pair, n, *_ in steps] == [(False, 16)] * 4      # images only
    n_test = len(datasets.digits().test_images)
    subset = min(EVAL_SUBSET, n_test)
    check_seen(ScoredAgainstLabels.seen, "evaluate", [subset, subset, n_test])  # with their labels


def test_chunked_evaluation_is_the_mean_over_every_example(labelled):
    d = datasets.digits()
    tinygen.manual_seed(0)
    model = models.build("labelled_test")
    model.logits.data[...] = np.random.default_rng(0).standard_normal(model.logits.shape)
    arrays = (d.test_images, d.test_labels)
    whole = evaluate(model, arrays, chunk=10**6)["nll_nats"]
    assert evaluate(model, arrays, chunk=100)["nll_nats"] == pytest.approx(whole, rel=1e-6)   # float32 sums
    check_seen(labelled.seen, "evaluate", [359, 100, 100, 100, 59])


class Spoken(BernoulliPixels):
    data_kind = "spoken"   # no data set gives sound


class Bogus(BernoulliPixels):
    data_kind = "pictures"


@pytest.mark.parametrize("name,cls", [("spoken_test", Spoken), ("bogus_test", Bogus)])
def test_a_data_kind_tinygen_cannot_provide_is_refused_by_name(tmp_path, register_model, name, cls):
    register_model(name, cls)
    with pytest.raises(UsageError) as err:
        train(name, steps=1, out=tmp_path / "run", quiet=True)
    message = str(err.value)
    for wanted in (name, repr(cls.data_kind), "'image'", "'labelled'", "'toy'"):
        assert wanted in message, (wanted, message)
    assert not (tmp_path / "run").exists()   # refused before anything was written


def test_data_that_lacks_what_the_kind_needs_is_refused(tmp_path, labelled):
    with pytest.raises(UsageError) as err:
        train("labelled_test", data="toy:ring", steps=1, out=tmp_path / "run", quiet=True)
    message = str(err.value)
    assert "labelled images" in message and "--data digits" in message and "mnist:DIR" in message
