"""Datasets held in memory as uint8 tensors [N, C, H, W]; normalisation happens per batch on the device.

Registry: digits (scikit-learn, embedded, the offline default), mnist, fashion_mnist, cifar10, cifar100
(torchvision downloads into the data root; fashion_mnist also reads Debian's dataset-fashion-mnist), and
the user's own images: folder:PATH and csv:PATH (softtargets.data.files).
"""

from __future__ import annotations

import gzip
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from softtargets.data.bundle import DataBundle, make_bundle
from softtargets.data.files import is_file_dataset, load_file_dataset
from softtargets.errors import SoftTargetsError

log = logging.getLogger(__name__)

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    load: Callable[[Path], DataBundle]


def load_digits(root: Path) -> DataBundle:
    """scikit-learn's 8x8 handwritten digits (1,797 images), a fixed stratified 80/20 train/test split."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    d = sk_digits()
    images = np.round(d.images * (255 / 16)).astype(np.uint8)[:, None]  # 0..16 -> 0..255
    tr_x, te_x, tr_y, te_y = train_test_split(images, d.target, test_size=0.2, stratify=d.target, random_state=0)
    return make_bundle("digits", tr_x, tr_y, te_x, te_y, range(10))


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise SoftTargetsError(f"{path} is not an unsigned-byte IDX file: delete it and fetch it again")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise SoftTargetsError(f"{path} is truncated ({data.size} of {int(np.prod(dims))} values): fetch it again")
    return data.reshape(tuple(int(d) for d in dims)).copy()  # frombuffer views are read-only


def _idx_bundle(name: str, folder: Path, classes) -> DataBundle:
    def find(stem: str) -> Path:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(stem)

    tr_x = read_idx(find("train-images-idx3-ubyte"))[:, None]
    te_x = read_idx(find("t10k-images-idx3-ubyte"))[:, None]
    return make_bundle(name, tr_x, read_idx(find("train-labels-idx1-ubyte")),
                       te_x, read_idx(find("t10k-labels-idx1-ubyte")), classes)


def _torchvision_bundle(name: str, cls_name: str, root: Path, how_to_get: str) -> DataBundle:
    """Load via torchvision (downloading into root when online); NHWC arrays become NCHW uint8."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    try:
        train = cls(str(root), train=True, download=True)
        test = cls(str(root), train=False, download=True)
    except Exception as err:  # torchvision raises URLError/RuntimeError/OSError depending on the failure
        raise SoftTargetsError(
            f"dataset '{name}' is not in {root} and could not be downloaded ({type(err).__name__}): {how_to_get}"
        ) from None

    def nchw(data) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(data))
        return t[:, None] if t.ndim == 3 else t.permute(0, 3, 1, 2)

    return make_bundle(name, nchw(train.data), np.asarray(train.targets), nchw(test.data),
                       np.asarray(test.targets), train.classes)


def load_mnist(root: Path) -> DataBundle:
    return _torchvision_bundle("mnist", "MNIST", root,
                               f"connect to the internet once, or put the MNIST IDX files in {root}/MNIST/raw/")


def load_fashion_mnist(root: Path) -> DataBundle:
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
    for folder in (root / "FashionMNIST" / "raw", DEBIAN_FASHION_MNIST):
        try:
            return _idx_bundle("fashion_mnist", folder, classes)
        except FileNotFoundError:
            continue
    return _torchvision_bundle(
        "fashion_mnist", "FashionMNIST", root,
        "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or connect once",
    )


def load_cifar10(root: Path) -> DataBundle:
    return _torchvision_bundle("cifar10", "CIFAR10", root,
                               f"connect to the internet once, or extract cifar-10-python.tar.gz into {root}/")


def load_cifar100(root: Path) -> DataBundle:
    return _torchvision_bundle("cifar100", "CIFAR100", root,
                               f"connect to the internet once, or extract cifar-100-python.tar.gz into {root}/")


DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in [
        DatasetInfo("digits", "scikit-learn 8x8 handwritten digits, 1,437 train / 360 test, embedded (offline)",
                    load_digits),
        DatasetInfo("mnist", "MNIST 28x28 digits, 60k / 10k (torchvision download)", load_mnist),
        DatasetInfo("fashion_mnist", "Fashion-MNIST 28x28, 60k / 10k (Debian package or torchvision download)",
                    load_fashion_mnist),
        DatasetInfo("cifar10", "CIFAR-10 32x32 RGB, 50k / 10k (torchvision download)", load_cifar10),
        DatasetInfo("cifar100", "CIFAR-100 32x32 RGB, 100 classes, 50k / 10k (torchvision download)", load_cifar100),
    ]
}


def check_dataset(name: str) -> str:
    if name not in DATASETS and not is_file_dataset(name):
        raise SoftTargetsError(f"unknown dataset '{name}': choose one of {', '.join(DATASETS)}, folder:PATH or "
                               f"csv:PATH")
    return name


def dataset_label(name: str) -> str:
    """The dataset part of run-folder names: folder:/a/b/pets -> folder-pets."""
    if name in DATASETS:
        return name
    kind, _, path = name.partition(":")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{kind}-{Path(path).stem or Path(path).name}")


def load_dataset(name: str, root: str | Path = "data", cache_dir: str | Path | None = ".cache/softtargets",
                 holdout: float = 0.2, subset: float | None = None) -> DataBundle:
    """A registered dataset, or folder:PATH / csv:PATH decoded through the tensor cache in cache_dir."""
    check_dataset(name)
    log.info("loading dataset %s", name)
    bundle = DATASETS[name].load(Path(root)) if name in DATASETS else load_file_dataset(name, cache_dir, holdout)
    return check_test_split(take_subset(bundle, subset) if subset is not None else bundle)


def check_test_split(bundle: DataBundle) -> DataBundle:
    """Refuse a dataset without test images (test accuracy and every MIA would be null); warn about classes
    without test images (their per-class test accuracy is null)."""
    if len(bundle.test_y) == 0:
        raise SoftTargetsError(f"dataset {bundle.name} has no test images: add them (folder datasets: "
                               "PATH/test/<class>/, csv: rows with train_split 0)")
    present = set(bundle.test_y.unique().tolist())
    absent = [bundle.classes[k] for k in range(bundle.num_classes) if k not in present]
    if absent:
        log.warning("dataset %s has no test images of class(es) %s: their per-class test accuracy and loss are "
                    "null (see result.json 'unavailable')", bundle.name, ", ".join(absent))
    return bundle


def load_configured(cfg) -> DataBundle:
    """The dataset a RunConfig names, with its data options (root, holdout, subset) and cache folder."""
    d = cfg.data
    return load_dataset(d.dataset, d.root, cfg.cache_dir, d.holdout, d.subset)


def take_subset(bundle: DataBundle, fraction: float) -> DataBundle:
    """A fixed stratified fraction of train and of test (random_state 0, whatever the seed): quick tries on
    CPU with the real data. The content fingerprint changes with it, so cached models never mix."""
    from sklearn.model_selection import train_test_split

    if not 0 < fraction <= 1:
        raise SoftTargetsError(f"data.subset must be in (0, 1], got {fraction}")
    if fraction == 1:
        return bundle

    def pick(y: torch.Tensor) -> torch.Tensor:
        try:
            kept, _ = train_test_split(np.arange(len(y)), train_size=fraction, stratify=y.numpy(), random_state=0)
        except ValueError as err:
            raise SoftTargetsError(f"data.subset {fraction} is too small for {bundle.name} ({err})") from None
        return torch.from_numpy(np.sort(kept))

    train, test = pick(bundle.train_y), pick(bundle.test_y)
    out = make_bundle(f"{bundle.name}-subset{fraction:g}", bundle.train_x[train], bundle.train_y[train],
                      bundle.test_x[test], bundle.test_y[test], bundle.classes)
    if bundle.train_paths is not None:
        out.train_paths, out.root = [bundle.train_paths[i] for i in train.tolist()], bundle.root
    if bundle.forget_idx is not None:  # the index's forget rows that stay, renumbered
        kept = torch.nonzero(torch.isin(train, bundle.forget_idx)).flatten()
        out.forget_idx = kept if len(kept) else None
    return out
