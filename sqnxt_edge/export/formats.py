"""The one table of export formats: what each writes, which runtime loads it, which precisions it supports and which
extra it needs. The CLI, the manifest, bench and the docs all read this table instead of hard-coding formats."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ExportError

__all__ = ["Format", "FORMATS", "PRECISIONS", "get_format", "parse_formats", "artifact_name"]

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    runtime: str
    precisions: tuple[str, ...]
    extra: str | None  # the pip extra that provides the converter, None when the core install has it
    module: str  # the converter's import name, checked with `errors.require`
    layout: str  # input layout of the artifact
    description: str


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("onnx", ".onnx", "onnxruntime", PRECISIONS, None, "onnx", "NCHW",
               "ONNX, simplified (BN folded), metadata in metadata_props"),
        Format("ort", ".ort", "onnxruntime", PRECISIONS, None, "onnxruntime", "NCHW",
               "ORT Mobile format, converted from the ONNX by onnxruntime's own tool"),
        Format("tflite", ".tflite", "litert", PRECISIONS, "tflite", "litert_torch", "NHWC",
               "TFLite via litert-torch, NHWC input; runs on ai-edge-litert and tflite-runtime"),
    )
}


def get_format(name: str) -> Format:
    try:
        return FORMATS[name.strip().lower()]
    except KeyError:
        raise ExportError(f"unknown format {name!r}; choose from {', '.join(FORMATS)} or all") from None


def parse_formats(values: list[str] | tuple[str, ...] | str | None) -> list[str]:
    """`["onnx,tflite", "ort"]`, `"all"` ... -> ordered unique format names (default: onnx)."""
    if values is None or values == [] or values == ():
        return ["onnx"]
    if isinstance(values, str):
        values = [values]
    names: list[str] = []
    for value in values:
        for part in str(value).split(","):
            part = part.strip().lower()
            if not part:
                continue
            for name in (FORMATS if part == "all" else [get_format(part).name]):
                if name not in names:
                    names.append(name)
    if not names:
        raise ExportError("no format given; choose from " + ", ".join(FORMATS) + " or all")
    return [n for n in FORMATS if n in names]


def artifact_name(model_name: str, precision: str, fmt: str | Format) -> str:
    """`1.0-SqNxt-23.fp32.onnx`: named after the model and precision."""
    f = fmt if isinstance(fmt, Format) else get_format(fmt)
    return f"{model_name}.{precision}{f.suffix}"
