"""The training loop behind ``tinygen train`` and ``tinygen zoo``: a ``Run`` and its budget.

Every model has the same small surface (``tinygen.models.base``), so one loop trains
them all: draw a batch, call ``model.train_step(batch)``, record the losses, and
every ``log_every`` steps stop to look at the model. Nothing in this file knows
what a particular model is; what it needs to know, a model class says with a few
class attributes (``default_steps``, ``default_batch_size``, ``default_lr``,
``binary``, ``data_kind``; see ``GenerativeModel``). ``data_kind`` decides what a
batch is: images, images with their labels, or 2-D points (``tinygen.data.kinds``).

A ``Run`` is read top to bottom as it happens:

    Run(...)        seed, build the model and its loader
    restore(ckpt)   (resuming) the model, optimiser, RNG, position and loss history
    open_folder()   the run folder: log.csv truncated to the checkpoint, or a fresh one
    train(budget)   step until the budget is spent or Ctrl-C, with a log row and a
                    checkpoint every log_every steps, then finish: the checkpoint first,
                    the last row, the pictures and metrics.json

``train(...)`` at the bottom checks the arguments, works out the configuration
(``tinygen.run_config``) and drives a Run; the files a run writes are described in
``tinygen.run_files`` and ``tinygen.run_folder``.

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

A log row holds the mean of each loss over the steps since the last multiple of
``log_every`` that reported it, read from the loss history (which holds every step
from 1 on, also after a resume): a run resumed at step 130 writes at step 250 the
same row as an uninterrupted run.

Stopping early
--------------
A signal (Ctrl-C, SIGTERM, SIGHUP) ends the run after the step it is in, with every
file written; a loss that stops being finite ends it at once, the last good
checkpoint kept (``tinygen.run_stop``).

The folder
----------
A new run refuses a folder that already holds a run unless told to replace it
(``overwrite``); the run holds the folder's lock (``run_folder.FolderLock``) from
before it reads the checkpoint until its last file is written.
"""
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

import tinygen
from . import backend, data as datasets, serialization
from .run_config import (UsageError, build_model, check_arguments, check_batch_size, check_device, model_info,
                         new_config, positive, resumed_config)
from .run_data import load_data
from .run_checkpoint import check_shape, load_state, read_checkpoint
from .run_files import (CHECKPOINT, LOG, LOSSES, METRICS, RUN_FORMAT, SAMPLES, LossHistory, RunLog, plot_losses,
                        save_pictures, save_samples, write_metrics)
from .run_folder import FolderLock, check_out_folder, clear_run_files, run_files
from .run_stop import StopOnSignal, check_finite

EVAL_SUBSET = 512            # test images scored at each log row (the whole set at the end)
EVAL_CHUNK = 1000            # test images per evaluate() call, to bound memory


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
    """``model.evaluate`` over ``arrays`` in chunks, averaged (weighted by chunk size).

    ``arrays`` is what the model's ``data_kind`` (or ``eval_data_kind``) names (``Data.test``): each
    chunk reaches ``evaluate`` as a training batch would, a Tensor or a tuple of them.
    """
    count = datasets.num_rows(arrays)
    if count == 0:
        return {}
    totals = {}
    for batch in datasets.DataLoader(arrays, batch_size=chunk, shuffle=False, seed=0, device=device):
        size = datasets.num_rows(batch)
        try:
            metrics = model.evaluate(batch)
        except NotImplementedError:
            return {}   # an implicit model without metrics of its own
        for key, value in metrics.items():
            totals[key] = totals.get(key, 0.0) + float(value) * size
    return {k: v / count for k, v in totals.items()}


# --- the run ---------------------------------------------------------------------

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


class Run:
    """One training run of a model on its data, in its folder ``out``."""

    def __init__(self, info, config, data, out, device="cpu", quiet=False, progress=None):
        self.info, self.config, self.data, self.out, self.device = info, config, data, Path(out), device
        self.quiet = quiet
        self.show_bar = (not quiet and sys.stderr.isatty()) if progress is None else bool(progress)
        self.bar = None
        # The same seed gives the same initial parameters and the same run.
        tinygen.manual_seed(config["seed"])
        self.model = build_model(info, data.shape, config["options"], device)
        check_batch_size(self.model, config["batch_size"])
        self.loader = datasets.DataLoader(data.train, batch_size=config["batch_size"], shuffle=True,
                                          seed=config["seed"], drop_last=True, device=device)
        self.test_subset = datasets.head(data.test, EVAL_SUBSET)
        self.step, self.epoch, self.index, self.seconds = 0, 0, 0, 0.0
        self.spent = 0.0   # seconds of the loop, logging and checkpoints included: what --minutes counts
        self.history, self.log_file = LossHistory(), None
        self.resumed, self.last_logged, self.last_losses, self.test_metrics = False, 0, {}, {}
        self.last_checkpoint = None   # the step of the checkpoint on disk (None: none of this run)

    def restore(self, ckpt, path):
        """Continue from a checkpoint: the same state, the same random stream, the same place in the data."""
        load_state(self.model, ckpt, path)
        backend.set_rng_state(ckpt["rng"])
        self.step, self.epoch, self.index, self.seconds = ckpt["step"], ckpt["epoch"], ckpt["batch"], ckpt["seconds"]
        self.spent = ckpt.get("spent_seconds", self.seconds)   # older checkpoints counted training only
        self.history = LossHistory.from_state(ckpt["history"])
        self.resumed, self.last_logged, self.last_checkpoint = True, self.step, self.step

    def open_folder(self):
        """The run folder, ready: a resumed run keeps its files, a new one removes an earlier run's
        (``train`` has made sure that is what was asked for)."""
        if not self.resumed:
            if run_files(self.out) and not self.quiet:
                print(f"note: replacing the earlier run in {self.out} (--overwrite)", flush=True)
            clear_run_files(self.out)
        os.makedirs(self.out / "samples", exist_ok=True)
        self.log_file = RunLog(str(self.out / LOG), resume_step=self.step if self.resumed else None)

    # --- the loop
    def train(self, target=None, limit=None):
        """Step until ``target`` steps or ``limit`` seconds from now (None: no such bound), or Ctrl-C."""
        from tqdm import tqdm
        # NumPy's overflow warnings are left out: a loss that is not finite stops the run with its own line
        with StopOnSignal() as stop, np.errstate(all="ignore"):
            self.say(self._announcement(target, limit))
            self.bar = tqdm(total=target, initial=self.step, desc=self.info.name, unit="step",
                            file=sys.stderr, disable=not self.show_bar, dynamic_ncols=True, leave=False)
            try:
                self._loop(stop, target, limit)
            finally:
                self.bar.close()
            # the end (also after a signal): the checkpoint first, then the rest
            done = target is not None and self.step >= target   # a signal after the last step: complete
            signum = None if done else stop.signum
            self.checkpoint()
            if self.step != self.last_logged:
                self.log()
            result = self.finish(signum)
        self.say(self._farewell(result))
        return result

    def _loop(self, stop, target, limit):
        batches = _batches(self.loader, self.epoch, self.index)
        start = last_shown = time.perf_counter()
        spent_before = self.spent
        while not stop.requested:
            self.spent = spent_before + time.perf_counter() - start
            if target is not None and self.step >= target:
                break
            if limit is not None and self.spent - spent_before >= limit:
                break
            losses = self.take_step(*next(batches))
            self.bar.update(1)
            now = time.perf_counter()
            if now - last_shown > 0.2:
                self.bar.set_postfix_str("  ".join(f"{k} {float(v):.4g}" for k, v in losses.items()),
                                         refresh=False)
                last_shown = now
            if self.step % self.config["log_every"] == 0:
                self.log()
                self.spent = spent_before + time.perf_counter() - start
                self.checkpoint()

    def take_step(self, epoch, i, batch):
        """One ``train_step`` on batch ``i`` of ``epoch``; its losses go into the history."""
        t0 = time.perf_counter()
        losses = self.model.train_step(batch)
        self.seconds += time.perf_counter() - t0
        check_finite(losses, self.step + 1, self.info.name, self._kept(), self.config.get("lr"))
        self.step, self.epoch, self.index = self.step + 1, epoch, i + 1
        self.history.record(self.step, losses)
        return losses

    def _kept(self):
        """What a stop now leaves on disk, in words."""
        if self.last_checkpoint is None:
            return "no checkpoint was written before it"
        return f"{self.out / CHECKPOINT} keeps step {self.last_checkpoint}, the last good one"

    def log(self):
        """A row of log.csv: the mean losses of this window, test metrics on the subset, a sample grid."""
        window_start = (self.step - 1) // self.config["log_every"] * self.config["log_every"]
        losses = self.last_losses = self.history.means_after(window_start)
        with _aside():
            metrics = evaluate(self.model, self.test_subset, self.device)
            save_samples(self.model, self.out / "samples" / f"step-{self.step:06d}.png", self.data)
        row = {"step": self.step, "epoch": round(self.step / len(self.loader), 4),
               "seconds": round(self.seconds, 3), **losses, **{f"test_{k}": v for k, v in metrics.items()}}
        self.log_file.append(row)
        self.last_logged = self.step
        shown = "  ".join([f"{k} {v:.4g}" for k, v in losses.items()]
                          + [f"test {k} {v:.4g}" for k, v in metrics.items()])
        self.say(f"step {self.step:>7d}  {shown}  ({self.step / len(self.loader):.1f} epochs, "
                 f"{self.seconds:.1f} s)")

    def checkpoint(self):
        """checkpoint.npz: everything the next step depends on (see "Exact resume")."""
        state = {"format": RUN_FORMAT, "model": self.info.name, "kind": self.info.kind,
                 "data_shape": list(self.data.shape), "config": self.config,
                 "state": self.model.training_state(), **self._position(),
                 "rng": backend.get_rng_state(), "seconds": self.seconds, "spent_seconds": self.spent,
                 "history": self.history.state()}
        serialization.save(state, self.out / CHECKPOINT)
        self.last_checkpoint = self.step

    def _position(self):
        if self.index >= len(self.loader):   # a finished epoch: the next batch is the next epoch's first
            return {"step": self.step, "epoch": self.epoch + 1, "batch": 0}
        return {"step": self.step, "epoch": self.epoch, "batch": self.index}

    def finish(self, signum=None):
        """The final samples, test metrics on the whole test set, losses.png and metrics.json.

        ``signum``: the signal that stopped the run before its end (None: it ran to its end)."""
        info, config = self.info, self.config
        # each from the same random state, so that a model's pictures never change its metrics
        with _aside():
            save_samples(self.model, self.out / SAMPLES, self.data)
        with _aside():
            pictures = save_pictures(self.model, self.out, self.data)
        with _aside():
            metrics = self.test_metrics = evaluate(self.model, self.data.test, self.device)
        plot_losses(self.history, self.out / LOG, self.out / LOSSES, info.name)
        result = RunResult(
            model=info.name, kind=info.kind, section=info.section, data=self.data.spec,
            data_shape=list(self.data.shape), device=self.device, seed=config["seed"],
            batch_size=config["batch_size"], options={k: _jsonable(v) for k, v in config["options"].items()},
            step=self.step, epochs=round(self.step / len(self.loader), 4), train_seconds=round(self.seconds, 3),
            steps_per_second=round(self.step / self.seconds, 1) if self.seconds > 0 else None,
            interrupted=signum is not None, losses=self.last_losses, pictures=pictures, **metrics)
        if signum is not None:
            result["signal"] = signal.Signals(signum).name
        write_metrics(self.out / METRICS, result)
        return result

    # --- what the user reads
    def say(self, message):
        if not self.quiet:
            (self.bar.write if self.bar is not None and not self.bar.disable else print)(message)
            sys.stdout.flush()

    def _announcement(self, target, limit):
        plan = " or ".join(([f"until step {target}"] if target is not None else [])
                           + ([f"for {limit / 60:.3g} min"] if limit is not None else []))
        verb = f"resuming {self.info.name} at step {self.step}" if self.resumed else f"training {self.info.name}"
        return (f"{verb} on {self.data.describe()}, batch {self.config['batch_size']}, "
                f"seed {self.config['seed']}, {self.device}, {plan} -> {self.out}")

    def _farewell(self, result):
        name, out = self.info.name, self.out
        if result.interrupted:
            how = "Ctrl-C" if result.signal == "SIGINT" else result.signal
            return (f"stopped at step {self.step} ({how}); checkpoint written. Continue with: "
                    f"tinygen train {name} --out {out} --resume")
        return (f"done: step {self.step} in {self.seconds:.1f} s of training; "
                + "  ".join(f"test {k} {v:.4g}" for k, v in self.test_metrics.items())
                + f"; wrote {out}/{{{CHECKPOINT},{SAMPLES},{LOSSES},{METRICS},{LOG}}}")


def _jsonable(v):
    return list(v) if isinstance(v, tuple) else v


def train(model, data=None, *, steps=None, minutes=None, batch_size=None, lr=None, seed=None,
          options=None, device="cpu", out=None, resume=False, overwrite=False, log_every=None,
          time_limit=None, progress=None, quiet=False):
    """Train the registered model ``model``; return the run's final metrics (also in metrics.json).

    ``steps`` is the total step count of the run (with ``resume``, the step to stop
    at), ``minutes`` a wall-clock budget for this call; neither: the model's
    ``default_steps`` (or, resuming, what the checkpoint's run had planned).
    ``time_limit`` (seconds) caps the loop as well, for the zoo. With ``resume``,
    ``data``, ``batch_size``, ``lr``, ``seed`` and ``options`` come from the
    checkpoint and may only be repeated, not changed; ``log_every`` too, unless
    given (default ``run_config.DEFAULT_LOG_EVERY``). A folder ``out`` that holds
    a run is refused unless ``resume`` (continue it) or ``overwrite`` (replace it).
    ``progress``: a tqdm bar on stderr (default: when stderr is a terminal and not
    ``quiet``). Raises ``Diverged`` when a loss stops being finite.
    """
    info = model_info(model)
    out = os.path.join("runs", info.name) if out is None else out
    device = check_device(device)
    given = check_arguments(steps=steps, minutes=minutes, batch_size=batch_size, lr=lr, seed=seed,
                            log_every=log_every)
    time_limit = positive("time_limit", time_limit, float)
    if resume and overwrite:
        raise UsageError("give --resume (continue the run) or --overwrite (replace it), not both")
    options = dict(options or {})
    check_out_folder(out, create=False)
    out = Path(out)
    if resume and not (out / CHECKPOINT).is_file():
        raise UsageError(f"no checkpoint at {out / CHECKPOINT} to resume from")
    # a new run's configuration is checked before the folder is touched
    planned = None if resume else _configure(info, out, given, data, options, None)
    check_out_folder(out)
    with FolderLock(out):   # held until the last file is written
        ckpt = None
        if resume:   # read under the lock: no other process is writing it now
            ckpt = read_checkpoint(out / CHECKPOINT, model=info.name)
            planned = _configure(info, out, given, data, options, ckpt)
        elif not overwrite and run_files(out):
            shown = run_files(out)
            raise UsageError(f"{out} already holds a run ({', '.join(shown[:3])}"
                             f"{', ...' if len(shown) > 3 else ''}); continue it with --resume, "
                             "replace it with --overwrite, or give another --out")
        config, ds, limit = planned
        run = Run(info, config, ds, out, device, quiet=quiet, progress=progress)
        if ckpt is not None:
            run.restore(ckpt, out / CHECKPOINT)
        run.open_folder()
        if time_limit is not None:
            limit = time_limit if limit is None else min(limit, time_limit)
        return run.train(target=config["steps"], limit=limit)


def _configure(info, out, given, data, options, ckpt):
    """A run's configuration, its data and its time budget in seconds (None: no time bound).

    From the arguments and the model's defaults for a new run, from the checkpoint
    ``ckpt`` (which the arguments may only repeat) for a resumed one.
    """
    ckpt_path = out / CHECKPOINT
    if ckpt is not None:
        config, call_minutes = resumed_config(ckpt, ckpt_path, given, data, options)
    else:
        config, call_minutes = new_config(info, given, data, options)
    ds = load_data(config["data"], info, config["options"])
    if ckpt is not None:
        check_shape(ckpt, ckpt_path, ds)
    if config["batch_size"] > ds.n_train:
        raise UsageError(f"--batch-size {config['batch_size']} is larger than the {ds.n_train} "
                         f"training examples of {ds.spec}")
    return config, ds, None if call_minutes is None else call_minutes * 60
