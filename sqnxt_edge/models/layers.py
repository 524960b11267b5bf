"""Building blocks shared by the model families."""

from __future__ import annotations

from torch import nn


class ConvBnReLU(nn.Sequential):
    """Bias-free convolution + BatchNorm + ReLU: the unit every SqueezeNext conv is made of."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0, groups: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )
