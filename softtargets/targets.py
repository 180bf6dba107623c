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

from typing import Callable

import torch
import torch.nn.functional as F

from softtargets.errors import SoftTargetsError

TARGET_KINDS = {
    "hard": "one-hot labels onehot(y)",
    "soft": "the original model's probabilities softmax(logits / T), on the same batch the loss sees",
    "smooth": "label smoothing (1 - e) * onehot(y) + e / C",
    "uniform": "the uniform distribution 1 / C",
    "pseudo": "the original model's prediction as a one-hot label onehot(argmax logits), the original tool's "
              "main-branch 'soft' mode",
}


def check_kind(kind: str) -> str:
    if kind not in TARGET_KINDS:
        raise SoftTargetsError(f"unknown target kind '{kind}': choose one of {', '.join(TARGET_KINDS)}")
    return kind


def build_targets(kind: str, y: torch.Tensor, num_classes: int, logits: torch.Tensor | None = None,
                  temperature: float = 1.0, smoothing: float = 0.1) -> torch.Tensor:
    """Target distributions [N, C] for labels y; 'soft' and 'pseudo' need the original model's logits [N, C]."""
    check_kind(kind)
    onehot = F.one_hot(y, num_classes).float()
    if kind == "hard":
        return onehot
    if kind in ("soft", "pseudo") and logits is None:
        raise ValueError(f"{kind} targets need the original model's logits")
    if kind == "soft":
        if not 0 < temperature < float("inf"):
            raise SoftTargetsError(f"temperature must be a finite number > 0, got {temperature}")
        return soft_probabilities(logits, temperature)
    if kind == "pseudo":
        return F.one_hot(logits.argmax(dim=1), num_classes).float()
    if kind == "smooth":
        if not 0 <= smoothing <= 1:
            raise SoftTargetsError(f"smoothing must be in [0, 1], got {smoothing}")
        return onehot * (1 - smoothing) + smoothing / num_classes
    return torch.full_like(onehot, 1 / num_classes)


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
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return soft_probabilities(self.original(x), self.temperature)


TargetFn = Callable[[torch.Tensor], torch.Tensor]


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
    respect to the student's logits is T * (softmax(s / T) - t) / B (/ C for "mean") exactly."""
    _check_target(t)
    if reduction not in ("batchmean", "mean"):
        raise ValueError(f"reduction must be batchmean or mean, got {reduction}")
    scale = temperature**2 / (t.shape[1] if reduction == "mean" else 1)
    z = student_logits if temperature == 1 else student_logits / temperature
    return _DistributionLoss.apply(z, t.to(z.dtype), scale, False)
