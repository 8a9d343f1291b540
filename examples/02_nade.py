"""Section 2: NADE on the binarized digits.

    python examples/02_nade.py [--hidden-size 64] [--steps 12000] [--out runs/02_nade]

Checks first that the one-pass form of the conditionals (A = c + (L x) W^T, one matrix
product) equals the O(HD) recurrence a_{d+1} = a_d + W[:, d] x_d, then trains NADE with
Adam, printing the train and test NLL in nats per image as it goes (the test NLL of
the FVSBN, section 1, is about 18.3 nats; independent pixels 24.6), and saves a grid
of ancestral samples.
"""
import argparse
import os
import time

import numpy as np

import tinygen
from tinygen import data, models
from tinygen.imaging import save_grid
from tinygen.models import counting


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden-size", type=int, default=None, help="H (default: NADE's default_hidden_size)")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: NADE's default_steps)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join("runs", "02_nade"))
    args = ap.parse_args()

    tinygen.manual_seed(args.seed)
    ds = data.digits()
    train_images, test = data.binarize(ds.train_images), data.binarize(ds.test_images)
    model = models.build("nade", image_shape=train_images.shape[1:], hidden_size=args.hidden_size)
    steps = args.steps or model.default_steps
    print(f"NADE, H = {model.hidden_size}: {counting.stored_parameter_count(model)} parameters "
          f"({counting.free_parameter_count(model)} free: W's last column feeds no conditional)")

    gap = np.abs(model.logits(test[:32]).numpy() - model.logits_sequential(test[:32]).numpy()).max()
    print(f"one-pass form vs recurrence: largest difference of a logit {gap:.1e}")

    print(f"test NLL before training: {model.evaluate(test)['nll_nats']:.2f} nats")
    loader = data.DataLoader(train_images, batch_size=model.default_batch_size, shuffle=True, seed=args.seed)
    step, t0 = 0, time.perf_counter()
    report = max(1, steps // 5)
    while step < steps:
        for batch in loader:
            losses = model.train_step(batch)
            step += 1
            if step % report == 0 or step == steps:
                print(f"step {step:6d}  train batch NLL {losses['nll']:6.2f}  "
                      f"test NLL {model.evaluate(test)['nll_nats']:6.2f} nats  "
                      f"({time.perf_counter() - t0:.0f} s)")
            if step == steps:
                break
    result = model.evaluate(test)
    print(f"test NLL: {result['nll_nats']:.2f} nats per image ({result['bits_per_dim']:.3f} bits/pixel) "
          f"after {steps} steps in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    samples = model.sample(64)
    print(f"64 samples in {(time.perf_counter() - t0) * 1e3:.1f} ms")
    os.makedirs(args.out, exist_ok=True)
    save_grid(samples, os.path.join(args.out, "samples.png"))
    save_grid(test[:64], os.path.join(args.out, "data.png"))
    print(f"wrote {args.out}/samples.png and {args.out}/data.png")


if __name__ == "__main__":
    main()
