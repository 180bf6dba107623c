"""ResNet-20, the CIFAR ResNet of He et al. 2016 (section 4.2), built from torchvision's BasicBlock."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from softtargets.models.pooling import GlobalAvgPool


class PadShortcut(nn.Module):
    """He et al.'s option A shortcut: subsample by 2 and zero-pad the new channels (no parameters)."""

    def __init__(self, extra_channels: int):
        super().__init__()
        self.pad = extra_channels // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


def _stage(in_planes: int, planes: int, blocks: int, stride: int) -> list[nn.Module]:
    from torchvision.models.resnet import BasicBlock  # imported when built (190 MB RSS, see mobilenet.py)

    shortcut = PadShortcut(planes - in_planes) if stride != 1 or in_planes != planes else None
    layers = [BasicBlock(in_planes, planes, stride, downsample=shortcut)]
    layers += [BasicBlock(planes, planes) for _ in range(blocks - 1)]
    return layers


class ResNet20(nn.Module):
    """3x3 conv 16 -> three stages of 3 basic blocks (16/32/64 channels, strides 1/2/2) -> global average
    pool -> fc. 0.27M parameters; any input size >= 8 pixels, 1 or 3 channels."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, blocks_per_stage: int = 3):
        super().__init__()
        channels = input_shape[0]
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
            *_stage(16, 16, blocks_per_stage, 1), *_stage(16, 32, blocks_per_stage, 2),
            *_stage(32, 64, blocks_per_stage, 2),
            GlobalAvgPool(), nn.Flatten(),
        )
        self.head = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)  # as in the reference CIFAR implementations

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
