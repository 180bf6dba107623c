"""The relearning (tamper-resistance) attack of Siddiqui et al. 2025, "From Dormant to Deleted"
(arXiv 2505.22310, shoaibahmed/vision_relearning; methods-metrics.md section 7).

The attacker fine-tunes a model on a relearn set and we watch whether accuracy on forget examples it never
sees comes back. A model that truly forgot behaves like the retrained reference (little recovery); one that
only hid the knowledge recovers it quickly. As in the paper's grid evaluation (vision_unlearner.py:1374-1412):
the forget set is ordered once (seeded at random, or by memorisation), its first 20% are the pool the k
relearn examples are taken from, and everything after them is the fixed held-out set, the same for every k.

Relearn sets (vision_unlearner.py:1212-1242), each plus the first k examples of the pool:
  retain                      the retain set
  only_forget                 nothing else (k >= 1)
  test                        the test set
  test+retain_cls             the test set without the forget class, plus the retained train images of that
                              class (ClassMixDataset; needs a forget set inside one class, e.g. class:0:0.1)
  corrupted_test              the test set corrupted as CIFAR-10-C's JPEG compression at severity 5
  corrupted_test+retain_cls   as test+retain_cls on the corrupted test set

The corruption is computed here with PIL at CIFAR-10-C's quality for severity 5 (40: hendrycks/robustness
ImageNet-C/create_c/make_cifar_c.py:363-367, `c = [80, 65, 58, 50, 40][severity - 1]`,
`x.save(output, 'JPEG', quality=c)`), or read from CIFAR-10-C's own jpeg_compression.npy when given
(the paper reads that file, slice (severity - 1) * N : severity * N, vision_unlearner.py:994-1007).

Recovery is judged twice: against the original (held-out accuracy >= recover_fraction x the original's) and
against the reference's own curve on the same relearn set and k. The reference's curve is what relearning
gives a model that never learned the forget examples, so an unlearned model whose held-out accuracy exceeds
the best the reference reaches in its whole attack (steps_past_reference) recovered knowledge it kept. On a
random forget set the retrained reference already classifies most forget examples (they resemble the retain
set), so the original's target is met by both at step 0; the reference's curve still separates them.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from softtargets.data.batches import DeviceData, SplitData
from softtargets.data.splits import ForgetSplit
from softtargets.errors import SoftTargetsError
from softtargets.inference import predict_logits
from softtargets.training.fit import Diverged, make_optimizer

RELEARN_TYPES = ("retain", "only_forget", "test", "test+retain_cls", "corrupted_test", "corrupted_test+retain_cls")
DEFAULT_TYPES = ("retain", "only_forget", "test")
DEFAULT_K = (0, 1, 5, 10, 50, 100)  # the paper's "limited" grid, vision_unlearner.py:1385
POOL_FRACTION = 0.2  # vision_unlearner.py:1377: the first 20% of the ordered forget set are the relearn pool
SELECTIONS = ("random", "low_mem", "high_mem")
JPEG_QUALITY = 40  # CIFAR-10-C jpeg_compression at severity 5 (make_cifar_c.py:364)
SEVERITY = 5  # the paper's selected_corruption_level (vision_unlearner.py:995)


@dataclass(frozen=True)
class RelearnSettings:
    """Siddiqui et al.: Adam lr 1e-5, no weight decay, cosine to 0.1 lr, batch 128, evaluation every 10 steps,
    10 relearning epochs in the grid (scripts/train.sh: relearning_epochs=10, eval_after_steps=10), an epoch
    counted over the whole train set (vision_unlearner.py:1257-1258: steps = len(train_loader) x epochs)."""

    steps: int | None = None  # fine-tuning steps; None = epochs x ceil(train images / batch_size)
    lr: float = 1e-5
    batch_size: int = 128
    eval_every: int = 10
    recover_fraction: float = 0.9  # recovered = held-out forget accuracy >= this x the original model's
    epochs: int = 10
    selection: str = "random"  # order of the forget set: random, low_mem, high_mem (scripts/train.sh: random)
    corrupted: str | None = None  # CIFAR-10-C's jpeg_compression.npy; None = corrupt with PIL here

    def total_steps(self, n_train: int) -> int:
        return self.steps if self.steps is not None else self.epochs * math.ceil(n_train / self.batch_size)


def check_settings(types: list[str], ks: list[int] | None, settings: RelearnSettings) -> None:
    """One actionable line for every way the attack's inputs can be wrong before the data is known."""
    for t in types:
        if t not in RELEARN_TYPES:
            raise SoftTargetsError(f"unknown relearn type '{t}': choose from {', '.join(RELEARN_TYPES)}")
    if not types or ks == []:
        raise SoftTargetsError("give at least one relearn type and one k")
    if ks is not None and min(ks) < 0:
        raise SoftTargetsError(f"--k must be >= 0 (forget examples added to the relearn set), got {min(ks)}")
    if ks is not None and 0 in ks and "only_forget" in types:
        raise SoftTargetsError("relearn set only_forget with k = 0 has nothing to train on (the paper excludes it): "
                               "drop 0 from --k or the only_forget type")
    for name in ("batch_size", "eval_every", "epochs"):
        if getattr(settings, name) < 1:
            raise SoftTargetsError(f"relearn {name.replace('_', '-')} must be >= 1, got {getattr(settings, name)}")
    if settings.steps is not None and settings.steps < 1:
        raise SoftTargetsError(f"relearn steps must be >= 1, got {settings.steps}")
    if not 0 < settings.lr < math.inf:  # also false for nan
        raise SoftTargetsError(f"relearn lr must be a finite number > 0, got {settings.lr}")
    if not 0 < settings.recover_fraction <= 1:
        raise SoftTargetsError(f"--recover-fraction must be in (0, 1], got {settings.recover_fraction}")
    if settings.selection not in SELECTIONS:
        raise SoftTargetsError(f"unknown relearn selection '{settings.selection}': choose from {', '.join(SELECTIONS)}")
    if settings.corrupted is not None and not Path(settings.corrupted).is_file():
        raise SoftTargetsError(f"corrupted test file {settings.corrupted} not found: give CIFAR-10-C's "
                               "jpeg_compression.npy (labels.npy beside it), or leave it out to corrupt here")


def pool_size(n_forget: int) -> int:
    return int(POOL_FRACTION * n_forget)


def k_grid(types: list[str], ks: list[int] | None, n_forget: int) -> dict[str, list[int]]:
    """The k values per relearn set. Without ks: the paper's grid, 0 only where the base set is not empty,
    k up to the pool size (vision_unlearner.py:1385-1386). Given ks must fit the pool."""
    pool = pool_size(n_forget)
    if ks is None:
        grid = {t: [k for k in DEFAULT_K if k <= pool and (k > 0 or t != "only_forget")] for t in types}
        empty = [t for t, g in grid.items() if not g]
        if empty:
            raise SoftTargetsError(f"relearn set {empty[0]} needs at least one forget example in the pool (the first "
                                   f"20% of the forget set); this split has {n_forget} forget images: forget more")
        return grid
    if max(ks) > pool:
        raise SoftTargetsError(f"--k {max(ks)} exceeds the relearn pool: the first 20% of the forget set ({pool} of "
                               f"{n_forget}) supply the k examples and the rest is held out: lower --k to <= {pool}")
    return {t: sorted(ks) for t in types}


def forget_order(n_forget: int, selection: str, seed: int, memorisation: np.ndarray | None = None) -> torch.Tensor:
    """Positions in the forget set in relearn order: a seeded permutation, or by memorisation (high_mem: the
    most memorised first; vision_unlearner.py:1150-1157), ties in forget-set order."""
    if selection == "random":
        return torch.randperm(n_forget, generator=torch.Generator().manual_seed(seed))
    if memorisation is None or len(memorisation) != n_forget:
        raise ValueError("forget_order needs one memorisation score per forget example")
    order = np.argsort(-memorisation if selection == "high_mem" else memorisation, kind="stable")
    return torch.from_numpy(order.copy())


def partition(order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(pool, held_out): the first 20% of the ordered forget set, and the rest (fixed for every k)."""
    pool = pool_size(len(order))
    return order[:pool], order[pool:]


def retained_class(split: ForgetSplit, train_y: torch.Tensor) -> int:
    """The class a +retain_cls set mixes in: the forget set's one class, which must keep retained images."""
    classes = torch.unique(train_y[split.forget_idx]).tolist()
    kept = int((train_y[split.retain_idx] == classes[0]).sum()) if len(classes) == 1 else 0
    if len(classes) != 1 or kept == 0:
        raise SoftTargetsError(f"relearn sets *+retain_cls need a forget set inside one class that keeps some of its "
                               f"images, e.g. class:0:0.1; this forget set ('{split.spec}') covers classes {classes}"
                               f"{' entirely' if len(classes) == 1 else ''}")
    return classes[0]


def jpeg_corrupt(x: torch.Tensor, quality: int = JPEG_QUALITY) -> torch.Tensor:
    """uint8 images [N, C, H, W] saved and reloaded as JPEG at `quality` with PIL, as CIFAR-10-C makes them."""
    from PIL import Image

    arrays = x.cpu().permute(0, 2, 3, 1).numpy()
    out = []
    for a in arrays:
        buffer = io.BytesIO()
        Image.fromarray(a[..., 0] if a.shape[2] == 1 else a).save(buffer, "JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as img:
            out.append(np.asarray(img).reshape(a.shape))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def read_cifar_c(path: str | Path, test_x: torch.Tensor, test_y: torch.Tensor) -> torch.Tensor:
    """Severity SEVERITY of a CIFAR-10-C file ([5 N, H, W, C] uint8, labels.npy beside it) as [N, C, H, W],
    checked against this dataset's test images (count, shape) and labels."""
    path = Path(path)
    n = len(test_y)
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
        labels = np.load(path.parent / "labels.npy", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise SoftTargetsError(f"cannot read CIFAR-10-C files {path} and {path.parent / 'labels.npy'}: {err}") from None
    shape = (5 * n, *test_x.shape[2:], test_x.shape[1])
    if data.shape != shape or len(labels) != 5 * n:
        raise SoftTargetsError(f"{path} holds {data.shape} images but this test set needs {shape} (5 severities of "
                               f"{n} test images): use the CIFAR-C file of this dataset, or leave it out")
    part = slice((SEVERITY - 1) * n, SEVERITY * n)
    if not np.array_equal(labels[part], test_y.cpu().numpy()):
        raise SoftTargetsError(f"{path.parent / 'labels.npy'}: labels differ from this test set's: the file is for "
                               "another dataset or test order")
    return torch.from_numpy(np.array(data[part])).permute(0, 3, 1, 2).contiguous()


def relearn_set(kind: str, k: int, data: DeviceData, split: ForgetSplit, pool: torch.Tensor,
                corrupted_x: torch.Tensor | None = None, mix_class: int | None = None) -> SplitData:
    """The attacker's training data: the base set of `kind` plus the first k examples of the forget pool.
    corrupted_x (corrupted test images, on the device) and mix_class serve the corrupted and +retain_cls sets."""
    extra = split.forget_idx[pool[:k]].to(data.device)
    xs, ys = [data.train_x[extra]], [data.train_y[extra]]
    if kind == "retain":
        retain = split.retain_idx.to(data.device)
        xs.append(data.train_x[retain])
        ys.append(data.train_y[retain])
    elif kind != "only_forget":
        test_x = corrupted_x if kind.startswith("corrupted_test") else data.test_x
        test_y = data.test_y
        if kind.endswith("+retain_cls"):  # ClassMixDataset: test images of the other classes, retained of this one
            others = test_y != mix_class
            test_x, test_y = test_x[others], test_y[others]
            retain = split.retain_idx.to(data.device)
            retain = retain[data.train_y[retain] == mix_class]
            xs.append(data.train_x[retain])
            ys.append(data.train_y[retain])
        xs.append(test_x)
        ys.append(test_y)
    return SplitData(data, torch.cat(xs), torch.cat(ys))


def recovery_auc(steps: list[int], accuracy: list[float]) -> float:
    """Area under the held-out forget accuracy curve divided by the attack length: the mean accuracy over
    the attack (trapezoid rule), in [0, 1]. Higher = more knowledge recovered, sooner."""
    if steps[-1] == 0:
        return float(accuracy[0])
    return float(np.trapezoid(accuracy, steps) / steps[-1])


def steps_to_recover(steps: list[int], accuracy: list[float], target: float) -> int | None:
    """The first evaluated step at which held-out forget accuracy reaches target; None if it never does."""
    return next((s for s, a in zip(steps, accuracy) if a >= target), None)


def relearn_curve(model: nn.Module, train: SplitData, held_out: SplitData, test: SplitData,
                  settings: RelearnSettings, seed: int, total_steps: int) -> dict:
    """Fine-tune model in place on train (cross-entropy on labels) for total_steps steps; return held-out
    forget accuracy at step 0 and every eval_every steps (the paper's recovery curve), and test accuracy at the
    first and last step (a check that the attack did not wreck the model; the paper's curve is the held-out one,
    and evaluating the test set every 10 steps would cost twice the attack). An empty train set means no
    attack: the curve stays at its start.

    The attack runs with denormal floats flushed to zero (torch.set_flush_denormal): an unlearned model can hold
    thousands of weights below 1.2e-38 (a SCRUB model of study 2: 18,498), and x86 arithmetic on them is 40 times
    slower; flushing changes nothing above 1.2e-38. Afterwards flushing is as the caller had it."""
    was_flushing = flushes_denormals()
    supported = torch.set_flush_denormal(True)
    try:
        return _relearn_curve(model, train, held_out, test, settings, seed, total_steps)
    finally:
        if supported and not was_flushing:
            torch.set_flush_denormal(False)


def flushes_denormals() -> bool:
    """Whether torch flushes denormal floats to zero now (torch.set_flush_denormal has no getter)."""
    return (torch.tensor([1e-40]) * torch.tensor([1.0])).item() == 0.0


def _relearn_curve(model: nn.Module, train: SplitData, held_out: SplitData, test: SplitData,
                   settings: RelearnSettings, seed: int, total_steps: int) -> dict:
    def correct(part: SplitData) -> float:
        return (predict_logits(model, part.data, part.x).argmax(1) == part.y).float().mean().item()

    curve: dict[str, list] = {"step": [0], "forget_acc": [correct(held_out)], "test_step": [0],
                              "test_acc": [correct(test)]}
    if len(train) == 0:
        return curve
    optimizer = make_optimizer(model.parameters(), "adam", settings.lr, 0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total_steps, eta_min=0.1 * settings.lr)
    batches = train.cycle(settings.batch_size, torch.Generator().manual_seed(seed))
    model.train()
    for step in range(1, total_steps + 1):
        batch = next(batches)
        loss = F.cross_entropy(model(batch.x), batch.y)
        if not math.isfinite(loss.item()):
            raise Diverged(f"relearning diverged at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % settings.eval_every == 0 or step == total_steps:
            curve["step"].append(step)
            curve["forget_acc"].append(correct(held_out))
    curve["test_step"].append(total_steps)
    curve["test_acc"].append(correct(test))
    return curve


def summarise(curve: dict, target: float, reference_curve: dict) -> dict:
    """The curve's numbers: start, end and peak held-out forget accuracy, recovery AUC, steps to reach the
    original's target, and against the reference's own curve (same relearn set and k): the first step at which
    accuracy exceeds the best the reference reaches in its whole attack (None for the reference itself), and
    the AUC difference."""
    acc, steps = curve["forget_acc"], curve["step"]
    reference_peak = max(reference_curve["forget_acc"])
    auc = recovery_auc(steps, acc)
    return {"start": acc[0], "end": acc[-1], "peak": max(acc), "auc": auc,
            "steps_to_recover": steps_to_recover(steps, acc, target), "reference_peak": reference_peak,
            "steps_past_reference": next((s for s, a in zip(steps, acc) if a > reference_peak), None),
            "auc_minus_reference": auc - recovery_auc(reference_curve["step"], reference_curve["forget_acc"])}
