"""The TFLite family of an export: fp32, fp16 and int8 .tflite files with NHWC input, each staged, verified, promoted.

fp32 and fp16 are litert-torch conversions (in the background when `tflite_jobs` can); int8 is quantized from the
promoted fp32 file by ai-edge-quantizer, in seconds, so it never waits for a conversion of its own."""

from __future__ import annotations

from pathlib import Path

import torch

from ..artifacts import write_sidecar
from ..quantize.targets import CPU_CLASSES, PORTABLE
from ..quantize.tflite_int8 import LABEL, SCHEME, quantize_tflite
from .context import ExportRun
from .tflite_export import calibration_inputs, convert_tflite, tflite_clients, tflite_io

__all__ = ["converted_precisions", "tflite_family", "tflite_precisions"]


def _make(run: ExportRun, precision: str, path: Path, fp32_path: Path | None) -> None:
    c, ck = run.config, run.ckpt
    if precision == "int8":
        assert fp32_path is not None  # tflite_precisions puts fp32 first
        inputs = calibration_inputs(run.calibration(), ck)
        run.say(f"quantizing TFLite to int8 (ai-edge-quantizer) on {len(inputs)} calibration images")
        quantize_tflite(fp32_path, path, inputs)
        if c.tflite_float_io:
            from .tflite_io import float_interface

            float_interface(path)
    elif run.conversions is not None:  # started in the background when the export began (tflite_jobs)
        run.say(f"waiting for the TFLite {precision} conversion")
        run.conversions.wait(precision)
    else:
        run.say(f"converting to TFLite {precision} with litert-torch (slow: tens of seconds)")
        with torch.no_grad():
            convert_tflite(run.model, ck.input_size, ck.in_channels, precision, path, batch=c.fixed_batch or 1)


def _one(run: ExportRun, precision: str, fp32_path: Path | None) -> Path:
    c = run.config
    path = run.staged("tflite", precision)
    _make(run, precision, path, fp32_path)
    io = tflite_io(path)
    clients = tflite_clients(io)
    meta = run.metadata(precision, "NHWC", **io, **clients)
    if precision == "int8":  # one scheme for every CPU: XNNPACK and TFLite's int8 kernels accumulate in 32 bits
        meta.update(int8_target=PORTABLE, safe_on=list(CPU_CLASSES))
    write_sidecar(path, meta)
    report = run.check(path, precision)
    accuracy = run.accuracy_gate(fp32_path, path) if precision == "int8" and fp32_path else None
    run.promote(
        path,
        "tflite",
        precision,
        parity=report,
        accuracy=accuracy,
        input={
            "name": io["input_name"],
            "tensor_name": io["input_tensor_name"],
            "shape": io["input_shape"],
            "layout": "NHWC",
            "dtype": io["input_dtype"],
            "quantization": io["input_quantization"],
        },
        output={
            "name": io["output_name"],
            "tensor_name": io["output_tensor_name"],
            "dtype": io["output_dtype"],
            "quantization": io["output_quantization"],
        },
        signature=io["signature"],
        **clients,
        dynamic_batch=False,
        quantization={
            "label": LABEL,
            "scheme": SCHEME,
            "io": "float32" if c.tflite_float_io else "int8",
            "calibration_images": c.calib_size,
            "target": PORTABLE,
            "safe_on": list(CPU_CLASSES),
        }
        if precision == "int8"
        else None,
    )
    return run.out / path.name


def tflite_precisions(config) -> list[str]:
    """The precisions the export writes, fp32 first (the config's one list)."""
    return config.precisions


def converted_precisions(config) -> list[str]:
    """The precisions litert-torch converts from PyTorch (int8 comes from the fp32 file)."""
    return [p for p in tflite_precisions(config) if p != "int8"]


def tflite_family(run: ExportRun) -> None:
    """Write the TFLite artifacts: fp32 and fp16 converted, int8 quantized from the fp32 file."""
    fp32 = None
    for precision in tflite_precisions(run.config):  # fp32 first: int8 is made from it and measured against it
        path = _one(run, precision, fp32)
        fp32 = fp32 or path
