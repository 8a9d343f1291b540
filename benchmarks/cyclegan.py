"""A CycleGAN training step (both generators, then both discriminators) beside the same networks in PyTorch CPU.

    python benchmarks/cyclegan.py [--threads 1] [--rounds 3] [--batch 8] [--size 8] [--width 32] [--blocks 3]

tinygen's side is ``tinygen.models.build("cyclegan", image_shape=(1, S, S))``'s own
``train_step``; PyTorch's side is the same four networks layer for layer (the
parameter counts are asserted equal) and the same step: G and F on the least-squares
adversarial terms, the cycle L1 (weight 10) and the identity L1 (weight 5) with D_A
and D_B frozen, then D_A and D_B on real images against the fakes passed through a
buffer of 50, each optimizer Adam(2e-4, betas (0.5, 0.999)) with its linear-decay
schedule stepped. The ratio is taken in the same run, rounds alternating
(``_timing.measure_pair``).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import tinygen  # noqa: E402
from _timing import blas_kernels, measure_pair, model_benchmark_args, print_table  # noqa: E402


def tinygen_step(batch, size, width, blocks):
    tinygen.manual_seed(0)
    model = tinygen.models.build("cyclegan", image_shape=(1, size, size), width=width, blocks=blocks,
                                 d_width=width, total_steps=10**6)
    rng = np.random.default_rng(0)
    a, b = (tinygen.tensor(rng.random((batch, 1, size, size), dtype=np.float32)) for _ in range(2))
    return model, lambda: model.train_step((a, b))


def torch_step(torch, batch, size, width, blocks):
    import _twins      # imports torch: only when it is installed
    torch.manual_seed(0)
    shape = (1, size, size)
    g_ab, g_ba = (_twins.translation_generator(shape, 1, 1, width, blocks, "reflect", False) for _ in range(2))
    d_a, d_b = (_twins.cyclegan_discriminator(shape, width) for _ in range(2))
    opt_g = torch.optim.Adam(list(g_ab.parameters()) + list(g_ba.parameters()), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(list(d_a.parameters()) + list(d_b.parameters()), lr=2e-4, betas=(0.5, 0.999))
    total = 10**6
    decay = lambda t: 1.0 if t <= total // 2 else (total - t) / (total - total // 2)  # noqa: E731
    schedules = [torch.optim.lr_scheduler.LambdaLR(o, decay) for o in (opt_g, opt_d)]
    pool_a, pool_b, noise = _twins.ImagePool(50), _twins.ImagePool(50), _twins.TorchNoise()
    a, b = (torch.rand(batch, 1, size, size) * 2 - 1 for _ in range(2))

    def step():
        d_a.requires_grad_(False)
        d_b.requires_grad_(False)
        fake_b, fake_a = g_ab(a), g_ba(b)
        loss_g = (((d_b(fake_b) - 1) ** 2).mean() + ((d_a(fake_a) - 1) ** 2).mean()
                  + 10 * ((g_ba(fake_b) - a).abs().mean() + (g_ab(fake_a) - b).abs().mean())
                  + 5 * ((g_ab(b) - b).abs().mean() + (g_ba(a) - a).abs().mean()))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        d_a.requires_grad_(True)
        d_b.requires_grad_(True)
        fa, fb = pool_a.query(fake_a.detach(), noise), pool_b.query(fake_b.detach(), noise)
        loss_d = (0.5 * ((d_a(a) - 1) ** 2).mean() + 0.5 * (d_a(fa) ** 2).mean()
                  + 0.5 * ((d_b(b) - 1) ** 2).mean() + 0.5 * (d_b(fb) ** 2).mean())
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        for s in schedules:
            s.step()
    return (g_ab, g_ba, d_a, d_b), step


def main():
    args, torch = model_benchmark_args(__doc__, batch=8, size=8, width=32, blocks=3)
    model, ours = tinygen_step(args.batch, args.size, args.width, args.blocks)
    theirs = None
    if torch is not None:
        nets, theirs = torch_step(torch, args.batch, args.size, args.width, args.blocks)
        for name, a, b in zip(("g_ab", "g_ba", "d_a", "d_b"), (model.g_ab, model.g_ba, model.d_a, model.d_b), nets):
            n_ours = sum(p.size for p in a.parameters())
            n_theirs = sum(p.numel() for p in b.parameters())
            assert n_ours == n_theirs, f"{name}: {n_ours} parameters here, {n_theirs} in PyTorch"
    t_ours, t_theirs, ratio = measure_pair(ours, theirs, repeat=5, rounds=args.rounds)
    print(f"{args.threads or os.cpu_count()} thread(s) on {os.cpu_count()} cores; numpy {np.__version__} ({blas_kernels()})"
          + (f"; torch {torch.__version__}" if torch else ""))
    row = [f"CycleGAN step (G, F, D_A, D_B) {args.size}x{args.size}, batch {args.batch}, width {args.width}, "
           f"{args.blocks} blocks", f"{t_ours * 1e3:.1f} ms",
           f"{t_theirs * 1e3:.1f} ms" if t_theirs else "(torch not installed)", f"{ratio:.2f}" if ratio else "-"]
    print_table([row], ["benchmark", "tinygen", "pytorch cpu", "ratio"])


if __name__ == "__main__":
    main()
