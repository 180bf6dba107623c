"""Batched, gradient-free forward passes: each model is evaluated once per split and the logits reused."""

from __future__ import annotations

import torch
import torch.nn as nn

from softtargets.data.batches import DeviceData

EVAL_BATCH = 1024  # inference batches are larger than training ones: no activations are kept


@torch.no_grad()
def predict_logits(model: nn.Module, data: DeviceData, x_uint8: torch.Tensor, batch_size: int = EVAL_BATCH
                   ) -> torch.Tensor:
    """Logits [N, C] in eval mode (BatchNorm uses running statistics); the model's mode is restored."""
    was_training = model.training
    model.eval()
    out = [model(data.normalise(chunk)) for chunk in x_uint8.split(batch_size)]
    model.train(was_training)
    return torch.cat(out).float()
