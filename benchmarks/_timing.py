"""Shared timing helpers for the benchmarks: medians of repeated runs, and ratios
taken in the same run (these machines are noisy, so only ratios mean much).

On a GPU a call returns once its work is queued, not done: pass ``sync`` (e.g.
``cupy.cuda.Device().synchronize``), which is called before the clock starts and
before it is read, so a batch of ``number`` calls is timed from an idle device
until all its work has finished, the calls queued back to back as in real use."""
import os
import time


def blas_kernels():
    """Which BLAS and kernels NumPy runs, for a benchmark's header (threadpoolctl, with scikit-learn).

    Some machines set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) in their environment, since old
    OpenBLAS builds crash or compute wrong on their CPUs; on an AVX-512 CPU a current NumPy then
    runs AVX2 kernels at half its GEMM rate (float32, 1 thread: 105 against 188 GFLOP/s) while
    PyTorch's MKL runs AVX-512. To benchmark the library as shipped, unset both for that command
    alone: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/models.py``.
    """
    try:
        from threadpoolctl import threadpool_info
        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:
        blas = []
    described = ", ".join(f"{i['internal_api']} {i.get('version')} {i.get('architecture') or ''}".strip()
                          for i in blas) or "BLAS unknown"
    forced = os.environ.get("OPENBLAS_CORETYPE")
    return described + (f" (OPENBLAS_CORETYPE={forced} set in the environment)" if forced else "")


def _batch_time(fn, number, sync):
    """Seconds for ``number`` calls of ``fn``, the device idle at the start and drained at the end."""
    if sync is not None:
        sync()
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    if sync is not None:
        sync()
    return time.perf_counter() - t0


def median_time(fn, repeat=7, number=None, min_time=0.05, sync=None):
    """Median seconds per call of ``fn`` over ``repeat`` batches of ``number`` calls
    (``number=None``: doubled from 1 until a batch takes ``min_time``)."""
    fn()  # warm-up (allocations, lazy imports, kernel compilation)
    if number is None:
        number = 1
        while _batch_time(fn, number, sync) < min_time:
            number *= 2
    times = sorted(_batch_time(fn, number, sync) / number for _ in range(repeat))
    return times[len(times) // 2]


def gemm_rate(size=2048):
    """The machine's float32 GEMM rate now, in FLOP/s: a size x size matmul through NumPy, median of 3
    (on a shared machine it moves by 2-3x within hours: a table's ratios are read beside it)."""
    import numpy as np
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    return 2 * size ** 3 / median_time(lambda: a @ b, repeat=3, number=1)


def try_import_torch():
    try:
        import torch
        torch.set_num_threads(max(1, __import__("os").cpu_count() or 1))
        return torch
    except ImportError:
        return None


def print_table(rows, headers):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


def limit_threads(n, torch=None):
    """Run NumPy's BLAS (through threadpoolctl, installed with scikit-learn) and PyTorch on n threads.

    On a 2-core machine that other work shares, idle-spinning BLAS threads of both
    libraries compete with it; ``--threads 1`` gives much steadier ratios.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise SystemExit("--threads needs threadpoolctl (pip install threadpoolctl)")
    limit_threads.keep = threadpool_limits(limits=n, user_api="blas")  # in force while referenced
    if torch is not None:
        torch.set_num_threads(n)


def model_benchmark_args(doc, **sizes):
    """A model benchmark's command line: ``--threads``, ``--rounds`` and one int option per
    ``sizes`` entry (name -> default); returns (args, torch or None), threads already limited."""
    import argparse
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    for name, default in sizes.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    args = parser.parse_args()
    torch = try_import_torch()
    if args.threads:
        limit_threads(args.threads, torch)
    return args, torch


def measure_pair(ours, theirs, repeat=5, rounds=3, min_time=0.05, sync=None):
    """(median time of ours, median time of theirs or None, median of the rounds' ratios or None).

    The two sides alternate ``rounds`` times, so a burst of other work on the machine
    spoils one round, not one side. ``min_time`` and ``sync``: as for ``median_time``.
    """
    t_ours, t_theirs = [], []
    for _ in range(rounds):
        t_ours.append(median_time(ours, repeat=repeat, min_time=min_time, sync=sync))
        if theirs is not None:
            t_theirs.append(median_time(theirs, repeat=repeat, min_time=min_time, sync=sync))
    t_ours.sort()
    mid = len(t_ours) // 2
    if not t_theirs:
        return t_ours[mid], None, None
    ratios = sorted(a / b for a, b in zip(t_ours, t_theirs))
    return t_ours[mid], sorted(t_theirs)[mid], ratios[mid]
