"""Forget specs -> ForgetSplit (retain/forget train indices), seeded and content-hashed.

Specs:
  class:K        every train image of class K (several: class:0,1); these classes count as forgotten
  class:K:F      a fraction F of class K (the class itself stays learned from its other images)
  random:F       a fraction F of the whole train set (the NeurIPS 2023 challenge used 0.1)
  file:PATH      train indices, one per line (blank lines and # comments ignored); for folder/csv datasets
                 also image paths (relative to the dataset folder / the CSV's folder, or absolute). A .npy
                 file holds an integer index array (the challenge starting kit's forget_idx.npy) or a
                 boolean mask over the train set.
  dataset        the dataset's own forget rows (csv:PATH with f1_split = 1, folder:PATH with `3e` folders;
                 the default for such datasets)

class:K:F and random:F pick their fraction at random (seeded) by default; a fourth part chooses by
memorisation as Siddiqui et al. 2025 do (shoaibahmed/vision_relearning vision_unlearner.py:1067-1102):
`class:0:0.1:high_mem` forgets the most memorised 10% of class 0, `low_mem` the least, `random` as without.
file: and dataset forget sets that cover whole classes count those classes as forgotten, as class:K does.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from softtargets.errors import SoftTargetsError, one_line

_INDEX = re.compile(r"[0-9]{1,18}")  # ASCII digits: str.isdigit() also accepts "²", which int() rejects
SPEC_HELP = "use class:K[,K...], class:K:F[:SELECT], random:F[:SELECT] (0<F<1, SELECT random|low_mem|high_mem), " \
            "file:PATH or dataset"
SELECTIONS = ("random", "low_mem", "high_mem")


@dataclass(frozen=True)
class ForgetSplit:
    spec: str
    forget_idx: torch.Tensor  # int64, sorted
    retain_idx: torch.Tensor  # int64, sorted, disjoint from forget_idx
    forget_classes: tuple[int, ...]  # classes removed entirely (class:K, or file/dataset sets of whole classes)
    hash: str

    @property
    def sizes(self) -> dict[str, int]:
        return {"forget": len(self.forget_idx), "retain": len(self.retain_idx)}


def _fraction(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SoftTargetsError(f"forget spec '{spec}': '{text}' is not a number; {SPEC_HELP}") from None
    if not 0 < value < 1:
        raise SoftTargetsError(f"forget spec '{spec}': fraction must be between 0 and 1 (exclusive), got {value}")
    return value


def _classes(text: str, spec: str, num_classes: int) -> list[int]:
    try:
        classes = sorted({int(c) for c in text.split(",") if c.strip()})
    except ValueError:
        raise SoftTargetsError(f"forget spec '{spec}': classes must be integers; {SPEC_HELP}") from None
    bad = [c for c in classes if not 0 <= c < num_classes]
    if not classes or bad:
        raise SoftTargetsError(
            f"forget spec '{spec}': class {bad or '(none)'} not in 0..{num_classes - 1}; {SPEC_HELP}"
        )
    return classes


def _read_index_file(path: Path, spec: str, n_train: int, paths: list[str] | None = None,
                     root: str | None = None) -> torch.Tensor:
    if path.suffix.lower() == ".npy":
        return _read_npy(path, spec, n_train)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise SoftTargetsError(f"forget spec '{spec}': cannot read {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise SoftTargetsError(f"forget spec '{spec}': {path} is not UTF-8 text (byte {err.start}): give one index "
                               f"or path per line, or a .npy index array") from None
    entries = [line.split("#", 1)[0].strip() for line in lines]
    entries = [e for e in entries if e]
    by_path = _train_path_lookup(paths, root)
    found = [int(e) if _INDEX.fullmatch(e) and int(e) < n_train else _find_path(e, by_path, root) for e in entries]
    bad = [e for e, i in zip(entries, found) if i is None]
    if bad:
        shown = ", ".join(one_line(e, 60) for e in bad[:5]) + (" ..." if len(bad) > 5 else "")
        what = "train indices or train image paths" if paths else f"train indices in 0..{n_train - 1}"
        raise SoftTargetsError(f"{path}: {len(bad)} entries are not {what}: {shown}")
    return torch.tensor(sorted(set(found)), dtype=torch.long)


def _read_npy(path: Path, spec: str, n_train: int) -> torch.Tensor:
    """An index array as np.save writes it (the starting kit's forget_idx.npy), or a boolean train mask."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise SoftTargetsError(f"forget spec '{spec}': cannot read {path} as a .npy array ({err})") from None
    if array.ndim != 1:
        raise SoftTargetsError(f"{path}: a forget .npy must be 1-D (indices or a mask), got shape {array.shape}")
    if array.dtype == bool:
        if len(array) != n_train:
            raise SoftTargetsError(f"{path}: a boolean forget mask needs one entry per train image ({n_train}), "
                                   f"got {len(array)}")
        array = np.flatnonzero(array)
    elif not np.issubdtype(array.dtype, np.integer):
        raise SoftTargetsError(f"{path}: forget indices must be integers, got dtype {array.dtype}")
    bad = array[(array < 0) | (array >= n_train)]
    if len(bad):
        raise SoftTargetsError(f"{path}: {len(bad)} entries are not train indices in 0..{n_train - 1}: "
                               f"{', '.join(map(str, bad[:5].tolist()))}")
    return torch.from_numpy(np.unique(array).astype(np.int64))


def _train_path_lookup(paths: list[str] | None, root: str | None) -> dict[str, int]:
    """Train index by relative path as listed and by resolved absolute path."""
    lookup: dict[str, int] = {}
    for i, p in enumerate(paths or []):
        lookup[p] = i
        lookup[str((Path(root or ".") / p).resolve())] = i
    return lookup


def _find_path(entry: str, lookup: dict[str, int], root: str | None) -> int | None:
    if not lookup:
        return None
    for candidate in (entry, Path(entry).as_posix(), str((Path(root or ".") / entry).resolve()),
                      str(Path(entry).resolve())):
        if candidate in lookup:
            return lookup[candidate]
    return None


def _sample(pool: torch.Tensor, fraction: float, seed: int, selection: str = "random",
            memorisation: np.ndarray | None = None) -> torch.Tensor:
    """round(F x |pool|) examples (at least one): seeded at random, or the most (high_mem) or least (low_mem)
    memorised ones, ties in index order."""
    k = max(1, round(fraction * len(pool)))
    if selection == "random":
        g = torch.Generator().manual_seed(seed)
        return pool[torch.randperm(len(pool), generator=g)[:k]]
    scores = memorisation[pool.numpy()]
    order = np.argsort(-scores if selection == "high_mem" else scores, kind="stable")
    return pool[torch.from_numpy(order[:k])]


def _selection(parts: list[str], spec: str) -> str:
    selection = parts[0] if parts else "random"
    if len(parts) > 1 or selection not in SELECTIONS:
        raise SoftTargetsError(f"forget spec '{spec}': selection must be one of {', '.join(SELECTIONS)}; {SPEC_HELP}")
    return selection


def needs_memorisation(spec: str) -> bool:
    """Whether a spec selects by memorisation scores (which the caller must then supply)."""
    return spec.startswith(("class:", "random:")) and spec.endswith(("low_mem", "high_mem"))


def whole_classes(forget: torch.Tensor, train_y: torch.Tensor) -> tuple[int, ...]:
    """The classes of a forget set when it holds every train image of each of them; () otherwise."""
    classes = torch.unique(train_y[forget])
    total = torch.bincount(train_y, minlength=int(train_y.max()) + 1)
    taken = torch.bincount(train_y[forget], minlength=len(total))
    return tuple(classes.tolist()) if torch.equal(taken[classes], total[classes]) else ()


def make_split(spec: str, train_y: torch.Tensor, num_classes: int, seed: int, train_paths: list[str] | None = None,
               root: str | None = None, dataset_forget: torch.Tensor | None = None,
               memorisation: np.ndarray | None = None) -> ForgetSplit:
    """Resolve a forget spec against the train labels; random choices depend only on (spec, seed).
    train_paths/root (folder and csv datasets) let file:PATH name images; dataset_forget is the `dataset` spec;
    memorisation (one score per train image, higher = more memorised) serves the low_mem/high_mem specs."""
    kind, _, arg = spec.partition(":")
    n = len(train_y)
    forget_classes: tuple[int, ...] = ()
    parts = arg.split(":")
    if needs_memorisation(spec):
        if memorisation is None:
            raise SoftTargetsError(f"forget spec '{spec}' needs memorisation scores: set data.memorisation")
        if len(memorisation) != n:
            raise SoftTargetsError(f"forget spec '{spec}': the memorisation scores have {len(memorisation)} entries "
                                   f"but the train set has {n} images: give one score per train image")
    if kind == "class":
        if len(parts) == 1:
            forget_classes = tuple(_classes(parts[0], spec, num_classes))
            forget = torch.nonzero(torch.isin(train_y, torch.tensor(forget_classes))).flatten()
        elif len(parts) in (2, 3):
            classes = _classes(parts[0], spec, num_classes)
            if len(classes) != 1:
                raise SoftTargetsError(f"forget spec '{spec}': class:K:F takes one class; {SPEC_HELP}")
            pool = torch.nonzero(train_y == classes[0]).flatten()
            forget = _sample(pool, _fraction(parts[1], spec), seed, _selection(parts[2:], spec), memorisation)
        else:
            raise SoftTargetsError(f"malformed forget spec '{spec}': {SPEC_HELP}")
    elif kind == "random":
        forget = _sample(torch.arange(n), _fraction(parts[0], spec), seed, _selection(parts[1:], spec), memorisation)
    elif kind == "file":
        if not arg:
            raise SoftTargetsError(f"forget spec '{spec}': give a path, e.g. file:forget_ids.txt")
        forget = _read_index_file(Path(arg), spec, n, train_paths, root)
    elif spec == "dataset":
        if dataset_forget is None:
            raise SoftTargetsError("forget spec 'dataset' needs a dataset with its own forget rows (csv:PATH with "
                                   f"f1_split = 1 rows, or folder:PATH with a `3e` class folder); otherwise "
                                   f"{SPEC_HELP[4:]}")
        forget = dataset_forget.clone()
    else:
        raise SoftTargetsError(f"malformed forget spec '{spec}': {SPEC_HELP}")
    forget = torch.sort(forget).values
    mask = torch.ones(n, dtype=torch.bool)
    mask[forget] = False
    retain = torch.nonzero(mask).flatten()
    if len(forget) == 0:
        raise SoftTargetsError(f"forget spec '{spec}' selects no train images: choose a class that has images")
    if len(retain) == 0 or len(torch.unique(train_y[retain])) < 2:
        raise SoftTargetsError(
            f"forget spec '{spec}' leaves fewer than 2 classes to retain: forget fewer classes"
        )
    if kind == "file" or spec == "dataset":
        forget_classes = whole_classes(forget, train_y)
    digest = hashlib.sha256(f"{n}:".encode() + forget.numpy().tobytes()).hexdigest()[:16]
    return ForgetSplit(spec, forget, retain, forget_classes, digest)
