"""Full-integer int8 .tflite from the fp32 .tflite, with ai-edge-quantizer (Google's quantizer for LiteRT models).

Why from the fp32 file and not from PyTorch: litert-torch's own int8 path (PT2E) is a second torch.export +
conversion, 40 s at 227 px on one core; quantizing the converted fp32 flatbuffer reuses that conversion and costs
about 3 s (300 images at 227 px, one thread), because the profiler-based calibration has the LiteRT interpreter
record each tensor's min/max in C++ while it runs. Same graph and speed as the PT2E file (CONV_2D/ADD/MEAN/
FULLY_CONNECTED in int8, int8 input and output); accuracy within one digits test image of it.

Scheme: int8 weights symmetric per output channel, int8 activations asymmetric per tensor from min/max averaged
over the calibration images (the quantizer's moving average, so one outlier image does not set a range).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ExportError, first_line, require
from ..progress import quiet

__all__ = ["LABEL", "SCHEME", "quantize_tflite"]

LABEL = "ai-edge-quantizer S8S8 per-channel"
SCHEME = (
    "ai-edge-quantizer static int8: per-channel symmetric int8 weights, per-tensor int8 activations from "
    "min/max over the calibration images"
)


def quantize_tflite(fp32: Path, dest: Path, inputs: np.ndarray, threads: int | None = None) -> Path:
    """Write `dest`, the int8 twin of the fp32 .tflite `fp32`, calibrated on `inputs`: the images exactly as the
    fp32 file takes them (normalized float32, NHWC, at its input size); fed in batches of the file's batch size."""
    require("ai_edge_quantizer", "tflite", "--format tflite --int8")
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import calibrator, quantizer, recipe

    from ..artifacts import atomic_write

    if inputs.ndim != 4 or inputs.dtype != np.float32 or len(inputs) == 0:
        raise ExportError(f"int8 TFLite calibration needs float32 NHWC images, got {inputs.dtype} {inputs.shape}")
    try:  # the signature the fp32 file was converted with: its one input and its batch size
        probe = Interpreter(model_path=str(fp32))
        ((key, sig),) = probe.get_signature_list().items()
        (name,) = sig["inputs"]
        batch = max(1, int(probe.get_input_details()[0]["shape"][0]))
    except Exception as exc:
        raise ExportError(f"{fp32.name}: not a .tflite with one signature and one input ({first_line(exc)})") from None
    samples = [{name: inputs[i : i + batch]} for i in range(0, len(inputs), batch)]
    try:
        with quiet(stderr=True):  # a report on stdout, a bar on stderr
            qt = quantizer.Quantizer(str(fp32))
            qt.load_quantization_recipe(recipe.static_wi8_ai8())
            stats = qt.calibrate(
                {key: samples},
                num_threads=threads or os.cpu_count() or 1,
                mode=calibrator.CalibrationMode.CALIBRATION_PROFILER_BASED,
            )
            model = qt.quantize(stats).quantized_model
    except Exception as exc:
        raise ExportError(f"TFLite int8 quantization failed: {first_line(exc)}") from None
    return atomic_write(dest, lambda tmp: tmp.write_bytes(bytes(model)))
