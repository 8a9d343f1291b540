"""Quickstart: train the independent-Bernoulli baseline on the bundled digits.

    python examples/00_quickstart.py [--steps 300] [--out runs/quickstart]

Loads scikit-learn's 8x8 digits (bundled, no download), binarizes them, trains
``tinygen.models.build("bernoulli")`` with Adam, and prints the test negative
log-likelihood before and after training, in nats per image and bits per pixel.
It then saves a grid of samples and of real digits beside it, so you can see
what a model that ignores every dependency between pixels can (and cannot) do.
"""
import argparse
import os
import time

import tinygen
from tinygen import data, models
from tinygen.imaging import save_grid


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join("runs", "quickstart"))
    args = ap.parse_args()

    tinygen.manual_seed(args.seed)
    ds = data.digits()
    train, test = data.binarize(ds.train_images), data.binarize(ds.test_images)
    model = models.build("bernoulli", image_shape=train.shape[1:])
    print(f"digits: {len(train)} train / {len(test)} test images of shape {train.shape[1:]}")

    before = model.evaluate(test)
    loader = data.DataLoader(train, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    step, t0 = 0, time.perf_counter()
    while step < args.steps:
        for batch in loader:
            losses = model.train_step(batch)
            step += 1
            if step % 100 == 0:
                print(f"step {step:5d}  train nll {losses['nll']:.2f} nats")
            if step >= args.steps:
                break
    after = model.evaluate(test)
    print(f"test NLL: {before['nll_nats']:.2f} -> {after['nll_nats']:.2f} nats per image "
          f"({after['bits_per_dim']:.3f} bits per pixel) in {time.perf_counter() - t0:.1f} s")

    os.makedirs(args.out, exist_ok=True)
    save_grid(model.sample(64), os.path.join(args.out, "samples.png"))
    save_grid(test[:64], os.path.join(args.out, "data.png"))
    print(f"wrote {args.out}/samples.png and {args.out}/data.png")


if __name__ == "__main__":
    main()
