"""SqueezeNext as the popular PyTorch re-implementation defines it (luuuyi/SqueezeNext.PyTorch, the notebook behind the
seed's CIFAR-10/100 and Tiny ImageNet tables), so the weights people trained with it can be used here.

It is not the prototxt network (`squeezenext.py`): every conv and the FC carry biases; the separable pair is always
1x3 then 3x1; stem and head channels scale with the width; the shortcut is conv + BN only where the stride is 2 or
the channels change; its "v5" is depths 2-4-14-1 with the ordinary block; the stem is a 3x3 conv (stride 1 at 32 px,
stride 2 at 64 px for Tiny ImageNet) without max-pool; the head is 1x1 conv + BN + ReLU, a 4x4 average pool and the
FC. Its block, `relu(relu(bn5(conv5)) + relu(shortcut(x)))`, is the project's `SqueezeNextBlock` (the identity
shortcut's input is already a ReLU output), so it is built from that block with biases.
"""

from __future__ import annotations

import math
import re

from torch import nn

from .layers import ConvBnReLU
from .registry import ModelSpec, add_alias, register
from .squeezenext import STAGE_WIDTHS, SqueezeNextBlock, StemStagesHead

__all__ = ["SeedSqueezeNext", "SEED_VARIANTS", "seed_state_dict"]

SIZES: dict[str, tuple[int, ...]] = {"cifar": (32,), "tiny": (64,)}  # the 4x4 average pool must meet a 4x4 map

# canonical name -> (width, depths, the seed's own function name)
SEED_VARIANTS = {
    "seed-SqNxt-23-1x": (1.0, (6, 6, 8, 1), "SqNxt_23_1x"),
    "seed-SqNxt-23-2x": (2.0, (6, 6, 8, 1), "SqNxt_23_2x"),
    "seed-SqNxt-23-1x-v5": (1.0, (2, 4, 14, 1), "SqNxt_23_1x_v5"),
    "seed-SqNxt-23-2x-v5": (2.0, (2, 4, 14, 1), "SqNxt_23_2x_v5"),
}


class SeedSqueezeNext(StemStagesHead):
    """The popular PyTorch SqueezeNext re-implementation, layer for layer, so its weights load."""

    def __init__(
        self, width: float, depths: tuple[int, ...], num_classes: int = 10, in_channels: int = 3, stem: str = "cifar"
    ):
        super().__init__()
        self.width, self.depths = width, tuple(depths)
        cin = int(64 * width)
        self.stem = nn.Sequential(
            ConvBnReLU(in_channels, cin, 3, stride=2 if stem == "tiny" else 1, padding=1, bias=True)
        )
        stages = []
        for index, (depth, base) in enumerate(zip(depths, STAGE_WIDTHS)):
            cout = int(base * width)
            blocks = []
            for b in range(depth):
                stride = 2 if b == 0 and index > 0 else 1
                c = cin if b == 0 else cout
                blocks.append(
                    SqueezeNextBlock(
                        c,
                        cout,
                        stride,
                        groups=1,
                        sep_first="1x3",
                        bias=True,
                        transition="projection" if stride == 2 or c != cout else None,
                    )
                )
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.head = ConvBnReLU(cin, int(128 * width), 1, bias=True)
        self.pool = nn.AvgPool2d(4)
        self.fc = nn.Linear(int(128 * width), num_classes)
        for m in self.modules():  # the notebook's conv_init: convs only (the FC keeps PyTorch's default)
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight, gain=math.sqrt(2))
                if m.bias is not None:  # every conv here has one
                    nn.init.zeros_(m.bias)


_BLOCK = re.compile(r"^stage([1-4])\.(\d+)\.(conv|bn)([1-5])\.(.+)$")
_SHORTCUT = re.compile(r"^stage([1-4])\.(\d+)\.shortcut\.([01])\.(.+)$")
_TOP = {"conv1": "stem.0.0", "bn1": "stem.0.1", "conv2": "head.0", "bn2": "head.1", "linear": "fc"}
_UNITS = ("reduce1", "reduce2", "sep1", "sep2", "expand")


def _our_key(key: str) -> str:
    if m := _BLOCK.match(key):
        stage, block, kind, unit, rest = m.groups()
        return f"stages.{int(stage) - 1}.{block}.{_UNITS[int(unit) - 1]}.{0 if kind == 'conv' else 1}.{rest}"
    if m := _SHORTCUT.match(key):
        stage, block, layer, rest = m.groups()
        return f"stages.{int(stage) - 1}.{block}.proj.{layer}.{rest}"
    top, _, rest = key.partition(".")
    return f"{_TOP[top]}.{rest}" if top in _TOP and rest else key


def seed_state_dict(state: dict) -> dict:
    """The seed's keys (conv1, stage1.0.conv3, stage2.0.shortcut.0, linear ...) renamed to ours; tensors untouched."""
    return {_our_key(k): v for k, v in state.items()}


def _create(width: float, depths: tuple[int, ...]):
    def build(num_classes: int, in_channels: int, stem: str) -> SeedSqueezeNext:
        return SeedSqueezeNext(width, depths, num_classes=num_classes, in_channels=in_channels, stem=stem)

    return build


for _name, (_width, _depths, _seed_name) in SEED_VARIANTS.items():
    register(
        ModelSpec(
            name=_name,
            family="seed-squeezenext",
            build=_create(_width, _depths),
            stems=tuple(SIZES),
            description=f"the PyTorch re-implementation's {_seed_name}: blocks {'-'.join(map(str, _depths))}, "
            f"width {_width}, conv biases, 1x3 then 3x1, stem 3x3/1 at 32 px or 3x3/2 at 64 px",
            stem_for=lambda size: "tiny" if size == 64 else "cifar",
            sizes=SIZES,
            adapt_state=seed_state_dict,
        )
    )
    add_alias(_seed_name, _name)
    add_alias(re.sub(r"_(\d)x", r"_\1.0x", _seed_name), _name)  # SqNxt_23_1.0x: the width spelled out
