"""Global average pooling that stays deterministic on CUDA."""

import torch
import torch.nn as nn


class GlobalAvgPool(nn.AdaptiveAvgPool2d):
    """nn.AdaptiveAvgPool2d(1), except on CUDA: there the backward of adaptive average pooling accumulates with
    atomics, which deterministic mode refuses (training.use_compute), so CUDA tensors take the mean over the
    spatial dimensions instead (the same value up to rounding; its backward is a plain broadcast). CPU tensors
    keep torchvision's operator, so CPU results are unchanged bit for bit."""

    def __init__(self):
        super().__init__(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda:
            return x.mean((2, 3), keepdim=True)
        return super().forward(x)
