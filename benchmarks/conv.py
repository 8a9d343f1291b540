"""conv2d and conv_transpose2d, forward + backward, beside PyTorch CPU when it is installed.

    python benchmarks/conv.py [--threads 1] [--rounds 3] [--repeat 5]

Each row times one training-style step: y = op(x, w), then the backward pass for
a fixed random dL/dy, giving dL/dx and dL/dw (no bias: the convolution itself).
float32 throughout. The shapes are the DCGAN / MNIST / 8x8-digits layers the
models use. tinygen's NumPy path is im2col + one GEMM per product (see
tinygen/functional/conv.py); PyTorch's CPU path is oneDNN's direct convolution.

Beside each row, the machine's float32 GEMM rate, measured just before the row in
the same run (a 2048 x 2048 matmul through NumPy, GFLOP/s), and the fraction of it
that tinygen's step achieves, counting the three products of the step

    flops = 3 x 2 N P O C kh kw,    P = the pixels of conv2d's output side
                                    (Ho Wo for conv2d, H W for conv_transpose2d)

Targets (issue 14): every row at most 1.3x PyTorch's time, the median at most 1.0x,
the GEMM-bound rows (many channels on both sides) at 70% or more of the GEMM rate.
Timings are medians; other work on the machine makes them noisy, so compare the
ratios of one run rather than times across runs.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import tinygen  # noqa: E402
import tinygen.functional as F  # noqa: E402
from _timing import blas_kernels, gemm_rate, limit_threads, measure_pair, try_import_torch, print_table  # noqa: E402

# (N, C_in, H, W, C_out, k, stride, padding)
CONV2D = [(64, 1, 28, 28, 64, 4, 2, 1), (64, 64, 14, 14, 128, 4, 2, 1), (128, 1, 8, 8, 32, 3, 1, 1),
          (128, 32, 8, 8, 64, 3, 2, 1), (32, 64, 32, 32, 64, 3, 1, 1), (64, 1, 28, 28, 64, 7, 1, 3)]
CONV_TRANSPOSE2D = [(64, 128, 7, 7, 64, 4, 2, 1), (64, 64, 14, 14, 1, 4, 2, 1), (128, 64, 4, 4, 32, 4, 2, 1)]


def make_arrays(transposed, n, c_in, h, w, c_out, k, stride, pad, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, h, w), dtype=np.float32)
    wshape = (c_in, c_out, k, k) if transposed else (c_out, c_in, k, k)
    weight = rng.standard_normal(wshape, dtype=np.float32) / np.float32(np.sqrt(c_in * k * k))
    if transposed:
        ho = (h - 1) * stride - 2 * pad + k
        wo = (w - 1) * stride - 2 * pad + k
    else:
        ho = (h + 2 * pad - k) // stride + 1
        wo = (w + 2 * pad - k) // stride + 1
    gy = rng.standard_normal((n, c_out, ho, wo), dtype=np.float32)
    return x, weight, gy


def step_flops(transposed, n, c_in, h, w, c_out, k, stride, pad):
    """3 x 2 N P O C kh kw: the forward product and the two gradient products of one step."""
    if transposed:
        pixels = h * w                                     # conv2d's output side is the input
    else:
        pixels = ((h + 2 * pad - k) // stride + 1) * ((w + 2 * pad - k) // stride + 1)
    return 3 * 2 * n * pixels * c_in * c_out * k * k


def step_tinygen(transposed, x, weight, gy, stride, pad):
    op = F.conv_transpose2d if transposed else F.conv2d
    tx = tinygen.tensor(x, requires_grad=True)
    tw = tinygen.tensor(weight, requires_grad=True)
    tg = tinygen.tensor(gy)

    def step():
        y = op(tx, tw, stride=stride, padding=pad)
        y.backward(tg)
        tx.grad = tw.grad = None
    return step


def step_torch(torch, transposed, x, weight, gy, stride, pad):
    op = torch.nn.functional.conv_transpose2d if transposed else torch.nn.functional.conv2d
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(weight, requires_grad=True)
    tg = torch.tensor(gy)

    def step():
        y = op(tx, tw, stride=stride, padding=pad)
        y.backward(tg)
        tx.grad = tw.grad = None
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed batches per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurements per side")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both BLAS and PyTorch (default: every core); 1 gives steadier "
                             "ratios on a busy machine")
    args = parser.parse_args()
    torch = try_import_torch()
    if args.threads:
        limit_threads(args.threads, torch)
    rows, ratios = [], {"conv2d": [], "conv_transpose2d": []}
    for name, cases in (("conv2d", CONV2D), ("conv_transpose2d", CONV_TRANSPOSE2D)):
        transposed = name == "conv_transpose2d"
        for case in cases:
            stride, pad = case[6], case[7]
            x, weight, gy = make_arrays(transposed, *case)
            ours = step_tinygen(transposed, x, weight, gy, stride, pad)
            theirs = None if torch is None else step_torch(torch, transposed, x, weight, gy, stride, pad)
            rate = gemm_rate()
            t_ours, t_torch, ratio = measure_pair(ours, theirs, args.repeat, args.rounds)
            achieved = step_flops(transposed, *case) / t_ours
            row = [name, str(case), f"{t_ours * 1e3:.2f}"]
            if t_torch is not None:
                ratios[name].append(ratio)
                row += [f"{t_torch * 1e3:.2f}", f"{ratio:.2f}"]
            rows.append(row + [f"{rate / 1e9:.0f}", f"{achieved / 1e9:.0f}", f"{achieved / rate:.0%}"])
    headers = ["op", "(N, C_in, H, W, C_out, k, stride, pad)", "tinygen ms"]
    if torch is not None:
        headers += ["torch ms", "ratio"]
    headers += ["GEMM GF/s", "tinygen GF/s", "of GEMM"]
    threads = args.threads or os.cpu_count()
    print(f"forward + backward (dL/dx, dL/dw), float32, {threads} thread(s), "
          f"{args.rounds} rounds x median of {args.repeat}; {blas_kernels()}")
    print_table(rows, headers)
    if torch is None:
        print("\n(PyTorch is not installed: tinygen times only)")
        return
    print()
    for name, rs in ratios.items():
        print(f"{name}: median ratio tinygen/PyTorch {np.median(rs):.2f}, worst {max(rs):.2f} "
              f"(targets: median <= 1.0, every row <= 1.3)")


if __name__ == "__main__":
    main()
