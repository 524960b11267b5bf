"""Building blocks shared by the model families."""

from __future__ import annotations

from torch import nn


class ConvBnReLU(nn.Sequential):
    """Convolution + BatchNorm + ReLU: the unit every SqueezeNext conv is made of. Bias-free as the authors' prototxts
    define it; `bias=True` only to hold weights trained with biases (the seed re-implementation's)."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0, groups: int = 1, bias: bool = False):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, groups=groups, bias=bias),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )
