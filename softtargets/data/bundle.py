"""DataBundle: a dataset in memory, uint8 image tensors with labels, class names and per-channel statistics;
every loader (data/datasets.py for the built-in datasets, data/files.py for folder:/csv:) returns one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch


@dataclass
class DataBundle:
    name: str
    train_x: torch.Tensor  # uint8 [N, C, H, W]
    train_y: torch.Tensor  # int64 [N]
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    mean: tuple[float, ...]  # per channel, on the 0..1 scale
    std: tuple[float, ...]
    _fingerprint: str | None = field(default=None, repr=False)
    # folder/csv datasets only: train image paths (relative to root) and the index's own forget rows
    train_paths: list[str] | None = field(default=None, repr=False)
    root: str | None = None
    forget_idx: torch.Tensor | None = field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])

    def fingerprint(self) -> str:
        """Content hash of the data: part of every model-cache key, so changed data never reuses a model."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            for t in (self.train_x, self.train_y, self.test_x, self.test_y):
                h.update(str(tuple(t.shape)).encode())
                h.update(memoryview(t.contiguous().numpy()))  # the same bytes, without a copy of them
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint


def _stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    xf = x.float().div_(255)
    return tuple(xf.mean(dim=(0, 2, 3)).tolist()), tuple(xf.std(dim=(0, 2, 3)).tolist())


def make_bundle(name, train_x, train_y, test_x, test_y, classes) -> DataBundle:
    """Build a DataBundle from uint8 NCHW arrays, computing mean/std on the train split."""
    train_x, test_x = torch.as_tensor(train_x).contiguous(), torch.as_tensor(test_x).contiguous()
    mean, std = _stats(train_x)
    return DataBundle(name, train_x, torch.as_tensor(train_y).long(), test_x, torch.as_tensor(test_y).long(),
                      [str(c) for c in classes], mean, std)
