"""Target distributions and the losses that consume them.

Every loss in softtargets takes a target distribution t [B, C] instead of a class index, so hard and soft
runs share one code path and differ only in the tensor (DESIGN.md, "the key idea").

KL convention (used by every method): kl_div(student_logits, t, T) = T^2 * mean_batch KL(t || softmax(s/T)),
i.e. the per-sample sum over classes averaged over the batch ("batchmean"), times T^2 where tempered.
torch's default reduction='mean' would divide by B*C instead; we never use it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from softtargets.errors import SoftTargetsError

TARGET_KINDS = {
    "hard": "one-hot labels onehot(y)",
    "soft": "the original model's probabilities softmax(logits / T)",
    "smooth": "label smoothing (1 - e) * onehot(y) + e / C",
    "uniform": "the uniform distribution 1 / C",
}


def check_kind(kind: str) -> str:
    if kind not in TARGET_KINDS:
        raise SoftTargetsError(f"unknown target kind '{kind}': choose one of {', '.join(TARGET_KINDS)}")
    return kind


def build_targets(kind: str, y: torch.Tensor, num_classes: int, logits: torch.Tensor | None = None,
                  temperature: float = 1.0, smoothing: float = 0.1) -> torch.Tensor:
    """Target distributions [N, C] for labels y; 'soft' needs the original model's logits [N, C]."""
    check_kind(kind)
    onehot = F.one_hot(y, num_classes).float()
    if kind == "hard":
        return onehot
    if kind == "soft":
        if logits is None:
            raise ValueError("soft targets need the original model's logits")
        if temperature <= 0:
            raise SoftTargetsError(f"temperature must be > 0, got {temperature}")
        return torch.softmax(logits.float() / temperature, dim=1)
    if kind == "smooth":
        if not 0 <= smoothing <= 1:
            raise SoftTargetsError(f"smoothing must be in [0, 1], got {smoothing}")
        return onehot * (1 - smoothing) + smoothing / num_classes
    return torch.full_like(onehot, 1 / num_classes)


def soft_cross_entropy(logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """CE(z, t) = -sum_k t_k log softmax(z)_k, averaged over the batch; equals F.cross_entropy for one-hot t."""
    return -(t * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def kl_div(student_logits: torch.Tensor, t: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """T^2 * mean_batch KL(t || softmax(student / T)); t is a distribution (already at temperature T)."""
    log_p = F.log_softmax(student_logits / temperature, dim=1)
    return F.kl_div(log_p, t, reduction="batchmean") * temperature**2
