"""tinygen.data: digits, binarize, MNIST IDX files, toy 2-D sets, DataLoader."""
import gzip
import os

import numpy as np
import pytest

import tinygen
from tinygen import backend
from tinygen.data import (DataLoader, Dataset, IDXFormatError, MNIST_FILES, binarize, digits, grid,
                          grid_centers, mnist, ring, ring_centers, swiss_roll, toy, write_idx)

# --- digits -------------------------------------------------------------------


def test_digits_shapes_dtypes_ranges():
    d = digits()
    assert isinstance(d, Dataset)
    assert d.train_images.shape == (1438, 1, 8, 8) and d.test_images.shape == (359, 1, 8, 8)
    assert d.train_labels.shape == (1438,) and d.test_labels.shape == (359,)
    assert d.train_images.dtype == np.float32 and d.train_labels.dtype == np.int64
    for images in (d.train_images, d.test_images):
        assert images.min() == 0.0 and images.max() == 1.0
        # pixel / 16: every value is a multiple of 1/16
        np.testing.assert_array_equal(images * 16, np.round(images * 16))
    assert set(np.unique(d.train_labels)) == set(range(10)) == set(np.unique(d.test_labels))
    assert d.image_shape == (1, 8, 8) and d.num_classes == 10
    assert "(1438, 1, 8, 8)" in repr(d)


def test_digits_split_is_fixed_and_disjoint():
    a, b = digits(), digits()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    # Pinned: the split is the same on every machine and numpy version we support.
    np.testing.assert_array_equal(a.test_labels[:12], [8, 8, 9, 8, 3, 7, 5, 0, 6, 6, 3, 1])
    from sklearn.datasets import load_digits
    everything = load_digits()
    assert len(a.train_labels) + len(a.test_labels) == len(everything.target)
    np.testing.assert_array_equal(np.sort(np.concatenate([a.train_labels, a.test_labels])),
                                  np.sort(everything.target))


def test_digits_returns_copies():
    d = digits()
    d.train_images[...] = 7.0
    assert digits().train_images.max() == 1.0


# --- binarize -----------------------------------------------------------------


def test_binarize_numpy():
    x = np.array([[0.0, 0.5, 0.51, 1.0]], dtype=np.float64)
    out = binarize(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_array_equal(out, [[0, 0, 1, 1]])
    np.testing.assert_array_equal(binarize(x, threshold=0.0), [[0, 1, 1, 1]])
    np.testing.assert_array_equal(binarize([0.2, 0.9]), [0, 1])


def test_binarize_tensor_returns_tensor():
    t = tinygen.tensor(np.array([0.1, 0.7, 0.5], dtype=np.float32))
    out = binarize(t)
    assert isinstance(out, tinygen.Tensor)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), [0, 1, 0])


# --- MNIST from IDX files -------------------------------------------------------

def _write_mnist(folder, n_train=5, n_test=3, gz=False, side=28):
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    arrays["train_images"][0, 0, 0], arrays["train_images"][0, 0, 1] = 0, 255
    for field, name in MNIST_FILES.items():
        write_idx(os.path.join(folder, name + (".gz" if gz else "")), arrays[field])
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_plain_and_gz(tmp_path, gz):
    raw = _write_mnist(tmp_path, gz=gz)
    d = mnist(tmp_path)
    assert isinstance(d, Dataset)
    assert d.train_images.shape == (5, 1, 28, 28) and d.test_images.shape == (3, 1, 28, 28)
    assert d.train_images.dtype == np.float32 and d.train_labels.dtype == np.int64
    assert d.train_images.min() == 0.0 and d.train_images.max() == 1.0
    np.testing.assert_allclose(d.train_images[:, 0] * 255, raw["train_images"], atol=1e-4)
    np.testing.assert_array_equal(d.test_labels, raw["test_labels"])


def test_mnist_idx_header_is_big_endian(tmp_path):
    _write_mnist(tmp_path)
    header = (tmp_path / "train-images-idx3-ubyte").read_bytes()[:16]
    assert header == bytes([0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28])


def test_mnist_missing_files_are_named(tmp_path):
    _write_mnist(tmp_path)
    os.remove(tmp_path / "t10k-images-idx3-ubyte")
    os.remove(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(FileNotFoundError) as info:
        mnist(tmp_path)
    message = str(info.value)
    assert "t10k-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert str(tmp_path) in message and "LeCun" in message
    assert "train-labels-idx1-ubyte," in message  # the list of all four names


def test_mnist_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*train-images-idx3-ubyte"):
        mnist(tmp_path / "nowhere")


def _corrupt(path, data):
    with open(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("damage, message", [
    (lambda raw: raw[:100], "truncated"),
    (lambda raw: raw[:2], "truncated"),
    (lambda raw: raw[:10], "truncated.*header"),
    (lambda raw: raw + b"\x00", "longer than its header"),
    (lambda raw: b"\x01\x02" + raw[2:], "bad magic number"),
    (lambda raw: raw[:2] + b"\x0d" + raw[3:], "type code 0x0d"),
    (lambda raw: raw[:3] + b"\x01" + raw[4:], "1 dimensions.*image file has 3"),
])
def test_mnist_corrupt_file_is_named(tmp_path, damage, message):
    _write_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    _corrupt(path, damage(path.read_bytes()))
    with pytest.raises(IDXFormatError, match=message) as info:
        mnist(tmp_path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_mnist_gzip_errors_are_named(tmp_path):
    _write_mnist(tmp_path, gz=True)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    raw = path.read_bytes()
    _corrupt(path, raw[: len(raw) // 2])
    with pytest.raises(IDXFormatError, match="not a valid gzip file") as info:
        mnist(tmp_path)
    assert str(path) in str(info.value)
    _corrupt(path, b"this is not gzip at all")
    with pytest.raises(IDXFormatError, match="train-labels-idx1-ubyte.gz"):
        mnist(tmp_path)


def test_mnist_count_mismatch(tmp_path):
    _write_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(7, np.uint8))
    with pytest.raises(IDXFormatError, match="3 images.*7 labels"):
        mnist(tmp_path)


def test_mnist_prefers_plain_file(tmp_path):
    _write_mnist(tmp_path, gz=True)
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz") as f:
        (tmp_path / "train-labels-idx1-ubyte").write_bytes(f.read())
    assert mnist(tmp_path).train_labels.shape == (5,)


# --- toy 2-D sets ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["ring", "grid", "swiss_roll"])
def test_toy_shapes_dtypes_determinism(name):
    a = toy(name, 300, seed=3)
    assert a.shape == (300, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, toy(name, 300, seed=3))
    assert not np.array_equal(a, toy(name, 300, seed=4))


def test_ring_points_lie_near_the_radius_and_cover_the_modes():
    x = ring(2000, seed=0, radius=2.0, std=0.02)
    r = np.linalg.norm(x, axis=1)
    assert np.all(np.abs(r - 2.0) < 0.15)
    centers = ring_centers()
    assert centers.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 2.0, rtol=1e-6)
    nearest = np.argmin(((x[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
    counts = np.bincount(nearest, minlength=8)
    assert counts.min() > 150  # ~250 each


def test_grid_centers_and_points():
    centers = grid_centers()
    assert centers.shape == (25, 2)
    assert sorted(set(centers[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    x = grid(1000, seed=0)
    distance = np.min(np.linalg.norm(x[:, None, :] - centers[None], axis=-1), axis=1)
    assert distance.max() < 0.4  # std 0.05: 8 standard deviations
    assert grid_centers(size=3, spacing=1.0).tolist()[0] == [-1.0, -1.0]


def test_swiss_roll_range():
    x = swiss_roll(1000, seed=0, noise=0.0)
    r = np.linalg.norm(x, axis=1)
    assert r.min() >= 1.5 * np.pi / 5 - 1e-5 and r.max() <= 4.5 * np.pi / 5 + 1e-5


def test_toy_errors():
    with pytest.raises(ValueError, match="unknown toy data set 'rings'.*grid, ring, swiss_roll"):
        toy("rings", 10)
    with pytest.raises(ValueError, match="n must be an int"):
        ring(-1)
    with pytest.raises(ValueError, match="seed"):
        ring(10, seed="abc")


def test_toy_seed_none_follows_manual_seed():
    backend.manual_seed(5)
    a = ring(50, seed=None)
    backend.manual_seed(5)
    np.testing.assert_array_equal(a, ring(50, seed=None))


# --- DataLoader -----------------------------------------------------------------


def _columns(n=10):
    return np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n, dtype=np.int64)


def test_loader_batch_counts():
    x, y = _columns(10)
    assert len(DataLoader((x, y), batch_size=4)) == 3
    assert len(DataLoader((x, y), batch_size=4, drop_last=True)) == 2
    assert len(DataLoader((x, y), batch_size=5, drop_last=True)) == 2
    assert len(DataLoader(x, batch_size=100)) == 1
    sizes = [len(yb.numpy()) for _, yb in DataLoader((x, y), batch_size=4)]
    assert sizes == [4, 4, 2]
    sizes = [len(yb.numpy()) for _, yb in DataLoader((x, y), batch_size=4, drop_last=True)]
    assert sizes == [4, 4]


def test_loader_yields_tensors_with_rows_kept_together():
    x, y = _columns(10)
    seen = []
    for xb, yb in DataLoader((x, y), batch_size=3, seed=1):
        assert isinstance(xb, tinygen.Tensor) and isinstance(yb, tinygen.Tensor)
        assert xb.dtype == np.float32 and yb.dtype == np.int64
        np.testing.assert_array_equal(xb.numpy()[:, 0], 2 * yb.numpy())  # row i of x goes with y[i]
        seen.extend(yb.numpy().tolist())
    assert sorted(seen) == list(range(10))  # each example once per epoch


def test_loader_single_array_yields_single_tensor():
    x, _ = _columns(6)
    batches = list(DataLoader(x, batch_size=4, shuffle=False))
    assert all(isinstance(b, tinygen.Tensor) for b in batches)
    np.testing.assert_array_equal(batches[0].numpy(), x[:4])


def _epoch_order(loader):
    return np.concatenate([yb.numpy() for _, yb in loader])


def test_loader_same_seed_same_order_and_epochs_differ():
    x, y = _columns(50)
    a, b = DataLoader((x, y), batch_size=8, seed=7), DataLoader((x, y), batch_size=8, seed=7)
    a0, a1 = _epoch_order(a), _epoch_order(a)
    np.testing.assert_array_equal(a0, _epoch_order(b))
    np.testing.assert_array_equal(a1, _epoch_order(b))
    assert not np.array_equal(a0, a1)
    assert not np.array_equal(a0, _epoch_order(DataLoader((x, y), batch_size=8, seed=8)))
    c = DataLoader((x, y), batch_size=8, seed=7)
    c.set_epoch(1)  # resuming at epoch 1 gives epoch 1's order without replaying epoch 0
    np.testing.assert_array_equal(_epoch_order(c), a1)


def test_loader_order_without_tensors():
    x, y = _columns(20)
    loader = DataLoader((x, y), batch_size=4, seed=3)
    assert sorted(loader.order(0).tolist()) == list(range(20))
    np.testing.assert_array_equal(loader.order(2), DataLoader(x, 4, seed=3).order(2))
    assert not np.array_equal(loader.order(0), loader.order(1))
    np.testing.assert_array_equal(DataLoader(x, 4, shuffle=False).order(5), np.arange(20))


def test_loader_errors():
    x, y = _columns(10)
    with pytest.raises(ValueError, match=r"same first dimension.*\(10, 2\), \(9,\)"):
        DataLoader((x, y[:9]), batch_size=2)
    for bad in (0, -1, 2.5, "4", True):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            DataLoader(x, batch_size=bad)
    with pytest.raises(ValueError, match="no batch"):
        DataLoader(x, batch_size=11, drop_last=True)
    with pytest.raises(ValueError, match="no rows"):
        DataLoader(np.zeros((0, 3)), batch_size=2)
    with pytest.raises(ValueError, match="scalar"):
        DataLoader(np.float32(1.0), batch_size=2)
    with pytest.raises(ValueError, match="unknown device"):
        DataLoader(x, batch_size=2, device="tpu")
