"""The fused LSTM scan (forward + backward) beside PyTorch's CPU ``nn.LSTM``.

    python benchmarks/lstm.py

One step: y, (h_T, c_T) = lstm(x); y.sum().backward(), with gradients for x and all
weights, in float32. Sizes (T, N, I, H): an MNIST-row LSTM (28 rows of 28 pixels, 128
units) and a larger one. Both sides loop over time steps around BLAS matmuls; tinygen
does the cell's elementwise work with a few in-place NumPy ufuncs per step, PyTorch
with its own ATen kernels. Target (issue "LSTM scans"): ratio at most 2.0.

The machine may be shared, so compare the ratio of one run, not absolute times; the
two sides alternate in rounds and the ratio shown is the median of the rounds' ratios.
``--threads K`` runs both sides on K BLAS/OpenMP threads (set before NumPy is
imported); on a machine whose cores are busy with other work, ``--threads 1`` gives
much steadier numbers than the default (every core), where idle-spinning BLAS threads
compete with the other processes.
"""
import argparse
import os
import sys

_args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
_args.add_argument("--threads", type=int, default=None, help="BLAS/OpenMP threads for both sides")
ARGS = _args.parse_args() if __name__ == "__main__" else _args.parse_args([])
if ARGS.threads is not None:  # must happen before NumPy (and its BLAS) is loaded
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import tinygen  # noqa: E402
import tinygen.functional as F  # noqa: E402
from _timing import blas_kernels, measure_pair, median_time, try_import_torch, print_table  # noqa: E402

SIZES = [(28, 64, 28, 128), (64, 64, 64, 256)]
ROUNDS = 5


def weights(I, H, seed=0):
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(H)
    return [rng.uniform(-k, k, s).astype(np.float32) for s in [(4 * H, I), (4 * H, H), (4 * H,), (4 * H,)]]


def lstm_tinygen(T, N, I, H):
    rng = np.random.default_rng(1)
    x = tinygen.tensor(rng.standard_normal((T, N, I), dtype=np.float32), requires_grad=True)
    h0 = tinygen.zeros((N, H))
    c0 = tinygen.zeros((N, H))
    ws = [tinygen.tensor(w, requires_grad=True) for w in weights(I, H)]

    def step():
        y, _ = F.lstm(x, h0, c0, *ws)
        y.sum().backward()
        x.grad = None
        for w in ws:
            w.grad = None
    return step


def lstm_torch(torch, T, N, I, H):
    m = torch.nn.LSTM(I, H)
    with torch.no_grad():
        for p, w in zip([m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0], weights(I, H)):
            p.copy_(torch.from_numpy(w))
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.standard_normal((T, N, I), dtype=np.float32)).requires_grad_()

    def step():
        y, _ = m(x)
        y.sum().backward()
        x.grad = None
        m.zero_grad(set_to_none=True)
    return step


def main():
    torch = try_import_torch()
    if torch is not None and ARGS.threads is not None:
        torch.set_num_threads(ARGS.threads)
    threads = ARGS.threads or os.cpu_count()
    rows = []
    for T, N, I, H in SIZES:
        name = f"T={T} N={N} I={I} H={H}"
        ours = lstm_tinygen(T, N, I, H)
        if torch is None:
            rows.append((name, f"{median_time(ours, repeat=9) * 1e3:.2f} ms", "(torch not installed)", "-"))
            continue
        theirs = lstm_torch(torch, T, N, I, H)
        t_ours, t_theirs, ratio = measure_pair(ours, theirs, repeat=5, rounds=ROUNDS)
        rows.append((name, f"{t_ours * 1e3:.2f} ms", f"{t_theirs * 1e3:.2f} ms", f"{ratio:.2f}"))
    print(f"LSTM forward + backward, float32; {threads} threads on {os.cpu_count()} cores; numpy {np.__version__} ({blas_kernels()})"
          + (f"; torch {torch.__version__}" if torch else ""))
    print_table(rows, ["(T, N, I, H)", "tinygen", "pytorch cpu", "ratio"])


if __name__ == "__main__":
    main()
