"""A naive reference pipeline written the way the original SoftTargets tool works, for the benchmark only.

Images are PNG files decoded one sample at a time by a Dataset behind a DataLoader; soft targets are built
one sample at a time; the original and the reference are retrained for every run. The science is the same
as softtargets' graddiff/gradasc (same models, recipe and losses), so the time difference is overhead.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from softtargets.models import build_model


def export_pngs(bundle, folder: Path) -> Path:
    """Write the train and test images as PNG files plus the original tool's index CSV."""
    index = folder / "index.csv"
    if index.exists():
        return index
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for split, xs, ys in (("train", bundle.train_x, bundle.train_y), ("test", bundle.test_x, bundle.test_y)):
        (folder / split).mkdir(exist_ok=True)
        for i, (x, y) in enumerate(zip(xs.numpy(), ys.tolist())):
            path = folder / split / f"{i}.png"
            Image.fromarray(x[0]).save(path)
            rows.append((len(rows), str(path), y, split == "train", 0))
    with open(index, "w", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(["index", "Path", "Class_Label", "train_split", "f1_split"])
        writer.writerows(rows)
    return index


class PngDataset(Dataset):
    def __init__(self, rows, mean, std):
        self.rows = rows
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):  # (image, label, position): the position looks up a precomputed target
        path, label = self.rows[i]
        return self.transform(Image.open(path).convert("L")), label, i


def read_index(index: Path):
    with open(index) as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    train = [(r["Path"], int(r["Class_Label"])) for r in rows if r["train_split"] == "True"]
    test = [(r["Path"], int(r["Class_Label"])) for r in rows if r["train_split"] == "False"]
    return train, test


def train(model, loader, epochs, lr=1e-4):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for x, y, _ in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()


def soft_targets_one_by_one(model, dataset):
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(len(dataset)):
            x, _, _ = dataset[i]
            out.append(torch.softmax(model(x.unsqueeze(0)), 1)[0])
    return torch.stack(out)


def run(index: Path, architecture: str, method: str, soft: bool, epochs: int, unlearn_epochs: int, seed: int = 0,
        mean=(0.286,), std=(0.353,)) -> dict:
    """One naive run with per-phase wall times (seconds)."""
    times = {}
    train_rows, test_rows = read_index(index)
    rng = np.random.default_rng(seed)
    forget_ids = set(rng.permutation(len(train_rows))[: len(train_rows) // 10].tolist())
    forget_rows = [r for i, r in enumerate(train_rows) if i in forget_ids]
    retain_rows = [r for i, r in enumerate(train_rows) if i not in forget_ids]
    make = lambda rows, shuffle=True: DataLoader(PngDataset(rows, mean, std), batch_size=32, shuffle=shuffle)  # noqa: E731
    torch.manual_seed(seed)
    original = build_model(architecture, (1, 28, 28), 10)
    t = time.perf_counter()
    train(original, make(train_rows), epochs)
    times["original_train_s"] = time.perf_counter() - t
    torch.manual_seed(seed)
    reference = build_model(architecture, (1, 28, 28), 10)
    t = time.perf_counter()
    train(reference, make(retain_rows), epochs)
    times["reference_train_s"] = time.perf_counter() - t
    t = time.perf_counter()
    if soft:
        forget_t = soft_targets_one_by_one(original, PngDataset(forget_rows, mean, std))
        retain_t = soft_targets_one_by_one(original, PngDataset(retain_rows, mean, std)) if method == "graddiff" \
            else None
    times["targets_s"] = time.perf_counter() - t
    t = time.perf_counter()
    opt = torch.optim.Adam(original.parameters(), lr=1e-4)
    retain_loader = make(retain_rows)
    retain_iter = iter(retain_loader)
    for _ in range(unlearn_epochs):
        for xf, yf, fi in make(forget_rows):
            tf = forget_t[fi] if soft else F.one_hot(yf, 10).float()
            loss = (tf * F.log_softmax(original(xf), 1)).sum(1).mean()  # = -CE: ascent on the forget set
            if method == "graddiff":
                batch = next(retain_iter, None)
                if batch is None:
                    retain_iter = iter(retain_loader)
                    batch = next(retain_iter)
                xr, yr, ri = batch
                tr = retain_t[ri] if soft else F.one_hot(yr, 10).float()
                loss = loss - (tr * F.log_softmax(original(xr), 1)).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    times["unlearn_s"] = time.perf_counter() - t
    t = time.perf_counter()
    original.eval()
    correct = 0
    with torch.no_grad():
        for x, y, _ in make(test_rows, shuffle=False):
            correct += (original(x).argmax(1) == y).sum().item()
    times["eval_s"] = time.perf_counter() - t
    times["total_s"] = sum(times.values())
    times["test_acc"] = correct / len(test_rows)
    return times
