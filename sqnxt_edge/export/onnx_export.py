"""PyTorch -> one self-contained, standard ONNX file: export, simplify, check, and the fp16 variant.

Exporter choice (measured on torch 2.13, 1.0-SqNxt-23): the TorchScript exporter (`dynamo=False`) honours the
requested opset, writes one file, folds BN in eval mode, and after onnxsim gives Conv/Relu/Add/GlobalAveragePool/
Flatten/Gemm|MatMul only. The dynamo exporter always wrote opset 18 (its down-conversion to 17 failed on
ReduceMean's axes input) and needed `external_data=False`; same op count otherwise, 3x slower.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import torch

from ..errors import ExportError, first_line
from ..progress import quiet

__all__ = ["export_onnx", "simplify_onnx", "check_onnx", "to_fp16", "op_counts"]

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def export_onnx(model: torch.nn.Module, input_size: int, in_channels: int, opset: int, batch: int | None):
    """The eval-mode model as an onnx.ModelProto; `batch=None` makes the batch dimension dynamic ("batch")."""
    import onnx

    x = torch.zeros(batch or 1, in_channels, input_size, input_size)
    kwargs: dict[str, Any] = {}
    if batch is None:
        kwargs["dynamic_axes"] = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
    buf = io.BytesIO()
    try:
        with quiet():
            torch.onnx.export(
                model.eval(),
                (x,),
                buf,  # type: ignore[arg-type]  # a file object works (TorchScript exporter); the stub says paths only
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=int(opset),
                do_constant_folding=True,
                training=torch.onnx.TrainingMode.EVAL,
                **kwargs,
            )
    except Exception as exc:
        raise ExportError(f"torch.onnx.export failed at opset {opset}: {first_line(exc)}") from None
    return onnx.load_model_from_string(buf.getvalue())


def simplify_onnx(model, dynamic: bool):
    """onnxsim with shape inference; a dynamic batch dim survives (no overwrite of input shapes, see onnxsim #101/#182:
    we never pass `overwrite_input_shapes` and check the dim afterwards)."""
    import onnxsim

    try:
        simplified, ok = onnxsim.simplify(model, check_n=0)
    except Exception as exc:
        raise ExportError(f"onnxsim failed: {first_line(exc)}") from None
    if not ok:
        raise ExportError("onnxsim could not validate the simplified model")
    if dynamic:
        for value in (simplified.graph.input[0], simplified.graph.output[0]):
            dim = value.type.tensor_type.shape.dim[0]
            if dim.dim_param != "batch":
                raise ExportError(f"simplification made the batch dim of {value.name!r} static ({dim.dim_value})")
    return simplified


def check_onnx(model):
    """`onnx.checker` with full shape inference; returns the model with inferred value_info."""
    import onnx

    try:
        onnx.checker.check_model(model, full_check=True)
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as exc:
        raise ExportError(f"the ONNX model fails onnx.checker: {first_line(exc)}") from None


def to_fp16(model):
    """float16 weights and compute with float32 I/O (onnxruntime's converter; Cast nodes at the edges)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            half = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
    except Exception as exc:
        raise ExportError(f"fp16 conversion failed: {first_line(exc)}") from None
    return topo_sort(half)


def topo_sort(model):
    """Reorder graph nodes topologically (the float16 converter appends its input Casts at the end)."""
    graph = model.graph
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = [n for n in pending if not all(i in ready for i in n.input)]
        done = [n for n in pending if all(i in ready for i in n.input)]
        if not done:
            raise ExportError("the ONNX graph has a cycle or a dangling input")
        for n in done:
            ordered.append(n)
            ready.update(n.output)
        pending = rest
    nodes = [type(n)() for n in ordered]
    for new, old in zip(nodes, ordered):
        new.CopyFrom(old)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def op_counts(model) -> dict[str, int]:
    """How many nodes of each op type an ONNX graph has."""
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


PROBE = ("1.0-SqNxt-23", 64)  # the int8 speed probe: every layer kind of the family, a few ms per run


def probe_onnx(folder: Path) -> Path:
    """The int8 speed probe as an fp32 ONNX (+ sidecar): the zoo model, random weights, BN statistics from random
    batches, so activations have the ranges a trained model's have."""
    import json

    from ..models import create_model

    name, size = PROBE
    torch.manual_seed(0)
    model = create_model(name, 10, size).train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(8, 3, size, size))
    path = save_onnx(simplify_onnx(export_onnx(model.eval(), size, 3, 17, 1), dynamic=False), folder / "probe.onnx")
    meta = {"input_size": size, "in_channels": 3, "layout": "NCHW", "mean": [0.5] * 3, "std": [0.5] * 3}
    Path(str(path) + ".meta.json").write_text(json.dumps(meta))
    return path


def save_onnx(model, path: Path) -> Path:
    """Save an ONNX model to `path`; returns the path."""
    import onnx

    onnx.save_model(model, str(path))
    return path
