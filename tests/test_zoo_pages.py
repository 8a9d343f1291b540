"""The zoo's pages: the summary grouped as the notes are, every metric explained, a page that
works offline, checked in a real headless browser where one is installed."""
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import tinygen
from tinygen.data.kinds import head
from tinygen.metrics import digits_classifier
from tinygen.run_config import build_model, model_info, ordered_models
from tinygen.run_data import load_data
from tinygen.train import evaluate
from tinygen.zoo import zoo
from tinygen.zoo_pages import GROUPS, OTHER, metric_meaning, summary, summary_markdown


def _result(model, section, **metrics):
    return dict(model=model, kind="implicit", section=section, data="digits", step=10, train_seconds=1.5,
                epochs=1.0, steps_per_second=6.7, losses={"loss": 1.0}, **metrics)


RESULTS = [_result("bernoulli", "1. conditional independence", nll_nats=24.6, bits_per_dim=0.555),
           _result("nade", "2. NADE", nll_nats=17.4, bits_per_dim=0.392),
           _result("vae", "4. VAE", nll_nats=17.9, elbo_nats=18.5),
           _result("wae", "5. AAE and WAE", reconstruction_nats=16.3, frechet_distance=26.5),
           _result("dcgan", "7. GAN", frechet_distance=23.5, class_kl=0.017, confident=0.68),
           _result("cyclegan", "7. GAN", translation_error=0.08, identity_error=0.117),
           dict(model="stargan", kind="implicit", section="7. GAN", error="ValueError: broken"),
           _result("mine", "a user's own", score=3.25)]


def test_the_summary_groups_the_models_as_the_notes_do():
    tables = summary(RESULTS)
    assert [g for g, _ in tables] == list(GROUPS) + [OTHER]
    names = [[row[0] for row in rows] for _, rows in tables]
    assert names == [["bernoulli", "nade"], ["vae", "wae"],
                     ["real test digits", "dcgan", "cyclegan", "stargan"], ["mine"]]
    explicit, latent, gans, other = [rows for _, rows in tables]
    assert explicit[0][2:4] == ["24.60", "0.555"]
    assert latent[0][2:4] == ["17.90", "18.50"] and latent[1][2:4] == ["-", "-"]   # no density: no NLL
    floor = digits_classifier().info["fd_train_test"]
    assert gans[0][2] == f"{floor:.1f}"                      # the real data's FD is the floor
    assert gans[1][2:5] == ["23.5", "0.017", "0.680"]
    assert "translation_error 0.08, identity_error 0.117" in gans[2][5]
    assert "failed: ValueError: broken" in gans[3]
    assert other[0][2] == "score 3.25"


def test_the_markdown_holds_the_same_cells():
    md = "\n".join(summary_markdown(RESULTS))
    for _, rows in summary(RESULTS):
        for cells in rows:
            assert "| " + " | ".join(cells) + " |" in md


@pytest.mark.parametrize("name", ordered_models())
def test_every_metric_a_model_reports_has_its_meaning(name):
    """evaluate() on a few test rows of an untrained model: each metric name it reports is explained."""
    info = model_info(name)
    data = load_data("toy:ring" if info.cls.data_kind == "toy" else "digits", info, {})
    tinygen.manual_seed(0)
    metrics = evaluate(build_model(info, data.shape, {}, "cpu"), head(data.test, 24))
    unexplained = [k for k in metrics if metric_meaning(name, k) == metric_meaning(name, "no such metric")]
    assert not unexplained, f"{name}: no meaning for {unexplained}"


def test_a_suffixed_metric_says_which_change_it_measures():
    assert metric_meaning("stargan", "translation_error_thick").endswith("for the change of thick")
    assert "A -> B" in metric_meaning("cyclegan", "identity_error_ab")
    assert metric_meaning("text2image", "attribute_accuracy") != metric_meaning("stargan", "attribute_accuracy")


# --- a real page -----------------------------------------------------------------------------

ZOO_MODELS = ["bernoulli", "vae", "dcgan"]   # one of each table


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo") / "zoo"
    zoo(minutes=0.15, out=str(out), names=ZOO_MODELS, quiet=True)
    return out


def _addresses(text):
    return re.findall(r"(?:src|href)='([^']*)'", text)


def test_the_page_uses_no_external_asset_and_its_links_resolve(page):
    text = (page / "index.html").read_text()
    assert "<script" not in text and "@import" not in text and "url(" not in text
    for address in _addresses(text):
        assert not re.match(r"(https?:)?//", address), address
        if address.startswith("#"):
            assert f"id='{address[1:]}'" in text, address
        elif address.startswith("file:"):
            assert Path(address[len("file://"):]).is_file(), address   # the model's own source
        else:
            assert (page / address).is_file(), address
    for name in ZOO_MODELS:   # a section per model, its code linked
        assert f"<section id='{name}'>" in text and f"tinygen/models/{name}.py</code></a>" in text
    assert (page / "results.md").read_text().count("## ") == 3


CHECK = """<pre id='check'></pre><script>
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                     .map(function (i) { return i.getAttribute('src'); });
  var fetched = performance.getEntriesByType('resource').map(function (e) { return e.name; });
  document.getElementById('check').textContent = JSON.stringify(
    {images: images.length, broken: broken, fetched: fetched, tables: document.querySelectorAll('table.summary').length});
});
</script></body>"""


def _browser():
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.mark.skipif(_browser() is None, reason="no headless Chromium installed")
def test_the_page_renders_in_a_headless_browser_offline(page):
    """Chromium opens the page from the disk: every image decodes and nothing is fetched but files."""
    checked = page / "check.html"   # beside index.html, so its relative addresses are the same
    checked.write_text((page / "index.html").read_text().replace("</body>", CHECK))
    dom = subprocess.run([_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                          "--dump-dom", checked.as_uri()], capture_output=True, text=True, timeout=120).stdout
    found = re.search(r"<pre id=\"check\">(.*?)</pre>", dom, re.S)
    assert found and found.group(1), dom[-2000:]
    check = json.loads(html.unescape(found.group(1)))
    # the gallery, then per model its samples, its losses and its own pictures
    assert check["images"] >= 1 + 2 * len(ZOO_MODELS) and check["broken"] == []
    assert check["tables"] == 3
    assert all(address.startswith("file:") for address in check["fetched"]), check["fetched"]
