"""What a training run writes into its folder, and how it reads it back.

    checkpoint.npz          model + optimiser state, step, loader position, RNG state, config,
                            and the loss history (``LossHistory``)
    log.csv                 one row per ``log_every`` steps: mean training losses since the
                            last row, test metrics on a fixed test subset (``RunLog``)
    samples/step-NNNNNN.png a sample grid at every log row
    samples.png             64 samples at the end (a scatter plot for 2-D toy models)
    losses.png              the training losses over steps and, on a second axis, the test
                            metric of log.csv (``plot_losses``)
    metrics.json            the run and its final test metrics (whole test set)

    .lock                   held by the one process that runs there (``tinygen.run_folder``)

(``run_checkpoint`` reads checkpoint.npz back, checked before any array is inflated.)

Every file is written to a temporary file with a unique name and renamed
(``write_text``; checkpoints in ``tinygen.serialization``, pictures in
``tinygen.imaging``), so an interrupted run can leave an older file but never a
half-written one; log.csv is appended row by row. JSON files are always valid
JSON: a value that is not finite (a diverged metric) is written as null, and the
file's ``notes`` say which and what it was.

Losses a model reports only on some steps
-----------------------------------------
An adversarial model may update its generator once every few critic steps, so
``train_step`` returns ``{"critic": c}`` on some steps and ``{"critic": c,
"generator": g}`` on others. ``LossHistory`` keeps, per loss, the steps that
reported it and their values, and a log row holds each loss's mean over the
steps of its window that reported it:

    mean_k = (1 / |S_k|) sum_{s in S_k} loss_k(s),   S_k = {s in (lo, step] : step s reported k}

A loss no step of the window reported has an empty cell, never NaN; a loss that
first appears after the header was written widens the header (the rows so far get
empty cells), so log.csv stays a well-formed table, also across a resume.
"""
import csv
import io
import json
import math
import os

import numpy as np

from .atomic_files import atomic_write
from .autograd.tensor import Tensor
from .imaging import save_array, save_grid, save_line_plot, save_scatter

CHECKPOINT, LOG, SAMPLES, LOSSES, METRICS = ("checkpoint.npz", "log.csv", "samples.png",
                                            "losses.png", "metrics.json")
RUN_FORMAT = "tinygen-run"   # marks a checkpoint written by this loop (vs. a bare state dict)


def write_text(path, text):
    """Write a text file atomically: a uniquely named temporary file in the same folder, then a rename."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def json_text(value):
    """``value`` as JSON text; a non-finite number becomes null and an entry of ``notes`` says so."""
    notes = []
    clean = _finite_json(value, "", notes)
    if notes and isinstance(clean, dict):
        clean["notes"] = list(clean.get("notes") or []) + notes
    return json.dumps(clean, indent=2, allow_nan=False) + "\n"


def _finite_json(value, where, notes):
    if isinstance(value, dict):
        return {k: _finite_json(v, f"{where}.{k}" if where else str(k), notes) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v, f"{where}[{i}]", notes) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        notes.append(f"{where} was {value} (not finite; JSON has no such number, so it is null)")
        return None
    return value


def write_metrics(path, result):
    """metrics.json: the run and its final test metrics (always valid JSON)."""
    write_text(str(path), json_text(result))


# --- the loss history ---------------------------------------------------------------

class LossHistory:
    """Every training loss at every step that reported it: ``{name: (steps, values)}``."""

    def __init__(self):
        self.losses = {}

    def record(self, step, losses):
        for name, value in losses.items():
            steps, values = self.losses.setdefault(name, ([], []))
            steps.append(step)
            values.append(float(value))

    def means_after(self, lo):
        """Each loss's mean over the steps after ``lo`` that reported it (the formula above)."""
        means = {}
        for name, (steps, values) in self.losses.items():
            first = int(np.searchsorted(steps, lo, side="right"))
            if first < len(values):
                means[name] = float(np.mean(values[first:]))
        return means

    def series(self, points=500):
        """``{name: (steps, values)}`` for a plot, averaged over bins so at most ``points`` per loss."""
        out = {}
        for name, (steps, values) in self.losses.items():
            x, y = np.asarray(steps, np.float64), np.asarray(values, np.float64)
            bins = max(1, math.ceil(len(y) / points))   # a mean per bin smooths the per-batch noise
            n = len(y) // bins * bins
            out[name] = (x[:n].reshape(-1, bins).mean(1), y[:n].reshape(-1, bins).mean(1)) if bins > 1 else (x, y)
        return out

    def state(self):
        return {name: {"step": np.asarray(s, np.int64), "value": np.asarray(v, np.float64)}
                for name, (s, v) in self.losses.items()}

    @classmethod
    def from_state(cls, state):
        history = cls()
        if "step" in state and not isinstance(state["step"], dict):
            state = _from_aligned(state)
        for name, saved in state.items():
            history.losses[name] = (np.asarray(saved["step"]).tolist(), np.asarray(saved["value"]).tolist())
        return history


def _from_aligned(state):
    """The older history layout (one ``step`` list, every loss a value per step, NaN where
    absent) as ``{name: {"step": ..., "value": ...}}``, so older runs resume."""
    steps = np.asarray(state["step"])
    converted = {}
    for name, values in state.items():
        if name != "step":
            values = np.asarray(values, np.float64)
            reported = ~np.isnan(values)
            converted[name] = {"step": steps[reported], "value": values[reported]}
    return converted


# --- log.csv ----------------------------------------------------------------------

class RunLog:
    """``log.csv``: a header, then one row per log step; appended and flushed row by row."""

    def __init__(self, path, resume_step=None):
        self.path, self.header = path, []
        if resume_step is None:
            if os.path.exists(path):
                os.remove(path)
            return
        header, rows = _read_csv(path)
        if header:
            # rows past the checkpoint came from steps that the resumed run will redo
            self.header = header
            self._rewrite(header, [r for r in rows if r and _int_or(r[0], -1) <= resume_step])

    def append(self, row):
        wider = merge_columns(self.header, list(row))
        if wider != self.header:
            # a new column (the first row, or a loss first reported now): the rows so far get empty cells
            _, rows = _read_csv(self.path)
            self._rewrite(wider, rows)
        with open(self.path, "a", newline="") as f:
            csv.writer(f, lineterminator="\n").writerow([_cell(row.get(k, "")) for k in self.header])
            f.flush()

    def _rewrite(self, header, rows):
        """The file anew with ``header``, the old ``rows`` (lists under the old header) moved under it."""
        old = self.header
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows([dict(zip(old, r)).get(k, "") for k in header] for r in rows)
        write_text(self.path, buf.getvalue())
        self.header = header


def merge_columns(header, keys):
    """``header`` with the ``keys`` it lacks, each placed after the key before it in ``keys``.

    So a loss first reported late joins the other losses, before the test metrics:
    ``merge_columns(["step", "critic", "test_fd"], ["step", "critic", "generator", "test_fd"])``
    is ``["step", "critic", "generator", "test_fd"]``.
    """
    merged = list(header)
    for i, key in enumerate(keys):
        if key not in merged:
            merged.insert(merged.index(keys[i - 1]) + 1 if i else 0, key)
    return merged


def _read_csv(path):
    """(header, rows) of a csv file; ``([], [])`` when there is none or it is empty."""
    if not os.path.exists(path):
        return [], []
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return (rows[0], rows[1:]) if rows else ([], [])


def _int_or(text, default):
    try:
        return int(text)
    except ValueError:
        return default


def _cell(v):
    return f"{v:.6g}" if isinstance(v, float) else v


# --- losses.png ---------------------------------------------------------------------

def headline_metric(names):
    """The one metric a run is judged by: the test NLL for explicit models, else the model's first."""
    names = list(names)
    return "nll_nats" if "nll_nats" in names else (names[0] if names else None)


def logged_test_metric(log_path):
    """``(name, (steps, values))`` of log.csv's headline test metric, its empty cells left out.

    ``(None, None)`` when the log has no test metric (a model without ``evaluate``).
    """
    header, rows = _read_csv(log_path)
    metrics = [k[len("test_"):] for k in header if k.startswith("test_")]
    name = headline_metric(metrics)
    if name is None:
        return None, None
    column, at = header.index("test_" + name), header.index("step")
    cells = [(r[at], r[column]) for r in rows if len(r) > column and r[column] != ""]
    steps = np.array([float(s) for s, _ in cells])
    values = np.array([float(v) for _, v in cells])
    return name, (steps, values)


def plot_losses(history, log_path, path, model_name="", points=500):
    """losses.png: each training loss against the step; the test metric of log.csv on the right axis."""
    name, metric = logged_test_metric(log_path)
    right = f"test {name}" if name is not None else ""
    return save_line_plot(history.series(points), path, xlabel="step", ylabel="training loss",
                          title=f"{model_name}: training losses" + (f" and {right}" if right else ""),
                          right={right: metric} if right else None, right_label=right)


# --- sample pictures ----------------------------------------------------------------

def save_samples(model, path, data, n=64):
    """A grid of ``n`` samples (images), or a scatter plot over the test data (2-D points); a model
    that translates images (``translates``: CycleGAN, StarGAN) draws nothing from noise, so its
    samples are its first picture of the test images' translations."""
    if model.translates:
        return save_array(next(iter(model.pictures(picture_input(model, data, n)).values())), path)
    if data.kind == "toy":
        samples = model.sample(max(n, 1000))
        return save_scatter(samples, path, reference=data.test[:1000], title=f"{model.name}: samples")
    return save_grid(model.sample(n), path, nrow=8, scale=grid_scale(data.shape))


def picture_input(model, data, count):
    """What ``model.pictures`` is shown: the first ``count`` test images as a Tensor, or, for a
    model with ``pictures_take_eval_batch`` (CycleGAN: real images of B; StarGAN: each image's
    attributes), the first ``count`` rows of every field of the evaluation tuple, as arrays."""
    if model.pictures_take_eval_batch and isinstance(data.test, tuple):
        return tuple(field[:count] for field in data.test)
    first = data.test[0] if isinstance(data.test, tuple) else data.test
    device = next((p.device for p in model.parameters()), "cpu")   # beside the model: on its GPU too
    return Tensor(first[:count], device=device)


def save_pictures(model, folder, data, count=512):
    """The model's own diagnostic pictures (``model.pictures``: reconstructions, the latent
    plane, codes ...), drawn from the first ``count`` test examples, one PNG each; their names."""
    if not hasattr(model, "pictures"):
        return []
    labels = None if data.test_labels is None else data.test_labels[:count]
    names = []
    for name, pixels in model.pictures(picture_input(model, data, count), labels).items():
        save_array(pixels, os.path.join(folder, f"{name}.png"))
        names.append(f"{name}.png")
    return names


def grid_scale(shape):
    """Scale small images up (8x8 digits x4), leave MNIST-sized ones alone."""
    return max(1, 32 // max(shape[-2:]))
