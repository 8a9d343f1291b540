"""tinygen.save / tinygen.load: exact round trips, atomic writes, clear errors, no pickle."""
import math
import os
import zipfile

import numpy as np
import pytest

import tinygen
from tinygen.serialization import CheckpointError, load, save


def _nested_state():
    rng = np.random.default_rng(123)
    rng.standard_normal(5)  # move the state away from the seed's
    return {
        "model": {
            "fc1.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
            "fc1.bias": np.zeros(3, dtype=np.float64),
            "conv/w": np.ones((1, 1, 2, 2), dtype=np.float16),  # slash inside a key
            "embedding": np.array([[1, 2], [3, 4]], dtype=np.int64),
            "mask": np.array([True, False]),
            "scalar_array": np.array(2.5),
            "empty": np.zeros((0, 4), dtype=np.float32),
        },
        "optimizer": {
            "lr": 1e-3, "betas": (0.9, 0.999), "step": 17,
            "state": [{"exp_avg": np.full(3, 0.5), "exp_avg_sq": np.full(3, 0.25)}, {}],
            "param_groups": [{"params": [0, 1], "weight_decay": 0.0, "amsgrad": False}],
        },
        "rng": rng.bit_generator.state,  # PCG64: two ints far beyond 64 bits
        "big": {"positive": 2**200 + 1, "negative": -(2**100), "zero": 0},
        "floats": [0.1, -0.0, float("inf"), -float("inf"), 1e-320],
        "flags": [True, False, None],
        "text": {"name": "vae", "unicode": "héllo ✓", "empty": "", "nul": "a\x00"},
        "numpy_scalars": [np.float32(1.5), np.int64(-3), np.bool_(True)],
        "empties": {"dict": {}, "list": [], "tuple": ()},
        "nested_tuples": ((1, (2, [3])), [(4,)]),
        "odd keys": {"": 1, "%": 2, "%2F": 3, "a.b": 4, "a/b": 5, "x.npy": np.ones(1),
                     "file": np.ones(2), "allow_pickle": np.zeros(2), "%tinygen": "not the manifest"},
    }


def _assert_same(a, b, where="state"):
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
        if isinstance(a, (float, np.generic)):
            assert repr(a) == repr(b), where  # -0.0 stays -0.0, float32 stays float32


def test_round_trip_of_every_kind_of_value(tmp_path):
    state = _nested_state()
    path = tmp_path / "ckpt.npz"
    save(state, path)
    loaded = load(path)
    _assert_same(state, loaded)


def test_nan_round_trips(tmp_path):
    save({"x": float("nan")}, tmp_path / "n.npz")
    assert math.isnan(load(tmp_path / "n.npz")["x"])


def test_rng_state_round_trip_reproduces_the_stream(tmp_path):
    rng = np.random.default_rng(0)
    rng.random(10)
    save({"rng": rng.bit_generator.state}, tmp_path / "rng.npz")
    expected = rng.random(5)
    restored = np.random.default_rng()
    restored.bit_generator.state = load(tmp_path / "rng.npz")["rng"]
    np.testing.assert_array_equal(restored.random(5), expected)


def test_tensors_are_saved_as_numpy(tmp_path):
    t = tinygen.tensor(np.arange(4, dtype=np.float32), requires_grad=True)
    save({"w": t}, tmp_path / "t.npz")
    w = load(tmp_path / "t.npz")["w"]
    assert type(w) is np.ndarray and w.dtype == np.float32
    np.testing.assert_array_equal(w, [0, 1, 2, 3])


def test_file_is_a_plain_npz_readable_without_pickle(tmp_path):
    save(_nested_state(), tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as archive:
        assert "model/fc1.weight" in archive.files
        assert "model/conv%2Fw" in archive.files  # the slash inside a key is escaped
        for name in archive.files:
            archive[name]  # every member loads with allow_pickle=False


def test_path_is_used_exactly_and_folders_are_created(tmp_path):
    path = tmp_path / "runs" / "vae" / "checkpoint.tinygen"
    save({"a": 1}, path)
    assert os.listdir(path.parent) == ["checkpoint.tinygen"]
    assert load(str(path)) == {"a": 1}


def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = tmp_path / "c.npz"
    save({"a": np.ones(3)}, path)
    save({"a": np.zeros(3)}, path)  # overwrite
    assert os.listdir(tmp_path) == ["c.npz"]
    np.testing.assert_array_equal(load(path)["a"], np.zeros(3))


def test_failed_save_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "c.npz"
    save({"a": np.ones(3)}, path)
    with pytest.raises(CheckpointError):
        save({"a": np.zeros(3), "bad": np.array([object()], dtype=object)}, path)
    assert os.listdir(tmp_path) == ["c.npz"]
    np.testing.assert_array_equal(load(path)["a"], np.ones(3))


def test_object_arrays_are_refused_at_save_time(tmp_path):
    with pytest.raises(CheckpointError, match=r"'model/w'.*dtype object.*pickle"):
        save({"model": {"w": np.array([1, "a", None], dtype=object)}}, tmp_path / "o.npz")
    assert os.listdir(tmp_path) == []


def test_unsupported_values_are_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"cannot store a builtins.set at 'opt/x'"):
        save({"opt": {"x": {1, 2}}}, tmp_path / "s.npz")
    with pytest.raises(CheckpointError, match=r"keys must be strings; got key 0 \(int\) in 'opt'"):
        save({"opt": {0: 1}}, tmp_path / "s.npz")
    with pytest.raises(CheckpointError, match="state must be a dict"):
        save([1, 2], tmp_path / "s.npz")
    assert os.listdir(tmp_path) == []


def test_truncated_file_is_named(tmp_path):
    path = tmp_path / "c.npz"
    save(_nested_state(), path)
    raw = path.read_bytes()
    for cut in (len(raw) // 2, 10, 0):
        path.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match="not a readable .npz checkpoint") as info:
            load(path)
        assert str(path) in str(info.value)


def test_damaged_member_is_named(tmp_path):
    path = tmp_path / "c.npz"
    save({"w": np.arange(1000, dtype=np.float64)}, path)
    raw = bytearray(path.read_bytes())
    position = raw.find(np.arange(1000, dtype=np.float64).tobytes()[800:816])
    raw[position:position + 8] = b"\xff" * 8  # the zip CRC no longer matches
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="damaged") as info:
        load(path)
    assert str(path) in str(info.value)


def test_foreign_files_are_named(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match="notes.txt"):
        load(text)

    npy = tmp_path / "array.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(CheckpointError, match="single .npy array"):
        load(npy)

    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.ones(2))
    with pytest.raises(CheckpointError, match="not a tinygen checkpoint.*members: a"):
        load(plain)

    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(CheckpointError, match="other.zip"):
        load(other_zip)

    with pytest.raises(ValueError):  # CheckpointError is a ValueError
        load(text)


def test_pickled_npz_member_is_refused(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, **{"%tinygen": np.array([{"evil": 1}], dtype=object)})
    with pytest.raises(CheckpointError, match=str(path)):
        load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load(tmp_path / "absent.npz")


def test_tinygen_exports_save_and_load(tmp_path):
    tinygen.save({"a": (1, 2)}, tmp_path / "e.npz")
    assert tinygen.load(tmp_path / "e.npz") == {"a": (1, 2)}


# --- property: any state of the supported kinds round-trips ------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

_leaves = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
           | hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes(min_dims=0, max_dims=2, max_side=3)))
_trees = st.recursive(
    _leaves,
    lambda inner: (st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple)
                   | st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=12)


def _same_including_nan(a, b):
    if isinstance(a, np.ndarray):
        assert type(b) is np.ndarray and a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)  # treats NaNs in the same places as equal
    elif isinstance(a, dict):
        assert type(b) is dict and list(a) == list(b)
        for key in a:
            _same_including_nan(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _same_including_nan(x, y)
    else:
        assert type(a) is type(b) and repr(a) == repr(b)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _trees, max_size=4))
def test_any_supported_state_round_trips(tmp_path_factory, state):
    path = tmp_path_factory.mktemp("prop") / "state.npz"
    save(state, path)
    _same_including_nan(state, load(path))
