"""In-memory batch iteration: uint8 images live on the device, each batch is normalised as a whole."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from softtargets.data.datasets import DataBundle


@dataclass
class Batch:
    x: torch.Tensor  # float, normalised, [B, C, H, W]
    y: torch.Tensor  # int64 class indices [B]
    t: torch.Tensor | None  # target distributions [B, num_classes], or None where a loop needs none
    idx: torch.Tensor  # positions in the split the batch came from

    def __iter__(self):  # (images, labels), the MLS-Bench batch shape, by unpacking
        return iter((self.x, self.y))


class DeviceData:
    """A DataBundle's tensors moved once to the device, with the per-channel normalisation."""

    def __init__(self, bundle: DataBundle, device: torch.device):
        self.bundle = bundle
        self.device = device
        self.train_x = bundle.train_x.to(device)
        self.train_y = bundle.train_y.to(device)
        self.test_x = bundle.test_x.to(device)
        self.test_y = bundle.test_y.to(device)
        shape = (1, -1, 1, 1)
        self.scale = (1 / (255 * torch.tensor(bundle.std, device=device))).view(shape)
        self.shift = (torch.tensor(bundle.mean, device=device) / torch.tensor(bundle.std, device=device)).view(shape)

    def normalise(self, x_uint8: torch.Tensor) -> torch.Tensor:
        return x_uint8.float().mul_(self.scale).sub_(self.shift)


AUGMENT_PAD = 4


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = AUGMENT_PAD) -> torch.Tensor:
    """The standard CIFAR training augmentation on a uint8 batch [B, C, H, W], per image: a random H x W crop
    of the image zero-padded by `pad` (torchvision RandomCrop(size, padding=4)), then a horizontal flip with
    probability 1/2 (RandomHorizontalFlip). Random numbers come from the CPU generator, so the batch order
    and the augmentation of a seed are reproducible on any device."""
    b = x.shape[0]
    offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=generator).to(x.device)
    flips = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    return crop_flip(x, offsets, flips, pad)


def crop_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, pad: int = AUGMENT_PAD) -> torch.Tensor:
    """augment() with its random numbers given: offsets [2, B] (row, column of each crop in the padded image,
    0..2 pad), flips [B] (bool). Pure indexing, so the same numbers give the same images on any device."""
    b, _, h, w = x.shape
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # [B, H] source rows in the padded image
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # [B, W]
    cols = torch.where(flips[:, None], cols.flip(1), cols)  # a flipped crop reads its columns backwards
    padded = F.pad(x, (pad, pad, pad, pad))
    picked = padded[torch.arange(b, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return picked.permute(0, 3, 1, 2).contiguous()  # advanced indexing put the channels last


def index_batches(n: int, batch_size: int, generator: torch.Generator | None) -> Iterator[torch.Tensor]:
    """Shuffled (generator given) or ordered index batches covering 0..n-1 once; the last may be short."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    yield from order.split(batch_size)


class SplitData:
    """One split (e.g. retain-train) as a view into DeviceData: images, labels, targets.

    t holds one target distribution per example, built once. teacher, when given, computes each batch's targets
    from the batch's own images and labels instead: soft targets from the frozen original on those images
    (targets.DeviceTeacher), random labels drawn per batch (targets.RandomLabels); t is still kept for
    whole-split uses such as a class's mean target."""

    def __init__(self, data: DeviceData, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor | None = None,
                 teacher: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None):
        self.data, self.x, self.y, self.t, self.teacher = data, x, y, t, teacher

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, idx: torch.Tensor, augment_with: torch.Generator | None = None) -> Batch:
        """The images at idx, normalised; augmented (crop + flip) only when a generator is given: training
        passes one when its recipe says augment, evaluation, MIA and target building never do."""
        idx_d = idx.to(self.data.device)
        x = self.x[idx_d] if augment_with is None else augment(self.x[idx_d], augment_with)
        x = self.data.normalise(x)
        if self.teacher is not None:
            t = self.teacher(x, self.y[idx_d])
        else:
            t = self.t[idx_d] if self.t is not None else None
        return Batch(x, self.y[idx_d], t, idx)

    def subset(self, idx: torch.Tensor) -> "SplitData":
        """The examples idx of this split, with their targets and teacher."""
        idx = idx.to(self.data.device)
        return SplitData(self.data, self.x[idx], self.y[idx], None if self.t is None else self.t[idx], self.teacher)

    def batches(self, batch_size: int, generator: torch.Generator | None = None,
                augment: bool = False) -> Iterator[Batch]:
        for idx in index_batches(len(self), batch_size, generator):
            yield self.batch(idx, generator if augment else None)

    def cycle(self, batch_size: int, generator: torch.Generator, augment: bool = False) -> Iterator[Batch]:
        """Endless shuffled batches, reshuffled at every pass (pairs a short split with a long one)."""
        while True:
            yield from self.batches(batch_size, generator, augment)
