import math

import torch
import torch.nn as nn


class MLP(nn.Module):
    """The original tool's 784-800-10 MLP, with the input and output sizes taken from the data."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, hidden: int = 800):
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ReLU())
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
