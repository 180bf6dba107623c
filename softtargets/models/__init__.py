"""Model registry. Every model returns logits and is split as head(features(x)), so representation
methods (RMU) can reach the penultimate features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch.nn as nn

from softtargets.errors import SoftTargetsError
from softtargets.models.cnn import CNN
from softtargets.models.mlp import MLP
from softtargets.models.mobilenet import MobileNetV2
from softtargets.models.resnet20 import ResNet20
from softtargets.models.vgg import VGG16BN


@dataclass(frozen=True)
class ArchInfo:
    name: str
    description: str
    build: Callable[[tuple[int, int, int], int], nn.Module]


ARCHITECTURES: dict[str, ArchInfo] = {
    a.name: a
    for a in [
        ArchInfo("mlp", "the original tool's MLP: flatten -> 800 ReLU -> classes", MLP),
        ArchInfo("cnn", "the original tool's CNN: 3x(3x3 conv 32/64/128 + ReLU + 2x2 max-pool) -> fc 128 -> classes",
                 CNN),
        ArchInfo("resnet20", "ResNet-20 of He et al. (CIFAR): 3 stages x 3 basic blocks, 16/32/64 channels, BatchNorm",
                 ResNet20),
        ArchInfo("vgg16_bn", "VGG-16 with BatchNorm (torchvision layers), CIFAR-style 512 -> classes head", VGG16BN),
        ArchInfo("mobilenet_v2", "MobileNetV2 (torchvision blocks), CIFAR-style stride-1 stem, 1280 -> classes head",
                 MobileNetV2),
    ]
}


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    if name not in ARCHITECTURES:
        raise SoftTargetsError(f"unknown architecture '{name}': choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name].build(input_shape, num_classes)
