"""The zoo's pages: one summary table grouped as the notes are, and a section per model.

    out/index.html   the summary table, the gallery, then a section per model in the notes'
                     order: its samples and own pictures, its loss plot, each test metric
                     with its meaning in one line, a link to its code
    out/results.md   the same summary table
    out/gallery.png  a row of real digits, then a row of samples per model that draws from noise

The summary has one table per part of the notes, each judged by what its models can be
compared on:

    explicit models (sections 1-3)   the exact test NLL, -1/N sum_n log p(x_n), in nats and
                                     bits per pixel; bernoulli, which ignores every dependency
                                     between pixels, is the baseline the others must beat
    latent-variable models (4-5)     the VAE's importance-sampled NLL (a density), the
                                     autoencoders' reconstruction cost and the distance of
                                     their encodings from the prior (MMD), and sample metrics
    GANs (section 7)                 sample metrics against a first row of real test digits:
                                     FD against the FD between training and test digits (the
                                     floor), class KL and the confident share; each model's own
                                     metric beside them (translators: their error against the
                                     error of the identity map)

A model outside these sections (one a user registered) gets a table of its own, by its
first metric. The pages use no external asset: images and links are relative to the
page, the code links are file: addresses, so the folder works offline from the disk.
"""
import html
import inspect
import re
from pathlib import Path

import tinygen
from . import data as datasets
from .imaging import _font, _save_png, make_grid
from .run_config import code_path, model_info
from .run_checkpoint import read_checkpoint, restore_model
from .run_files import CHECKPOINT, LOG, LOSSES, METRICS, SAMPLES, write_text

# run fields of a result, as opposed to the model's test metrics
RUN_KEYS = {"model", "kind", "section", "data", "data_shape", "device", "seed", "batch_size", "options",
            "step", "epochs", "train_seconds", "steps_per_second", "interrupted", "losses",
            "wall_seconds", "error", "pictures", "signal", "notes"}

METRIC_MEANINGS = {
    "nll_nats": "test negative log-likelihood per image, -mean log p(x), in nats (lower is better)",
    "bits_per_dim": "the same NLL per pixel, in bits",
    "elbo_nats": "the negative ELBO per image in nats: reconstruction + KL, a bound above the NLL",
    "kl_nats": "KL(q(z|x) || p(z)) per image in nats: the ELBO's prior-fitting term",
    "nll_importance_samples": "k, the importance samples per image behind the NLL estimate (the IWAE bound L_k)",
    "active_units": "latent dimensions whose posterior mean varies with x (variance over the data > 0.01)",
    "reconstruction_nats": "the decoder's cost -log p(x | z) at the encoding z = Q(x), per image in nats",
    "latent_mmd": "MMD between the test encodings Q(x) and prior draws (0: the encodings fill the prior)",
    "frechet_distance": "Fréchet distance between samples and test digits in the digits classifier's "
                        "features (lower is better; see frechet_floor)",
    "frechet_floor": "the same distance between training and test digits: the best a generator can expect",
    "class_kl": "KL(histogram of the digits the classifier reads in samples || uniform), nats: "
                "0 = every digit equally often",
    "confident": "share of samples the digits classifier reads with probability > 0.9",
    "cluster_accuracy": "accuracy of the categorical code as a digit label, after the best one-to-one "
                        "matching of codes to digits (Hungarian)",
    "caption_accuracy": "share of images drawn for a caption whose digit the classifier reads as the caption's",
    "slant_accuracy": "share of images whose measured slant (left / upright / right) is the caption's",
    "cycle_error": "mean |F(G(a)) - a| and |G(F(b)) - b|: how well the way back undoes the way there",
    "translation_error": "mean |G(x) - T(x)| against the true transform T (lower is better; compare "
                         "identity_error)",
    "identity_error": "mean |x - T(x)|: the error of the map that changes nothing",
    "label_preservation": "share of translations the classifier reads as the same digit as the source",
    "label_preservation_truth": "the same share for the true transform T: the ceiling",
    "reconstruction_error": "mean |G(G(x, c'), c) - x|: the way back to the original attributes",
    "attribute_accuracy_real": "share of attributes the discriminator's attribute head reads right on "
                               "real images",
}
# metrics whose name means something else in one model
MODEL_METRIC_MEANINGS = {
    ("text2image", "attribute_accuracy"): "share of images whose measured thickness (thick or not) is "
                                          "the caption's",
    ("stargan", "attribute_accuracy"): "share of the target attributes the discriminator's attribute "
                                       "head reads right on the translations",
}
_SUFFIXED = re.compile(r"(translation_error|identity_error|label_preservation)_(\w+)$")


def metric_meaning(model, name):
    """The one line index.html shows beside ``model``'s test metric ``name``."""
    if (model, name) in MODEL_METRIC_MEANINGS:
        return MODEL_METRIC_MEANINGS[(model, name)]
    if name in METRIC_MEANINGS:
        return METRIC_MEANINGS[name]
    part = _SUFFIXED.match(name)
    if part:
        base, which = part.groups()
        target = {"ab": "A -> B", "ba": "B -> A", "any": "a target drawn from all valid attribute sets"}
        return f"{METRIC_MEANINGS[base]}; for {target.get(which, 'the change of ' + which)}"
    return "see the model's evaluate docstring"


def reported_metrics(r):
    """A result's test metrics (name -> number), in the order the model reported them."""
    return {k: v for k, v in r.items()
            if k not in RUN_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)}


# --- the summary table ---------------------------------------------------------------------

class Group:
    """One table of the summary: the models of some sections of the notes, and what they are judged by.

    ``columns`` are (label, cell) pairs, cell(model, metrics) -> text; with ``real_row`` the
    table starts with the test digits scored as samples are."""

    def __init__(self, title, sections, columns, note, real_row=False):
        self.title, self.sections, self.columns, self.note = title, sections, columns, note
        self.real_row = real_row

    def holds(self, section_number):
        return section_number in self.sections

    def header(self):
        return ["model", "section"] + [label for label, _ in self.columns] + ["steps", "training time"]

    def row(self, r):
        if r.get("error"):
            return [r["model"], r.get("section") or "", f"failed: {r['error']}"] + \
                ["-"] * (len(self.columns) + 1)
        metrics = reported_metrics(r)
        return ([r["model"], r.get("section") or ""] + [cell(r["model"], metrics) for _, cell in self.columns]
                + [str(r["step"]), f"{r['train_seconds']:.1f} s"])


class _Value:
    """A cell showing the metric ``name``, or '-' where the model has none."""

    def __init__(self, name, spec=".3f"):
        self.name, self.spec = name, spec

    def __call__(self, model, metrics):
        return format(metrics[self.name], self.spec) if self.name in metrics else "-"


OWN_METRICS = {   # the GAN table's last column: what each model is for, in its own terms
    "infogan": ("cluster_accuracy",),
    "text2image": ("caption_accuracy", "attribute_accuracy"),
    "cyclegan": ("translation_error", "identity_error", "label_preservation"),
    "stargan": ("translation_error", "identity_error", "attribute_accuracy"),
}


def _own(model, metrics):
    shown = [f"{k} {metrics[k]:.3g}" for k in OWN_METRICS.get(model, ()) if k in metrics]
    return ", ".join(shown) or "-"


GROUPS = (
    Group("Explicit models: exact test likelihood", {1, 2, 3},
          [("test NLL (nats)", _Value("nll_nats", ".2f")), ("bits/dim", _Value("bits_per_dim"))],
          "Lower is better. bernoulli treats pixels as independent: the baseline every model of the "
          "chain rule must beat."),
    Group("Latent-variable models", {4, 5},
          [("test NLL (nats)", _Value("nll_nats", ".2f")), ("-ELBO (nats)", _Value("elbo_nats", ".2f")),
           ("reconstruction (nats)", _Value("reconstruction_nats", ".2f")),
           ("latent MMD", _Value("latent_mmd", ".4f")), ("FD", _Value("frechet_distance", ".1f")),
           ("class KL", _Value("class_kl"))],
          "The VAE has a density (its NLL is the importance-sampled bound); the AAE and the WAE are judged "
          "by their reconstructions, how well their encodings fill the prior, and their samples."),
    Group("GANs: samples against the real data", {6, 7},
          [("FD", _Value("frechet_distance", ".1f")), ("class KL", _Value("class_kl")),
           ("confident", _Value("confident")), ("its own metric", _own)],
          "The first row is the test digits themselves: the FD between training and test digits is the "
          "floor, and their class KL and confident share are what a perfect generator would reach. "
          "Translators (cyclegan, stargan) draw nothing from noise; their error is shown beside the "
          "identity map's.", real_row=True),
)


def _first(model, metrics):
    return next((f"{k} {v:.4g}" for k, v in metrics.items()), "-")


OTHER = Group("Other models", set(), [("first test metric", _first)], "Models outside the notes' sections.")


def section_number(section):
    number = re.match(r"\s*(\d+)", section or "")
    return int(number.group(1)) if number else None


def group_of(r):
    """The summary table a result belongs in, by the number of its section of the notes."""
    number = section_number(r.get("section"))
    return next((g for g in GROUPS if g.holds(number)), OTHER)


def summary(results):
    """[(group, rows)] for the groups that hold a model, in the notes' order; rows are lists of cells."""
    tables = []
    for group in GROUPS + (OTHER,):
        mine = [r for r in results if group_of(r) is group]
        if mine:
            rows = [group.row(r) for r in mine]
            if group.real_row and any(r.get("data") == "digits" for r in mine):
                rows.insert(0, real_digits_row(group))
            tables.append((group, rows))
    return tables


def real_digits_row(group):
    """The GAN table's first row: the test digits scored as if they were samples."""
    from .metrics import class_histogram_kl, confident_fraction, digits_classifier
    test = datasets.digits().test_images
    metrics = {"frechet_distance": digits_classifier().info["fd_train_test"],
               "class_kl": class_histogram_kl(test), "confident": confident_fraction(test)}
    return ["real test digits", ""] + [cell("", metrics) for _, cell in group.columns] + ["-", "-"]


def summary_markdown(results):
    lines = []
    for group, rows in summary(results):
        lines += [f"## {group.title}", "", group.note, "",
                  "| " + " | ".join(group.header()) + " |", "|" + "---|" * len(group.header())]
        lines += ["| " + " | ".join(cells) + " |" for cells in rows]
        lines.append("")
    return lines


def summary_html(results):
    e, parts = html.escape, []
    for group, rows in summary(results):
        parts.append(f"<h3>{e(group.title)}</h3><p>{e(group.note)}</p><table class='summary'><tr>"
                     + "".join(f"<th>{e(h)}</th>" for h in group.header()) + "</tr>")
        for cells in rows:
            name = cells[0]
            first = f"<a href='#{e(name)}'>{e(name)}</a>" if not name.startswith("real ") else e(name)
            parts.append("<tr><td>" + first + "</td>" + "".join(f"<td>{e(c)}</td>" for c in cells[1:]) + "</tr>")
        parts.append("</table>")
    return "\n".join(parts)


# --- the files -----------------------------------------------------------------------------

def write_gallery(results, out, per_row=16):
    """gallery.png: a row of real digits, then a row of samples per image model, each labelled."""
    from PIL import Image, ImageDraw
    rows = [("data", datasets.digits().test_images[:per_row])]
    for r in results:
        if r.get("error") or r.get("data") != "digits":
            continue
        ckpt_path = out / r["model"] / CHECKPOINT
        model = restore_model(read_checkpoint(ckpt_path), ckpt_path)
        if model.translates:   # draws nothing from noise; its samples.png shows translations
            continue
        tinygen.manual_seed(0)
        rows.append((r["model"], model.sample(per_row).numpy()))
    strips = [make_grid(images, nrow=per_row, padding=1, scale=3) for _, images in rows]
    label_w, gap = 110, 4
    width = label_w + max(s.shape[1] for s in strips)
    height = sum(s.shape[0] for s in strips) + gap * (len(strips) - 1)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw, font, y = ImageDraw.Draw(canvas), _font(), 0
    for (label, _), strip in zip(rows, strips):
        canvas.paste(Image.fromarray(strip[..., 0]).convert("RGB"), (label_w, y))
        draw.text((6, y + strip.shape[0] / 2 - 6), label, fill=(0, 0, 0), font=font)
        y += strip.shape[0] + gap
    return _save_png(canvas, out / "gallery.png")   # a temporary file, then a rename


def write_zoo_pages(results, out, minutes, seed, device):
    """index.html, results.md and gallery.png for the zoo's ``results`` in ``out``."""
    out = Path(out)
    try:
        write_gallery(results, out)
        gallery = True
    except Exception:   # a picture is not worth losing the tables for
        gallery = False
    command = f"tinygen zoo --minutes {minutes:g}" + (f" --seed {seed}" if seed else "") + \
        (f" --device {device}" if device != "cpu" else "")
    write_text(str(out / "results.md"), results_markdown(results, minutes, seed, device, command))
    write_text(str(out / "index.html"), index_html(results, minutes, seed, device, command, gallery))


def _intro(minutes, seed, device, command):
    return (f"Every model trained on the bundled 8x8 digits (binarized for the binary models) within "
            f"{minutes:g} minutes in all, seed {seed}, on {device}: `{command}`. Test metrics are on the "
            f"{len(datasets.digits().test_images)} digits test images.")


def results_markdown(results, minutes, seed, device, command):
    return "\n".join(["# tinygen zoo", "", _intro(minutes, seed, device, command), ""]
                     + summary_markdown(results))


STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
         "img{image-rendering:pixelated;margin-right:1em;vertical-align:top}"
         "table{border-collapse:collapse;margin-bottom:1em}"
         "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
         "td.meaning{color:#555}section{border-top:1px solid #ddd;margin-top:2em}")


def index_html(results, minutes, seed, device, command, gallery):
    e = html.escape
    intro = e(_intro(minutes, seed, device, command)).replace(f"`{e(command)}`", f"<code>{e(command)}</code>")
    parts = ["<!doctype html>", "<html><head><meta charset='utf-8'><title>tinygen zoo</title>",
             f"<style>{STYLE}</style></head><body>", "<h1>tinygen zoo</h1>",
             f"<p>{intro} The tables are also in <a href='results.md'>results.md</a>.</p>",
             summary_html(results)]
    if gallery:
        parts.append("<p><img src='gallery.png' alt='real digits, then samples of each model'></p>")
    parts += [model_section(r) for r in results]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _code_link(info):
    """A file: link to the model's source, the file a reader opens next."""
    try:
        href = Path(inspect.getsourcefile(info.cls)).resolve().as_uri()
    except (TypeError, OSError):
        return f"<code>{html.escape(code_path(info))}</code>"
    return f"<a href='{html.escape(href)}'><code>{html.escape(code_path(info))}</code></a>"


def model_section(r):
    """One model's part of index.html: what it is, its pictures, its numbers with their meaning, its files."""
    e, name = html.escape, r["model"]
    info = model_info(name)
    head = (f"<section id='{e(name)}'><h2>{e(name)}</h2>"
            f"<p>{e(r['kind'] or '')} model, section {e(r['section'] or '')}: "
            f"{e(info.summary or '')} ({_code_link(info)})</p>")
    if r.get("error"):
        return head + f"\n<p><b>failed:</b> {e(r['error'])}</p></section>"
    def link(file):   # relative to the page: the folder can be moved or opened offline
        return f"{name}/{file}"
    own = "".join(f"<img src='{e(link(p))}' alt='{e(p[:-4])} of {e(name)}'>" for p in r.get("pictures") or [])
    pictures = (f"<p><img src='{e(link(SAMPLES))}' alt='samples of {e(name)}'>"
                f"<img src='{e(link(LOSSES))}' alt='training losses of {e(name)}' width='480'>{own}</p>")
    metrics = "".join(f"<tr><th>test {e(k)}</th><td>{v:.4g}</td><td class='meaning'>{e(metric_meaning(name, k))}"
                      "</td></tr>" for k, v in reported_metrics(r).items())
    facts = [("steps", r["step"]), ("epochs", r["epochs"]), ("training time", f"{r['train_seconds']:.1f} s"),
             ("steps per second", r["steps_per_second"]), ("data", r["data"]),
             ("final training losses", ", ".join(f"{k} {v:.4g}" for k, v in r["losses"].items()))]
    table = ("<table>" + metrics + "".join(f"<tr><th>{e(str(a))}</th><td colspan='2'>{e(str(b))}</td></tr>"
                                           for a, b in facts) + "</table>")
    links = (f"<p><a href='{e(link(LOG))}'>log.csv</a> · <a href='{e(link(METRICS))}'>metrics.json</a> · "
             f"<a href='{e(link(CHECKPOINT))}'>checkpoint.npz</a> · again: "
             f"<code>tinygen train {e(name)} --steps {r['step']}</code></p></section>")
    return "\n".join([head, pictures, table, links])
