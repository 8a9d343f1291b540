"""A DCGAN-sized generator step with the discriminator frozen, beside PyTorch CPU.

    python benchmarks/generator_step.py [--threads 1] [--rounds 3] [--batch 64]

The generator's step of a GAN: D's parameters are frozen (requires_grad off), so
every op inside D needs only its input's gradient. Forward then keeps only what
that gradient reads: a conv whose weight is frozen drops its im2col patches.
Measured here: time per step (tinygen and PyTorch, ratio from the same run) and
tinygen's peak memory of one step from tracemalloc (NumPy reports its buffers to it).

The networks (32x32 single-channel images, z of 100, batch 64):
    G: linear z -> 256x4x4, BN, ReLU; convT 256->128 (4, s2, p1), BN, ReLU;
       convT 128->64, BN, ReLU; convT 64->1, tanh                      (4 -> 8 -> 16 -> 32)
    D: conv 1->64 (4, s2, p1), LReLU; conv 64->128, BN, LReLU; conv 128->256, BN,
       LReLU; linear 256x4x4 -> 1                                        (32 -> 16 -> 8 -> 4)
Step: loss = softplus(-D(G(z))).mean() (the non-saturating loss), backward, Adam on G.
"""
import os
import sys
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import tinygen  # noqa: E402
import tinygen.functional as F  # noqa: E402
from _timing import blas_kernels, measure_pair, model_benchmark_args, print_table  # noqa: E402

Z = 100


def _layers(nn, torch_style):
    """The two networks, with the same layers on both sides (nn is tinygen.nn or torch.nn)."""
    unflatten = nn.Unflatten(1, (256, 4, 4))
    G = nn.Sequential(
        nn.Linear(Z, 256 * 16), unflatten, nn.BatchNorm2d(256), nn.ReLU(),
        nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1), nn.Tanh())
    D = nn.Sequential(
        nn.Conv2d(1, 64, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, stride=2, padding=1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.Conv2d(128, 256, 4, stride=2, padding=1), nn.BatchNorm2d(256), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(256 * 16, 1))
    return G, D


def tinygen_step(batch):
    from tinygen import nn, optim
    tinygen.manual_seed(0)
    G, D = _layers(nn, False)
    D.requires_grad_(False)
    opt = optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    z = tinygen.tensor(np.random.default_rng(0).standard_normal((batch, Z), dtype=np.float32))

    def step():
        opt.zero_grad()
        loss = F.softplus(-D(G(z))).mean()
        loss.backward()
        opt.step()
    return step


def torch_step(torch, batch):
    torch.manual_seed(0)
    G, D = _layers(torch.nn, True)
    D.requires_grad_(False)
    opt = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    z = torch.randn(batch, Z)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.softplus(-D(G(z))).mean()
        loss.backward()
        opt.step()
    return step


def peak_memory(step):
    """Peak bytes that one step allocates (after a warm-up step), by tracemalloc."""
    step()
    tracemalloc.start()
    step()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main():
    args, torch = model_benchmark_args(__doc__, batch=64)
    ours = tinygen_step(args.batch)
    peak = peak_memory(ours)
    theirs = torch_step(torch, args.batch) if torch else None
    t_ours, t_theirs, ratio = measure_pair(ours, theirs, repeat=5, rounds=args.rounds)
    print(f"{args.threads or os.cpu_count()} thread(s) on {os.cpu_count()} cores; numpy {np.__version__} ({blas_kernels()})"
          + (f"; torch {torch.__version__}" if torch else ""))
    row = [f"DCGAN G step, D frozen, batch {args.batch}", f"{t_ours * 1e3:.1f} ms",
           f"{t_theirs * 1e3:.1f} ms" if t_theirs else "(torch not installed)",
           f"{ratio:.2f}" if ratio else "-", f"{peak / 2**20:.1f} MiB"]
    print_table([row], ["benchmark", "tinygen", "pytorch cpu", "ratio", "tinygen peak"])


if __name__ == "__main__":
    main()
