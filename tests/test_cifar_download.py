"""torchvision's real CIFAR download code (fetch, MD5 checks, extraction) against a local HTTP server on
127.0.0.1 serving a small archive built here; only the class's url and checksums are pointed at it."""

import hashlib
import http.server
import io
import pickle
import tarfile
import threading
from functools import partial

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd

from softtargets.data.datasets import load_dataset


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def cifar_archive(rng) -> tuple[bytes, dict, np.ndarray, list]:
    files, checksums = {}, {}
    for name, n in [*[(f"data_batch_{i}", 4) for i in range(1, 6)],
                    ("test_batch", 3)]:
        files[name] = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(range(n))}
    files["batches.meta"] = {"label_names": [f"c{i}" for i in range(10)]}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            raw = pickle.dumps(content, protocol=2)
            checksums[name] = md5(raw)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    train = np.concatenate([files[f"data_batch_{i}"]["data"] for i in range(1, 6)])
    return buffer.getvalue(), checksums, train, files["test_batch"]["labels"]


@pytest.fixture
def http_folder(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_cifar10_downloads_verifies_and_converts_to_nchw(tmp_path, http_folder, monkeypatch):
    served, base = http_folder
    archive, sums, train, test_labels = cifar_archive(np.random.default_rng(0))
    (served / "cifar-10-python.tar.gz").write_bytes(archive)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setattr(tvd.CIFAR10, "url", f"{base}/cifar-10-python.tar.gz")
    monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", md5(archive))
    monkeypatch.setattr(tvd.CIFAR10, "train_list", [[f"data_batch_{i}", sums[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", sums["test_batch"]]])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                             "md5": sums["batches.meta"]})
    b = load_dataset("cifar10", tmp_path / "data")
    assert (tmp_path / "data" / "cifar-10-python.tar.gz").is_file()  # fetched over HTTP, MD5 checked
    assert b.train_x.shape == (20, 3, 32, 32) and b.test_y.tolist() == test_labels and b.classes[3] == "c3"
    assert torch.equal(b.train_x, torch.from_numpy(train.reshape(-1, 3, 32, 32)))  # CIFAR rows are CHW
    monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", "0" * 32)  # a second load uses the verified files on disk
    assert load_dataset("cifar10", tmp_path / "data").fingerprint() == b.fingerprint()
