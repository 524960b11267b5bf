"""The TFLite family of an export: fp32, fp16 and int8 .tflite files with NHWC input, each staged, verified, promoted."""

from __future__ import annotations

from pathlib import Path

import torch

from ..artifacts import write_sidecar
from ..data import preprocess
from .context import ExportRun
from .tflite_export import convert_tflite, tflite_io_names

__all__ = ["tflite_family"]


def _calib_batches(run: ExportRun):
    """Normalized NHWC float batches of the calibration images, for PT2E observers."""
    images = run.calibration()
    ck = run.ckpt

    def batches():
        for i in range(0, len(images), 32):
            yield preprocess(images[i:i + 32], ck.input_size, ck.mean, ck.std).permute(0, 2, 3, 1).contiguous()

    return lambda: list(batches())


def _one(run: ExportRun, precision: str, fp32_path: Path | None) -> Path:
    c, ck = run.config, run.ckpt
    path = run.staged("tflite", precision)
    run.say(f"converting to TFLite {precision} with litert-torch (slow: tens of seconds)")
    batch = c.fixed_batch or 1
    calib = _calib_batches(run) if precision == "int8" else None
    with torch.no_grad():
        convert_tflite(run.model, ck.input_size, ck.in_channels, precision, path, batch=batch, calib=calib,
                       float_io=c.tflite_float_io)
    in_name, out_name, shape, dtype = tflite_io_names(path)
    meta = run.metadata(precision, "NHWC", in_name, out_name, input_dtype=dtype)
    write_sidecar(path, meta)
    report = run.check(path, precision)
    accuracy = run.accuracy_gate(fp32_path, path) if precision == "int8" and fp32_path else None
    run.promote(path, "tflite", precision, parity=report, accuracy=accuracy,
            input={"name": in_name, "shape": shape, "layout": "NHWC", "dtype": dtype},
            output={"name": out_name}, dynamic_batch=False,
            quantization={"scheme": "PT2E static, per-channel symmetric int8 weights, int8 activations",
                          "io": "float32" if c.tflite_float_io else "int8",
                          "calibration_images": c.calib_size} if precision == "int8" else None)
    return run.out / path.name


def tflite_family(run: ExportRun) -> None:
    fp32 = _one(run, "fp32", None)
    if run.config.fp16:
        _one(run, "fp16", fp32)
    if run.config.int8:
        _one(run, "int8", fp32)
