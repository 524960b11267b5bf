"""The TFLite family of an export: fp32, fp16 and int8 .tflite files with NHWC input, each staged, verified, promoted."""

from __future__ import annotations

from pathlib import Path

import torch

from ..artifacts import write_sidecar
from .context import ExportRun
from .tflite_export import calibration_batches, convert_tflite, tflite_io_names

__all__ = ["tflite_family", "tflite_precisions"]


def _one(run: ExportRun, precision: str, fp32_path: Path | None) -> Path:
    c, ck = run.config, run.ckpt
    path = run.staged("tflite", precision)
    if run.conversions is not None:  # started in the background when the export began (tflite_jobs)
        run.say(f"waiting for the TFLite {precision} conversion")
        run.conversions.wait(precision)
    else:
        run.say(f"converting to TFLite {precision} with litert-torch (slow: tens of seconds)")
        calib = calibration_batches(run.calibration(), ck) if precision == "int8" else None
        with torch.no_grad():
            convert_tflite(run.model, ck.input_size, ck.in_channels, precision, path, batch=c.fixed_batch or 1,
                           calib=calib, float_io=c.tflite_float_io)
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


def tflite_precisions(config) -> list[str]:
    return ["fp32"] + (["fp16"] if config.fp16 else []) + (["int8"] if config.int8 else [])


def tflite_family(run: ExportRun) -> None:
    fp32 = None
    for precision in tflite_precisions(run.config):  # fp32 first: the others' accuracy is measured against it
        path = _one(run, precision, fp32)
        fp32 = fp32 or path
