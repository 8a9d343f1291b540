"""A model's own pictures (``pictures()``) reach the run folder, metrics.json and the zoo page.

A small model registered only for the test draws two pictures from the test images it
is given: the run writes each as NAME.png, lists them in metrics.json, ``--overwrite``
removes them with the other run files, the zoo's index.html shows them, and drawing
them does not move the training random stream (a metric that draws random numbers
comes out the same with and without them).
"""
import json

import numpy as np
import pytest
from PIL import Image

from tinygen import models
from tinygen.models import register
from tinygen.models.bernoulli import BernoulliPixels
from tinygen import backend
from tinygen.run_folder import run_files
from tinygen.train import train
from tinygen.zoo import zoo


class Pictured(BernoulliPixels):
    """Bernoulli pixels with two pictures: the mean test image, and the labels as a bar."""
    seen = []

    def pictures(self, images, labels=None):
        Pictured.seen.append((tuple(images.shape), None if labels is None else np.asarray(labels).copy()))
        backend.generator("cpu").random(5)          # drawing may use randomness: kept aside
        mean = (images.numpy().mean(axis=(0, 1)) * 255).astype(np.uint8)
        bar = np.zeros((4, 10, 3), np.uint8)
        if labels is not None:
            bar[:, np.unique(labels)] = 255
        return {"mean_image": mean, "label_bar": bar}

    def evaluate(self, batch):
        return {**super().evaluate(batch), "draw": float(backend.generator("cpu").random())}


@pytest.fixture
def pictured(monkeypatch):
    models.available()
    monkeypatch.setattr(models, "_REGISTRY", dict(models._REGISTRY))
    register("pictured", kind="explicit", section="test", summary="a model of the tests")(Pictured)
    Pictured.seen = []
    return "pictured"


def test_pictures_are_written_listed_and_cleared(pictured, tmp_path):
    out = tmp_path / "run"
    result = train(pictured, steps=3, out=str(out), quiet=True)
    assert result["pictures"] == ["mean_image.png", "label_bar.png"]
    assert json.loads((out / "metrics.json").read_text())["pictures"] == result["pictures"]
    assert Image.open(out / "mean_image.png").size == (8, 8)
    assert Image.open(out / "label_bar.png").size == (10, 4)
    shape, labels = Pictured.seen[-1]
    assert shape == (359, 1, 8, 8)                   # every digits test image (fewer than 512)
    assert labels is not None and set(np.unique(labels)) == set(range(10))
    assert {"mean_image.png", "label_bar.png"} <= set(run_files(str(out)))
    train(pictured, steps=2, out=str(out), quiet=True, overwrite=True)
    assert (out / "mean_image.png").exists()          # written again by the new run


def test_drawing_pictures_changes_no_metric(pictured, tmp_path, monkeypatch):
    # the model's evaluate draws a random number: the same with and without pictures drawn first
    with_pictures = train(pictured, steps=4, out=str(tmp_path / "a"), quiet=True, seed=3)
    monkeypatch.delattr(Pictured, "pictures")
    without = train(pictured, steps=4, out=str(tmp_path / "b"), quiet=True, seed=3)
    assert with_pictures["draw"] == without["draw"]
    assert with_pictures["nll_nats"] == without["nll_nats"]


def test_the_zoo_page_shows_a_models_pictures(pictured, tmp_path):
    zoo(minutes=0.02, out=str(tmp_path / "zoo"), names=[pictured], quiet=True)
    page = (tmp_path / "zoo" / "index.html").read_text()
    assert "mean_image.png" in page and "label_bar.png" in page
