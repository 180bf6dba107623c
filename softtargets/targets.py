"""Target distributions and the losses that consume them.

Every loss in softtargets takes a target distribution t [B, C] instead of a class index, so hard and soft
runs share one code path and differ only in the tensor (DESIGN.md, "the key idea").

Exact gradients. CE(z, t) and KL(t || softmax(z)) both have the gradient softmax(z) - t with respect to the
logits z when t is a distribution. autograd's log_softmax backward computes softmax(z) * sum(t) - t instead,
and sum(t) of a float softmax is 1 only up to rounding, which leaves a residue of ~1e-8 where the true
gradient is zero. Adam divides by sqrt(v) + 1e-8 and turns such residues into learning-rate-sized steps, so
a loss whose gradient is zero in exact arithmetic (soft targets at T = 1 on the original model) would drive
the run by rounding noise. Both losses therefore return softmax(z) - t as their gradient, exactly zero when
the model's softmax equals the target bit for bit (see DeviceTeacher for how soft targets achieve that).

KL convention: kl_div(student_logits, t, T) = T^2 * mean_batch KL(t || softmax(s/T)), i.e. the per-sample
sum over classes averaged over the batch ("batchmean"), times T^2 where tempered. reduction="mean" divides
by C as well (torch's default, used by Bad Teacher and Siddiqui et al.'s KLDivLoss()).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from softtargets.errors import SoftTargetsError

TARGET_KINDS = {
    "hard": "one-hot labels onehot(y)",
    "soft": "the original model's probabilities softmax(logits / T), on the same batch the loss sees",
    "smooth": "generalised label smoothing (1 - a) * onehot(y) + a / C, any a <= 1; a < 0 (negative label "
              "smoothing, UGradSL) is not a distribution: t_y > 1, the other entries < 0, still summing to 1",
    "uniform": "the uniform distribution 1 / C",
    "pseudo": "the original model's prediction as a one-hot label onehot(argmax logits), the original tool's "
              "main-branch 'soft' mode",
    "masked": "the original's probabilities softmax(logits / T) with the label's class removed and renormalised "
              "(q_y = 0; DELETE, PRU); forget side only (on retain terms: soft)",
    "masked_pseudo": "one-hot of the argmax of 'masked', the original's runner-up class (PRU's hard switch); "
                     "forget side only (on retain terms: pseudo)",
    "random": "one-hot of a label drawn uniformly per batch, y' ~ U{0..C-1}, may equal y (SalUn RL's relabelling); "
              "forget side only (on retain terms: hard)",
}
# masking and relabelling are forget-side operations: on a retain term (retain_kind unset) a forget-side kind
# means its parent. Removing the label of an example the model must keep would train it away from that label, so
# an explicit retain kind among these is refused (retain_kind_for()).
RETAIN_PARENT = {"masked": "soft", "masked_pseudo": "pseudo", "random": "hard"}


def check_kind(kind: str) -> str:
    if kind not in TARGET_KINDS:
        raise SoftTargetsError(f"unknown target kind '{kind}': choose one of {', '.join(TARGET_KINDS)}")
    return kind


def retain_kind_for(kind: str, retain: str | None) -> str:
    """The kind the retain terms use: retain if given, else kind, where a forget-side kind means its parent
    (RETAIN_PARENT). An explicit forget-side retain kind is a user error."""
    if retain in RETAIN_PARENT:
        raise SoftTargetsError(f"--retain-targets {retain} is a forget-side kind (it removes or replaces the label "
                               f"the retain terms must keep): choose one of "
                               f"{', '.join(k for k in TARGET_KINDS if k not in RETAIN_PARENT)}")
    return retain or RETAIN_PARENT.get(kind, kind)


def is_distribution_kind(kind: str, smoothing: float) -> bool:
    """Whether a kind's targets are probability distributions (smooth with a < 0 is not)."""
    return not (kind == "smooth" and smoothing < 0)


def check_smoothing(smoothing: float) -> float:
    if not (math.isfinite(smoothing) and smoothing <= 1):
        raise SoftTargetsError(f"--smoothing must be a finite number <= 1 (a < 0 is negative label smoothing), "
                               f"got {smoothing}")
    return smoothing


TEACHER_KINDS = ("soft", "pseudo", "masked", "masked_pseudo")  # built from the original model's logits


def build_targets(kind: str, y: torch.Tensor, num_classes: int, logits: torch.Tensor | None = None,
                  temperature: float = 1.0, smoothing: float = 0.1) -> torch.Tensor:
    """Targets [N, C] for labels y; the teacher kinds (TEACHER_KINDS) need the original model's logits [N, C].
    'random' is drawn per batch (RandomLabels); built here it is the one-hot labels a batch redraws."""
    check_kind(kind)
    onehot = F.one_hot(y, num_classes).float()
    if kind in ("hard", "random"):
        return onehot
    if kind in TEACHER_KINDS and logits is None:
        raise ValueError(f"{kind} targets need the original model's logits")
    if kind in ("soft", "masked"):
        if not 0 < temperature < float("inf"):
            raise SoftTargetsError(f"temperature must be a finite number > 0, got {temperature}")
        p = soft_probabilities(logits, temperature)
        return p if kind == "soft" else mask_label(p, y)
    if kind == "pseudo":
        return F.one_hot(logits.argmax(dim=1), num_classes).float()
    if kind == "masked_pseudo":
        return F.one_hot(mask_label(soft_probabilities(logits), y).argmax(dim=1), num_classes).float()
    if kind == "smooth":
        check_smoothing(smoothing)
        return onehot * (1 - smoothing) + smoothing / num_classes
    return torch.full_like(onehot, 1 / num_classes)


def mask_label(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """p [N, C] with each row's label class removed and renormalised: q_k = p_k / (1 - p_y) for k != y, q_y = 0
    (DELETE method/delete.py::delete sets the teacher's true-class logit to -1e10 before its softmax, which is
    the same distribution). Where p put every bit of mass on y (the others underflowed to 0), q is uniform over
    the C - 1 other classes, never the label."""
    wrong = 1 - F.one_hot(y, p.shape[1]).to(p.dtype)
    rest = p * wrong
    mass = rest.sum(dim=1, keepdim=True)
    return torch.where(mass > 0, rest / mass, wrong / (p.shape[1] - 1))  # 0/0 rows are the ones where() replaces


class RandomLabels:
    """'random' targets: each batch's one-hot labels y' ~ U{0..C-1}, drawn from a seeded CPU generator as
    Unlearn-Saliency Classification/unlearn/RL.py draws them (torch.randint over all C classes, so y' may equal
    y), afresh for every batch and epoch."""

    def __init__(self, num_classes: int, seed: int):
        self.num_classes = num_classes
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        drawn = torch.randint(self.num_classes, y.shape, generator=self.generator).to(y.device)
        return F.one_hot(drawn, self.num_classes).to(x.dtype)


def soft_probabilities(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """softmax(logits / T) in float32. At T = 1 the division is skipped, so the result is bit-identical to the
    softmax the losses compute from a model's own logits."""
    z = logits.float()
    return torch.softmax(z if temperature == 1 else z / temperature, dim=1)


class DeviceTeacher:
    """Soft targets computed on each batch from the frozen original: t = softmax(f_original(x) / T).

    Built once per split the targets of a run would come from another forward pass (other batch size, eval
    layout) and differ from the training forward's logits by float rounding. On the batch itself, at the
    original weights the student's logits equal the teacher's bit for bit, so a soft CE term at T = 1 has a
    gradient of exactly zero (the true value) instead of rounding noise. It also gives augmented batches the
    targets of the images they actually contain."""

    def __init__(self, original: torch.nn.Module, temperature: float):
        self.original, self.temperature = original, temperature

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return soft_probabilities(self.original(x), self.temperature)


TargetFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (images, labels) -> targets


class _DistributionLoss(torch.autograd.Function):
    """scale * mean_batch sum_k t_k (log t_k - log softmax(z)_k) + const, with the exact gradient
    scale * (softmax(z) - t) / B with respect to z. `entropy` adds H(t) back (cross-entropy instead of KL)."""

    @staticmethod
    def forward(ctx, logits, t, scale, entropy):
        log_p = F.log_softmax(logits, dim=1)
        cross = -(t * log_p).sum(dim=1)
        if not entropy:  # KL(t || p) = CE(t, p) - H(t), with 0 log 0 = 0
            cross = cross + torch.special.xlogy(t, t).sum(dim=1)
        ctx.save_for_backward(torch.softmax(logits, dim=1) - t)
        ctx.scale = scale
        return cross.mean() * scale

    @staticmethod
    def backward(ctx, grad_output):
        (residual,) = ctx.saved_tensors
        return grad_output * ctx.scale * residual / residual.shape[0], None, None, None


def _check_target(t: torch.Tensor) -> None:
    if t.requires_grad:  # the exact-gradient losses treat targets as constants
        raise ValueError("targets must not require grad: detach them (teacher outputs are constants)")


def soft_cross_entropy(logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """CE(z, t) = -sum_k t_k log softmax(z)_k, averaged over the batch; equals F.cross_entropy for one-hot t.
    Its gradient is (softmax(z) - t) / B exactly (module docstring)."""
    _check_target(t)
    return _DistributionLoss.apply(logits, t.to(logits.dtype), 1.0, True)


def kl_div(student_logits: torch.Tensor, t: torch.Tensor, temperature: float = 1.0,
           reduction: str = "batchmean") -> torch.Tensor:
    """T^2 * mean_batch KL(t || softmax(student / T)); t is a distribution (already at temperature T).
    reduction="mean" also divides by the number of classes (torch's KLDivLoss() default). The gradient with
    respect to the student's logits is T * (softmax(s / T) - t) / B (/ C for "mean") exactly. t must be a
    distribution: with negative entries (negative label smoothing) KL is undefined and the value is nan, so
    experiment.validate refuses such runs before any work, naming the method (no check here, in the hot loop)."""
    _check_target(t)
    if reduction not in ("batchmean", "mean"):
        raise ValueError(f"reduction must be batchmean or mean, got {reduction}")
    scale = temperature**2 / (t.shape[1] if reduction == "mean" else 1)
    z = student_logits if temperature == 1 else student_logits / temperature
    return _DistributionLoss.apply(z, t.to(z.dtype), scale, False)
