"""tinygen.metrics: numbers that say how good a generative model's samples are.

Implicit models (GANs) have no likelihood to report, so they are judged by
their samples. Everything here takes NumPy arrays or Tensors and returns plain
Python numbers or NumPy arrays, computed on the CPU in float64 (``mmd`` of
Tensors excepted: it stays a Tensor, so it can be a loss).

Feature statistics (``frechet``):
    frechet_distance(feats_a, feats_b)      ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))

Images through a classifier (``classifier``, ``samples``):
    digits_classifier()                     small CNN of 8x8 digits, weights shipped (>= 97% test)
    mnist_classifier(mnist_dir, cache_dir)  the same for 28x28, trained on first use, cached
    classifier_features(images)             its penultimate layer, (N, F)
    classify(images)                        its predicted labels, (N,)
    sample_frechet_distance(a, b)           FD on those features (compare with info["fd_train_test"])
    class_histogram_kl(images)              KL(predicted-label histogram || uniform), nats
    confident_fraction(images, 0.9)         share classified with probability > 0.9

Toy data and clusters (``coverage``):
    mode_coverage(samples, centers, std)    (modes captured, fraction high quality), VEEGAN's protocol
    cluster_accuracy(pred, labels)          accuracy under the best matching of cluster ids to labels

Two-sample statistic (``two_sample``):
    mmd(x, y, kernel="imq"|"rbf", scales)   unbiased MMD^2 estimate

Discrete distributions (``divergence``), for the GAN theory:
    jensen_shannon(p, q)                    JSD in nats, in [0, log 2]
    optimal_discriminator(p_data, p_model)  D* = p_data / (p_data + p_model)
    kl_divergence(p, q)                     KL(p || q) in nats
"""
from .classifier import Classifier, digits_classifier, mnist_classifier, train_classifier
from .coverage import Coverage, cluster_accuracy, mode_coverage
from .divergence import jensen_shannon, kl_divergence, optimal_discriminator
from .frechet import frechet_distance
from .two_sample import WAE_SCALES, mmd
from .samples import (class_histogram_kl, classifier_features, classify, confident_fraction,
                      sample_frechet_distance)

__all__ = [
    "frechet_distance",
    "Classifier", "digits_classifier", "mnist_classifier", "train_classifier",
    "classifier_features", "classify", "sample_frechet_distance", "class_histogram_kl",
    "confident_fraction",
    "Coverage", "mode_coverage", "cluster_accuracy",
    "mmd", "WAE_SCALES",
    "jensen_shannon", "optimal_discriminator", "kl_divergence",
]
