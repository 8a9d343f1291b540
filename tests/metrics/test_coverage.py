"""mode_coverage (VEEGAN's protocol) and cluster_accuracy (Hungarian matching)."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinygen.data import grid, grid_centers, ring, ring_centers
from tinygen.metrics import Coverage, cluster_accuracy, mode_coverage

FAST = settings(max_examples=30, deadline=None, derandomize=True)


# --- mode coverage -------------------------------------------------------------

def test_exact_ring_samples_cover_every_mode_with_the_gaussian_mass_within_3_std():
    n = 20000
    result = mode_coverage(ring(n, seed=0), ring_centers(), std=0.02)
    assert isinstance(result, Coverage)
    modes, high_quality = result
    assert modes == 8
    p = 1 - math.exp(-4.5)  # 2-D Gaussian mass within 3 std: 0.98889
    assert p == pytest.approx(0.989, abs=5e-4)
    assert high_quality == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / n))


def test_exact_grid_samples_cover_all_25_modes():
    modes, high_quality = mode_coverage(grid(5000, seed=1), grid_centers(), std=0.05)
    assert modes == 25 and high_quality > 0.97


def test_collapsed_and_missing_samples():
    centers = ring_centers()
    collapsed = np.repeat(centers[2:3], 100, axis=0)
    assert mode_coverage(collapsed, centers, std=0.02) == (1, 1.0)
    far = np.full((50, 2), 10.0)
    assert mode_coverage(far, centers, std=0.02) == (0, 0.0)
    # half the samples near mode 0, half far away: 1 mode, 50% high quality
    near_first = np.repeat(centers[0:1], 50, axis=0)
    assert mode_coverage(np.concatenate([near_first, far]), centers, std=0.02) == (1, 0.5)


def test_three_std_boundary_and_n_std():
    centers = np.array([[0.0, 0.0], [10.0, 0.0]])
    samples = np.array([[0.29, 0.0], [0.0, 0.31], [10.0, 0.0]])  # 2.9 and 3.1 std from (0, 0)
    assert mode_coverage(samples, centers, std=0.1) == (2, pytest.approx(2 / 3))
    assert mode_coverage(samples, centers, std=0.1, n_std=2.0) == (1, pytest.approx(1 / 3))
    assert mode_coverage(samples, centers, std=0.1, n_std=4.0) == (2, 1.0)


def test_a_mode_is_captured_only_as_the_nearest_centre():
    # This sample is within 3 std of both centres but nearest to the first one only.
    centers = np.array([[0.0, 0.0], [0.5, 0.0]])
    assert mode_coverage(np.array([[0.2, 0.0]]), centers, std=0.1) == (1, 1.0)


@pytest.mark.parametrize("samples, centers, std, error, message", [
    (np.zeros((4, 2)), np.zeros((3, 3)), 1.0, ValueError, r"same number of columns.*\(4, 2\) and \(3, 3\)"),
    (np.zeros(4), np.zeros((3, 2)), 1.0, ValueError, r"samples must be 2-D.*\(4,\)"),
    (np.zeros((0, 2)), np.zeros((3, 2)), 1.0, ValueError, r"samples needs at least 1 row"),
    (np.zeros((4, 2)), np.zeros((3, 2)), 0.0, ValueError, r"std must be a finite number > 0, got 0.0"),
    (np.zeros((4, 2)), np.zeros((3, 2)), -1.0, ValueError, r"std must be"),
    (np.zeros((4, 2)), np.zeros((3, 2)), float("nan"), ValueError, r"std must be"),
    (np.full((4, 2), np.nan), np.zeros((3, 2)), 1.0, ValueError, r"non-finite"),
])
def test_mode_coverage_bad_input(samples, centers, std, error, message):
    with pytest.raises(error, match=message):
        mode_coverage(samples, centers, std)


# --- cluster accuracy ----------------------------------------------------------

def _brute_force(pred, labels):
    """Best accuracy over every one-to-one map of cluster ids to label ids (the definition)."""
    clusters, classes = np.unique(pred), np.unique(labels)
    k = max(len(clusters), len(classes))
    padded = list(classes) + [None] * (k - len(classes))  # None: the cluster matches no label
    best = 0
    for targets in itertools.permutations(padded, len(clusters)):
        mapping = dict(zip(clusters, targets))
        best = max(best, sum(mapping[p] == y for p, y in zip(pred, labels)))
    return best / len(pred)


small_cases = st.integers(1, 12).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 3), min_size=n, max_size=n),
    st.lists(st.integers(0, 3), min_size=n, max_size=n)))


@FAST
@given(small_cases)
def test_cluster_accuracy_matches_brute_force(case):
    pred, labels = (np.array(a) for a in case)
    assert cluster_accuracy(pred, labels) == pytest.approx(_brute_force(pred, labels))


@FAST
@given(st.lists(st.integers(0, 9), min_size=1, max_size=60), st.randoms(use_true_random=False))
def test_relabelled_clusters_score_one(labels, random):
    labels = np.array(labels)
    ids = list(range(10))
    random.shuffle(ids)
    pred = np.array([100 + 7 * ids[y] for y in labels])  # any integer ids, a permutation of the labels
    assert cluster_accuracy(pred, labels) == 1.0


def test_cluster_accuracy_examples():
    labels = np.array([0, 0, 1, 1, 2, 2])
    assert cluster_accuracy(np.array([5, 5, 5, 5, 5, 5]), labels) == pytest.approx(1 / 3)
    assert cluster_accuracy(np.array([1, 1, 0, 0, 0, 2]), labels) == pytest.approx(5 / 6)
    assert cluster_accuracy(np.arange(6), labels) == pytest.approx(0.5)  # more clusters than labels


@pytest.mark.parametrize("pred, labels, error, message", [
    (np.zeros(3, int), np.zeros(4, int), ValueError, r"one length.*\(3,\) and \(4,\)"),
    (np.zeros(0, int), np.zeros(0, int), ValueError, r"non-empty"),
    (np.zeros((2, 2), int), np.zeros(4, int), ValueError, r"pred must be 1-D.*\(2, 2\)"),
    (np.zeros(3), np.zeros(3, int), TypeError, r"pred must hold integer ids, got dtype float64"),
])
def test_cluster_accuracy_bad_input(pred, labels, error, message):
    with pytest.raises(error, match=message):
        cluster_accuracy(pred, labels)
