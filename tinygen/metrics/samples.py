"""Judging image samples through a classifier: features, labels, FD, and the label histogram.

Each function takes images ``(N, 1, S, S)`` in [0, 1] (NumPy arrays or Tensors)
and an optional ``classifier=``; without one, 8x8 images use
``digits_classifier()`` (shipped with tinygen). 28x28 images need the
classifier trained on your MNIST files: pass
``classifier=mnist_classifier(mnist_dir, cache_dir)``.

    classifier_features(x)        f(x), the classifier's penultimate layer, float64 (N, F)
    classify(x)                   argmax_k l_k(x), int64 (N,)
    sample_frechet_distance(a, b) FD(f(a), f(b)), see ``tinygen.metrics.frechet``
    class_histogram_kl(x)         KL(h || u) in nats, with h_k = #{n : classify(x_n) = k} / N
                                  and u_k = 1 / K the uniform histogram
    confident_fraction(x, t)      #{n : max_k softmax(l(x_n))_k > t} / N, the share of samples
                                  the classifier reads as one clear digit (t = 0.9)

The histogram KL is the cheap half of the Inception Score: a generator that
makes every class equally often scores 0, one that makes a single class scores
KL = log K (log 10 = 2.303 nats for digits), the signature of mode collapse.
The confident fraction is the other half seen per sample: a blurred or
in-between digit spreads the classifier's probability over several classes (real
test digits: 0.967 above 0.9). FD also sees quality; a bare number means little, so compare it with the
classifier's ``info["fd_train_test"]``, the FD between two samples of real data.
"""
import numpy as np

from ._checks import to_numpy
from .classifier import digits_classifier
from .divergence import kl_divergence
from .frechet import frechet_distance


def _classifier_for(images, classifier, op):
    if classifier is not None:
        return classifier
    shape = tuple(images.shape) if hasattr(images, "shape") else np.shape(images)
    if tuple(shape[-2:]) == (8, 8):
        return digits_classifier()  # which says what is wrong with the other axes, if anything
    if tuple(shape[-2:]) == (28, 28):
        raise ValueError(f"{op}: images of shape {shape} (28x28) need the classifier trained on MNIST: "
                         "pass classifier=tinygen.metrics.mnist_classifier(mnist_dir, cache_dir)")
    raise ValueError(f"{op}: images must have shape (N, 1, 8, 8) for the shipped digits classifier "
                     f"(or pass classifier=...), got {shape}")


def classifier_features(images, classifier=None):
    """The classifier's penultimate-layer features of ``images``: float64 ``(N, F)``."""
    return _classifier_for(images, classifier, "classifier_features").features(images)


def classify(images, classifier=None):
    """The classifier's predicted label of each of ``images``: int64 ``(N,)``."""
    return _classifier_for(images, classifier, "classify").classify(images)


def sample_frechet_distance(images_a, images_b, classifier=None):
    """FD between the classifier features of ``images_a`` and ``images_b`` (each >= 2 images)."""
    op = "sample_frechet_distance"
    images_a, images_b = to_numpy(images_a), to_numpy(images_b)
    for name, images in (("images_a", images_a), ("images_b", images_b)):
        if images.ndim == 0 or len(images) < 2:
            raise ValueError(f"{op}: {name} needs at least 2 images to estimate a covariance, "
                             f"got {len(images)}")
    classifier = _classifier_for(images_a, classifier, op)
    return frechet_distance(classifier.features(images_a), classifier.features(images_b))


def class_histogram_kl(images, classifier=None):
    """KL(histogram of predicted labels || uniform over the K classes), in nats: 0 .. log K."""
    classifier = _classifier_for(images, classifier, "class_histogram_kl")
    labels = classifier.classify(images)
    histogram = np.bincount(labels, minlength=classifier.num_classes) / len(labels)
    return kl_divergence(histogram, np.full(classifier.num_classes, 1.0 / classifier.num_classes))


def confident_fraction(images, threshold=0.9, classifier=None):
    """The share of ``images`` whose most probable class under the classifier has probability > ``threshold``."""
    if not 0 < threshold < 1:
        raise ValueError(f"confident_fraction: threshold must lie in (0, 1), got {threshold!r}")
    classifier = _classifier_for(images, classifier, "confident_fraction")
    logits = classifier.logits(images)
    logits = logits - logits.max(axis=1, keepdims=True)
    top = 1.0 / np.exp(logits).sum(axis=1)          # softmax at the arg max: exp(0) / sum_k exp(l_k - max)
    return float((top > threshold).mean())
