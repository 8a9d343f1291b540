"""Make ``digits_classifier.npz``, the weights of ``tinygen.metrics.digits_classifier()``.

    python -m tinygen.metrics.make_digits_classifier [--out PATH]

trains the classifier of ``tinygen.metrics.classifier`` on the 1438 training
images of ``tinygen.data.digits()`` with ``RECIPE`` (about two seconds on one CPU
core), measures it on the 359 test images, and writes it (by default over the
shipped file). It also records ``fd_train_test``: the Fréchet distance between
the features of the training and the test images. Two samples of the real data
are not identical, so this is the smallest FD a generator can hope to reach
against either split; GAN results are read relative to it.

Training is deterministic (see ``train_classifier``), and a test reruns
``train()`` to check that the shipped file is what this script makes.
"""
import argparse
import sys

from ..data.digits import digits
from .classifier import DIGITS_WEIGHTS, measure, train_classifier

RECIPE = {"seed": 0, "epochs": 20, "batch_size": 64, "lr": 2e-3, "channels": (16, 32), "features": 64}
"""Seed, passes over the training set, batch size, Adam's learning rate, and the network's widths."""


def train():
    """The digits classifier made by ``RECIPE``, with ``test_accuracy`` and ``fd_train_test`` in ``.info``."""
    data = digits()
    classifier = train_classifier(data.train_images, data.train_labels, **RECIPE)
    return measure(classifier, data)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tinygen.metrics.make_digits_classifier",
                                     description="Train tinygen's digits classifier and write its weights.")
    parser.add_argument("--out", default=str(DIGITS_WEIGHTS),
                        help=f"where to write the .npz (default: the shipped file {DIGITS_WEIGHTS})")
    args = parser.parse_args(argv)
    classifier = train()
    classifier.save(args.out)
    print(f"wrote {args.out}: test accuracy {classifier.info['test_accuracy']:.4f}, "
          f"FD(train, test) = {classifier.info['fd_train_test']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
