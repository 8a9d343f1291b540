"""Files that claim more than they hold are refused before they are inflated (issue 9).

An IDX file's header is read first and bounds the rest: a gzipped body is inflated
only up to the size the header declares (plus one byte), and a header declaring
more than the compressed file could hold is refused before any inflating. A
checkpoint's members must agree with their own ``.npy`` headers, and what the run
information says is checked before any array is read.
"""
import gzip
import io
import time
import zipfile

import numpy as np
import pytest

import tinygen
from tinygen import serialization
from tinygen.data import IDXFormatError, read_idx, write_idx
from tinygen.run_config import UsageError
from tinygen.run_checkpoint import read_checkpoint
from tinygen.train import train


def _idx_header(*shape):
    return bytes([0, 0, 8, len(shape)]) + np.asarray(shape, ">u4").tobytes()


def test_a_gzipped_idx_body_is_inflated_no_further_than_its_header_declares(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    body = bytes(64 * 2**20)   # 64 MB of zeros compress to about 64 KB
    path.write_bytes(gzip.compress(_idx_header(10, 28, 28) + body, compresslevel=1))
    t0 = time.perf_counter()
    with pytest.raises(IDXFormatError, match="longer than its header says") as info:
        read_idx(path, ndim=3)
    assert time.perf_counter() - t0 < 0.5 and str(path) in str(info.value)   # it never inflated 64 MB


def test_an_idx_header_claiming_more_than_the_file_can_hold_is_refused_unread(tmp_path):
    gz = tmp_path / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(_idx_header(60000, 65535, 65535) + bytes(100)))
    with pytest.raises(IDXFormatError, match="more than a .*-byte gzip file can hold") as info:
        read_idx(gz, ndim=3)
    assert str(gz) in str(info.value)
    plain = tmp_path / "train-images-idx3-ubyte"   # sizes whose product overflows 64 bits
    plain.write_bytes(_idx_header(2**32 - 1, 2**32 - 1, 2**32 - 1) + bytes(100))
    with pytest.raises(IDXFormatError, match="truncated") as info:
        read_idx(plain, ndim=3)
    assert str(plain) in str(info.value) and str((2**32 - 1) ** 3) in str(info.value)


def test_an_idx_round_trip_still_reads_plain_and_gz(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 3, 4)).astype(np.uint8)
    for name in ("a", "a.gz"):
        write_idx(tmp_path / name, images)
        np.testing.assert_array_equal(read_idx(tmp_path / name, ndim=3), images)


def _npz_with(members):
    """An .npz archive (bytes) of ``{name: (npy bytes, deflate?)}``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, (raw, deflate) in members.items():
            z.writestr(name + ".npy", raw, compress_type=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    return buf.getvalue()


def _npy(array):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array)
    return buf.getvalue()


def test_a_member_holding_more_than_its_header_declares_is_refused(tmp_path):
    manifest = b'{"format": "tinygen-checkpoint", "version": 1, "nodes": [["", "dict", 1], ["w", "array", null]]}'
    header = _npy(np.zeros(10))[:-80]           # a header saying shape (10,) float64 ...
    path = tmp_path / "bomb.npz"
    path.write_bytes(_npz_with({"%tinygen": (_npy(np.frombuffer(manifest, np.uint8)), False),
                                "w": (header + bytes(2**24), True)}))   # ... over 16 MB of zeros
    with pytest.raises(serialization.CheckpointError, match=r"shape \(10,\) of float64 .* declares 16777") as info:
        tinygen.load(path)
    assert str(path) in str(info.value)


def test_a_manifest_larger_than_any_manifest_needs_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    tinygen.save({"names": ["x" * 100] * 100}, path)
    monkeypatch.setattr(serialization, "MAX_MANIFEST_BYTES", 1000)
    with pytest.raises(serialization.CheckpointError, match="declares a manifest of .* bytes"):
        tinygen.load(path)


def test_the_run_information_is_checked_before_any_array_is_read(tmp_path, monkeypatch):
    out = tmp_path / "run"
    train("bernoulli", steps=1, out=out, quiet=True)
    read = serialization._read_member
    members_read = []

    def spy(archive, member, path):
        members_read.append(member.filename)
        return read(archive, member, path)
    monkeypatch.setattr(serialization, "_read_member", spy)
    with pytest.raises(UsageError, match="holds a 'bernoulli' model .* not a 'nade' model"):
        read_checkpoint(out / "checkpoint.npz", model="nade")
    assert members_read == ["%tinygen.npy"]     # refused on the manifest and headers alone
    ckpt = read_checkpoint(out / "checkpoint.npz", model="bernoulli")
    assert ckpt["step"] == 1 and len(members_read) > 2

    # parameters of other shapes: refused on their headers, before they are inflated
    ckpt["state"]["model"]["logits"] = np.zeros((1, 8, 9), np.float32)
    tinygen.save(ckpt, out / "checkpoint.npz")
    members_read.clear()
    with pytest.raises(UsageError, match=r"shape mismatch for 'logits': the module has \(1, 8, 8\), "
                                         r"the state has \(1, 8, 9\)"):
        read_checkpoint(out / "checkpoint.npz", model="bernoulli")
    assert members_read == ["%tinygen.npy"]
