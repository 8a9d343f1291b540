"""A DCGAN training step (one D step, one G step) on 28x28 images, beside the same network in PyTorch CPU.

    python benchmarks/dcgan.py [--threads 1] [--rounds 3] [--batch 64] [--width 32]

tinygen's side is ``tinygen.models.build("dcgan", image_shape=(1, 28, 28))``'s own
``train_step``; PyTorch's side is the same two networks layer for layer (the
parameter counts are asserted equal) and the same step: the D step on a real
batch and on fakes made without a graph, then the G step with D frozen, each with
Adam(2e-4, betas (0.5, 0.999)) and the non-saturating loss on logits. The ratio is
taken in the same run, rounds alternating (``_timing.measure_pair``).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import tinygen  # noqa: E402
from _timing import blas_kernels, measure_pair, model_benchmark_args, print_table  # noqa: E402

SHAPE = (1, 28, 28)


def tinygen_step(batch, width):
    tinygen.manual_seed(0)
    model = tinygen.models.build("dcgan", image_shape=SHAPE, width=width, lr_half_life=0)
    real = tinygen.tensor(np.random.default_rng(0).random((batch,) + SHAPE, dtype=np.float32))
    return model, lambda: model.train_step(real)


def torch_step(torch, batch, latent_dim, width):
    from _twins import dcgan_networks     # imports torch: only when it is installed
    F = torch.nn.functional
    torch.manual_seed(0)
    G, D = dcgan_networks(latent_dim, SHAPE, width)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(batch, *SHAPE) * 2 - 1

    def step():
        with torch.no_grad():
            fake = G(torch.randn(batch, latent_dim))
        loss_d = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        D.requires_grad_(False)
        loss_g = F.softplus(-D(G(torch.randn(batch, latent_dim)))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        D.requires_grad_(True)
    return (G, D), step


def main():
    args, torch = model_benchmark_args(__doc__, batch=64, width=32)
    model, ours = tinygen_step(args.batch, args.width)
    theirs = None
    if torch is not None:
        (G, D), theirs = torch_step(torch, args.batch, model.latent_dim, args.width)
        for name, a, b in (("generator", model.generator, G), ("discriminator", model.discriminator, D)):
            n_ours = sum(p.size for p in a.parameters())
            n_theirs = sum(p.numel() for p in b.parameters())
            assert n_ours == n_theirs, f"{name}: {n_ours} parameters here, {n_theirs} in PyTorch"
    t_ours, t_theirs, ratio = measure_pair(ours, theirs, repeat=5, rounds=args.rounds)
    print(f"{args.threads or os.cpu_count()} thread(s) on {os.cpu_count()} cores; numpy {np.__version__} ({blas_kernels()})"
          + (f"; torch {torch.__version__}" if torch else ""))
    row = [f"DCGAN step (D + G) 28x28, batch {args.batch}, width {args.width}", f"{t_ours * 1e3:.1f} ms",
           f"{t_theirs * 1e3:.1f} ms" if t_theirs else "(torch not installed)", f"{ratio:.2f}" if ratio else "-"]
    print_table([row], ["benchmark", "tinygen", "pytorch cpu", "ratio"])


if __name__ == "__main__":
    main()
