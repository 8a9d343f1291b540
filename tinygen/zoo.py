"""``tinygen zoo``: every registered model trained within one budget, and the pages that show them.

    out/MODEL/      a full training run per model (``tinygen.train``)
    out/index.html  the summary tables grouped as the notes are, then a section per model
    out/results.md  the summary tables
    out/gallery.png a row of real digits, then a row of samples per image model
                    (the pages: ``tinygen.zoo_pages``)

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
import os
import sys
import time
import traceback
from pathlib import Path

from .run_config import DEFAULT_LOG_EVERY, UsageError, model_info, ordered_models, positive
from .run_files import headline_metric
from .run_folder import check_out_folder
from .train import RunResult, train
from .zoo_pages import reported_metrics, write_zoo_pages

DEFAULT_ZOO_MINUTES = 5.0
ZOO_DATA = {"toy": "toy:ring"}   # data_kind -> --data; every other kind trains on "digits"
ZOO_WEIGHTS = {"bernoulli": 0.25, "fvsbn": 0.5, "nade": 0.75, "dcgan": 1.5, "infogan": 1.5, "text2image": 1.5,
               "cyclegan": 1.5, "stargan": 1.5, "progan": 1.5}
FIRST_OVERHEAD = 3.0     # seconds a run takes beyond its training, until the first run is measured
PAGES_SECONDS = 5.0      # index.html, results.md and the gallery at the end


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
    name = headline_metric(reported_metrics(metrics))
    if name == "nll_nats":
        text = f"{metrics['nll_nats']:.2f} nats"
        if "bits_per_dim" in metrics:
            text += f" ({metrics['bits_per_dim']:.3f} bits/dim)"
        return text
    return f"{name} {metrics[name]:.4g}" if name is not None else "-"
