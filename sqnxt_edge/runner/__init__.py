"""sqnxt-edge runner: the inference layer. Open an exported model, feed it images the way its metadata says, time it.

A small package that imports only the standard library, numpy and the runtime it needs (onnxruntime or OpenVINO for
.onnx/.ort, ai-edge-litert or else tflite-runtime for .tflite), nothing else from sqnxt_edge; boards receive it as ONE
file, a zipapp built on the fly (`ship.runner_pyz`), and this machine runs the very same file. Runtimes that need
more (PyTorch, which must rebuild the model from a checkpoint) come in as plugins named by the harness.

Modules, in the order a measurement uses them: `contract` (suffix table, metadata, errors) -> `backends` (one module
per runtime behind `Backend`, imported lazily) -> `pixels` (the pixel rules) -> `model` (preprocessing, predict) ->
`machine` (the machine's state, core types, pinning) -> `context` (temperatures, clocks, throttling, load around
a run) -> `sustained` (windows over time, cool-downs) -> `measuring` (`Settings`, timing, fresh children) ->
`result` (`Measurement`, statistics, accuracy, the top-1 rule) -> `predict` (top-K of shipped images) ->
`profile` -> `harness` (child processes) -> `cli`. `ship` builds the .pyz and is never shipped itself.
"""

from .backends import RUNTIMES, Backend, installed, runtimes_for
from .cli import main
from .contract import (
    EMULATION_VAR,
    LAUNCHER_VAR,
    PLUGINS_VAR,
    RUNNER_VERSION,
    SUFFIXES,
    RunnerError,
    artifact_bytes,
    companions,
    decode_metadata,
    describe,
    load_data,
    read_metadata,
    sidecar_path,
)
from .harness import run_child
from .machine import core_list, cpu_info, default_threads, environment, parse_cores, runtime_versions
from .measuring import Settings, measure, measure_accuracy, measure_artifact, time_runs
from .model import Model, open_model
from .predict import PredictSettings, predict_report
from .profile import profile_artifact
from .result import Latency, Measurement, latency_fields, per_class_counts, summarize, top_classes, topk_accuracy

__all__ = [
    "Backend",
    "EMULATION_VAR",
    "LAUNCHER_VAR",
    "Latency",
    "Measurement",
    "Model",
    "PLUGINS_VAR",
    "PredictSettings",
    "RUNNER_VERSION",
    "RUNTIMES",
    "RunnerError",
    "SUFFIXES",
    "Settings",
    "artifact_bytes",
    "companions",
    "core_list",
    "cpu_info",
    "decode_metadata",
    "default_threads",
    "describe",
    "environment",
    "installed",
    "latency_fields",
    "load_data",
    "main",
    "measure",
    "measure_accuracy",
    "measure_artifact",
    "open_model",
    "parse_cores",
    "per_class_counts",
    "predict_report",
    "profile_artifact",
    "read_metadata",
    "run_child",
    "runtime_versions",
    "runtimes_for",
    "sidecar_path",
    "summarize",
    "time_runs",
    "top_classes",
    "topk_accuracy",
]
