"""SqueezeNet 1.0 and 1.1 (Iandola et al., 2016), exactly as torchvision defines them, for baselines; and
SqueezeNet-cifar, the small-input SqueezeNet the seed's CIFAR tables quote (weiaicunzai/pytorch-cifar100).

torchvision's: convs carry biases and no BN; pools are 3x3 stride 2 in ceil mode; the head is dropout, a 1x1 conv to
the classes, ReLU and global average pooling. The same layers serve every input size.

SqueezeNet-cifar trains where those do not at 32 px (their ReLU before the pooled head dies on digits, loss stuck at
ln 10): BN after every conv, a 3x3 stride-1 stem with 96 channels, 2x2 max-pools, bypass additions at fire3/5/7 and
a plain 1x1 conv head. Its module names are weiaicunzai's, so their state_dicts load as they are.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import ModelSpec, ZooNet, add_alias, register

__all__ = ["Fire", "SqueezeNet", "SqueezeNetCifar"]


class Fire(nn.Module):
    """1x1 squeeze, then 1x1 and 3x3 expands in parallel, concatenated."""

    def __init__(self, cin: int, squeeze: int, e1: int, e3: int):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU(inplace=True))
        self.expand1x1 = nn.Sequential(nn.Conv2d(squeeze, e1, 1), nn.ReLU(inplace=True))
        self.expand3x3 = nn.Sequential(nn.Conv2d(squeeze, e3, 3, padding=1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze(x)
        return torch.cat([self.expand1x1(x), self.expand3x3(x)], 1)


def _pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(3, stride=2, ceil_mode=True)


# Architectures as data: a stem (out channels, kernel) then a sequence of "pool" or Fire arguments.
_LAYOUTS: dict[str, tuple[tuple[int, int], list[str | tuple[int, int, int, int]]]] = {
    "1.0": (
        (96, 7),
        [
            "pool",
            (96, 16, 64, 64),
            (128, 16, 64, 64),
            (128, 32, 128, 128),
            "pool",
            (256, 32, 128, 128),
            (256, 48, 192, 192),
            (384, 48, 192, 192),
            (384, 64, 256, 256),
            "pool",
            (512, 64, 256, 256),
        ],
    ),
    "1.1": (
        (64, 3),
        [
            "pool",
            (64, 16, 64, 64),
            (128, 16, 64, 64),
            "pool",
            (128, 32, 128, 128),
            (256, 32, 128, 128),
            "pool",
            (256, 48, 192, 192),
            (384, 48, 192, 192),
            (384, 64, 256, 256),
            (512, 64, 256, 256),
        ],
    ),
}


class SqueezeNet(ZooNet):
    """SqueezeNet 1.0 or 1.1 as torchvision defines it."""

    def __init__(self, version: str = "1.1", num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        (stem_channels, kernel), layout = _LAYOUTS[version]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, stem_channels, kernel, stride=2), nn.ReLU(inplace=True)]
        layers += [_pool() if isinstance(item, str) else Fire(*item) for item in layout]  # str: "pool"
        self.features = nn.Sequential(*layers)
        final_conv = nn.Conv2d(512, num_classes, 1)
        self.classifier = nn.Sequential(nn.Dropout(p=0.5), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                if m is final_conv:
                    nn.init.normal_(m.weight, mean=0.0, std=0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                if m.bias is not None:  # every conv here has one
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _create(version: str):
    def build(num_classes: int, in_channels: int, stem: str) -> SqueezeNet:
        return SqueezeNet(version, num_classes=num_classes, in_channels=in_channels)

    return build


for _version in _LAYOUTS:
    _name = f"SqueezeNet-{_version}"
    register(
        ModelSpec(
            name=_name,
            family="squeezenet",
            build=_create(_version),
            stems=("torchvision",),
            description=f"torchvision's SqueezeNet {_version} (Fire modules, conv biases, no BN)",
        )
    )
    add_alias(f"squeezenet{_version.replace('.', '_')}", _name)
    add_alias(f"squeezenet-{_version.replace('.', '_')}", _name)


def _conv_bn_relu(cin: int, cout: int, kernel: int, padding: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=padding), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FireBN(nn.Module):
    """Fire with BN after each conv; `cout` is split evenly between the 1x1 and 3x3 expands."""

    def __init__(self, cin: int, cout: int, squeeze: int):
        super().__init__()
        self.squeeze = _conv_bn_relu(cin, squeeze, 1)
        self.expand_1x1 = _conv_bn_relu(squeeze, cout // 2, 1)
        self.expand_3x3 = _conv_bn_relu(squeeze, cout // 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze(x)
        return torch.cat([self.expand_1x1(x), self.expand_3x3(x)], 1)


# fire2 .. fire9 as (in, out, squeeze); the bypass adds each odd fire's input to its output
_CIFAR_FIRES = (
    (96, 128, 16),
    (128, 128, 16),
    (128, 256, 32),
    (256, 256, 32),
    (256, 384, 48),
    (384, 384, 48),
    (384, 512, 64),
    (512, 512, 64),
)


class SqueezeNetCifar(ZooNet):
    """The CIFAR SqueezeNet of weiaicunzai/pytorch-cifar100, with its module names."""

    fire2: FireBN  # fire2 ... fire9 are set in a loop below, under weiaicunzai's names
    fire3: FireBN
    fire4: FireBN
    fire5: FireBN
    fire6: FireBN
    fire7: FireBN
    fire8: FireBN
    fire9: FireBN

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn_relu(in_channels, 96, 3, padding=1), nn.MaxPool2d(2, 2))
        for index, args in enumerate(_CIFAR_FIRES, start=2):
            setattr(self, f"fire{index}", FireBN(*args))
        self.conv10 = nn.Conv2d(512, num_classes, 1)
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.maxpool = nn.MaxPool2d(2, 2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        f2 = self.fire2(self.stem(x))
        f3 = self.fire3(f2) + f2
        f4 = self.maxpool(self.fire4(f3))
        f5 = self.fire5(f4) + f4
        f6 = self.fire6(f5)
        f7 = self.fire7(f6) + f6
        f8 = self.maxpool(self.fire8(f7))
        return self.fire9(f8)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avg(self.conv10(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


register(
    ModelSpec(
        name="SqueezeNet-cifar",
        family="squeezenet",
        build=lambda num_classes, in_channels, stem: SqueezeNetCifar(num_classes, in_channels),
        stems=("cifar",),
        description="the CIFAR SqueezeNet (weiaicunzai/pytorch-cifar100): BN after every conv, stem 3x3/1 96 ch, "
        "2x2 max-pools, bypass at fire3/5/7",
    )
)
add_alias("squeezenet_cifar", "SqueezeNet-cifar")
