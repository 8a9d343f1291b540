"""A run's checkpoint read back: its run information checked before any array is inflated, and its model rebuilt.

``tinygen train`` writes checkpoint.npz (``run_files``) with the run information beside the
model's state: the model's name, the data's shape, the configuration, the position in the
data and the seconds spent. Reading one for a resume, ``sample`` or ``eval``, everything a
run relies on is checked from the manifest and the arrays' headers first
(``serialization.load``'s ``check``): each field of its kind (``check_run_fields``), the
model the one asked for, and every parameter of the name and shape a freshly built model
of those options has (``check_parameter_shapes``). A file of another model, with absurd
numbers or with arrays that do not fit, is one clear line (a ``UsageError``) and costs next
to nothing; only then are the arrays read, and put into a model (``restore_model``).
"""
import math
import numbers
import os

import numpy as np

from . import serialization
from .nn.module import LoadStateDictError
from .run_config import UsageError, build_model, model_info
from .run_files import RUN_FORMAT

MAX_EXAMPLE_VALUES = 2**24   # values per example a checkpoint's data shape may claim (MNIST: 784)


def _shape_text(shape):
    return "(" + ", ".join(map(str, shape)) + ")"


def read_checkpoint(path, model=None):
    """Load a run checkpoint; with ``model``, refuse one of another model, naming both.

    What the run information says (model, data shape, configuration, position) and
    the shapes of the parameters are checked from the manifest and the arrays'
    headers before any array is inflated (``serialization.load``'s ``check``), so a
    file of the wrong model, with absurd numbers or with arrays that do not fit costs
    next to nothing.
    """
    path = os.fspath(path)

    def check(skeleton):
        check_run_fields(skeleton, path)
        if model is not None and skeleton["model"] != model:
            raise UsageError(f"{path} holds a {skeleton['model']!r} model trained on data of shape "
                             f"{_shape_text(skeleton['data_shape'])}, not a {model!r} model")
        check_parameter_shapes(skeleton, path)
    try:
        return serialization.load(path, check=check)
    except FileNotFoundError:
        raise UsageError(f"no checkpoint at {path}") from None
    except serialization.CheckpointError as exc:
        raise UsageError(str(exc)) from None


def _whole(v, least=0):
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) and v >= least


def _number(v, least=0.0):
    real = isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
    return real and math.isfinite(v) and v >= least


# (field, test, what it should be) of a run checkpoint's top level and of its config
_RUN_FIELDS = [("model", lambda v: isinstance(v, str), "a model name"),
               ("data_shape", lambda v: isinstance(v, (list, tuple)) and 1 <= len(v) <= 3
                and all(_whole(d, 1) for d in v) and math.prod(v) <= MAX_EXAMPLE_VALUES,
                f"1 to 3 positive sizes of at most {MAX_EXAMPLE_VALUES} values in all"),
               ("config", lambda v: isinstance(v, dict), "a dict"),
               ("state", lambda v: isinstance(v, dict), "a dict"),
               ("history", lambda v: isinstance(v, dict), "a dict"),
               ("step", _whole, "a whole number >= 0"), ("epoch", _whole, "a whole number >= 0"),
               ("batch", _whole, "a whole number >= 0"), ("seconds", _number, "a number >= 0")]
_OPTIONAL_RUN_FIELDS = [("spent_seconds", _number, "a number >= 0")]   # absent in older checkpoints
_CONFIG_FIELDS = [("data", lambda v: isinstance(v, str), "a --data text"),
                  ("batch_size", lambda v: _whole(v, 1), "a positive whole number"),
                  ("seed", _whole, "a whole number >= 0"),
                  ("options", lambda v: isinstance(v, dict), "a dict of model options"),
                  ("steps", lambda v: v is None or _whole(v, 1), "a positive whole number or none"),
                  ("minutes", lambda v: v is None or (_number(v) and v > 0), "a positive number or none"),
                  ("lr", lambda v: v is None or (_number(v) and v > 0), "a positive number or none")]


def check_run_fields(ckpt, path):
    """A run checkpoint's information is of the kinds the loop uses; anything else names the field."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != RUN_FORMAT or "config" not in ckpt:
        raise UsageError(f"{path} is a tinygen checkpoint but not a training run's (it has no run "
                         "information; write it with `tinygen train`)")
    for where, fields in (("", _RUN_FIELDS), ("config/", _CONFIG_FIELDS)):
        holder = ckpt if not where else ckpt["config"]
        for name, test, what in fields:
            if name not in holder:
                raise UsageError(f"{path} is damaged: it has no {where}{name}")
            if not test(holder[name]):
                raise UsageError(f"{path} is damaged: its {where}{name} is {holder[name]!r}, expected {what}")
    for name, test, what in _OPTIONAL_RUN_FIELDS:
        if name in ckpt and not test(ckpt[name]):
            raise UsageError(f"{path} is damaged: its {name} is {ckpt[name]!r}, expected {what}")


def check_shape(ckpt, path, data):
    if tuple(ckpt["data_shape"]) != data.shape:
        raise UsageError(f"{path} holds a {ckpt['model']!r} model trained on data of shape "
                         f"{_shape_text(ckpt['data_shape'])} ({ckpt['config']['data']}), but "
                         f"--data {data.spec} has shape {_shape_text(data.shape)}")


def check_parameter_shapes(skeleton, path):
    """The checkpoint's parameters (``ArrayInfo`` from their headers) have the names and shapes of
    its model built afresh; anything else is a UsageError naming each entry, with both shapes."""
    saved = skeleton["state"].get("model")
    if not isinstance(saved, dict):
        return   # a model that keeps its state in another layout: load_state will judge it
    options = skeleton["config"]["options"]
    fresh = build_model(model_info(skeleton["model"]), skeleton["data_shape"], options, "cpu")
    own = {k: tuple(v.shape) for k, v in fresh.state_dict().items()}
    given = {k: tuple(getattr(v, "shape", ())) for k, v in saved.items()}
    missing, unexpected = [k for k in own if k not in given], [k for k in given if k not in own]
    mismatched = {k: (own[k], given[k]) for k in own if k in given and own[k] != given[k]}
    if missing or unexpected or mismatched:
        misfit = LoadStateDictError(type(fresh).__name__, missing, unexpected, mismatched)
        raise UsageError(f"{path} does not fit model {skeleton['model']!r} with options {options}: {misfit}")


def load_state(model, ckpt, path):
    """Put a checkpoint's parameters and optimiser state into ``model``; a misfit is a UsageError."""
    try:
        model.load_training_state(ckpt["state"])
    except (ValueError, KeyError, TypeError, IndexError, LoadStateDictError) as exc:
        text = str(exc) if not isinstance(exc, KeyError) else f"it has no entry {exc}"
        raise UsageError(f"{path} does not fit model {ckpt['model']!r} with options "
                         f"{ckpt['config']['options']}: {text}") from None


def restore_model(ckpt, path, device="cpu"):
    """The model of a run checkpoint, with its trained parameters, on ``device``."""
    info = model_info(ckpt["model"])
    model = build_model(info, ckpt["data_shape"], ckpt["config"]["options"], device)
    load_state(model, ckpt, path)
    return model
