"""VGG-16 with BatchNorm, CIFAR-style: torchvision's layer configuration "D", a 512 -> classes head."""

import torch
import torch.nn as nn

from softtargets.models.pooling import GlobalAvgPool


class VGG16BN(nn.Module):
    """torchvision's vgg16_bn convolutional layers (13 conv + BN + ReLU, 5 max-pools) with the input channels
    taken from the data, max-pools in ceil mode (so 28-pixel inputs reach 1x1 like 32-pixel ones: 28 -> 14 ->
    7 -> 4 -> 2 -> 1), global average pooling and a single linear head instead of the 4096-wide classifier
    (the usual CIFAR adaptation)."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int):
        from torchvision.models.vgg import cfgs, make_layers  # imported when built (190 MB RSS, mobilenet.py)

        super().__init__()
        layers = make_layers(cfgs["D"], batch_norm=True)
        layers[0] = nn.Conv2d(input_shape[0], 64, kernel_size=3, padding=1)
        for m in layers:
            if isinstance(m, nn.MaxPool2d):
                m.ceil_mode = True
        self.features = nn.Sequential(*layers, GlobalAvgPool(), nn.Flatten())
        self.head = nn.Linear(512, num_classes)
        for m in self.modules():  # torchvision's VGG initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
