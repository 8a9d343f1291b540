"""What a run is asked to do, checked before it starts: options, the model, the device.

``tinygen train`` and ``tinygen zoo`` turn what a user typed into a run's
configuration here, and every mistake they can make is a ``UsageError``: one
line on stderr and exit status 2, never a traceback from deep inside a model.

- ``--set key=value`` values are parsed into Python values (``parse_value``)
  and checked against the model constructor's signature (``_check_options``).
- A model is found by name in the registry (``model_info``) and built for the
  data's shape (``build_model``).
- ``--data`` is loaded in ``run_data.py`` (``load_data``), with the same errors.
- A new run's configuration comes from the arguments and the model class's
  defaults (``new_config``); a resumed one's from its checkpoint, which the
  arguments may repeat but not change (``resumed_config``).
"""
import inspect
import math
import re

from . import backend, models

DEFAULT_LOG_EVERY = 250      # "every few hundred steps": a log row, a sample grid, a checkpoint


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


def positive(name, value, kind=int):
    """``value`` as a positive ``kind`` (None stays None); anything else is a UsageError naming ``name``."""
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and math.isfinite(value)
    if not ok or (kind is int and int(value) != value):
        what = "a positive whole number" if kind is int else "a positive number"
        raise UsageError(f"{name} must be {what}, got {value!r}")
    return kind(value)


# --- models -----------------------------------------------------------------------

def model_info(name):
    """The registry entry of ``name``; an unknown name is a UsageError listing the known ones."""
    try:
        return models.info(name)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None


def ordered_models():
    """Registered model names in the order of the notes' sections, and within a section in
    the order they are registered (``models._MODEL_MODULES``: the notes' own order)."""
    def key(name):
        section = model_info(name).section or ""
        number = re.match(r"\s*(\d+)", section)
        return (int(number.group(1)) if number else 10**6, section)
    return sorted(models.registered(), key=key)


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


def _kind_of(default):
    """What a constructor default says an option takes: (test, words), or None when it says nothing."""
    if isinstance(default, bool):
        return (lambda v: isinstance(v, bool)), "true or false"
    if isinstance(default, int):
        return (lambda v: isinstance(v, int) and not isinstance(v, bool)), "a whole number"
    if isinstance(default, float):
        return (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)), "a number"
    if isinstance(default, str):
        return (lambda v: isinstance(v, str)), "a word"
    if isinstance(default, tuple):
        return (lambda v: isinstance(v, tuple)), "a tuple such as 64,64"
    return None   # None or no default: the model's own check speaks


def check_option_kinds(info, options, flag="--set"):
    """Each option's value is of the kind its constructor default is (a number where 1e-3 is)."""
    params = inspect.signature(info.cls.__init__).parameters
    for key, value in options.items():
        param = params.get(key)
        kind = _kind_of(param.default) if param is not None and param.default is not param.empty else None
        if kind is not None and value is not None and not kind[0](value):
            raise UsageError(f"{flag} {key}={value!r}: model {info.name!r} option {key!r} takes "
                             f"{kind[1]} (its default is {param.default!r})")


def build_model(info, data_shape, options, device):
    """Build the model for data of ``data_shape``; a bad option value is a UsageError."""
    kwargs = dict(options)
    if info.cls.data_kind != "toy" and len(data_shape) != 1:   # 2-D points (N, 2) have no image shape
        kwargs["image_shape"] = tuple(data_shape)
    try:
        model = models.build(info.name, **kwargs)
    except (ValueError, TypeError) as exc:
        text = str(exc)                   # model errors usually start with the model's name already
        if isinstance(exc, TypeError) and options:   # a raw type error: say which values it came from
            text += " (options given: " + ", ".join(f"{k}={v!r}" for k, v in options.items()) + ")"
        raise UsageError(text if text.startswith(f"{info.name}:") else f"{info.name}: {text}") from None
    except MemoryError:
        raise UsageError(f"{info.name}: a model for data of shape {tuple(data_shape)} with options "
                         f"{dict(options)} does not fit in memory") from None
    return model.to(device) if device != "cpu" else model


def check_batch_size(model, batch_size):
    """A batch size the model itself refuses (its ``check_batch_size``, e.g. ProGAN's minibatch-std
    groups) is a UsageError, said before the run starts."""
    check = getattr(model, "check_batch_size", None)
    if check is not None:
        try:
            check(batch_size)
        except ValueError as exc:
            raise UsageError(f"--batch-size {batch_size}: {exc}") from None


def check_device(device):
    """The canonical device name; no CuPy or no GPU for 'cuda' is a UsageError saying which."""
    try:
        return backend.normalize_device(device or "cpu")
    except (RuntimeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


# --- the run's configuration --------------------------------------------------------

def check_arguments(steps=None, minutes=None, batch_size=None, lr=None, seed=None, log_every=None):
    """The budget and sizes a caller gave, each checked (None: not given)."""
    if steps is not None and minutes is not None:
        raise UsageError("give --steps or --minutes, not both")
    given = {"steps": positive("--steps", steps), "minutes": positive("--minutes", minutes, float),
             "batch_size": positive("--batch-size", batch_size), "lr": positive("--lr", lr, float),
             "log_every": positive("--log-every", log_every)}
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise UsageError(f"--seed must be a non-negative whole number, got {seed!r}")
    given["seed"] = seed
    return given


def explicit_lr(given_lr, options):
    """The learning rate the user asked for: ``--lr``, or ``--set lr=``, or None.

    Both may be given only with the same value, and ``--set lr`` is checked as ``--lr``
    is (a positive finite number), so ``--set lr=0`` is refused rather than trained with.
    """
    if "lr" not in options:
        return given_lr
    set_lr = positive("--set lr", options["lr"], float)
    if given_lr is not None and given_lr != set_lr:
        raise UsageError(f"--lr {given_lr:g} and --set lr={set_lr:g} disagree; give the learning rate once")
    return set_lr


def new_config(info, given, data, options):
    """A new run's configuration: what was given, the model class's defaults for the rest.

    An explicit learning rate (``--lr`` or ``--set lr``) always beats the class's
    ``default_lr``. Returns ``(config, minutes)``: the time budget of this call is the run's.
    """
    cls, options = info.cls, dict(options)
    lr = explicit_lr(given["lr"], options)
    if lr is None and cls.default_lr is not None:
        lr = cls.default_lr
    if lr is not None:
        _check_options(info, {"lr": lr}, flag="--lr")
        options["lr"] = lr
    _toy_option(info, data, options)
    _check_options(info, options)
    check_option_kinds(info, options)
    steps, minutes = given["steps"], given["minutes"]
    if steps is None and minutes is None:
        steps = int(cls.default_steps)
    _run_length_option(info, options, steps)
    if given["batch_size"] is not None and given["batch_size"] < 2 and getattr(cls, "uses_batch_norm", False):
        raise UsageError(f"--batch-size {given['batch_size']}: model {info.name!r} uses batch norm, "
                         "which needs a batch of at least 2")
    config = {"model": info.name, "data": data or "digits",
              "batch_size": given["batch_size"] or int(cls.default_batch_size), "lr": lr,
              "seed": 0 if given["seed"] is None else given["seed"], "options": options,
              "steps": steps, "minutes": minutes, "log_every": given["log_every"] or DEFAULT_LOG_EVERY}
    return config, minutes


def _run_length_option(info, options, steps):
    """A model whose schedule needs the run's length (a constructor option ``total_steps``, e.g.
    the translation models' LinearDecayLR) is told the run's step count, unless ``--set
    total_steps`` says otherwise. A run budgeted by ``--minutes`` has no step count, and
    the model keeps its own default. A resumed run keeps the value its config recorded."""
    if steps is not None and "total_steps" not in options \
            and "total_steps" in inspect.signature(info.cls.__init__).parameters:
        options["total_steps"] = int(steps)


def _toy_option(info, data, options):
    """A model that takes images or points (``data_kinds``) learns which toy set it imitates
    (option ``toy``, for its mode-coverage metrics) from ``--data toy:NAME``."""
    source, _, name = (data or "").partition(":")
    if source != "toy" or "toy" not in getattr(info.cls, "data_kinds", ()):
        return
    if options.get("toy", name) != name:
        raise UsageError(f"--set toy={options['toy']} disagrees with --data {data}; leave --set toy out")
    options["toy"] = name


def resumed_config(ckpt, path, given, data, options):
    """A resumed run's configuration, from its checkpoint; a changed setting is a UsageError.

    Returns ``(config, minutes)``, ``minutes`` the time budget of this call: the one
    given, or what the checkpoint's run had left of its own.
    """
    config = dict(ckpt["config"])
    lr = explicit_lr(given["lr"], options)
    options = {k: v for k, v in options.items() if k != "lr"}   # compared once, as --lr
    # (flag, what was given now, what the checkpoint's run used); None: not given
    repeated = [("--data", data, config["data"]), ("--batch-size", given["batch_size"], config["batch_size"]),
                ("--lr", lr, config["lr"]), ("--seed", given["seed"], config["seed"])]
    repeated += [(f"--set {k}", v, config["options"].get(k, "(not set)")) for k, v in options.items()]
    for flag, value, saved in repeated:
        if value is not None and value != saved:
            raise UsageError(f"--resume: {path} was trained with {flag} {saved}, not {value}; "
                             f"leave {flag.split()[0]} out to continue that run, or start a new one "
                             "with another --out")
    steps, minutes = given["steps"], given["minutes"]
    call_minutes = minutes
    if steps is None and minutes is None:   # finish the plan the checkpoint's run had
        steps, minutes = config["steps"], config["minutes"]
        if minutes is not None:   # the part of its time budget not yet spent (as the loop counts it)
            call_minutes = max(0.0, minutes - ckpt.get("spent_seconds", ckpt["seconds"]) / 60)
    log_every = given["log_every"] or config.get("log_every") or DEFAULT_LOG_EVERY
    config.update(steps=steps, minutes=minutes, log_every=log_every)
    return config, call_minutes
