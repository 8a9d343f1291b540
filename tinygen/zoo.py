"""``tinygen zoo``: every registered model trained within one budget, and the pages that show them.

    out/MODEL/      a full training run per model (``tinygen.train``)
    out/index.html  a section per model: samples, losses, test metrics, relative links
    out/results.md  one table, the one README.md shows
    out/gallery.png a row of real digits, then a row of samples per image model

The budget is shared as it goes, by each model's needs. With T the time left,
R the models not yet trained, w_m a model's weight (``ZOO_WEIGHTS``, 1 unless
said: a baseline with one layer needs less than a pair of networks) and o the
time a run takes beyond its training (evaluation, pictures; measured on the runs
so far, ``FIRST_OVERHEAD`` before the first), model k trains for

    share_k = (T - o |R| - PAGES_SECONDS) w_k / sum_{m in R} w_m       (at least 1 s)

up to its own ``default_steps``, so a model that finishes early leaves its time
to the ones after it, and the whole zoo, pages included, ends within its budget. Each model trains on
the data its ``data_kind`` asks for (``ZOO_DATA``; digits unless said otherwise).
One model that fails costs the others nothing: its result carries an ``error``.
The zoo's folder is its own: running it again replaces the runs it holds.
"""
import html
import os
import sys
import time
import traceback
from pathlib import Path

import tinygen
from . import data as datasets
from .imaging import _font, _save_png, make_grid
from .run_config import DEFAULT_LOG_EVERY, UsageError, code_path, model_info, ordered_models, positive
from .run_files import (CHECKPOINT, LOG, LOSSES, METRICS, SAMPLES, headline_metric, read_checkpoint,
                        restore_model, write_text)
from .run_folder import check_out_folder
from .train import RunResult, train

DEFAULT_ZOO_MINUTES = 5.0
ZOO_DATA = {"toy": "toy:ring"}   # data_kind -> --data; every other kind trains on "digits"
ZOO_WEIGHTS = {"bernoulli": 0.25, "fvsbn": 0.5, "nade": 0.75, "dcgan": 1.5, "infogan": 1.5, "text2image": 1.5,
               "cyclegan": 1.5, "stargan": 1.5, "progan": 1.5}
FIRST_OVERHEAD = 3.0     # seconds a run takes beyond its training, until the first run is measured
PAGES_SECONDS = 5.0      # index.html, results.md and the gallery at the end

# run fields of a result, as opposed to the model's test metrics
_RUN_KEYS = {"model", "kind", "section", "data", "data_shape", "device", "seed", "batch_size", "options",
             "step", "epochs", "train_seconds", "steps_per_second", "interrupted", "losses",
             "wall_seconds", "error", "pictures", "signal", "notes"}


def zoo(minutes=DEFAULT_ZOO_MINUTES, out=os.path.join("runs", "zoo"), names=None, device="cpu",
        seed=0, quiet=False, progress=None, log_every=DEFAULT_LOG_EVERY):
    """Train every registered model (or ``names``) within ``minutes`` in all; write the pages.

    Returns the list of per-model results (``RunResult``); one that failed has an ``error``.
    """
    minutes = positive("--minutes", minutes, float)
    names = ordered_models() if names is None else list(names)
    if not names:
        raise UsageError("zoo: the list of models is empty; name at least one, or pass None for all")
    for name in names:
        model_info(name)   # an unknown name fails before any training
    check_out_folder(out)
    out = Path(out)
    if progress is None:   # each model's bar, though its own log lines stay quiet
        progress = not quiet and sys.stderr.isatty()
    deadline = time.perf_counter() + minutes * 60
    budget = _Budget(deadline, names)
    results = []
    for k, name in enumerate(names):
        t0 = time.perf_counter()
        r = _train_one(name, budget.share(name), out, device, seed, progress, log_every)
        r["wall_seconds"] = round(time.perf_counter() - t0, 2)
        budget.spent(name, r)
        results.append(r)
        if not quiet:
            status = (f"failed: {r['error']}" if r.get("error") else
                      f"{r['step']} steps in {r['train_seconds']:.1f} s, test {_headline(r)}")
            print(f"[{k + 1}/{len(names)}] {name}: {status}", flush=True)
        if r.get("interrupted"):
            break
    write_zoo_pages(results, out, minutes, seed, device)
    if not quiet:
        print(f"wrote {out / 'index.html'}, {out / 'results.md'} and {out / 'gallery.png'}", flush=True)
    return results


class _Budget:
    """The module docstring's share_k: the time left, split over the models left by weight."""

    def __init__(self, deadline, names):
        self.deadline, self.left = deadline, list(names)
        self.overheads = []

    def share(self, name):
        overhead = sum(self.overheads) / len(self.overheads) if self.overheads else FIRST_OVERHEAD
        free = self.deadline - time.perf_counter() - overhead * len(self.left) - PAGES_SECONDS
        weights = sum(ZOO_WEIGHTS.get(m, 1.0) for m in self.left)
        return max(1.0, free * ZOO_WEIGHTS.get(name, 1.0) / weights)

    def spent(self, name, result):
        self.left.remove(name)
        if not result.get("error"):
            self.overheads.append(max(0.0, result["wall_seconds"] - result.get("train_seconds", 0.0)))


def _train_one(name, seconds, out, device, seed, progress, log_every):
    """One model's run within ``seconds``; a broken model gives a result with its ``error``."""
    info = model_info(name)
    try:
        return train(name, data=ZOO_DATA.get(info.cls.data_kind, "digits"),
                     steps=int(info.cls.default_steps), time_limit=seconds, seed=seed, device=device,
                     out=out / name, overwrite=True, quiet=True, progress=progress, log_every=log_every)
    except UsageError as exc:   # e.g. --device cuda without a GPU: the same for every model
        raise UsageError(f"zoo: {name}: {exc}") from None
    except Exception as exc:    # one broken model should not cost the others their results
        traceback.print_exc()
        return RunResult(model=name, kind=info.kind, section=info.section, error=f"{type(exc).__name__}: {exc}")


def _headline(metrics):
    """The zoo's one number: test NLL for explicit models, else the model's first metric."""
    name = headline_metric(k for k in metrics if k not in _RUN_KEYS and isinstance(metrics[k], (int, float))
                           and not isinstance(metrics[k], bool))
    if name == "nll_nats":
        text = f"{metrics['nll_nats']:.2f} nats"
        if "bits_per_dim" in metrics:
            text += f" ({metrics['bits_per_dim']:.3f} bits/dim)"
        return text
    return f"{name} {metrics[name]:.4g}" if name is not None else "-"


def _model_dir_link(r, name):
    return f"{r['model']}/{name}"


def write_gallery(results, out, per_row=16):
    """gallery.png: a row of real digits, then a row of samples per image model, each labelled."""
    from PIL import Image, ImageDraw
    rows = [("data", datasets.digits().test_images[:per_row])]
    for r in results:
        if r.get("error") or r.get("data") != "digits":
            continue
        ckpt_path = out / r["model"] / CHECKPOINT
        ckpt = read_checkpoint(ckpt_path)
        model = restore_model(ckpt, ckpt_path)
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
    """index.html (a section per model, relative links) and results.md (one table)."""
    out = Path(out)
    try:
        write_gallery(results, out)
        gallery = True
    except Exception:   # a picture is not worth losing the tables for
        gallery = False
    command = f"tinygen zoo --minutes {minutes:g}" + (f" --seed {seed}" if seed else "") + \
        (f" --device {device}" if device != "cpu" else "")
    write_text(str(out / "results.md"), _results_markdown(results, minutes, seed, device, command))
    write_text(str(out / "index.html"), _index_html(results, minutes, seed, device, command, gallery))


def _results_markdown(results, minutes, seed, device, command):
    md = ["# tinygen zoo", "",
          f"Every registered model trained on the bundled 8x8 digits (binarized for binary models; "
          f"2-D models on toy:ring) within {minutes:g} minutes in all, seed {seed}, on {device}: "
          f"`{command}`. Test NLL is on the {len(datasets.digits().test_images)} digits test images "
          "(lower is better); implicit models show their own sample metric.", "",
          "| model | kind | section | test NLL (nats) or sample metric | steps | training time |",
          "|---|---|---|---|---|---|"]
    for r in results:
        if r.get("error"):
            md.append(f"| {r['model']} | {r['kind']} | {r['section']} | failed: {r['error']} | - | - |")
        else:
            md.append(f"| {r['model']} | {r['kind']} | {r['section']} | {_headline(r)} | {r['step']} "
                      f"| {r['train_seconds']:.1f} s |")
    return "\n".join(md) + "\n"


def _index_html(results, minutes, seed, device, command, gallery):
    e = html.escape
    parts = ["<!doctype html>", "<html><head><meta charset='utf-8'><title>tinygen zoo</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "img{image-rendering:pixelated;margin-right:1em;vertical-align:top}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
             "section{border-top:1px solid #ddd;margin-top:2em}</style></head><body>",
             "<h1>tinygen zoo</h1>",
             f"<p>Every registered model trained on the bundled 8x8 digits within {minutes:g} minutes "
             f"in all (seed {seed}, {e(device)}): <code>{e(command)}</code>. "
             "The table is also in <a href='results.md'>results.md</a>.</p>"]
    if gallery:
        parts.append("<p><img src='gallery.png' alt='real digits, then samples of each model'></p>")
    parts += [_model_section(r) for r in results]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _model_section(r):
    """One model's part of index.html: what it is, its pictures, its numbers, its files."""
    e, name = html.escape, r["model"]
    info = model_info(name)
    head = (f"<section id='{e(name)}'><h2>{e(name)}</h2>"
            f"<p>{e(r['kind'] or '')} model, section {e(r['section'] or '')}: "
            f"{e(info.summary or '')} (<code>{e(code_path(info))}</code>)</p>")
    if r.get("error"):
        return head + f"\n<p><b>failed:</b> {e(r['error'])}</p></section>"
    own = "".join(f"<img src='{e(_model_dir_link(r, p))}' alt='{e(p[:-4])} of {e(name)}'>"
                  for p in r.get("pictures") or [])
    pictures = (f"<p><img src='{e(_model_dir_link(r, SAMPLES))}' alt='samples of {e(name)}'>"
                f"<img src='{e(_model_dir_link(r, LOSSES))}' alt='training losses of {e(name)}' width='480'>"
                f"{own}</p>")
    rows = [("test " + k, f"{v:.4f}") for k, v in r.items()
            if k not in _RUN_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)]
    rows += [("steps", r["step"]), ("epochs", r["epochs"]), ("training time", f"{r['train_seconds']:.1f} s"),
             ("steps per second", r["steps_per_second"]), ("data", r["data"]),
             ("final training losses", ", ".join(f"{k} {v:.4g}" for k, v in r["losses"].items()))]
    table = ("<table>" + "".join(f"<tr><th>{e(str(a))}</th><td>{e(str(b))}</td></tr>" for a, b in rows)
             + "</table>")
    links = (f"<p><a href='{e(_model_dir_link(r, LOG))}'>log.csv</a> · "
             f"<a href='{e(_model_dir_link(r, METRICS))}'>metrics.json</a> · "
             f"<a href='{e(_model_dir_link(r, CHECKPOINT))}'>checkpoint.npz</a> · again: "
             f"<code>tinygen train {e(name)} --steps {r['step']}</code></p></section>")
    return "\n".join([head, pictures, table, links])
