"""The command line: ``python -m tinygen list|train|sample|eval|zoo`` (also installed as ``tinygen``).

    tinygen list                                   every registered model
    tinygen train MODEL [--data digits|mnist:DIR|toy:NAME] [--steps N | --minutes M]
                  [--batch-size B] [--lr LR] [--device cpu|cuda] [--seed S] [--out DIR]
                  [--resume | --overwrite] [--set key=value ...]
    tinygen sample MODEL --checkpoint PATH [--n 64] [--out FILE.png|FILE.jpg]
    tinygen eval MODEL --checkpoint PATH [--data ...]
    tinygen zoo [--minutes M] [--out DIR]

This file is only the argument parsing; the work is in ``tinygen.train`` (a
run), ``tinygen.zoo`` (every model) and the modules they use (``run_config``,
``run_files``). The command line knows no model by name: ``list`` and ``zoo``
read the registry, ``--set key=value`` passes options to the model's
constructor (checked against its signature), and a model class's ``default_steps``, ``default_batch_size``,
``default_lr``, ``binary`` and ``data_kind`` fill in the rest. A new model
registers itself and appears here with no change to this file.

Exit status: 0 done; 2 a bad argument (one line on stderr saying what is wrong);
128 + the signal's number when SIGINT (130), SIGHUP (129) or SIGTERM (143) stopped a
run after it wrote its checkpoint, as a shell reports it, so a script can tell a
finished run from a stopped one; 1 anything else, also one line: a run whose loss
stopped being finite, a full disk, too little memory.
"""
import argparse
import math
import os
import signal
import sys

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 128 + signal.SIGINT
MAX_SAMPLES = 10000   # samples in one picture of `tinygen sample`


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (it prints the usage first by default)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative whole number, got {text!r}")
    return value


def _key_value(text):
    if "=" not in text or not text.partition("=")[0].strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return text


def build_parser():
    p = _Parser(prog="tinygen", description="Generative models from scratch: train, sample, evaluate.")
    sub = p.add_subparsers(dest="command", metavar="{list,train,sample,eval,zoo}", required=True)

    ls = sub.add_parser("list", help="every registered model: name, kind, what it learns, section")
    ls.add_argument("--markdown", action="store_true", help="a Markdown table (as in README.md)")

    t = sub.add_parser("train", help="train a model, writing checkpoint, samples, log and plots")
    t.add_argument("model", help="a registered model (see `tinygen list`)")
    t.add_argument("--data", default=None, help="digits (default), mnist:DIR (local IDX files) or toy:NAME")
    budget = t.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=_positive_int, help="total training steps (default: the model's "
                        "default_steps, about a minute on 2 CPU cores)")
    budget.add_argument("--minutes", type=_positive_float, help="train for this many minutes instead")
    t.add_argument("--batch-size", type=_positive_int, help="default: the model's default_batch_size")
    t.add_argument("--lr", type=_positive_float, help="learning rate (default: the model's own)")
    t.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N (needs CuPy)")
    t.add_argument("--seed", type=_seed, help="random seed (default 0); the same seed gives the same run on CPU")
    t.add_argument("--out", help="output folder (default runs/MODEL)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the run --out holds (without it, a folder holding a run is refused)")
    t.add_argument("--set", dest="options", action="extend", nargs="+", type=_key_value, default=[],
                   metavar="KEY=VALUE", help="a model option, e.g. --set hidden_size=64 "
                   "(values: int, float, true/false, none, a,b tuples, or text)")
    t.add_argument("--log-every", type=_positive_int, default=None,
                   help="steps between log rows, sample grids and checkpoints (default 250)")
    t.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no log lines")

    s = sub.add_parser("sample", help="draw samples from a trained checkpoint into a PNG")
    s.add_argument("model")
    s.add_argument("--checkpoint", required=True, help="a checkpoint.npz written by `tinygen train`")
    s.add_argument("--n", type=_positive_int, default=64,
                   help=f"how many samples (default 64, at most {MAX_SAMPLES})")
    s.add_argument("--out", help="a .png, .jpg or .jpeg file (default: samples-seedS.png beside the checkpoint)")
    s.add_argument("--seed", type=_seed, default=0)
    s.add_argument("--device", default="cpu")
    s.add_argument("--caption", action="append", metavar="TEXT",
                   help="text2image: draw --n images of this caption (repeat for more captions, one row each)")

    e = sub.add_parser("eval", help="test metrics of a checkpoint (NLL in nats and bits/dim for explicit models)")
    e.add_argument("model")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--data", default=None, help="default: the data the checkpoint was trained on")
    e.add_argument("--device", default="cpu")
    e.add_argument("--seed", type=_seed, default=0, help="for models whose metrics draw random numbers")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")

    z = sub.add_parser("zoo", help="train every registered model on digits and write index.html and results.md")
    z.add_argument("--minutes", type=_positive_float, default=None,
                   help="total budget, shared by the models (default 5)")
    z.add_argument("--out", default=os.path.join("runs", "zoo"), help="output folder (default runs/zoo)")
    z.add_argument("--models", help="comma-separated subset of models (default: all)")
    z.add_argument("--device", default="cpu")
    z.add_argument("--seed", type=_seed, default=0)
    z.add_argument("--log-every", type=_positive_int, default=None)
    z.add_argument("--quiet", "-q", action="store_true", help="only a line per model")
    return p


# --- the commands ---------------------------------------------------------------
# Each imports what it uses when it runs, so `--help` and argument errors stay fast.

def cmd_list(args):
    from tinygen.run_config import code_path, model_info, ordered_models
    infos = [model_info(n) for n in ordered_models()]
    if args.markdown:
        print("| section of the notes | model | kind | what it learns | what its tests prove | code |")
        print("|---|---|---|---|---|---|")
        for i in infos:
            print(f"| {i.section} | `{i.name}` | {i.kind} | {i.summary} | {i.tested or '-'} "
                  f"| [`{code_path(i)}`]({code_path(i)}) |")
        return 0
    width = max(len(i.name) for i in infos)
    for i in infos:
        print(f"{i.name:<{width}}  {i.kind:<8}  {i.summary}  [section {i.section}]")
    return 0


def cmd_train(args):
    from tinygen.run_config import parse_options
    from tinygen.train import train
    result = train(args.model, data=args.data, steps=args.steps, minutes=args.minutes,
                   batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                   options=parse_options(args.options), device=args.device, out=args.out,
                   resume=args.resume, overwrite=args.overwrite, log_every=args.log_every,
                   quiet=args.quiet)
    return _stopped_status(result) or 0


def _stopped_status(result):
    """128 + the number of the signal that stopped a run; None for a run that ran to its end."""
    if not result.get("interrupted"):
        return None
    return 128 + int(getattr(signal, result.get("signal") or "SIGINT"))


def _sample_file(args):
    """Where `sample` writes: --out (a picture file of a known format) or beside the checkpoint."""
    from tinygen.imaging import IMAGE_FORMATS
    from tinygen.run_config import UsageError
    if args.n > MAX_SAMPLES:
        raise UsageError(f"--n {args.n}: at most {MAX_SAMPLES} samples fit in one picture")
    if args.out is None:
        return os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), f"samples-seed{args.seed}.png")
    if os.path.isdir(args.out):
        raise UsageError(f"--out {args.out} is a folder; name a picture file, "
                         f"e.g. {os.path.join(args.out, 'samples.png')}")
    ext = os.path.splitext(args.out)[1].lower()
    if ext not in IMAGE_FORMATS:
        raise UsageError(f"--out {args.out}: unknown picture format {ext or '(no extension)'!r}; "
                         f"name a {', '.join(IMAGE_FORMATS)} file")
    return args.out


def _sample_captions(model, args, out):
    """``--caption``: n images of each caption, one row per caption."""
    import inspect
    import tinygen
    from tinygen.imaging import save_grid
    from tinygen.run_config import UsageError
    from tinygen.run_files import grid_scale
    if "captions" not in inspect.signature(model.sample).parameters:
        raise UsageError(f"--caption: {args.model} draws no images from text (text2image does)")
    tinygen.manual_seed(args.seed)
    try:
        images = model.sample(args.n, captions=args.caption)
    except (ValueError, TypeError) as exc:   # an unknown word or an empty caption, named
        raise UsageError(f"--caption: {exc}") from None
    save_grid(images, out, nrow=args.n, scale=grid_scale(model.image_shape))
    print(f"wrote {args.n} samples of {args.model} for each of {len(args.caption)} captions to {out}")
    return 0


def cmd_sample(args):
    import tinygen
    from tinygen.imaging import save_grid, save_scatter
    from tinygen.run_config import check_device, model_info
    from tinygen.run_data import load_data
    from tinygen.run_checkpoint import read_checkpoint, restore_model
    from tinygen.run_files import grid_scale
    model_info(args.model)   # an unknown name says so, and lists the known ones
    device = check_device(args.device)
    out = _sample_file(args)
    ckpt = read_checkpoint(args.checkpoint, model=args.model)
    model = restore_model(ckpt, args.checkpoint, device)
    if args.caption:
        return _sample_captions(model, args, out)
    if model.translates:   # CycleGAN, StarGAN: translations of test images
        from tinygen.run_files import save_samples
        save_samples(model, out, load_data(ckpt["config"]["data"], model_info(args.model),
                                           ckpt["config"]["options"]), n=args.n)
    elif model.data_kind == "toy":   # 2-D points: a scatter plot over the data they imitate
        data = load_data(ckpt["config"]["data"], model_info(args.model), ckpt["config"]["options"])
        tinygen.manual_seed(args.seed)
        save_scatter(model.sample(args.n), out, reference=data.test[:1000], title=f"{args.model}: samples")
    else:
        tinygen.manual_seed(args.seed)
        save_grid(model.sample(args.n), out, nrow=8, scale=grid_scale(ckpt["data_shape"]))
    print(f"wrote {args.n} samples of {args.model} (step {ckpt['step']}) to {out}")
    return 0


def cmd_eval(args):
    import tinygen
    from tinygen.run_config import check_device, model_info
    from tinygen.run_data import load_data
    from tinygen.run_checkpoint import check_shape, read_checkpoint, restore_model
    from tinygen.run_files import json_text
    from tinygen.train import evaluate
    model_info(args.model)
    device = check_device(args.device)
    ckpt = read_checkpoint(args.checkpoint, model=args.model)
    data = load_data(args.data or ckpt["config"]["data"], model_info(args.model), ckpt["config"]["options"])
    check_shape(ckpt, args.checkpoint, data)
    model = restore_model(ckpt, args.checkpoint, device)
    tinygen.manual_seed(args.seed)
    metrics = evaluate(model, data.test, device)
    if args.json:
        print(json_text({"model": args.model, "step": ckpt["step"], "data": data.spec,
                         "test_examples": data.n_test, **metrics}), end="")
        return 0
    print(f"{args.model} at step {ckpt['step']} on the {data.spec} test set ({data.n_test} examples):")
    if not metrics:
        print("  (this model reports no metrics)")
    width = max((len(k) for k in metrics), default=0)
    for k, v in metrics.items():
        print(f"  {k:<{width}}  {v:.4f}")
    return 0


def cmd_zoo(args):
    from tinygen.run_config import DEFAULT_LOG_EVERY, UsageError, check_device
    from tinygen.zoo import DEFAULT_ZOO_MINUTES, zoo
    names = None
    if args.models is not None:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
        if not names:
            raise UsageError(f"--models {args.models!r} names no model; give comma-separated names "
                             "(see `tinygen list`), or leave --models out for all")
    results = zoo(minutes=args.minutes or DEFAULT_ZOO_MINUTES, out=args.out, names=names,
                  device=check_device(args.device), seed=args.seed, quiet=args.quiet,
                  log_every=args.log_every or DEFAULT_LOG_EVERY)
    stopped = [_stopped_status(r) for r in results if r.get("interrupted")]
    if stopped:
        return stopped[0]
    return EXIT_FAILED if any(r.get("error") for r in results) else 0


COMMANDS = {"list": cmd_list, "train": cmd_train, "sample": cmd_sample, "eval": cmd_eval, "zoo": cmd_zoo}


BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread():
    """BLAS runs one thread unless the user chose a number (any of ``BLAS_THREAD_VARIABLES``).

    These models multiply small matrices, where a second BLAS thread mostly waits for
    the first; on a machine with other work running, its spin-waiting made a pixelcnn
    step 21 times slower (1.69 s against 0.079 s, measured on 2 cores). It only
    takes effect before NumPy is first imported, which the command line has not done yet.
    """
    if not any(name in os.environ for name in BLAS_THREAD_VARIABLES):
        for name in BLAS_THREAD_VARIABLES:
            os.environ[name] = "1"


def main(argv=None):
    one_blas_thread()
    command = "tinygen"
    try:   # a Ctrl-C at any moment, also while the modules load, ends with one line
        args = build_parser().parse_args(argv)
        command = f"tinygen {args.command}"
        return _run(command, args)
    except KeyboardInterrupt:   # a second Ctrl-C, or one outside the training loop
        print(f"{command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(command, args):
    """The command, every error it is expected to meet said in one line on stderr."""
    from tinygen.run_config import UsageError   # after parsing: `--help` and argument errors stay fast
    from tinygen.run_stop import Diverged
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        return _say(command, exc, EXIT_USAGE)
    except Diverged as exc:
        return _say(command, exc, EXIT_FAILED)
    except MemoryError:
        return _say(command, "not enough memory for what was asked (a smaller --batch-size, --n or model?)",
                    EXIT_FAILED)
    except OSError as exc:   # a full disk, a folder that vanished, ...
        where = f" ({exc.filename})" if exc.filename else ""
        kept = ""
        if args.command == "train":   # a write that fails never replaces a file (see tinygen.run_files)
            kept = "; the files written before it, the last checkpoint too, are kept"
        return _say(command, f"{exc.strerror or exc}{where}{kept}", EXIT_FAILED)


def _say(command, message, status):
    # one line, whatever the message: a wrapped error may carry newlines
    print(f"{command}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
