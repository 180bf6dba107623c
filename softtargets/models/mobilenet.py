"""MobileNetV2, CIFAR-style: torchvision's MobileNetV2 with a stride-1 stem and stride-1 second stage."""

import torch
import torch.nn as nn

from softtargets.models.pooling import GlobalAvgPool

# torchvision's (t, c, n, s) table with the 24-channel stage at stride 1: with the stride-1 stem, a 32-pixel
# input ends at 4x4 instead of 1x1 (the common CIFAR adaptation, e.g. kuangliu/pytorch-cifar)
CIFAR_SETTING = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                 [6, 320, 1, 1]]


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 blocks (inverted residuals, BatchNorm, ReLU6) -> global average pool ->
    linear head. The classifier's dropout is left out so features stay deterministic for representation
    methods (RMU)."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int):
        # torchvision is imported when this model is built: importing it costs 190 MB of RSS (it loads
        # torch._dynamo), which runs of the other architectures need not pay
        from torchvision.models.mobilenetv2 import MobileNetV2 as TorchvisionMobileNetV2
        from torchvision.ops.misc import Conv2dNormActivation

        super().__init__()
        net = TorchvisionMobileNetV2(num_classes=num_classes, inverted_residual_setting=CIFAR_SETTING)
        net.features[0] = Conv2dNormActivation(input_shape[0], 32, stride=1, norm_layer=nn.BatchNorm2d,
                                               activation_layer=nn.ReLU6)
        nn.init.kaiming_normal_(net.features[0][0].weight, mode="fan_out")  # torchvision's initialisation
        self.features = nn.Sequential(net.features, GlobalAvgPool(), nn.Flatten())
        self.head = net.classifier[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
