import gzip
import struct

import numpy as np
import pytest
import torch

from softtargets.data.datasets import DEBIAN_FASHION_MNIST, load_dataset, read_idx
from softtargets.errors import SoftTargetsError


def write_idx(path, array: np.ndarray, compress=False):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">i", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def test_digits_is_embedded_uint8_nchw():
    b = load_dataset("digits")
    assert b.train_x.dtype == torch.uint8 and b.train_x.shape[1:] == (1, 8, 8)
    assert len(b.train_y) == 1437 and len(b.test_y) == 360 and b.num_classes == 10
    assert b.train_x.max() == 255 and len(b.mean) == 1
    assert load_dataset("digits").fingerprint() == b.fingerprint()


def test_read_idx_plain_and_gzip(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", arr)
    write_idx(tmp_path / "b.gz", arr, compress=True)
    assert np.array_equal(read_idx(tmp_path / "a"), arr) and np.array_equal(read_idx(tmp_path / "b.gz"), arr)
    (tmp_path / "c").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x09abc")
    with pytest.raises(SoftTargetsError, match="truncated"):
        read_idx(tmp_path / "c")


def test_mnist_through_torchvision_offline_from_local_idx_files(tmp_path):
    """The real torchvision MNIST code path, fed IDX files we construct (no download happens)."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    write_idx(raw / "train-images-idx3-ubyte", rng.integers(0, 256, (20, 28, 28)))
    write_idx(raw / "train-labels-idx1-ubyte", np.arange(20) % 10)
    write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (10, 28, 28)))
    write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(10))
    b = load_dataset("mnist", tmp_path)
    assert b.train_x.shape == (20, 1, 28, 28) and b.test_y.tolist() == list(range(10))


def test_missing_dataset_offline_says_how_to_get_it(tmp_path):
    with pytest.raises(SoftTargetsError, match="could not be downloaded.*MNIST IDX files"):
        load_dataset("mnist", tmp_path)


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package(tmp_path):
    b = load_dataset("fashion_mnist", tmp_path)
    assert b.train_x.shape == (60000, 1, 28, 28) and b.test_x.shape == (10000, 1, 28, 28)
    assert b.classes[9] == "Ankle boot" and torch.bincount(b.train_y).tolist() == [6000] * 10


def test_unknown_dataset():
    with pytest.raises(SoftTargetsError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")
