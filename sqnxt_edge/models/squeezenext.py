"""SqueezeNext (Gholami et al., "SqueezeNext: Hardware-Aware Neural Network Design", CVPRW 2018, arXiv 1803.10615).

Follows the authors' Caffe prototxts, not the popular PyTorch re-implementation: bias-free convs with BN, a 64-channel
stem and a 128-channel head at every width, a projection shortcut in the first block of every stage, the alternating
order of the separable 3x1/1x3 pair, the v5 transition block, and groups=2 only on the first 1x1 and the separable
pair in the G variant. Small inputs (32 and 64 px) swap only the stem, as the CIFAR / Tiny ImageNet re-implementation
did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .layers import ConvBnReLU
from .registry import ModelSpec, ZooNet, register

__all__ = ["SqueezeNextCfg", "SqueezeNext", "SqueezeNextBlock", "StemStagesHead", "STEMS", "default_stem"]

STAGE_WIDTHS = (32, 64, 128, 256)
STEM_CHANNELS = 64
HEAD_CHANNELS = 128
STEMS = ("imagenet", "tiny", "cifar")


@dataclass(frozen=True)
class SqueezeNextCfg:
    """A variant is data: depths per stage, width multiplier, groups, stem kernel and the v5 transition flag."""

    depths: tuple[int, int, int, int]
    width: float = 1.0
    groups: int = 1
    stem_kernel: int = 7
    v5_transition: bool = False
    verified: bool = True  # False where no prototxt publishes the layout (SqNxt-34)


def default_stem(input_size: int) -> str:
    """The stem the spec prescribes for an input size: ImageNet's at >= 128 px, else the small-input ones."""
    if input_size >= 128:
        return "imagenet"
    if input_size >= 64:
        return "tiny"
    return "cifar"


class SqueezeNextBlock(nn.Module):
    """The SqueezeNext block: 1x1 (C/2, stride s) -> 1x1 (C/4) -> separable 3x1/1x3 (C/2) -> 1x1 (C), + shortcut.

    `transition="projection"` puts the 1x1 projection on the shortcut (v1-v4, first block of a stage);
    `transition="v5"` applies the projection first and runs a stride-1 C->C block on its output, with the
    projection's output as the residual: out = ReLU(P(x) + F(P(x))). `bias` gives every conv a bias (only the seed
    re-implementation's weights need it).
    """

    def __init__(
        self, cin: int, cout: int, stride: int, groups: int, sep_first: str, transition: str | None, bias: bool = False
    ):
        super().__init__()
        self.transition = transition
        self.proj: ConvBnReLU | None
        if transition == "v5":
            self.proj = ConvBnReLU(cin, cout, 1, stride=stride, bias=bias)
            cin, stride = cout, 1
        elif transition == "projection":
            self.proj = ConvBnReLU(cin, cout, 1, stride=stride, bias=bias)
        else:
            self.proj = None
        half, quarter = cout // 2, cout // 4
        k31 = dict(kernel=(3, 1), padding=(1, 0))
        k13 = dict(kernel=(1, 3), padding=(0, 1))
        first, second = (k31, k13) if sep_first == "3x1" else (k13, k31)
        self.sep_first = sep_first
        self.reduce1 = ConvBnReLU(cin, half, 1, stride=stride, groups=groups, bias=bias)
        self.reduce2 = ConvBnReLU(half, quarter, 1, bias=bias)
        self.sep1 = ConvBnReLU(quarter, half, first["kernel"], padding=first["padding"], groups=groups, bias=bias)
        self.sep2 = ConvBnReLU(half, half, second["kernel"], padding=second["padding"], groups=groups, bias=bias)
        self.expand = ConvBnReLU(half, cout, 1, bias=bias)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj is None:  # no transition
            shortcut = x
        elif self.transition == "v5":
            x = self.proj(x)
            shortcut = x
        else:  # "projection"
            shortcut = self.proj(x)
        out = self.expand(self.sep2(self.sep1(self.reduce2(self.reduce1(x)))))
        return self.act(out + shortcut)


def _make_stem(kind: str, kernel: int, in_channels: int) -> nn.Sequential:
    if kind == "imagenet":
        # no padding, then a ceil-mode pool: 227 -> 111 -> 55 (7x7) or 227 -> 112 -> 56 (5x5)
        return nn.Sequential(
            ConvBnReLU(in_channels, STEM_CHANNELS, kernel, stride=2),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
        )
    if kind == "tiny":
        return nn.Sequential(ConvBnReLU(in_channels, STEM_CHANNELS, 3, stride=2, padding=1))
    if kind == "cifar":
        return nn.Sequential(ConvBnReLU(in_channels, STEM_CHANNELS, 3, stride=1, padding=1))
    raise ValueError(f"unknown stem {kind!r}; choose one of {', '.join(STEMS)}")


class StemStagesHead(ZooNet):
    """stem -> stages -> head -> pool -> fc, the layout every SqueezeNext (the paper's and the seed's) shares."""

    stem: nn.Module
    stages: nn.Module
    head: nn.Module
    pool: nn.Module
    fc: nn.Module

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(x), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class SqueezeNext(StemStagesHead):
    """stem -> four stages -> 1x1 head conv (128) -> global average pool -> bias-free FC."""

    def __init__(self, cfg: SqueezeNextCfg, num_classes: int = 1000, in_channels: int = 3, stem: str = "imagenet"):
        super().__init__()
        self.cfg = cfg
        self.stem = _make_stem(stem, cfg.stem_kernel, in_channels)
        cin = STEM_CHANNELS
        stages = []
        for index, (depth, base) in enumerate(zip(cfg.depths, STAGE_WIDTHS)):
            cout = int(base * cfg.width)
            blocks = []
            for b in range(depth):
                first = b == 0
                blocks.append(
                    SqueezeNextBlock(
                        cin if first else cout,
                        cout,
                        stride=2 if first and index > 0 else 1,
                        groups=cfg.groups,
                        sep_first="3x1" if b % 2 == 0 else "1x3",
                        transition=("v5" if cfg.v5_transition else "projection") if first else None,
                    )
                )
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.head = ConvBnReLU(cin, HEAD_CHANNELS, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(HEAD_CHANNELS, num_classes, bias=False)
        self._init_weights()

    def _init_weights(self) -> None:
        # the seed recipe: Xavier-uniform with gain sqrt(2) (the authors' prototxts use Xavier too)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight, gain=math.sqrt(2))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def _create(cfg: SqueezeNextCfg):
    def build(num_classes: int, in_channels: int, stem: str) -> SqueezeNext:
        return SqueezeNext(cfg, num_classes=num_classes, in_channels=in_channels, stem=stem)

    return build


# Depths per variant. 34 has 32 blocks in all, but no prototxt publishes the split: ours is our own choice.
_DEPTHS = {
    "23": ((6, 6, 8, 1), 7, False, True),
    "23v2": ((6, 6, 8, 1), 5, False, True),
    "23v3": ((4, 8, 8, 1), 5, False, True),
    "23v4": ((2, 10, 8, 1), 5, False, True),
    "23v5": ((2, 4, 14, 1), 5, True, True),
    "34": ((9, 9, 12, 2), 7, False, False),
    "44": ((12, 12, 16, 2), 7, False, True),
}

model_cfgs: dict[str, SqueezeNextCfg] = {}
for _depth, (_blocks, _kernel, _v5, _verified) in _DEPTHS.items():
    for _width in (1.0, 1.5, 2.0):
        model_cfgs[f"{_width:.1f}-SqNxt-{_depth}"] = SqueezeNextCfg(_blocks, _width, 1, _kernel, _v5, _verified)
model_cfgs["1.0-G-SqNxt-23"] = SqueezeNextCfg((6, 6, 8, 1), 1.0, 2, 7, False, True)


def _describe(cfg: SqueezeNextCfg) -> str:
    text = (
        f"blocks {'-'.join(map(str, cfg.depths))}, width {cfg.width}, ImageNet stem {cfg.stem_kernel}x{cfg.stem_kernel}"
    )
    if cfg.groups > 1:
        text += f", groups={cfg.groups}"
    if cfg.v5_transition:
        text += ", v5 transition"
    if not cfg.verified:
        text += " (block split unverified: no published prototxt)"
    return text


for _name, _cfg in model_cfgs.items():
    register(
        ModelSpec(
            name=_name,
            family="squeezenext",
            build=_create(_cfg),
            stems=STEMS,
            description=_describe(_cfg),
            verified=_cfg.verified,
            stem_for=default_stem,
        )
    )
