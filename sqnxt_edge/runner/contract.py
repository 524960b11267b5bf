"""The artifact contract every runtime shares: the suffix table, the metadata a model carries, the runner's errors.

Preprocessing contract (written by `sqnxt-edge export` into ONNX metadata_props and a `<artifact>.meta.json`
sidecar): uint8 RGB images resized to `input_size`, x = (pixel / 255 - mean) / std, laid out as `layout`
(NCHW or NHWC); int8/uint8 inputs are quantized with the tensor's own scale and zero point.
"""

from __future__ import annotations

import json
import os

import numpy as np

RUNNER_VERSION = "2.0"  # of the JSON the runner prints (`result.Measurement` reads it)

EMULATION_VAR = "SQNXT_EDGE_EMULATION"  # set by an emulated board's launcher: what emulates what
LAUNCHER_VAR = "SQNXT_EDGE_LAUNCHER"  # a command prefix for child processes (an emulator, taskset ...)
PLUGINS_VAR = "SQNXT_EDGE_RUNTIME_PLUGINS"  # JSON {runtime: "module:Class"}: backends a harness adds (PyTorch)


class RunnerError(Exception):
    """A problem with an artifact or runtime, reported as one line."""


def first_line(exc: BaseException) -> str:
    """An exception as one short line (runtimes raise multi-line C++ messages)."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


# The formats table the whole package builds on (the package's formats module adds the export side):
# suffix -> (format, input layout, runtimes that load it, default first).
SUFFIXES = {
    ".onnx": ("onnx", "NCHW", ("onnxruntime", "openvino")),
    ".ort": ("ort", "NCHW", ("onnxruntime",)),
    ".tflite": ("tflite", "NHWC", ("litert", "tflite-runtime")),
    ".ncnn.param": ("ncnn", "NCHW", ("ncnn",)),  # the graph; its weights are the `.bin` beside it (COMPANIONS)
    ".param": ("ncnn", "NCHW", ("ncnn",)),
    ".pte": ("pte", "NCHW", ("executorch",)),
    ".pt": ("pytorch", "NCHW", ("torch",)),
    ".pth": ("pytorch", "NCHW", ("torch",)),
    ".ckpt": ("pytorch", "NCHW", ("torch",)),
}


# Formats whose artifact is more than one file: the suffix the main file ends with -> the suffix of each file that
# must lie beside it (same stem). They travel, move and are hashed with it.
COMPANIONS = {".param": (".bin",)}


def _match(path: str) -> str:
    """The longest `SUFFIXES` key the file name ends with (lower case), else ""."""
    name = os.path.basename(str(path)).lower()
    return max((s for s in SUFFIXES if name.endswith(s) and len(name) > len(s)), key=len, default="")


def companions(path: str) -> list[str]:
    """The files an artifact needs beside it (ncnn: `m.ncnn.param` -> `m.ncnn.bin`), whether or not they exist."""
    stem, ext = os.path.splitext(str(path))
    return [stem + suffix for suffix in COMPANIONS.get(ext.lower(), ()) if _match(path)]


def artifact_bytes(path: str) -> int:
    """The artifact's size with its companions: what a board must store and load."""
    return os.path.getsize(path) + sum(os.path.getsize(p) for p in companions(path) if os.path.isfile(p))


def sidecar_path(path: str) -> str:
    """Where an artifact's metadata sidecar lives: next to it, `<artifact>.meta.json`."""
    return str(path) + ".meta.json"


def decode(value):
    """A JSON-encoded string -> its value; anything else (or text that is not JSON) as it is."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def decode_metadata(embedded: dict) -> dict:
    """Metadata as a model file embeds it (JSON-encoded strings) -> values."""
    return {k: decode(v) for k, v in embedded.items()}


def read_metadata(path: str, embedded: dict | None = None) -> dict:
    """The artifact's preprocessing facts: its sidecar JSON, else what the model file embeds, else {}."""
    side = sidecar_path(path)
    if os.path.isfile(side):
        with open(side, encoding="utf-8") as fh:
            return json.load(fh)
    return decode_metadata(embedded or {})


def suffix_of(path: str) -> str:
    """The artifact's suffix, lower-case, when the runner knows it; else a RunnerError."""
    ext = _match(path)
    if not ext:
        ext = os.path.splitext(str(path))[1].lower()
        raise RunnerError(f"{os.path.basename(str(path))}: unsupported artifact type {ext or '(none)'}")
    return ext


def describe(path: str, runtime: str | None = None) -> dict:
    """The identity part of a result: which file, which format, which runtime."""
    return {"artifact": str(path), "format": SUFFIXES.get(_match(path), ("unknown",))[0], "runtime": runtime}


def load_data(path: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 NHWC at `size`, labels) from an npz holding `labels` and `images_<size>`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            key = f"images_{int(size)}"
            if key not in data.files or "labels" not in data.files:
                raise RunnerError(f"{os.path.basename(path)} has no '{key}'/'labels' (has: {', '.join(data.files)})")
            return data[key], data["labels"]
    except (OSError, ValueError) as exc:
        raise RunnerError(f"cannot read data file {path}: {first_line(exc)}") from None
