"""Batched, gradient-free forward passes: each model is evaluated once per split and the logits reused."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from softtargets.data.batches import DeviceData

EVAL_BATCH = 1024  # dense models: inference batches larger than training ones, no activations are kept
CONV_EVAL_BATCH = 128  # convolutions on CPU: activations of larger batches fall out of cache (4x slower at 1024)


def _has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


@torch.no_grad()
def predict_logits(model: nn.Module, data: DeviceData, x_uint8: torch.Tensor, batch_size: int | None = None,
                   index: torch.Tensor | None = None) -> torch.Tensor:
    """Logits [N, C] in eval mode (BatchNorm uses running statistics); the model itself is left as it was.
    With index, the images x_uint8[index], gathered batch by batch (no copy of the whole split).

    Convolutional models on CPU run on a channels-last copy (oneDNN's fast layout; a copy, because the model
    may be mid-training with an optimizer holding its parameters)."""
    channels_last = data.device.type == "cpu" and _has_conv(model)
    net = copy.deepcopy(model).to(memory_format=torch.channels_last) if channels_last else model
    batch_size = batch_size or (CONV_EVAL_BATCH if channels_last else EVAL_BATCH)
    was_training = net.training
    net.eval()
    layout = torch.channels_last if channels_last else torch.contiguous_format
    # one preallocated output: a list of small per-batch tensors pins the freed activations between them in
    # glibc's heap (1.3 GB RSS for a fashion_mnist cnn run's evaluation instead of 60 MB); same values as cat
    out, start = None, 0
    chunks = x_uint8.split(batch_size) if index is None else (x_uint8[i] for i in index.split(batch_size))
    for chunk in chunks:  # one chunk, of length 0, when there are no images
        logits = net(data.normalise(chunk).contiguous(memory_format=layout))
        if out is None:
            out = logits.new_empty((len(x_uint8) if index is None else len(index), *logits.shape[1:]))
        out[start:start + len(logits)] = logits
        start += len(logits)
    net.train(was_training)
    return out.float()
