"""The training loop behind ``tinygen train`` and ``tinygen zoo``: budgets, checkpoints, resume.

Every model has the same small surface (``tinygen.models.base``), so one loop trains
them all: draw a batch, call ``model.train_step(batch)``, record the losses, and
every ``log_every`` steps stop to look at the model. Nothing in this file knows
what a particular model is; what it needs to know, a model class says with a few
class attributes (``default_steps``, ``default_batch_size``, ``default_lr``,
``binary``, ``data_kind``; see ``GenerativeModel``).

What a run writes into its folder (``runs/MODEL`` unless ``out`` says otherwise)::

    checkpoint.npz          model + optimiser state, step, loader position, RNG state, config
    log.csv                 one row per ``log_every`` steps: mean training losses since the
                            last row, test metrics on a fixed test subset
    samples/step-NNNNNN.png a sample grid at every log row
    samples.png             64 samples at the end (a scatter plot for 2-D toy models)
    losses.png              the training losses over steps (drawn with Pillow)
    metrics.json            the run and its final test metrics (whole test set)

Exact resume
------------
On the CPU, a run of 200 steps and a run of 100 steps resumed for 100 more end
with the same bits. Three things make the next step depend only on the
checkpoint:

1. the model and optimiser state (``model.training_state()``: Adam's moments and
   step count, not only the weights);
2. the position in the data: ``DataLoader`` shuffles epoch ``k`` with a generator
   seeded by ``(seed, k)``, so the checkpoint only stores the epoch and how many of
   its batches were used, and the resumed run recomputes the same order;
3. the random generator the model draws from (``backend.get_rng_state()``).

The third needs care: evaluating the model and drawing sample grids also use
random numbers (a sampler, an importance-sampled bound). If they drew from the
training stream, a run that stopped at step 100 to write its final samples would
continue differently from one that did not. So all monitoring runs "aside": the
generator state is saved before and put back after (``_aside``), and the training
stream sees only ``train_step`` calls. (On a GPU, CuPy's generator is not
restored and kernels may reorder sums, so exact resume is a CPU promise.)

Ctrl-C
------
SIGINT sets a flag; the loop finishes the step it is in, then writes the
checkpoint first (the one thing that must not be lost), then the log row, the
pictures and metrics.json, and the run reports itself as interrupted (the
command line exits with 130, the shell's code for "stopped by SIGINT"). Every
file is written to a temporary name and renamed, so a second Ctrl-C, which
stops at once, can leave an older file but never a half-written one.
"""
import contextlib
import csv
import html
import inspect
import io
import json
import math
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

import tinygen
from . import backend, data as datasets, models, serialization
from .imaging import make_grid, save_grid, save_line_plot, save_scatter

CHECKPOINT, LOG, SAMPLES, LOSSES, METRICS = ("checkpoint.npz", "log.csv", "samples.png",
                                            "losses.png", "metrics.json")
RUN_FORMAT = "tinygen-run"   # marks a checkpoint written by this loop (vs. a bare state dict)
DEFAULT_LOG_EVERY = 250      # "every few hundred steps": a log row, a sample grid, a checkpoint
DEFAULT_ZOO_MINUTES = 5.0
EVAL_SUBSET = 512            # test images scored at each log row (the whole set at the end)
EVAL_CHUNK = 1000            # test images per evaluate() call, to bound memory
TOY_TRAIN, TOY_TEST = 10000, 2000


class UsageError(Exception):
    """A problem with what the user asked for (not a bug): the CLI prints it on one line, exit 2."""


# --- values given with --set ------------------------------------------------------

_INT = re.compile(r"[+-]?\d+")


def parse_value(text):
    """A ``--set`` value as a Python value: bool, None, int, float, tuple or str.

    ``true``/``false``, ``none``, ``64``, ``1e-3``, ``64,64`` or ``(64, 64)`` (a tuple,
    one element: ``64,``), and anything else as a string (quotes are stripped, so
    ``'12'`` is the string "12").
    """
    s = text.strip()
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    if (s[:1], s[-1:]) in (("(", ")"), ("[", "]")):
        inner = s[1:-1].strip()
        return tuple(parse_value(p) for p in inner.split(",") if p.strip()) if inner else ()
    if "," in s:
        return tuple(parse_value(p) for p in s.split(",") if p.strip())
    if _INT.fullmatch(s):
        return int(s)
    try:
        return float(s)
    except ValueError:
        return s


def parse_options(pairs):
    """``["hidden=64", "variant=row_lstm"]`` -> ``{"hidden": 64, "variant": "row_lstm"}``."""
    options = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {pair!r}: expected key=value, e.g. --set hidden_size=64")
        options[key.strip()] = parse_value(value)
    return options


# --- models -----------------------------------------------------------------------

def model_info(name):
    """The registry entry of ``name``; an unknown name is a UsageError listing the known ones."""
    try:
        return models.info(name)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None


def ordered_models():
    """Registered model names in the order of the notes' sections (then by name)."""
    def key(name):
        section = model_info(name).section or ""
        number = re.match(r"\s*(\d+)", section)
        return (int(number.group(1)) if number else 10**6, section, name)
    return sorted(models.available(), key=key)


def code_path(info):
    """Where a model's code lives, e.g. ``tinygen/models/bernoulli.py``."""
    return info.cls.__module__.replace(".", "/") + ".py"


def _option_names(cls):
    """The constructor's keyword options, and whether it takes ``**kwargs`` as well."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]   # drop self
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return names, any(p.kind == p.VAR_KEYWORD for p in params)


def _check_options(info, options, flag="--set"):
    names, open_ended = _option_names(info.cls)
    for key in options:
        if key == "image_shape":
            raise UsageError(f"{flag} image_shape: the image shape comes from the data (--data)")
        if key not in names and not open_ended:
            shown = ", ".join(n for n in names if n != "image_shape") or "none"
            what = "--lr" if flag == "--lr" else f"{flag} {key}=..."
            raise UsageError(f"{what}: model {info.name!r} has no option {key!r}; its options: {shown}")


def _build(info, data_shape, options, device):
    """Build the model for data of ``data_shape``; a bad option value is a UsageError."""
    kwargs = dict(options)
    if info.cls.data_kind != "toy":
        kwargs["image_shape"] = tuple(data_shape)
    try:
        model = models.build(info.name, **kwargs)
    except (ValueError, TypeError) as exc:
        text = str(exc)                   # model errors usually start with the model's name already
        raise UsageError(text if text.startswith(f"{info.name}:") else f"{info.name}: {text}") from None
    return model.to(device) if device != "cpu" else model


def check_device(device):
    """The canonical device name; no CuPy or no GPU for 'cuda' is a UsageError saying which."""
    try:
        return backend.normalize_device(device or "cpu")
    except (RuntimeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


# --- data -------------------------------------------------------------------------

class Data:
    """Training and test arrays as the model will see them (binarized if it asks)."""

    def __init__(self, spec, kind, train, test, note=""):
        self.spec, self.kind, self.train, self.test, self.note = spec, kind, train, test, note
        self.shape = tuple(train.shape[1:])

    def describe(self):
        what = "x".join(map(str, self.shape)) + " images" if self.kind == "image" else "2-D points"
        return f"{self.spec} ({len(self.train)} {self.note}{what})"


def load_data(spec, info):
    """``digits``, ``mnist:DIR`` or ``toy:NAME`` as a ``Data`` for the model ``info``."""
    spec = spec or "digits"
    kind = info.cls.data_kind
    source, _, arg = spec.partition(":")
    if source == "toy":
        if arg not in datasets.TOY_SETS:
            raise UsageError(f"--data {spec}: unknown toy set {arg!r}; known: toy:"
                             + ", toy:".join(sorted(datasets.TOY_SETS)))
        if kind != "toy":
            raise UsageError(f"--data {spec} is a set of 2-D points, but {info.name!r} models images "
                             f"{'(C, H, W)'}; use --data digits or mnist:DIR")
        # a fixed data set, like the digits split: the run's seed changes the run, not the data
        return Data(spec, "toy", datasets.toy(arg, TOY_TRAIN, seed=0), datasets.toy(arg, TOY_TEST, seed=1))
    if source == "digits" and not arg:
        ds = datasets.digits()
    elif source == "mnist":
        if not arg:
            raise UsageError("--data mnist:DIR needs the folder that holds the four MNIST IDX files")
        try:
            ds = datasets.mnist(os.path.expanduser(arg))   # mnist:~/data/mnist: no shell expands that ~
        except (FileNotFoundError, ValueError) as exc:   # missing files / IDXFormatError
            raise UsageError(str(exc)) from None
    else:
        raise UsageError(f"unknown --data {spec!r}: expected digits, mnist:DIR or toy:NAME "
                         f"(NAME one of {', '.join(sorted(datasets.TOY_SETS))})")
    if kind == "toy":
        raise UsageError(f"{info.name!r} models 2-D points; give it --data toy:NAME "
                         f"(one of {', '.join(sorted(datasets.TOY_SETS))}), not {spec}")
    train, test = ds.train_images, ds.test_images
    if info.cls.binary:
        # binary models need {0, 1} pixels; a fixed threshold gives the same data every run
        train, test = datasets.binarize(train), datasets.binarize(test)
    return Data(spec, "image", train, test, note="binarized " if info.cls.binary else "")


# --- checkpoints ------------------------------------------------------------------

def _shape_text(shape):
    return "(" + ", ".join(map(str, shape)) + ")"


def read_checkpoint(path, model=None):
    """Load a run checkpoint; with ``model``, refuse one of another model, naming both."""
    path = os.fspath(path)
    try:
        ckpt = serialization.load(path)
    except FileNotFoundError:
        raise UsageError(f"no checkpoint at {path}") from None
    except serialization.CheckpointError as exc:
        raise UsageError(str(exc)) from None
    if ckpt.get("format") != RUN_FORMAT or "config" not in ckpt:
        raise UsageError(f"{path} is a tinygen checkpoint but not a training run's (it has no run "
                         "information; write it with `tinygen train`)")
    if model is not None and ckpt["model"] != model:
        raise UsageError(f"{path} holds a {ckpt['model']!r} model trained on data of shape "
                         f"{_shape_text(ckpt['data_shape'])}, not a {model!r} model")
    return ckpt


def check_shape(ckpt, path, data):
    if tuple(ckpt["data_shape"]) != data.shape:
        raise UsageError(f"{path} holds a {ckpt['model']!r} model trained on data of shape "
                         f"{_shape_text(ckpt['data_shape'])} ({ckpt['config']['data']}), but "
                         f"--data {data.spec} has shape {_shape_text(data.shape)}")


def restore_model(ckpt, path, device="cpu"):
    """The model of a run checkpoint, with its trained parameters, on ``device``."""
    info = model_info(ckpt["model"])
    model = _build(info, ckpt["data_shape"], ckpt["config"]["options"], device)
    try:
        model.load_training_state(ckpt["state"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path} does not fit model {info.name!r} with options "
                         f"{ckpt['config']['options']}: {exc}") from None
    return model


# --- looking at the model without disturbing training ---------------------------

@contextlib.contextmanager
def _aside():
    """Run monitoring (evaluation, sample grids) without moving the training RNG stream."""
    state = backend.get_rng_state()
    try:
        yield
    finally:
        backend.set_rng_state(state)


def evaluate(model, arrays, device="cpu", chunk=EVAL_CHUNK):
    """``model.evaluate`` over ``arrays`` in chunks, averaged (weighted by chunk size)."""
    totals, count = {}, 0
    for start in range(0, len(arrays), chunk):
        x = tinygen.tensor(arrays[start:start + chunk], device=device)
        try:
            metrics = model.evaluate(x)
        except NotImplementedError:
            return {}   # an implicit model without metrics of its own
        for key, value in metrics.items():
            totals[key] = totals.get(key, 0.0) + float(value) * len(x)
        count += len(x)
    return {k: v / count for k, v in totals.items()}


def save_samples(model, path, data, n=64):
    """A grid of ``n`` samples (images), or a scatter plot over the test data (2-D points)."""
    samples = model.sample(n if data.kind == "image" else max(n, 1000))
    if data.kind == "toy":
        return save_scatter(samples, path, reference=data.test[:1000], title=f"{model.name}: samples")
    return save_grid(samples, path, nrow=8, scale=grid_scale(data.shape))


def grid_scale(shape):
    """Scale small images up (8x8 digits x4), leave MNIST-sized ones alone."""
    return max(1, 32 // max(shape[-2:]))


# --- the log file -----------------------------------------------------------------

class _Log:
    """``log.csv``: a header, then one row per log step; appended and flushed row by row."""

    def __init__(self, path, resume_step=None):
        self.path, self.header = path, None
        if resume_step is None:
            if os.path.exists(path):
                os.remove(path)
            return
        if not os.path.exists(path):
            return
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        self.header = rows[0]
        # rows past the checkpoint came from steps that the resumed run will redo
        keep = [r for r in rows[1:] if r and _int_or(r[0], -1) <= resume_step]
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([self.header] + keep)
        _write_text(path, buf.getvalue())

    def append(self, row):
        new = self.header is None
        if new:
            self.header = list(row)
        with open(self.path, "a", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            if new:
                w.writerow(self.header)
            w.writerow([_cell(row.get(k, "")) for k in self.header])
            f.flush()


def _int_or(text, default):
    try:
        return int(text)
    except ValueError:
        return default


def _cell(v):
    return f"{v:.6g}" if isinstance(v, float) else v


def _write_text(path, text):
    """Write a text file atomically: a temporary file in the same folder, then a rename."""
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


# --- Ctrl-C ------------------------------------------------------------------------

class _StopOnSigint:
    """SIGINT handler: the first Ctrl-C asks the loop to stop after this step; a second one stops now."""

    def __init__(self):
        self.requested, self.installed, self.previous = False, False, None

    def __call__(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        # signal handlers can only be set from the main thread (a loop in a thread keeps Ctrl-C as is)
        if threading.current_thread() is threading.main_thread():
            self.previous, self.installed = signal.signal(signal.SIGINT, self), True
        return self

    def __exit__(self, *exc):
        if self.installed:
            # None: the previous handler was not set from Python; the default is the closest match
            signal.signal(signal.SIGINT, self.previous if self.previous is not None else signal.default_int_handler)


# --- the loop -----------------------------------------------------------------------

def _positive(name, value, kind=int):
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and math.isfinite(value)
    if not ok or (kind is int and int(value) != value):
        what = "a positive whole number" if kind is int else "a positive number"
        raise UsageError(f"{name} must be {what}, got {value!r}")
    return kind(value)


def _batches(loader, epoch, index):
    """Batches from (epoch, index) on, forever, each with its position."""
    while True:
        loader.set_epoch(epoch)
        for i, batch in enumerate(loader):
            if i >= index:   # skipping rebuilds the epoch's order, it does not replay training
                yield epoch, i, batch
        epoch, index = epoch + 1, 0


class RunResult(dict):
    """What ``train`` returns: a dict (the contents of metrics.json) with attribute access."""
    __getattr__ = dict.get


def train(model, data=None, *, steps=None, minutes=None, batch_size=None, lr=None, seed=None,
          options=None, device="cpu", out=None, resume=False, log_every=None,
          time_limit=None, progress=None, quiet=False):
    """Train the registered model ``model``; return the run's final metrics (also in metrics.json).

    ``steps`` is the total step count of the run (with ``resume``, the step to stop
    at), ``minutes`` a wall-clock budget for this call; neither: the model's
    ``default_steps`` (or, resuming, what the checkpoint's run had planned).
    ``time_limit`` (seconds) caps the loop as well, for the zoo. With ``resume``,
    ``data``, ``batch_size``, ``lr``, ``seed`` and ``options`` come from the
    checkpoint and may only be repeated, not changed; ``log_every`` too, unless
    given (default ``DEFAULT_LOG_EVERY``). ``progress``: a tqdm bar
    on stderr (default: when stderr is a terminal and not ``quiet``).
    """
    info = model_info(model)
    cls = info.cls
    out = Path(out if out is not None else os.path.join("runs", info.name))
    device = check_device(device)
    if steps is not None and minutes is not None:
        raise UsageError("give --steps or --minutes, not both")
    steps, minutes = _positive("--steps", steps), _positive("--minutes", minutes, float)
    batch_size, lr = _positive("--batch-size", batch_size), _positive("--lr", lr, float)
    log_every, time_limit = _positive("--log-every", log_every), _positive("time_limit", time_limit, float)
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise UsageError(f"--seed must be a non-negative whole number, got {seed!r}")
    options = dict(options or {})
    ckpt_path = out / CHECKPOINT
    call_minutes = minutes   # the time budget of this call (the run's, unless resuming without one)

    if resume:
        ckpt = read_checkpoint(ckpt_path, model=info.name)
        config = dict(ckpt["config"])
        # (flag, what was given now, what the checkpoint's run used); None: not given
        given = [("--data", data, config["data"]), ("--batch-size", batch_size, config["batch_size"]),
                 ("--lr", lr, config["lr"]), ("--seed", seed, config["seed"])]
        given += [(f"--set {k}", v, config["options"].get(k, "(not set)")) for k, v in options.items()]
        for flag, value, saved in given:
            if value is not None and value != saved:
                raise UsageError(f"--resume: {ckpt_path} was trained with {flag} {saved}, not {value}; "
                                 f"leave {flag.split()[0]} out to continue that run, or start a new one "
                                 "with another --out")
        if steps is None and minutes is None:   # finish the plan the checkpoint's run had
            steps, minutes = config["steps"], config["minutes"]
            if minutes is not None:   # the part of its time budget not yet spent on training
                call_minutes = max(0.0, minutes - ckpt["seconds"] / 60)
    else:
        ckpt = None
        if lr is None and cls.default_lr is not None:
            lr = cls.default_lr
        if lr is not None:
            _check_options(info, {"lr": lr}, flag="--lr")
            options["lr"] = lr
        _check_options(info, options)
        if steps is None and minutes is None:
            steps = int(cls.default_steps)
        config = {"model": info.name, "data": data or "digits",
                  "batch_size": batch_size or int(cls.default_batch_size), "lr": lr,
                  "seed": 0 if seed is None else seed, "options": options}
    log_every = log_every or config.get("log_every") or DEFAULT_LOG_EVERY
    config.update(steps=steps, minutes=minutes, log_every=log_every)

    ds = load_data(config["data"], info)
    if ckpt is not None:
        check_shape(ckpt, ckpt_path, ds)
    if config["batch_size"] > len(ds.train):
        raise UsageError(f"--batch-size {config['batch_size']} is larger than the {len(ds.train)} "
                         f"training examples of {ds.spec}")

    # The same seed gives the same initial parameters and the same run.
    tinygen.manual_seed(config["seed"])
    net = _build(info, ds.shape, config["options"], device)
    step, epoch, index, seconds = 0, 0, 0, 0.0
    history = {"step": []}
    if ckpt is not None:
        try:
            net.load_training_state(ckpt["state"])
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{ckpt_path} does not fit model {info.name!r}: {exc}") from None
        backend.set_rng_state(ckpt["rng"])
        step, epoch, index, seconds = ckpt["step"], ckpt["epoch"], ckpt["batch"], ckpt["seconds"]
        history = {k: list(np.asarray(v).tolist()) for k, v in ckpt["history"].items()}

    os.makedirs(out / "samples", exist_ok=True)
    if ckpt is None:
        if ckpt_path.exists() and not quiet:
            print(f"note: {out} held an earlier run; starting a new one there "
                  "(use --resume to continue a run instead)", flush=True)
        for old in (out / "samples").glob("step-*.png"):   # grids of the replaced run
            old.unlink()
    log = _Log(str(out / LOG), resume_step=step if ckpt is not None else None)
    loader = datasets.DataLoader(ds.train, batch_size=config["batch_size"], shuffle=True,
                                 seed=config["seed"], drop_last=True, device=device)
    test_subset = ds.test[:EVAL_SUBSET]
    last_logged, last_losses = step, {}

    def say(message):
        if not quiet:
            (bar.write if bar is not None and not bar.disable else print)(message)
            sys.stdout.flush()

    def position():
        if index >= len(loader):   # a finished epoch: the next batch is the next epoch's first
            return {"step": step, "epoch": epoch + 1, "batch": 0}
        return {"step": step, "epoch": epoch, "batch": index}

    def write_checkpoint():
        state = {"format": RUN_FORMAT, "model": info.name, "kind": info.kind,
                 "data_shape": list(ds.shape), "config": config, "state": net.training_state(),
                 **position(), "rng": backend.get_rng_state(), "seconds": seconds,
                 "history": {k: np.asarray(v, dtype=np.int64 if k == "step" else np.float64)
                             for k, v in history.items()}}
        serialization.save(state, ckpt_path)

    def window_losses():
        # The mean of each loss over the steps since the last multiple of log_every,
        # read from the history (which holds every step from 1 on, also after a
        # resume): a run resumed at step 130 writes at step 250 the same row as an
        # uninterrupted run, the mean over steps 1..250.
        lo = (step - 1) // log_every * log_every
        return {k: float(np.mean(v[lo:])) for k, v in history.items() if k != "step" and v[lo:]}

    def log_row():
        nonlocal last_logged, last_losses
        losses = last_losses = window_losses()
        with _aside():
            metrics = evaluate(net, test_subset, device)
            save_samples(net, out / "samples" / f"step-{step:06d}.png", ds)
        row = {"step": step, "epoch": round(step / len(loader), 4), "seconds": round(seconds, 3)}
        row.update(losses)
        row.update({f"test_{k}": v for k, v in metrics.items()})
        log.append(row)
        last_logged = step
        shown = "  ".join([f"{k} {v:.4g}" for k, v in losses.items()]
                          + [f"test {k} {v:.4g}" for k, v in metrics.items()])
        say(f"step {step:>7d}  {shown}  ({step / len(loader):.1f} epochs, {seconds:.1f} s)")

    # --- the budget: steps and/or wall-clock seconds from now
    limit = None if call_minutes is None else call_minutes * 60
    if time_limit is not None:
        limit = time_limit if limit is None else min(limit, time_limit)
    target = steps
    plan = (f"until step {target}" if target is not None else "") + \
        (" or " if target is not None and limit is not None else "") + \
        (f"for {limit / 60:.3g} min" if limit is not None else "")

    from tqdm import tqdm
    show = (not quiet and sys.stderr.isatty()) if progress is None else bool(progress)
    bar = None
    with _StopOnSigint() as stop:
        verb = f"resuming {info.name} at step {step}" if ckpt is not None else f"training {info.name}"
        say(f"{verb} on {ds.describe()}, batch {config['batch_size']}, seed {config['seed']}, "
            f"{device}, {plan} -> {out}")
        bar = tqdm(total=target, initial=step, desc=info.name, unit="step", file=sys.stderr,
                   disable=not show, dynamic_ncols=True, leave=False)
        batches = _batches(loader, epoch, index)
        start = last_shown = time.perf_counter()
        try:
            while not stop.requested:
                if target is not None and step >= target:
                    break
                if limit is not None and time.perf_counter() - start >= limit:
                    break
                epoch, i, batch = next(batches)
                t0 = time.perf_counter()
                losses = net.train_step(batch)
                seconds += time.perf_counter() - t0
                step, index = step + 1, i + 1
                history["step"].append(step)
                for k, v in losses.items():
                    # a loss that first appears now gets NaN for the steps before it
                    history.setdefault(k, [math.nan] * (len(history["step"]) - 1)).append(float(v))
                for k, v in history.items():
                    if len(v) < step:   # and one missing from this step, NaN for it: lists stay aligned
                        v.append(math.nan)
                bar.update(1)
                now = time.perf_counter()
                if now - last_shown > 0.2:
                    bar.set_postfix_str("  ".join(f"{k} {float(v):.4g}" for k, v in losses.items()),
                                        refresh=False)
                    last_shown = now
                if step % log_every == 0:
                    log_row()
                    write_checkpoint()
        finally:
            bar.close()

        # --- the end (also after Ctrl-C): the checkpoint first, then the rest
        interrupted = stop.requested
        write_checkpoint()
        if step != last_logged:
            log_row()
        with _aside():
            save_samples(net, out / SAMPLES, ds)
            metrics = evaluate(net, ds.test, device)
        plot_losses(history, out / LOSSES, title=f"{info.name}: training losses")
        result = RunResult(
            model=info.name, kind=info.kind, section=info.section, data=ds.spec,
            data_shape=list(ds.shape), device=device, seed=config["seed"],
            batch_size=config["batch_size"], options={k: _jsonable(v) for k, v in config["options"].items()},
            step=step, epochs=round(step / len(loader), 4), train_seconds=round(seconds, 3),
            steps_per_second=round(step / seconds, 1) if seconds > 0 else None,
            interrupted=interrupted, losses=last_losses, **metrics)
        _write_text(str(out / METRICS), json.dumps(result, indent=2, allow_nan=True) + "\n")
    if interrupted:
        say(f"stopped at step {step} (Ctrl-C); checkpoint written. Continue with: "
            f"tinygen train {info.name} --out {out} --resume")
    else:
        say(f"done: step {step} in {seconds:.1f} s of training; "
            + "  ".join(f"test {k} {v:.4g}" for k, v in metrics.items())
            + f"; wrote {out}/{{{CHECKPOINT},{SAMPLES},{LOSSES},{METRICS},{LOG}}}")
    return result


def _jsonable(v):
    return list(v) if isinstance(v, tuple) else v


def plot_losses(history, path, title="", points=500):
    """losses.png: each loss against the step, averaged over bins so at most ``points`` per line."""
    steps = np.asarray(history["step"], dtype=np.float64)
    series = {}
    for name, values in history.items():
        if name == "step" or not len(values):
            continue
        y = np.asarray(values, dtype=np.float64)
        bins = max(1, math.ceil(len(y) / points))   # a mean per bin smooths the per-batch noise
        n = len(y) // bins * bins or len(y)
        if bins > 1 and n:
            series[name] = (steps[:n].reshape(-1, bins).mean(1), y[:n].reshape(-1, bins).mean(1))
        else:
            series[name] = (steps, y)
    return save_line_plot(series, path, title=title, xlabel="step")


# --- the zoo ---------------------------------------------------------------------

def _headline(metrics):
    """The zoo's one number: test NLL for explicit models, else the model's first metric."""
    if "nll_nats" in metrics:
        text = f"{metrics['nll_nats']:.2f} nats"
        if "bits_per_dim" in metrics:
            text += f" ({metrics['bits_per_dim']:.3f} bits/dim)"
        return text
    keys = [k for k in metrics if isinstance(metrics[k], (int, float))]
    return f"{keys[0]} {metrics[keys[0]]:.4g}" if keys else "-"


def zoo(minutes=DEFAULT_ZOO_MINUTES, out=os.path.join("runs", "zoo"), names=None, device="cpu",
        seed=0, quiet=False, progress=None, log_every=DEFAULT_LOG_EVERY):
    """Train every registered model (or ``names``) on digits within ``minutes`` in all.

    The budget is shared as it goes: each model may use the time left divided by
    the models left, up to its own ``default_steps``, so a model that finishes
    early leaves its time to the ones after it. Toy-data models train on
    ``toy:ring``. Writes ``out/MODEL/`` (a full training run each), then
    ``out/index.html``, ``out/results.md`` and ``out/gallery.png``. Returns the
    list of per-model results; one that failed has an ``error``.
    """
    minutes = _positive("--minutes", minutes, float)
    names = list(names) if names else ordered_models()
    for name in names:
        model_info(name)   # an unknown name fails before any training
    out = Path(out)
    os.makedirs(out, exist_ok=True)
    if progress is None:   # each model's bar, though its own log lines stay quiet
        progress = not quiet and sys.stderr.isatty()
    deadline = time.perf_counter() + minutes * 60
    results = []
    for k, name in enumerate(names):
        info = model_info(name)
        share = max(1.0, (deadline - time.perf_counter()) / (len(names) - k))
        t0 = time.perf_counter()
        try:
            r = train(name, data="toy:ring" if info.cls.data_kind == "toy" else "digits",
                      steps=int(info.cls.default_steps), time_limit=share, seed=seed, device=device,
                      out=out / name, quiet=True, progress=progress, log_every=log_every)
        except UsageError as exc:   # e.g. --device cuda without a GPU: the same for every model
            raise UsageError(f"zoo: {name}: {exc}") from None
        except Exception as exc:    # one broken model should not cost the others their results
            import traceback
            traceback.print_exc()
            r = RunResult(model=name, kind=info.kind, section=info.section, error=f"{type(exc).__name__}: {exc}")
        r["wall_seconds"] = round(time.perf_counter() - t0, 2)
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


def _model_dir_link(r, name):
    return f"{r['model']}/{name}"


def write_gallery(results, out, per_row=16):
    """gallery.png: a row of real digits, then a row of samples per image model, each labelled."""
    from PIL import Image, ImageDraw
    from .imaging import _font
    rows = [("data", datasets.digits().test_images[:per_row])]
    for r in results:
        if r.get("error") or r.get("data") != "digits":
            continue
        ckpt_path = out / r["model"] / CHECKPOINT
        ckpt = read_checkpoint(ckpt_path)
        model = restore_model(ckpt, ckpt_path)
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
    canvas.save(out / "gallery.png")
    return out / "gallery.png"


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
    _write_text(str(out / "results.md"), "\n".join(md) + "\n")

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
    for r in results:
        name = r["model"]
        parts.append(f"<section id='{e(name)}'><h2>{e(name)}</h2>"
                     f"<p>{e(r['kind'] or '')} model, section {e(r['section'] or '')}: "
                     f"{e(model_info(name).summary or '')} (<code>{e(code_path(model_info(name)))}</code>)</p>")
        if r.get("error"):
            parts.append(f"<p><b>failed:</b> {e(r['error'])}</p></section>")
            continue
        parts.append(f"<p><img src='{e(_model_dir_link(r, SAMPLES))}' alt='samples of {e(name)}'>"
                     f"<img src='{e(_model_dir_link(r, LOSSES))}' alt='training losses of {e(name)}' width='480'></p>")
        rows = [("test " + k, f"{v:.4f}") for k, v in r.items()
                if k not in _RUN_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)]
        rows += [("steps", r["step"]), ("epochs", r["epochs"]), ("training time", f"{r['train_seconds']:.1f} s"),
                 ("steps per second", r["steps_per_second"]), ("data", r["data"]),
                 ("final training losses", ", ".join(f"{k} {v:.4g}" for k, v in r["losses"].items()))]
        parts.append("<table>" + "".join(f"<tr><th>{e(str(a))}</th><td>{e(str(b))}</td></tr>" for a, b in rows)
                     + "</table>")
        parts.append(f"<p><a href='{e(_model_dir_link(r, LOG))}'>log.csv</a> · "
                     f"<a href='{e(_model_dir_link(r, METRICS))}'>metrics.json</a> · "
                     f"<a href='{e(_model_dir_link(r, CHECKPOINT))}'>checkpoint.npz</a> · again: "
                     f"<code>tinygen train {e(name)} --steps {r['step']}</code></p></section>")
    parts.append("</body></html>")
    _write_text(str(out / "index.html"), "\n".join(parts) + "\n")


# run fields of a result, as opposed to the model's test metrics
_RUN_KEYS = {"model", "kind", "section", "data", "data_shape", "device", "seed", "batch_size", "options",
             "step", "epochs", "train_seconds", "steps_per_second", "interrupted", "losses",
             "wall_seconds", "error"}
