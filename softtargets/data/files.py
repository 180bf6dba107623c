"""Datasets from disk, decoded once into a cached tensor file.

  folder:PATH   class subfolders of images (PATH/<class>/*.png). With PATH/train/<class> and PATH/test/<class>
                those are the splits; else, as the original SoftTargets tool's data/create_csv.py (dev branch,
                lines 42-53) reads its folders, an image whose file name contains "test" is a test image when
                any file name does; otherwise a stratified fraction `data.holdout` (default 0.2) of each class
                is held out as test images, fixed (random_state 0) so every seed shares one test set. A class
                folder named <digits>e (`3e`) holds forget images of class <digits> (`3`), the original's
                convention: its images are the dataset's forget rows (the `dataset` forget spec).
  csv:PATH      the original SoftTargets tool's index: `index;Path;Class_Label;train_split;f1_split`,
                train_split 1 = train / 0 = test, f1_split 1 = a forget row (the `dataset` forget spec, the
                default for csv datasets). The original marks every image of an "e" class folder, test images
                too: f1_split on a test row names a forgotten class's test image and is not a forget row.
                Relative paths resolve as the original's loader opened them, from the working directory
                (dev:src/data/dataset_loaders.py, `Image.open(img_path)`), else from the CSV's folder, else
                from its parent (the original writes data/<name>_index.csv with paths data/...).

The cache entry (<cache_dir>/data/<key>.pt, verified on load: softtargets.cache) is keyed by the index, the split settings and the bytes of every
image, written atomically after every image decoded, so a bad file leaves no cache entry behind.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from softtargets.cache import DataCache
from softtargets.data.bundle import make_bundle
from softtargets.errors import SoftTargetsError, brief

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
CSV_COLUMNS = ("index", "Path", "Class_Label", "train_split", "f1_split")
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
CACHE_FORMAT = 1  # bump when decoding changes what a cached tensor would be
_INTEGER = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also accepts "²" and "٣", which int() reads or not
FORGET_FOLDER = re.compile(r"([0-9]+)e")  # the original's forget class folders: `3e` holds forget images of class 3


@dataclass
class ImageIndex:
    """What a source lists before any image is decoded: one entry per image, train ones first."""

    root: Path  # paths are relative to it
    paths: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    train: list[bool] = field(default_factory=list)
    forget: list[bool] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    where: list[str] = field(default_factory=list)  # how an error names the entry (file, or CSV row)

    def add(self, path: str, label: int, train: bool, forget: bool, where: str) -> None:
        self.paths.append(path)
        self.labels.append(label)
        self.train.append(train)
        self.forget.append(forget)
        self.where.append(where)


def is_file_dataset(name: str) -> bool:
    return name.startswith(("folder:", "csv:"))


def load_file_dataset(name: str, cache_dir: str | Path | None, holdout: float = 0.2):
    """A DataBundle for folder:PATH or csv:PATH, decoded once and then read from the tensor cache."""
    kind, _, arg = name.partition(":")
    path = Path(arg).expanduser()
    if not arg or not path.exists():
        raise SoftTargetsError(f"dataset '{name}': {path} does not exist; give {kind}:PATH to an existing "
                               f"{'folder' if kind == 'folder' else 'CSV file'}")
    index = list_folder(path, holdout) if kind == "folder" else read_csv_index(path)
    key = _cache_key(index, name if kind == "folder" else "csv", holdout if kind == "folder" else None)
    cache = DataCache(cache_dir)
    hit = cache.load(key, "dataset")
    payload = hit[0] if hit else _decode(index)
    if hit is None:
        cache.save(key, payload, {"dataset": name}, "dataset")
    return _bundle(f"{kind}-{path.stem or path.name}", payload, index.root)


def list_folder(folder: Path, holdout: float) -> ImageIndex:
    if not folder.is_dir():
        raise SoftTargetsError(f"dataset 'folder:{folder}': {folder} is not a folder of class subfolders")
    index = ImageIndex(folder)
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        train_dirs = _class_dirs(folder / "train")
        index.classes = list(train_dirs)
        for split in ("train", "test"):
            dirs = train_dirs if split == "train" else _class_dirs(folder / split, minimum=0)
            unknown = sorted(set(dirs) - set(index.classes))
            if unknown:
                raise SoftTargetsError(f"{folder / split / unknown[0]}: class '{unknown[0]}' has no folder in "
                                       f"{folder / 'train'}: add its train images or remove it")
            for label, name in enumerate(index.classes):
                for image, forget in _class_images(dirs.get(name, []), required=split == "train"):
                    index.add(image.relative_to(folder).as_posix(), label, split == "train", forget, str(image))
        return index
    dirs = _class_dirs(folder)
    index.classes = list(dirs)
    entries = [(image, label, forget) for label, name in enumerate(index.classes)
               for image, forget in _class_images(dirs[name])]
    if any("test" in image.name for image, _, _ in entries):  # create_csv.py: 0 if "test" in filename else 1
        is_test = ["test" in image.name for image, _, _ in entries]
    else:
        if not 0 < holdout < 1:
            raise SoftTargetsError(f"data.holdout must be between 0 and 1 (exclusive), got {holdout}")
        is_test = _holdout_mask([label for _, label, _ in entries], holdout, folder)
    for want_train in (True, False):
        for (image, label, forget), test in zip(entries, is_test):
            if test != want_train:
                index.add(image.relative_to(folder).as_posix(), label, want_train, forget, str(image))
    return index


def _class_dirs(folder: Path, minimum: int = 2) -> dict[str, list[tuple[Path, bool]]]:
    """Class name -> its folders, each with its forget flag: `3` and `3e` are both class 3, `3e` forgotten.
    All-digit class names sort as numbers (class 10 after class 9), others by name."""
    found: dict[str, list[tuple[Path, bool]]] = {}
    for p in sorted(folder.iterdir()):
        if p.is_dir() and not p.name.startswith("."):
            match = FORGET_FOLDER.fullmatch(p.name)
            found.setdefault(match.group(1) if match else p.name, []).append((p, bool(match)))
    if len(found) < minimum:
        raise SoftTargetsError(f"{folder}: found {len(found)} class subfolder(s); put the images of each class "
                               f"in their own subfolder (at least 2 classes)")
    numeric = all(_INTEGER.fullmatch(name) for name in found)
    return dict(sorted(found.items(), key=lambda item: (int(item[0]), item[0]) if numeric else (0, item[0])))


def _class_images(dirs: list[tuple[Path, bool]], required: bool = True) -> list[tuple[Path, bool]]:
    """(image, forget) for every image of a class's folders; a class with no image at all is an error."""
    images = [(image, forget) for d, forget in dirs for image in _images(d)]
    if required and not images:
        raise SoftTargetsError(f"{dirs[0][0]}: the class folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))}): "
                               f"add images or remove the folder")
    return images


def has_forget_folders(path: Path) -> bool:
    """Whether folder:PATH marks forget images the original's way (a `3e` class folder)."""
    try:
        return any(FORGET_FOLDER.fullmatch(p.name) and p.is_dir() for parent in (path, path / "train")
                   if parent.is_dir() for p in parent.iterdir())
    except OSError:  # unreadable: loading the dataset reports it
        return False


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _holdout_mask(labels: list[int], holdout: float, folder: Path) -> list[bool]:
    """True for held-out test images: a stratified fraction of each class, the same for every seed."""
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(labels))
    try:
        _, test = train_test_split(positions, test_size=holdout, stratify=labels, random_state=0)
    except ValueError as err:
        raise SoftTargetsError(f"{folder}: cannot hold out {holdout:.0%} of every class ({err}); add images or "
                               f"use train/ and test/ subfolders") from None
    mask = np.zeros(len(labels), dtype=bool)
    mask[test] = True
    return mask.tolist()


def read_csv_index(path: Path) -> ImageIndex:
    """Parse the original tool's index; every problem names the file and the row (line number)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise SoftTargetsError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    reader = csv.DictReader(io.StringIO(text), delimiter=";")
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise SoftTargetsError(f"{path}: missing column(s) {', '.join(missing)}; the header must be "
                               f"{';'.join(CSV_COLUMNS)}")
    rows = []
    for line, row in enumerate(reader, start=2):
        where = f"{path} row {line} (index {row.get('index')})"
        flags = [_flag(row.get(c), c, where) for c in ("train_split", "f1_split")]
        label, image = (row.get("Class_Label") or "").strip(), (row.get("Path") or "").strip()
        if not label or not image:
            raise SoftTargetsError(f"{where}: empty Path or Class_Label")
        rows.append((image, label, *flags, where))
    if not rows:
        raise SoftTargetsError(f"{path}: the index has no rows")
    index = ImageIndex(_csv_root(path, [image for image, *_ in rows]))
    index.classes, label_of = _csv_classes(rows, path)
    for want_train in (True, False):
        for image, label, train, forget, where in rows:
            if train != want_train:
                continue
            if label not in label_of:
                raise SoftTargetsError(f"{where}: unknown label '{label}' (no train row has it; labels: "
                                       f"{', '.join(index.classes)})")
            index.add(image, label_of[label], train, forget, where)
    return index


def _csv_root(path: Path, images: list[str]) -> Path:
    """The folder relative paths start from: the working directory (where the original tool ran and opened
    them), else the CSV's folder, else its parent; the first under which every image exists, else the one
    under which most do (the missing ones are then reported by row)."""
    candidates = list(dict.fromkeys(p.resolve() for p in (Path.cwd(), path.parent, path.parent.parent)))
    relative = [image for image in images if not Path(image).is_absolute()]
    best, best_found = candidates[0], -1
    for root in candidates:
        found = sum((root / image).is_file() for image in relative)
        if found == len(relative):
            return root
        if found > best_found:
            best, best_found = root, found
    return best


def _flag(value: str | None, column: str, where: str) -> bool:
    if (value or "").strip() not in ("0", "1"):
        raise SoftTargetsError(f"{where}: {column} must be 0 or 1, got '{value}'")
    return value.strip() == "1"


def _csv_classes(rows: list[tuple], path: Path) -> tuple[list[str], dict[str, int]]:
    """The class order. Labels that are all integers (ASCII digits) keep their numbers: label k is class k, so
    classes 0..max each need train rows. Labels that are all names are sorted. A mix is refused: one name among
    numbers would otherwise turn the order into a string sort (0, 1, 10, 2, ...) and `class:2` would name
    another class."""
    train_labels = {label for _, label, train, _, _ in rows if train}
    numeric = {label for label in train_labels if _INTEGER.fullmatch(label)}
    if numeric and numeric != train_labels:
        name = next(label for label in sorted(train_labels) if label not in numeric)
        row = next(where for _, label, train, _, where in rows if train and label == name)
        raise SoftTargetsError(f"{row}: label {brief(name)} is not an integer while other labels are "
                               f"({brief(min(numeric))}, ...): use integers 0..C-1 or names for every label")
    if numeric:
        huge = next((label for label in sorted(numeric) if len(label.lstrip("0")) > 9), None)
        if huge is not None:
            raise SoftTargetsError(f"{path}: label {brief(huge)} is too large: integer labels are class numbers "
                                   "0..C-1")
        numbers = {label: int(label) for label in train_labels}
        distinct = sorted(set(numbers.values()))
        top = distinct[-1]
        if top >= len(distinct):  # checked before anything is sized by top, which may be huge
            empty = next(c for c, n in enumerate(distinct) if c != n)
            raise SoftTargetsError(f"{path}: class {empty} has no train rows (labels must be 0..{top} with "
                                   f"train images each): add its images or renumber the labels")
        return [str(c) for c in range(top + 1)], numbers
    classes = sorted(train_labels)
    if len(classes) < 2:
        raise SoftTargetsError(f"{path}: the train rows have {len(classes)} label(s); at least 2 are needed")
    return classes, {c: i for i, c in enumerate(classes)}


def _cache_key(index: ImageIndex, source: str, holdout: float | None) -> str:
    h = hashlib.sha256(f"{CACHE_FORMAT}|{source}|{holdout}|{index.classes}".encode())
    for path, label, train, forget, where in zip(index.paths, index.labels, index.train, index.forget, index.where):
        h.update(f"|{path}|{label}|{int(train)}|{int(forget)}|".encode())
        h.update(_read(index.root / path, where))
    return h.hexdigest()[:24]


def _read(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        what = "" if where == str(path) else f"{where}: "
        raise SoftTargetsError(f"{what}cannot read image {path}: {err.strerror or err}") from None


def _decode(index: ImageIndex) -> dict:
    """Decode every image to uint8 [C, H, W]: grayscale stays 1 channel unless any image has colour."""
    from PIL import Image

    arrays, size = [], None
    for path, where in zip(index.paths, index.where):
        full = index.root / path
        what = "" if where == str(full) else f"{where}: "
        try:
            with Image.open(io.BytesIO(_read(full, where))) as img:
                img.load()
                finite = img.mode != "F" or bool(np.isfinite(np.asarray(img)).all())
                array = np.asarray(img.convert("L" if img.mode in GRAY_MODES else "RGB"))
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise SoftTargetsError(f"{what}cannot decode image {full} ({err}): replace or remove it") from None
        if not finite:  # converting to 8 bits would silently turn nan and inf into 0 and 255
            raise SoftTargetsError(f"{what}image {full} has nan or inf pixel values: replace or remove it")
        if size is None:
            size = array.shape[:2]
        elif array.shape[:2] != size:
            raise SoftTargetsError(f"{what}image {full} is {array.shape[1]}x{array.shape[0]} but the first image "
                                   f"is {size[1]}x{size[0]}: resize the images to one size")
        arrays.append(array)
    channels = 3 if any(a.ndim == 3 for a in arrays) else 1
    x = np.stack([a if a.ndim == 3 else np.repeat(a[..., None], channels, axis=2) for a in arrays])
    x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    train = torch.tensor(index.train)
    labels = torch.tensor(index.labels, dtype=torch.long)
    forget = torch.tensor(index.forget)[train]
    return {"train_x": x[train], "train_y": labels[train], "test_x": x[~train], "test_y": labels[~train],
            "classes": list(index.classes), "train_paths": [p for p, t in zip(index.paths, index.train) if t],
            "forget_idx": torch.nonzero(forget).flatten()}


def _bundle(name: str, payload: dict, root: Path):
    bundle = make_bundle(name, payload["train_x"], payload["train_y"], payload["test_x"], payload["test_y"],
                         payload["classes"])
    bundle.train_paths, bundle.root = payload["train_paths"], str(root)
    bundle.forget_idx = payload["forget_idx"] if len(payload["forget_idx"]) else None
    return bundle
