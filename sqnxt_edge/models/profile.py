"""Parameters and multiply-accumulates, counted by PyTorch's own FLOP counter (conv and FC; BN, pools and adds are
not MACs), with a per-layer breakdown for the `--layers` table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["ModelStats", "LayerStats", "model_stats", "layer_table", "count_params"]


@dataclass
class LayerStats:
    """One layer's parameters, MACs and output size."""

    name: str
    kind: str
    params: int
    macs: int
    output_shape: tuple[int, ...]
    activation_bytes: int  # fp32 output tensor size
    input_shape: tuple[int, ...] = ()  # the first input's (what a layer reads; `sqnxt-edge profile` counts bytes)


@dataclass
class ModelStats:
    """A model's parameters and MACs at an input size, with its layers when asked for."""

    params: int
    macs: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    layers: list[LayerStats] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The statistics as JSON-ready data."""
        return asdict(self)


def count_params(model: nn.Module) -> int:
    """Trainable parameters the PyTorch way: weights, biases and BN affine; running statistics are buffers."""
    return sum(p.numel() for p in model.parameters())


def _leaf_modules(model: nn.Module):
    for name, module in model.named_modules():
        if name and not list(module.children()):
            yield name, module


@torch.no_grad()
def model_stats(model: nn.Module, input_size: int, in_channels: int = 3, layers: bool = False) -> ModelStats:
    """Count params and MACs for one image; with `layers`, also per leaf module (output shape, activation size)."""
    was_training = model.training
    model.eval()
    shapes: dict[str, tuple[int, ...]] = {}
    inputs: dict[str, tuple[int, ...]] = {}
    hooks = []

    def record(name: str, i, o) -> None:  # a forward hook must return None (a value would replace the output)
        shapes[name], inputs[name] = tuple(o.shape), tuple(i[0].shape)

    if layers:
        for name, module in _leaf_modules(model):
            hooks.append(module.register_forward_hook(lambda m, i, o, name=name: record(name, i, o)))
    device = next(model.parameters(), torch.empty(0)).device  # a model on the "meta" device counts in no time
    x = torch.zeros(1, in_channels, input_size, input_size, device=device)
    try:
        with FlopCounterMode(display=False) as counter:
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    stats = ModelStats(count_params(model), counter.get_total_flops() // 2, tuple(x.shape), tuple(out.shape))
    if layers:
        root = type(model).__name__
        per_module = counter.get_flop_counts()
        for name, module in _leaf_modules(model):
            flops = sum(per_module.get(f"{root}.{name}", {}).values())
            shape = shapes.get(name, ())
            numel = 1
            for d in shape:
                numel *= d
            stats.layers.append(
                LayerStats(
                    name=name,
                    kind=_describe(module),
                    params=sum(p.numel() for p in module.parameters(recurse=False)),
                    macs=int(flops // 2),
                    output_shape=shape,
                    activation_bytes=numel * 4 if shape else 0,
                    input_shape=inputs.get(name, ()),
                )
            )
    return stats


def _describe(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        k = "x".join(map(str, module.kernel_size))
        text = f"Conv {k}/{module.stride[0]} {module.in_channels}->{module.out_channels}"
        return text + (f" g{module.groups}" if module.groups > 1 else "")
    if isinstance(module, nn.Linear):
        return f"Linear {module.in_features}->{module.out_features}"
    return type(module).__name__


def layer_table(model: nn.Module, input_size: int, in_channels: int = 3) -> list[LayerStats]:
    """Per-layer statistics of `model` at `input_size`."""
    return model_stats(model, input_size, in_channels, layers=True).layers
