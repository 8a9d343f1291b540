"""Section 3: PixelRNN (Row LSTM, Diagonal BiLSTM) and PixelCNN on the binarized digits.

    python examples/03_pixelrnn.py [--steps N | --minutes M] [--only row_lstm,diagonal_bilstm,pixelcnn]
                                   [--seed 0] [--out runs/03_pixelrnn]

All three write p(x) = prod_i p(x_i | x_<i) in raster order and differ only in the
network that computes the conditionals (masked convolutions, or LSTMs scanned over
rows / diagonals). For each: check first that the probabilities of every binary 2x2
image sum to 1 (a tiny copy of the same architecture), then train with Adam, print the
test NLL in nats per image as it goes (FVSBN, section 1, about 18.3; independent pixels
24.6), time 64 ancestral samples (one network pass per pixel), and save a sample grid.
Without --steps or --minutes each model trains for its ``default_steps``.
"""
import argparse
import itertools
import os
import time

import numpy as np

import tinygen
from tinygen import data, models
from tinygen.imaging import save_grid

MODELS = {"row_lstm": ("pixelrnn", {"variant": "row_lstm"}),
          "diagonal_bilstm": ("pixelrnn", {"variant": "diagonal_bilstm"}),
          "pixelcnn": ("pixelcnn", {})}


def total_probability_2x2(name, options):
    """sum over the 16 binary 2x2 images of p(x), for a freshly initialised model (float64)."""
    m = models.build(name, image_shape=(1, 2, 2), **options).double().eval()   # eval: no dropout
    x = np.array(list(itertools.product([0.0, 1.0], repeat=4))).reshape(16, 1, 2, 2)
    return float(np.exp(m.log_prob(x).numpy()).sum())


def train(label, name, options, ds, args):
    train_images, test = ds
    tinygen.manual_seed(args.seed)
    model = models.build(name, image_shape=train_images.shape[1:], **options)
    n_params = sum(p.size for p in model.parameters())
    print(f"\n== {label}: {name}({model.extra_repr()}), {n_params} parameters")
    print(f"sum of p(x) over all 2x2 binary images: {total_probability_2x2(name, options):.12f}")
    print(f"test NLL before training: {model.evaluate(test)['nll_nats']:.2f} nats")
    steps = args.steps or (None if args.minutes else model.default_steps)
    limit = args.minutes * 60 if args.minutes else float("inf")
    loader = data.DataLoader(train_images, batch_size=model.default_batch_size, shuffle=True, seed=args.seed)
    step, t0, done = 0, time.perf_counter(), False
    report_every = max(1, (steps or 10 ** 9) // 5)
    next_report = 60.0                                   # with --minutes: a line a minute
    while not done:
        for batch in loader:
            losses = model.train_step(batch)
            step += 1
            elapsed = time.perf_counter() - t0
            done = (steps is not None and step >= steps) or elapsed >= limit
            if (steps and step % report_every == 0) or (not steps and elapsed >= next_report) or done:
                next_report += 60.0
                print(f"step {step:6d}  train batch NLL {losses['nll']:6.2f}  "
                      f"test NLL {model.evaluate(test)['nll_nats']:6.2f} nats  ({elapsed:.0f} s)")
            if done:
                break
    train_s = time.perf_counter() - t0
    result = model.evaluate(test)
    t0 = time.perf_counter()
    samples = model.sample(64)
    sample_s = time.perf_counter() - t0
    path = save_grid(samples, os.path.join(args.out, f"{label}.png"))
    print(f"{label}: test NLL {result['nll_nats']:.2f} nats ({result['bits_per_dim']:.3f} bits/pixel) after "
          f"{step} steps in {train_s:.0f} s; 64 samples in {sample_s:.2f} s; wrote {path}")
    return result["nll_nats"], step, train_s, sample_s


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--steps", type=int, default=None, help="training steps per model")
    group.add_argument("--minutes", type=float, default=None, help="training time per model instead")
    ap.add_argument("--only", default=",".join(MODELS), help=f"comma-separated subset of {', '.join(MODELS)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join("runs", "03_pixelrnn"))
    args = ap.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in MODELS]
    if unknown:
        ap.error(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(MODELS)}")

    ds = data.digits()
    binary = (data.binarize(ds.train_images), data.binarize(ds.test_images))
    os.makedirs(args.out, exist_ok=True)
    save_grid(binary[1][:64], os.path.join(args.out, "data.png"))
    results = {label: train(label, *MODELS[label], binary, args) for label in chosen}

    print("\nmodel             test NLL (nats)   steps   train s   64 samples s")
    for label, (nll, steps, train_s, sample_s) in results.items():
        print(f"{label:16s}  {nll:15.2f}  {steps:6d}  {train_s:8.0f}  {sample_s:12.2f}")


if __name__ == "__main__":
    main()
