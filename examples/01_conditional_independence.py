"""Section 1: how many numbers a distribution over binary images needs, and the FVSBN.

    python examples/01_conditional_independence.py [--out runs/01_conditional_independence]

Prints the parameter counts of the notes for D = 64 (8x8 digits) and D = 784 (28x28
MNIST): the full joint table and the chain rule with tabular conditionals need
2^D - 1 numbers, independent pixels D, the chain rule with logistic conditionals
(the FVSBN) D(D+1)/2. Then it trains the two ends that fit in memory, independent
Bernoulli pixels and the FVSBN, on the binarized digits, prints their test NLL in nats
per image, and saves a grid of samples of each beside real digits: the independent
model draws speckled averages, the FVSBN strokes that hang together.
"""
import argparse
import os
import time

import tinygen
from tinygen import data, models
from tinygen.imaging import save_grid
from tinygen.models import counting


def train(model, train_images, steps, batch_size, seed):
    loader = data.DataLoader(train_images, batch_size=batch_size, shuffle=True, seed=seed)
    step = 0
    while step < steps:
        for batch in loader:
            model.train_step(batch)
            step += 1
            if step == steps:
                break


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None, help="training steps of each model "
                    "(default: each model's default_steps)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join("runs", "01_conditional_independence"))
    args = ap.parse_args()

    print("Parameters of a distribution over D binary pixels (NADE with H hidden units):")
    for D, H in ((64, 64), (784, 500)):
        print(f"D = {D} (H = {H}):")
        print(counting.format_table(D, H))

    tinygen.manual_seed(args.seed)
    ds = data.digits()
    train_images, test = data.binarize(ds.train_images), data.binarize(ds.test_images)
    print(f"\nbinarized digits: {len(train_images)} train / {len(test)} test images of shape "
          f"{train_images.shape[1:]}")
    os.makedirs(args.out, exist_ok=True)
    save_grid(test[:64], os.path.join(args.out, "data.png"))
    for name in ("bernoulli", "fvsbn"):
        model = models.build(name, image_shape=train_images.shape[1:])
        steps = args.steps or model.default_steps
        t0 = time.perf_counter()
        train(model, train_images, steps, model.default_batch_size, args.seed)
        seconds = time.perf_counter() - t0
        result = model.evaluate(test)
        t0 = time.perf_counter()
        samples = model.sample(64)
        sample_ms = (time.perf_counter() - t0) * 1e3
        save_grid(samples, os.path.join(args.out, f"{name}.png"))
        print(f"{name:9s} {counting.free_parameter_count(model):5d} free parameters  "
              f"test NLL {result['nll_nats']:.2f} nats ({result['bits_per_dim']:.3f} bits/pixel)  "
              f"after {steps} steps in {seconds:.1f} s; 64 samples in {sample_ms:.1f} ms")
    print(f"wrote {args.out}/bernoulli.png, {args.out}/fvsbn.png and {args.out}/data.png")


if __name__ == "__main__":
    main()
