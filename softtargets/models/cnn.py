import torch
import torch.nn as nn


class CNN(nn.Module):
    """The original tool's CNN: three 3x3 conv blocks (32/64/128 channels, 2x2 max-pool), fc 128, fc classes."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int):
        super().__init__()
        channels, height, width = input_shape
        blocks, c_in = [], channels
        for c_out in (32, 64, 128):
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c_out
        flat = 128 * (height // 8) * (width // 8)
        self.features = nn.Sequential(*blocks, nn.Flatten(), nn.Linear(flat, 128), nn.ReLU())
        self.head = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
