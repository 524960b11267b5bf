"""The one table of formats: suffix -> format -> runtimes -> input layout, and for the exportable ones the converter,
the precisions and the pip extra. Export, bench, eval and the README's format table all read it.

The suffix, layout and runtime columns are the runner's own `SUFFIXES` (the runner travels alone to boards, so it
owns them); this module adds what only the package needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ExportError
from .runner import SUFFIXES, companions

__all__ = [
    "Format",
    "FORMATS",
    "ALL_FORMATS",
    "PRECISIONS",
    "get_format",
    "format_of",
    "parse_formats",
    "artifact_name",
    "CHECKPOINT_SUFFIXES",
    "markdown_table",
]

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Format:
    """One row of the formats table: suffixes, layout, runtimes, precisions and the export step."""

    name: str
    suffixes: tuple[str, ...]
    layout: str  # input layout of the artifact
    runtimes: tuple[str, ...]  # runner runtimes that load it, the default first
    precisions: tuple[str, ...]  # what export writes (empty: not an export target)
    family: str | None  # the export step that writes it ("onnx" writes .onnx and .ort)
    extra: str | None  # the pip extra that provides the converter, None when the core install has it
    module: str | None  # the converter's import name, checked with `errors.require`
    description: str

    @property
    def suffix(self) -> str:
        """The format's main file suffix."""
        return self.suffixes[0]

    @property
    def runtime(self) -> str:
        """The runtime that runs it by default."""
        return self.runtimes[0]

    @property
    def exportable(self) -> bool:
        """True when `export` writes this format."""
        return bool(self.precisions)


def _row(name: str, precisions, family, extra, module, description) -> Format:
    suffixes = tuple(s for s, row in SUFFIXES.items() if row[0] == name)
    _, layout, runtimes = SUFFIXES[suffixes[0]]
    return Format(name, suffixes, layout, runtimes, precisions, family, extra, module, description)


ALL_FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        _row("onnx", PRECISIONS, "onnx", None, "onnx", "ONNX, simplified (BN folded), metadata in metadata_props"),
        _row(
            "ort",
            PRECISIONS,
            "onnx",
            None,
            "onnxruntime",
            "ORT Mobile format, converted from the ONNX by onnxruntime's own tool",
        ),
        _row(
            "tflite",
            PRECISIONS,
            "tflite",
            "tflite",
            "litert_torch",
            "TFLite via litert-torch, NHWC input; runs on ai-edge-litert and tflite-runtime",
        ),
        _row(
            "ncnn",
            ("fp32",),
            "ncnn",
            "ncnn",
            "pnnx",
            "ncnn graph (.ncnn.param) with its weights (.ncnn.bin) beside it, converted by pnnx; fp32 only: ncnn's "
            "int8 tools (ncnn2table, ncnn2int8) are not in the pip wheels",
        ),
        _row(
            "pte",
            ("fp32", "int8"),
            "pte",
            "executorch",
            "executorch.exir",
            "ExecuTorch program with the XNNPACK delegate (int8 through PT2E); runs on ExecuTorch's runtime",
        ),
        _row("pytorch", (), None, None, None, "a sqnxt-edge checkpoint: the PyTorch eager baseline"),
    )
}
FORMATS: dict[str, Format] = {n: f for n, f in ALL_FORMATS.items() if f.exportable}
CHECKPOINT_SUFFIXES = ALL_FORMATS["pytorch"].suffixes


def get_format(name: str) -> Format:
    """The format by name (any case); ExportError naming the known ones otherwise."""
    try:
        return FORMATS[name.strip().lower()]
    except KeyError:
        raise ExportError(f"unknown format {name!r}; choose from {', '.join(FORMATS)} or all") from None


def format_of(path: str | Path) -> Format | None:
    """The format a file's suffix says it is, or None."""
    name = Path(path).name.lower()
    suffix = max(
        (s for f in ALL_FORMATS.values() for s in f.suffixes if name.endswith(s) and name != s), key=len, default=None
    )
    return next((f for f in ALL_FORMATS.values() if suffix in f.suffixes), None)


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
            for name in FORMATS if part == "all" else [get_format(part).name]:
                if name not in names:
                    names.append(name)
    if not names:
        raise ExportError("no format given; choose from " + ", ".join(FORMATS) + " or all")
    return [n for n in FORMATS if n in names]


def artifact_name(model_name: str, precision: str, fmt: str | Format) -> str:
    """`1.0-SqNxt-23.fp32.onnx`: named after the model and precision."""
    f = fmt if isinstance(fmt, Format) else get_format(fmt)
    return f"{model_name}.{precision}{f.suffix}"


def markdown_table() -> str:
    """The README's format table, made from this one (a file that needs another beside it shows both)."""
    lines = [
        "| format | files | input layout | runtimes (default first) | export precisions | extra |",
        "|---|---|---|---|---|---|",
    ]
    for f in ALL_FORMATS.values():
        files = ", ".join(" + ".join([s, *(c[1:] for c in companions("x" + s))]) for s in f.suffixes)
        lines.append(
            f"| {f.name} | {files} | {f.layout} | {', '.join(f.runtimes)} | "
            f"{', '.join(f.precisions) or '-'} | {f.extra or '-'} |"
        )
    return "\n".join(lines)
