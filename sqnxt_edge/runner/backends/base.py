"""What a runtime must provide to the runner (`Backend`), and the one table of runtimes it can drive.

Adding a runtime = one class implementing `Backend` in a module of this folder + one row in `RUNTIMES` (and its
suffix in `contract.SUFFIXES`). Backends are imported only when an artifact asks for them, so a board needs only the
runtimes it uses. A runtime that needs the package (PyTorch) is a plugin implementing the same interface, named by
the harness in $SQNXT_EDGE_RUNTIME_PLUGINS (see `plugin`); it does not import this module (duck typing: `check`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ..contract import RunnerError


class Runtime(NamedTuple):
    """One row of the runtime table. Runtimes of one engine are fallbacks of each other."""

    engine: str  # what `auto` picks one of per artifact
    module: str  # the Python module to import (whether it is installed)
    package: str  # the pip package that provides it
    backend: str | None  # "module:Class" in this folder; None: a plugin the harness names


RUNTIMES: dict[str, Runtime] = {
    "onnxruntime": Runtime("onnxruntime", "onnxruntime", "onnxruntime", "onnxruntime:OnnxRuntime"),
    "openvino": Runtime("openvino", "openvino", "openvino", "openvino:OpenVino"),
    "litert": Runtime("tflite", "ai_edge_litert", "ai-edge-litert", "tflite:TFLite"),
    "tflite-runtime": Runtime("tflite", "tflite_runtime", "tflite-runtime", "tflite:TFLite"),
    "ncnn": Runtime("ncnn", "ncnn", "ncnn", "ncnn:Ncnn"),
    "executorch": Runtime(
        "executorch", "executorch.extension.pybindings._portable_lib", "executorch", "executorch:ExecuTorch"
    ),
    "torch": Runtime("torch", "torch", "torch", None),
}

# The input facts every backend sets when it opens a model (names shared by Model, which exposes them).
FACTS = ("version", "input_name", "output_name", "input_shape", "input_dtype", "quant", "dynamic_batch", "embedded")


@runtime_checkable
class Backend(Protocol):
    """One opened model in one runtime. `__init__(path, threads, runtime)` opens it (threads None: the runtime's
    default); then the facts below describe its input; `run` is one inference; `profile` the runtime's per-node
    times where the runtime has a profiler (else it raises NotImplementedError saying why)."""

    version: str  # the runtime's version
    input_name: str
    output_name: str
    input_shape: list  # ints, or a name for a dynamic dimension
    input_dtype: Any  # the numpy scalar type the input takes (np.float32, np.int8 ...)
    quant: tuple[float, int] | None  # (scale, zero point) of an integer input, else None
    dynamic_batch: bool
    embedded: dict  # metadata the model file carries (JSON-encoded strings allowed)

    def run(self, x: np.ndarray) -> np.ndarray:
        """One inference on a prepared batch; returns the logits (any float or quantized dtype)."""
        ...

    def profile(self, x: np.ndarray, warmup: int, runs: int, between) -> dict:
        """`warmup + runs` profiled runs of `x`, each after one `between()` (a plain run the caller times, so both see
        the same load);
        returns {"profiler": name and version, "nodes": [{"name", "op", "us": [one time per timed run]}]}."""
        ...


class BaseBackend:
    """Defaults for the runner's own backends: no profiler."""

    no_profile = "this runtime's Python API exposes no per-node profiler"

    def profile(self, x: np.ndarray, warmup: int, runs: int, between) -> dict:
        """No per-node profiler in this runtime: says why (`no_profile`)."""
        raise NotImplementedError(self.no_profile)


def check(backend: object, runtime: str) -> None:
    """The facts `Backend` names are there (a plugin is not type-checked against this module)."""
    missing = [name for name in (*FACTS, "run") if not hasattr(backend, name)]
    if missing:
        raise RunnerError(f"the {runtime} backend lacks {', '.join(missing)} (see runner/backends/base.py)")


def installed(runtime: str) -> bool:
    """Whether `runtime`'s module can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec(RUNTIMES[runtime].module) is not None
    except (ImportError, ValueError):
        return False


def need(runtime: str):
    """The runtime's module, imported now; a RunnerError that names the pip package when it is missing."""
    try:
        return importlib.import_module(RUNTIMES[runtime].module)
    except ImportError:
        raise RunnerError(f"{runtime} is not installed: pip install {RUNTIMES[runtime].package}") from None


def version(runtime: str, module=None) -> str:
    """The runtime's version as its package declares it (else its module's __version__)."""
    try:
        return importlib.metadata.version(RUNTIMES[runtime].package)
    except importlib.metadata.PackageNotFoundError:
        return str(getattr(module, "__version__", "unknown"))
