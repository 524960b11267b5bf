"""PyTorch -> ExecuTorch `.pte` with the XNNPACK delegate: fp32 lowered from the module, int8 through PT2E
(torchao's `prepare_pt2e` -> calibrate -> `convert_pt2e`) with ExecuTorch's `XNNPACKQuantizer`, then lowered the same
way. Both go `torch.export` -> `to_edge_transform_and_lower(partitioner=[XnnpackPartitioner()])` -> `to_executorch`.

Layout: NCHW float32 in, float32 logits out, like the ONNX files (the int8 program quantizes its input inside the
graph). The batch is fixed (the runtime plans every buffer ahead). What XNNPACK does not take runs on ExecuTorch's
portable kernels, which are far slower: `delegation` counts both, and the export records it in the manifest.

Why the calibration graph has a dynamic batch: the quantizer's HistogramObserver costs about the same per call
whatever the batch, so 300 images in batches of 32 calibrate in ~10 calls instead of 300.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch
from torch import nn

from ..artifacts import atomic_write
from ..errors import ExportError, first_line, require
from ..progress import quiet

__all__ = ["LABEL", "SCHEME", "CALIB_BATCH", "convert_pte", "quantize_pte", "delegation"]

LABEL = "XNNPACKQuantizer S8S8 per-channel (PT2E)"
SCHEME = (
    "ExecuTorch XNNPACKQuantizer, symmetric config: per-channel symmetric int8 weights, per-tensor affine int8 "
    "activations from histogram observers over the calibration images (PT2E: prepare_pt2e, convert_pt2e)"
)
CALIB_BATCH = 32  # images per calibration call


def _lower(module: nn.Module, sample: torch.Tensor, dest: Path) -> dict:
    """torch.export -> edge dialect with XNNPACK partitions -> ExecuTorch program, written atomically to `dest`;
    returns what was delegated."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    program = torch.export.export(module, (sample,))
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    info = delegation(edge.exported_program().graph_module)
    buffer = edge.to_executorch().buffer
    atomic_write(dest, lambda tmp: Path(tmp).write_bytes(buffer))
    return info


def delegation(graph_module) -> dict:
    """{"xnnpack_partitions": n, "other_ops": {op: count}}: ops left outside XNNPACK run on portable kernels."""
    partitions, other = 0, Counter[str]()
    for node in graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        name = getattr(node.target, "__name__", str(node.target))
        if "executorch_call_delegate" in name:
            partitions += 1
        elif name not in ("getitem",):
            other[name] += 1
    return {"xnnpack_partitions": partitions, "other_ops": dict(sorted(other.items()))}


def convert_pte(model: nn.Module, input_size: int, in_channels: int, dest: Path, batch: int = 1) -> dict:
    """Write the fp32 `.pte` of the eval-mode NCHW `model` to `dest`; returns its delegation summary."""
    require("executorch.exir", "executorch", "--format pte")
    sample = torch.zeros(batch, in_channels, input_size, input_size)
    try:
        with quiet(), torch.no_grad():  # torch.export and the lowering passes warn a lot
            return _lower(model.eval(), sample, dest)
    except Exception as exc:
        raise ExportError(f"ExecuTorch conversion (fp32) failed: {first_line(exc)}") from None


def quantize_pte(model: nn.Module, calib: torch.Tensor, dest: Path, batch: int = 1) -> dict:
    """Write the int8 `.pte` of the eval-mode NCHW `model` to `dest`, calibrated on `calib` (the images exactly as
    the model takes them: normalized float32 NCHW); returns its delegation summary."""
    require("executorch.exir", "executorch", "--format pte --int8")
    if calib.ndim != 4 or calib.dtype != torch.float32 or len(calib) == 0:
        raise ExportError(f"int8 ExecuTorch calibration needs float32 NCHW images, got {calib.dtype} {calib.shape}")
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    first = calib[: min(CALIB_BATCH, len(calib))]
    dynamic = ({0: torch.export.Dim("batch", min=1, max=CALIB_BATCH)},) if len(first) > 1 else None
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    try:
        with quiet(), torch.no_grad():
            graph = torch.export.export(model.eval(), (first,), dynamic_shapes=dynamic).module()
            prepared = prepare_pt2e(graph, quantizer)
            for i in range(0, len(calib), CALIB_BATCH):
                prepared(calib[i : i + CALIB_BATCH])
            converted = convert_pt2e(prepared)
            sample = calib[:1].repeat(batch, 1, 1, 1)
            return _lower(converted, sample, dest)
    except Exception as exc:
        raise ExportError(f"ExecuTorch int8 quantization failed: {first_line(exc)}") from None
