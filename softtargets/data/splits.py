"""Forget specs -> ForgetSplit (retain/forget train indices), seeded and content-hashed.

Specs:
  class:K        every train image of class K (several: class:0,1); these classes count as forgotten
  class:K:F      a random fraction F of class K (the class itself stays learned from its other images)
  random:F       a random fraction F of the whole train set (the NeurIPS 2023 challenge used 0.1)
  file:PATH      train indices, one per line (blank lines and # comments ignored); for folder/csv datasets
                 also image paths (relative to the dataset folder / the CSV's folder, or absolute)
  dataset        the dataset's own forget rows (csv:PATH, f1_split = 1; the default for csv datasets)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from softtargets.errors import SoftTargetsError, one_line

_INDEX = re.compile(r"[0-9]{1,18}")  # ASCII digits: str.isdigit() also accepts "²", which int() rejects
SPEC_HELP = "use class:K[,K...], class:K:F, random:F (0<F<1), file:PATH or dataset"


@dataclass(frozen=True)
class ForgetSplit:
    spec: str
    forget_idx: torch.Tensor  # int64, sorted
    retain_idx: torch.Tensor  # int64, sorted, disjoint from forget_idx
    forget_classes: tuple[int, ...]  # classes removed entirely (class:K specs); empty otherwise
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
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise SoftTargetsError(f"forget spec '{spec}': cannot read {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise SoftTargetsError(f"forget spec '{spec}': {path} is not UTF-8 text (byte {err.start})") from None
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


def _sample(pool: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    k = max(1, round(fraction * len(pool)))
    return pool[torch.randperm(len(pool), generator=g)[:k]]


def make_split(spec: str, train_y: torch.Tensor, num_classes: int, seed: int, train_paths: list[str] | None = None,
               root: str | None = None, dataset_forget: torch.Tensor | None = None) -> ForgetSplit:
    """Resolve a forget spec against the train labels; random choices depend only on (spec, seed).
    train_paths/root (folder and csv datasets) let file:PATH name images; dataset_forget is the `dataset` spec."""
    kind, _, arg = spec.partition(":")
    n = len(train_y)
    forget_classes: tuple[int, ...] = ()
    if kind == "class":
        parts = arg.split(":")
        if len(parts) == 1:
            forget_classes = tuple(_classes(parts[0], spec, num_classes))
            forget = torch.nonzero(torch.isin(train_y, torch.tensor(forget_classes))).flatten()
        elif len(parts) == 2:
            classes = _classes(parts[0], spec, num_classes)
            if len(classes) != 1:
                raise SoftTargetsError(f"forget spec '{spec}': class:K:F takes one class; {SPEC_HELP}")
            pool = torch.nonzero(train_y == classes[0]).flatten()
            forget = _sample(pool, _fraction(parts[1], spec), seed)
        else:
            raise SoftTargetsError(f"malformed forget spec '{spec}': {SPEC_HELP}")
    elif kind == "random":
        forget = _sample(torch.arange(n), _fraction(arg, spec), seed)
    elif kind == "file":
        if not arg:
            raise SoftTargetsError(f"forget spec '{spec}': give a path, e.g. file:forget_ids.txt")
        forget = _read_index_file(Path(arg), spec, n, train_paths, root)
    elif spec == "dataset":
        if dataset_forget is None:
            raise SoftTargetsError("forget spec 'dataset' needs a csv:PATH dataset whose index has f1_split = 1 "
                                   f"rows; otherwise {SPEC_HELP[4:]}")
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
    digest = hashlib.sha256(f"{n}:".encode() + forget.numpy().tobytes()).hexdigest()[:16]
    return ForgetSplit(spec, forget, retain, forget_classes, digest)
