"""int8 you can trust: calibrate on real data, quantize with onnxruntime (ONNX) or ai-edge-quantizer (TFLite), measure
the accuracy cost every time.

Modules follow the pipeline, one job each: `calibration` (data), `config` (Int8Config + per-CPU defaults),
`onnx_int8` (pre-process -> calibrate -> quantize -> metadata), `tflite_int8` (fp32 .tflite -> int8 .tflite),
`accuracy` (fp32 vs int8 report), `latency` (interleaved timing), `tune` (pick the fastest configuration within the
accuracy budget), `choice` (the per-CPU default, measured once).
"""

from .accuracy import AccuracyReport, accuracy_report
from .calibration import calibration_images
from .choice import Int8Choice, choose_int8
from .config import Int8Config, default_int8_config, warn_if_no_int8_dot
from .onnx_int8 import quantize_onnx
from .tflite_int8 import quantize_tflite
from .tune import TuneError, TuneResult, TuneRow, default_candidates, tune_onnx

__all__ = [
    "Int8Config",
    "default_int8_config",
    "calibration_images",
    "quantize_onnx",
    "tune_onnx",
    "accuracy_report",
    "warn_if_no_int8_dot",
    "AccuracyReport",
    "TuneResult",
    "TuneRow",
    "TuneError",
    "default_candidates",
    "Int8Choice",
    "choose_int8",
    "quantize_tflite",
]
