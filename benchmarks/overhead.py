"""Per-op overhead and an MLP training step, beside PyTorch CPU when it is installed.

    python benchmarks/overhead.py [--threads 1] [--rounds 5]

1. A tiny elementwise op (x * y + x on 4 floats, forward + backward): nearly all
   of the time is the framework's own Python/C++ bookkeeping, so the ratio
   measures the engine's overhead per op.
2. One SGD training step of an MLP 784-512-512-10 (ReLU, cross-entropy) at
   batch 128: here the matrix products dominate (both sides call BLAS).

Targets (issue 2): overhead ratio at most 3x, MLP step at most 1.3x PyTorch's.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import tinygen  # noqa: E402
import tinygen.functional as F  # noqa: E402
from _timing import blas_kernels, limit_threads, measure_pair, try_import_torch, print_table  # noqa: E402


def tiny_op_tinygen():
    x = tinygen.tensor(np.ones(4, np.float32), requires_grad=True)
    y = tinygen.tensor(np.full(4, 2.0, np.float32), requires_grad=True)

    def step():
        z = (x * y + x).sum()
        z.backward()
        x.grad = y.grad = None
    return step


def tiny_op_torch(torch):
    x = torch.ones(4, requires_grad=True)
    y = torch.full((4,), 2.0, requires_grad=True)

    def step():
        z = (x * y + x).sum()
        z.backward()
        x.grad = y.grad = None
    return step


SIZES = [784, 512, 512, 10]


def mlp_tinygen(batch=128):
    from tinygen import nn, optim
    tinygen.manual_seed(0)
    layers = []
    for k, (i, o) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(nn.Linear(i, o))
        if k < len(SIZES) - 2:
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers)
    opt = optim.SGD(net.parameters(), lr=0.01)
    rng = np.random.default_rng(0)
    x = tinygen.tensor(rng.standard_normal((batch, 784), dtype=np.float32))
    y = rng.integers(0, 10, batch)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    return step


def mlp_torch(torch, batch=128):
    torch.manual_seed(0)
    layers = []
    for k, (i, o) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(torch.nn.Linear(i, o))
        if k < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x = torch.randn(batch, 784)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    return step


def main():
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS and PyTorch threads (default: every core); 1 is steadier on a busy machine")
    parser.add_argument("--rounds", type=int, default=5, help="alternating measurements per side")
    args = parser.parse_args()
    torch = try_import_torch()
    if args.threads:
        limit_threads(args.threads, torch)
    rows = []
    for name, ours, theirs, unit, scale in [
        ("tiny op fwd+bwd", tiny_op_tinygen(), torch and tiny_op_torch(torch), "us", 1e6),
        ("MLP 784-512-512-10 step, batch 128", mlp_tinygen(), torch and mlp_torch(torch), "ms", 1e3),
    ]:
        t_ours, t_theirs, ratio = measure_pair(ours, theirs or None, repeat=7, rounds=args.rounds)
        if ratio is not None:
            rows.append((name, f"{t_ours * scale:.1f} {unit}", f"{t_theirs * scale:.1f} {unit}", f"{ratio:.2f}"))
        else:
            rows.append((name, f"{t_ours * scale:.1f} {unit}", "(torch not installed)", "-"))
    print(f"{args.threads or os.cpu_count()} thread(s) on {os.cpu_count()} cores; numpy {np.__version__} ({blas_kernels()})"
          + (f"; torch {torch.__version__}" if torch else ""))
    print_table(rows, ["benchmark", "tinygen", "pytorch cpu", "ratio"])


if __name__ == "__main__":
    main()
