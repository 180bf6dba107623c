"""Weight-space distances between models of the same architecture (parameters, not buffers)."""

from __future__ import annotations

import torch
import torch.nn as nn


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().float().cpu() for p in model.parameters()])


def l2_distance(a: nn.Module, b: nn.Module) -> float:
    """||theta_a - theta_b||_2 over all parameters (Siddiqui et al. 2025, --evaluate-parameter-diff)."""
    return (_flat(a) - _flat(b)).norm().item()


def mean_abs_change(a: nn.Module, b: nn.Module) -> float:
    """mean_i |theta_a,i - theta_b,i| over all parameter entries: the original SoftTargets tool's
    "average absolute parameter change" of the unlearned model against the original."""
    return (_flat(a) - _flat(b)).abs().mean().item()
