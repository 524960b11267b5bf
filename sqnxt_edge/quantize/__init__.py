"""int8 you can trust: calibrate on real data, quantize with onnxruntime (ONNX) or ai-edge-quantizer (TFLite), measure
the accuracy cost every time, and be right on every CPU the file will run on.

Modules follow the pipeline, one job each: `calibration` (data), `config` (Int8Config), `targets` (CPU classes and
which configurations are numerically safe on each), `choice` (which safe configurations to try first, timed once per
CPU class), `onnx_int8` (pre-process -> calibrate -> quantize -> metadata), `tflite_int8` (fp32 .tflite -> int8
.tflite), `accuracy` (fp32 vs int8 report), `latency` (interleaved timing), `tune` (the fastest safe configuration
within the accuracy budget).
"""

from .accuracy import AccuracyReport, accuracy_report
from .calibration import calibration_images
from .choice import Int8Choice, candidates_for, choose_int8, default_int8_config
from .config import Int8Config, warn_if_no_int8_dot
from .onnx_int8 import Int8Session, quantize_onnx
from .targets import CPU_CLASSES, PORTABLE, TARGETS, CpuClass, class_of, safe_on
from .tflite_int8 import quantize_tflite
from .tune import TuneError, TuneResult, TuneRow, default_candidates, tune_onnx

__all__ = [
    "Int8Config",
    "default_int8_config",
    "candidates_for",
    "calibration_images",
    "quantize_onnx",
    "Int8Session",
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
    "CpuClass",
    "CPU_CLASSES",
    "PORTABLE",
    "TARGETS",
    "class_of",
    "safe_on",
]
