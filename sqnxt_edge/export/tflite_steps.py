"""The TFLite family of an export: fp32, fp16 and int8 .tflite files with NHWC input, each staged, verified, promoted."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data import preprocess
from .exporter import _Run, accuracy_gate, calibration, check, metadata, promote, staged
from .metadata import write_sidecar
from .tflite_export import convert_tflite, tflite_io_names

__all__ = ["tflite_family"]


def _calib_batches(run: _Run):
    """Normalized NHWC float batches of the calibration images, for PT2E observers."""
    images = calibration(run)
    ck = run.ckpt

    def batches():
        for i in range(0, len(images), 32):
            yield preprocess(images[i:i + 32], ck.input_size, ck.mean, ck.std).permute(0, 2, 3, 1).contiguous()

    return lambda: list(batches())


def _one(run: _Run, precision: str, fp32_path: Path | None) -> Path:
    c, ck = run.config, run.ckpt
    path = staged(run, "tflite", precision)
    run.say(f"converting to TFLite {precision} with litert-torch (slow: tens of seconds)")
    batch = c.fixed_batch or 1
    calib = _calib_batches(run) if precision == "int8" else None
    with torch.no_grad():
        convert_tflite(run.model, ck.input_size, ck.in_channels, precision, path, batch=batch, calib=calib,
                       float_io=c.tflite_float_io)
    in_name, out_name, shape, dtype = tflite_io_names(path)
    meta = metadata(run, precision, "NHWC", in_name, out_name, input_dtype=dtype)
    write_sidecar(path, meta)
    report = check(run, path, precision)
    accuracy = accuracy_gate(run, fp32_path, path) if precision == "int8" and fp32_path else None
    promote(run, path, "tflite", precision, parity=report, accuracy=accuracy,
            input={"name": in_name, "shape": shape, "layout": "NHWC", "dtype": dtype},
            output={"name": out_name}, dynamic_batch=False,
            quantization={"scheme": "PT2E static, per-channel symmetric int8 weights, int8 activations",
                          "io": "float32" if c.tflite_float_io else "int8",
                          "calibration_images": c.calib_size} if precision == "int8" else None)
    return run.out / path.name


def tflite_family(run: _Run) -> None:
    fp32 = _one(run, "fp32", None)
    if run.config.fp16:
        _one(run, "fp16", fp32)
    if run.config.int8:
        _one(run, "int8", fp32)
