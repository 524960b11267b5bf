"""Export a checkpoint to artifacts apps can embed (ONNX, ORT Mobile, TFLite; fp32/fp16/int8), each verified against
PyTorch, with a manifest.

    from sqnxt_edge.export import export, ExportConfig, read_onnx_metadata
    result = export("runs/digits/best.pt", ExportConfig(formats=["onnx", "tflite"], int8=True))
"""

from ..artifacts import read_onnx_metadata
from ..formats import FORMATS, PRECISIONS, Format, artifact_name, get_format, parse_formats
from .config import DEFAULT_OPSET, TOLERANCES, ExportConfig, ExportResult
from .exporter import export

__all__ = [
    "export",
    "ExportConfig",
    "ExportResult",
    "read_onnx_metadata",
    "FORMATS",
    "PRECISIONS",
    "Format",
    "artifact_name",
    "get_format",
    "parse_formats",
    "TOLERANCES",
    "DEFAULT_OPSET",
]
