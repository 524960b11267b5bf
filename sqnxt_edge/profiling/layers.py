"""A model as the cost model and the profiler see it: its layers (one conv + BN + ReLU unit, a pool, a residual add,
the classifier), each with MACs, weights and the activations it reads and writes, under the model's own names.

Names are module paths (`stem.0`, `stages.0.0.reduce1`, `stages.0.0.add`, `head`, `fc`), because the ONNX export
keeps them in every node name (`/stages/stages.0/stages.0.0/reduce1/reduce1.0/Conv`) and onnxruntime's profiler keeps
them in its kernel names, fused or quantized: `layer_of` maps either back to its layer. MACs come from
`models.layer_table` (torch.utils.flop_counter), so they agree with `sqnxt-edge models --layers`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from ..errors import SqnxtError
from ..layer_names import module_path

__all__ = ["Layer", "LayerTable", "model_layers", "artifact_layers", "module_path", "KINDS", "BYTES"]

# Layer kinds, in display order: the paper's split of where the time goes.
KINDS = ("stem", "1x1", "3x1/1x3", "3x3", "grouped", "fc", "pooling", "residual add", "concat", "other")
COMPUTE_KINDS = ("stem", "1x1", "3x1/1x3", "3x3", "grouped", "fc", "other")
# bytes per activation / weight element of each precision (int8: uint8 activations, int8 weights)
BYTES = {"fp32": (4, 4), "fp16": (2, 2), "int8": (1, 1)}
_PASSIVE = ("BatchNorm2d", "ReLU", "ReLU6", "Dropout", "Identity")


@dataclass
class Layer:
    """One layer of the model as profiles and estimates see it: kind, stage, MACs and tensor sizes."""

    name: str
    kind: str
    stage: str
    op: str  # what it is: "Conv 1x1/1 64->16", "MaxPool2d", "Add"
    macs: int = 0
    weights: int = 0  # weight elements (params without BN)
    in_elems: int = 0  # activation elements read
    out_elems: int = 0  # activation elements written
    channels: tuple[int, int, int] = (0, 0, 1)  # a conv's (in, out, groups): what SIMD blocks and groups see
    base_kind: str = ""  # a grouped conv's kernel kind (1x1, 3x1/1x3 ...): each group is one of those

    def padded_macs(self, k_block: int, n_block: int) -> float:
        """MACs with each group's input channels rounded up to `k_block` and output channels to `n_block`: a kernel
        computes whole vector blocks, so 12 channels cost 16 on 16 lanes (the 1.5x widths' odd counts)."""
        cin, cout, groups = self.channels
        if not self.macs or not cin or not cout or self.kind == "fc":
            return float(self.macs)
        cin_g, cout_g = max(cin // groups, 1), max(cout // groups, 1)
        return self.macs * (-(-cin_g // k_block) * k_block / cin_g) * (-(-cout_g // n_block) * n_block / cout_g)

    def bytes(self, precision: str = "fp32") -> int:
        """Bytes the layer moves (input, output and weights) at `precision`."""
        act, weight = BYTES.get(precision, BYTES["fp32"])
        return (self.in_elems + self.out_elems) * act + self.weights * weight

    def to_dict(self) -> dict:
        """The layer as JSON-ready data."""
        return asdict(self)


@dataclass
class LayerTable:
    """A model's layers at an input size, with the module paths that map onto them."""

    model: str
    input_size: int
    num_classes: int
    layers: list[Layer]
    aliases: dict[str, str] = field(default_factory=dict)  # module path -> layer name
    params: int = 0  # trainable parameters, as `sqnxt-edge models` counts them

    @property
    def macs(self) -> int:
        """Total MACs of the layers."""
        return sum(layer.macs for layer in self.layers)

    def get(self, name: str) -> Layer:
        """The layer called `name`."""
        return next(layer for layer in self.layers if layer.name == name)

    def layer_of(self, node_name: str) -> str | None:
        """The layer a graph or profiler node belongs to (its longest known module path), or None (a runtime's own
        node: layout reorders, quantize/dequantize, flatten)."""
        path = module_path(node_name)
        while path:
            if path in self.aliases:
                return self.aliases[path]
            path = path.rpartition(".")[0]
        return None


def _kind(module, first: bool, grouped: bool = True) -> str:
    from torch import nn

    if isinstance(module, nn.Linear):
        return "fc"
    if first:
        return "stem"
    if grouped and module.groups > 1:  # runtimes run a grouped conv as one small GEMM per group: its own efficiency
        return "grouped"
    k = tuple(module.kernel_size)
    if k == (1, 1):
        return "1x1"
    if k in ((3, 1), (1, 3)):
        return "3x1/1x3"
    return "3x3" if k == (3, 3) else "other"


def _stage(name: str, kind: str) -> str:
    top, _, rest = name.partition(".")
    if top == "stages":
        return f"stage{int(rest.split('.')[0]) + 1}"
    if kind == "stem" or top == "stem":
        return "stem"
    return "head" if top in ("head", "pool", "fc", "classifier") else top


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n if shape else 0


def _is_unit(module) -> bool:
    """A conv (or linear) with only BN / ReLU / dropout around it, as one Sequential: one layer."""
    from torch import nn

    kids = list(module.children())
    if not isinstance(module, nn.Sequential) or not kids or any(list(k.children()) for k in kids):
        return False
    compute = [k for k in kids if isinstance(k, (nn.Conv2d, nn.Linear))]
    return len(compute) == 1 and all(k in compute or type(k).__name__ in _PASSIVE for k in kids)


def _build(model, input_size: int, in_channels: int) -> tuple[list[Layer], dict[str, str]]:
    from torch import nn

    from ..models import layer_table
    from ..models.squeezenet import Fire
    from ..models.squeezenext import SqueezeNextBlock

    leaves = layer_table(model, input_size, in_channels)
    layers: dict[str, Layer] = {}
    aliases: dict[str, str] = {}
    current = None
    for leaf in leaves:
        module = model.get_submodule(leaf.name)
        parent = leaf.name.rpartition(".")[0]
        unit = parent if parent and _is_unit(model.get_submodule(parent)) else leaf.name
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            kind = _kind(module, first=current is None)
            conv = module if isinstance(module, nn.Conv2d) else None
            current = layers[unit] = Layer(
                unit,
                kind,
                _stage(unit, kind),
                leaf.kind,
                leaf.macs,
                module.weight.numel(),
                _numel(leaf.input_shape),
                _numel(leaf.output_shape),
                (conv.in_channels, conv.out_channels, conv.groups) if conv is not None else (0, 0, 1),
                _kind(module, first=current is None, grouped=False),
            )
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            layers[leaf.name] = Layer(
                leaf.name,
                "pooling",
                _stage(leaf.name, "pooling"),
                type(module).__name__,
                0,
                0,
                _numel(leaf.input_shape),
                _numel(leaf.output_shape),
            )
            unit = leaf.name
        elif unit not in layers and current is not None:
            unit = current.name  # a standalone ReLU after its conv: onnxruntime fuses the two
        aliases[leaf.name] = unit
        if unit != leaf.name:
            aliases[unit] = unit
    # residual adds and concats are functions in forward(), not modules: add them after their block's last layer
    ordered: list[Layer] = []
    blocks = {name: m for name, m in model.named_modules() if isinstance(m, (SqueezeNextBlock, Fire))}
    for layer in layers.values():
        ordered.append(layer)
        for name, block in blocks.items():
            last = "expand" if isinstance(block, SqueezeNextBlock) else "expand3x3"
            if layer.name == f"{name}.{last}":
                if isinstance(block, SqueezeNextBlock):
                    extra = Layer(
                        f"{name}.add", "residual add", layer.stage, "Add", 0, 0, 2 * layer.out_elems, layer.out_elems
                    )
                    aliases[f"{name}.act"] = extra.name
                else:
                    both = layer.out_elems + layers[f"{name}.expand1x1"].out_elems
                    extra = Layer(f"{name}.concat", "concat", layer.stage, "Concat", 0, 0, both, both)
                aliases[name] = aliases[extra.name] = extra.name
                ordered.append(extra)
    for layer in ordered:
        aliases.setdefault(layer.name, layer.name)
    return ordered, aliases


@lru_cache(maxsize=64)
def _cached(name: str, input_size: int, num_classes: int, in_channels: int, stem: str | None) -> LayerTable:
    import torch

    from ..models import create_model
    from ..models.profile import count_params

    with torch.device("meta"):  # shapes and FLOPs without weights or arithmetic: ~20x faster at 227 px
        model = create_model(name, num_classes, input_size, in_channels, stem).eval()
    layers, aliases = _build(model, input_size, in_channels)
    return LayerTable(model.model_name, input_size, num_classes, layers, aliases, count_params(model))


def model_layers(
    name: str, input_size: int = 227, num_classes: int = 1000, in_channels: int = 3, stem: str | None = None
) -> LayerTable:
    """The layer table of a zoo model (built with torch once per process and shape)."""
    return _cached(name, int(input_size), int(num_classes), int(in_channels), stem)


def artifact_layers(path: str | os.PathLike) -> tuple[LayerTable, dict]:
    """The layer table of an exported artifact, from the model its metadata names; returns (table, metadata)."""
    from ..runner import read_metadata

    meta = read_metadata(str(path))
    if not meta and str(path).lower().endswith((".onnx", ".ort")):
        from ..artifacts import read_onnx_metadata

        meta = read_onnx_metadata(path)
    missing = [k for k in ("model_name", "input_size", "num_classes") if not meta.get(k)]
    if missing:
        raise SqnxtError(
            f"{os.path.basename(str(path))}: its metadata lacks {', '.join(missing)}: only artifacts "
            "written by `sqnxt-edge export` can be mapped to their layers"
        )
    table = model_layers(meta["model_name"], meta["input_size"], meta["num_classes"], meta.get("in_channels") or 3)
    return table, meta
