#!/usr/bin/env python3
"""sqnxt-edge runner: the inference layer. Open an exported model, feed it images the way its metadata says, time it.

ONE FILE, copied as-is to a board: it imports only the standard library, numpy and the runtime it needs (onnxruntime
or openvino for .onnx/.ort, ai-edge-litert or else tflite-runtime for .tflite), nothing from the package. Runtimes
that need more (PyTorch, which must rebuild the model from a checkpoint) come in as plugins named by the harness.
The package imports this file for evaluation, parity and quantization, so local, remote and emulated figures mean
the same thing. Order: contract -> runtime table -> environment -> measuring -> summarizing -> child harness -> CLI.

Preprocessing contract (written by `sqnxt-edge export` into ONNX metadata_props and a `<artifact>.meta.json`
sidecar): uint8 RGB images resized to `input_size`, x = (pixel / 255 - mean) / std, laid out as `layout`
(NCHW or NHWC); int8/uint8 inputs are quantized with the tensor's own scale and zero point.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, fields, replace

import numpy as np

RUNNER_VERSION = "2.0"


class RunnerError(Exception):
    """A problem with an artifact or runtime, reported as one line."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


# -- contract ---------------------------------------------------------------------------------------------------------
# The formats table the whole package builds on (the package's formats module adds the export side):
# suffix -> (format, input layout, runtimes that load it, default first).
SUFFIXES = {
    ".onnx": ("onnx", "NCHW", ("onnxruntime", "openvino")),
    ".ort": ("ort", "NCHW", ("onnxruntime",)),
    ".tflite": ("tflite", "NHWC", ("litert", "tflite-runtime")),
    ".pt": ("pytorch", "NCHW", ("torch",)),
    ".pth": ("pytorch", "NCHW", ("torch",)),
    ".ckpt": ("pytorch", "NCHW", ("torch",)),
}


def sidecar_path(path: str) -> str:
    """The JSON file beside an artifact that holds its preprocessing facts."""
    return str(path) + ".meta.json"


def _decode(value):
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def decode_metadata(embedded: dict) -> dict:
    """Metadata as a model file embeds it (JSON-encoded strings) -> values."""
    return {k: _decode(v) for k, v in embedded.items()}


def read_metadata(path: str, embedded: dict | None = None) -> dict:
    """The artifact's preprocessing facts: its sidecar JSON, else what the model file embeds, else {}."""
    side = sidecar_path(path)
    if os.path.isfile(side):
        with open(side, encoding="utf-8") as fh:
            return json.load(fh)
    return decode_metadata(embedded or {})


def _suffix(path: str) -> str:
    ext = os.path.splitext(str(path))[1].lower()
    if ext not in SUFFIXES:
        raise RunnerError(f"{os.path.basename(str(path))}: unsupported artifact type {ext or '(none)'}")
    return ext


# -- runtime table ----------------------------------------------------------------------------------------------------
# name -> (engine, module to import, pip package). Runtimes of one engine are fallbacks of each other.
RUNTIMES = {
    "onnxruntime": ("onnxruntime", "onnxruntime", "onnxruntime"),
    "openvino": ("openvino", "openvino", "openvino"),
    "litert": ("tflite", "ai_edge_litert", "ai-edge-litert"),
    "tflite-runtime": ("tflite", "tflite_runtime", "tflite-runtime"),
    "torch": ("torch", "torch", "torch"),
}
PLUGINS_VAR = "SQNXT_EDGE_RUNTIME_PLUGINS"  # JSON {runtime: "module:Class"}: backends a harness adds (PyTorch)


def installed(runtime: str) -> bool:
    """True when the runtime's Python package can be imported here."""
    try:
        return importlib.util.find_spec(RUNTIMES[runtime][1]) is not None
    except (ImportError, ValueError):
        return False


def _known(runtime: str) -> str:
    if runtime not in ("auto", *RUNTIMES):
        raise RunnerError(f"unknown runtime {runtime!r}; choose auto or {', '.join(RUNTIMES)}")
    return runtime


def runtimes_for(path: str, runtime: str = "auto", every: bool = False) -> list[str]:
    """The runtime(s) that run `path`: the asked one, else the first installed one; `every` gives one per engine
    (onnxruntime and OpenVINO for .onnx), so a bench shows the fastest way to run each artifact here."""
    fmt, _, names = SUFFIXES[_suffix(path)]
    if _known(runtime) != "auto":
        if runtime not in names:
            raise RunnerError(f"{os.path.basename(str(path))}: {runtime} cannot run {fmt} files")
        return [runtime]
    found, engines = [], set()
    for name in names:
        if installed(name) and RUNTIMES[name][0] not in engines:
            found.append(name)
            engines.add(RUNTIMES[name][0])
    return (found if every else found[:1]) or [names[0]]


def _need(runtime: str):
    try:
        return importlib.import_module(RUNTIMES[runtime][1])
    except ImportError:
        raise RunnerError(f"{runtime} is not installed: pip install {RUNTIMES[runtime][2]}") from None


def _version(runtime: str, module=None) -> str:
    try:
        return importlib.metadata.version(RUNTIMES[runtime][2])
    except importlib.metadata.PackageNotFoundError:
        return str(getattr(module, "__version__", "unknown"))


class _OnnxRuntime:
    def __init__(self, path: str, threads: int | None, runtime: str = "onnxruntime", profile: str | None = None):
        ort = _need("onnxruntime")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads, opts.inter_op_num_threads = int(threads), 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if profile:  # onnxruntime's own profiler: every node's kernel time, written under this prefix
            opts.enable_profiling, opts.profile_file_prefix = True, profile
        self.sess = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
        self.version = ort.__version__
        inp, out = self.sess.get_inputs()[0], self.sess.get_outputs()[0]
        self.input_name, self.output_name, self.input_shape = inp.name, out.name, list(inp.shape)
        self.input_dtype = np.float16 if "float16" in inp.type else np.float32
        self.quant, self.dynamic_batch = None, not isinstance(inp.shape[0], int)
        self.embedded = dict(self.sess.get_modelmeta().custom_metadata_map)

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.sess.run([self.output_name], {self.input_name: x})[0]


class _OpenVino:
    """OpenVINO's CPU plugin with f32 inference precision: it would run bf16 on AVX-512 CPUs by default, which is
    neither what the artifact says nor a fair comparison."""

    def __init__(self, path: str, threads: int | None, runtime: str = "openvino"):
        ov = _need("openvino")
        core = ov.Core()
        model = core.read_model(path)
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.version = _version("openvino", ov)
        inp, out = model.inputs[0], model.outputs[0]
        self.input_name, self.output_name = inp.get_any_name(), out.get_any_name()
        shape = inp.get_partial_shape()
        self.input_shape = [d.get_length() if d.is_static else "batch" for d in shape]
        self.input_dtype = np.float16 if "16" in str(inp.get_element_type()) else np.float32
        self.quant, self.dynamic_batch, self.embedded = None, not shape[0].is_static, {}

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.request.infer({0: x})[self.compiled.output(0)]


class _TFLite:
    def __init__(self, path: str, threads: int | None, runtime: str):
        module = _need(runtime)
        interp = importlib.import_module(module.__name__ + ".interpreter").Interpreter
        self.interp = interp(model_path=path, **({"num_threads": int(threads)} if threads else {}))
        self.interp.allocate_tensors()
        self.version = _version(runtime, module)
        self._in, self._out = self.interp.get_input_details()[0], self.interp.get_output_details()[0]
        self.input_name, self.output_name = self._in["name"], self._out["name"]
        self.input_shape = [int(d) for d in self._in["shape"]]
        self.input_dtype = np.dtype(self._in["dtype"]).type
        scale, zero = self._in.get("quantization", (0.0, 0))
        self.quant = (float(scale), int(zero)) if scale else None
        sig = self._in.get("shape_signature")
        self.dynamic_batch = sig is not None and len(sig) > 0 and int(sig[0]) == -1
        self.embedded = {}

    def run(self, x: np.ndarray) -> np.ndarray:
        interp = self.interp
        if list(x.shape) != list(interp.get_input_details()[0]["shape"]):
            interp.resize_tensor_input(self._in["index"], list(x.shape))
            interp.allocate_tensors()
        interp.set_tensor(self._in["index"], x)
        interp.invoke()
        y = interp.get_tensor(self._out["index"])
        scale, zero = self._out.get("quantization", (0.0, 0))
        if scale and y.dtype in (np.int8, np.uint8):
            return (y.astype(np.float32) - zero) * scale
        return y


def _open_backend(runtime: str, path: str, threads: int | None):
    backends = {"onnxruntime": _OnnxRuntime, "openvino": _OpenVino, "litert": _TFLite, "tflite-runtime": _TFLite}
    return (backends.get(runtime) or _plugin(runtime))(path, threads, runtime)


def _plugin(runtime: str):
    """The backend class a harness names for `runtime` in $SQNXT_EDGE_RUNTIME_PLUGINS."""
    _need(runtime)
    spec = _decode(os.environ.get(PLUGINS_VAR) or "{}").get(runtime)
    if not spec:
        raise RunnerError(f"{runtime} runs through its harness only (sqnxt-edge bench rebuilds the model)")
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


class Model:
    """One loaded artifact with a uniform interface over the runtimes and the preprocessing of its metadata."""

    def __init__(self, path: str, runtime: str = "auto", threads: int | None = None):
        path = str(path)
        if not os.path.isfile(path):
            raise RunnerError(f"artifact not found: {path}")
        self.path, self.threads = path, threads
        self.runtime = runtimes_for(path, runtime)[0]
        try:
            backend = _open_backend(self.runtime, path, threads)
        except RunnerError:
            raise
        except Exception as exc:  # each runtime raises its own Fail/InvalidGraph/ValueError types
            raise RunnerError(f"{os.path.basename(path)}: {self.runtime} cannot load it: {_first_line(exc)}") from None
        self.backend = backend
        self.meta = read_metadata(path, backend.embedded)
        for key, value in (("layout", SUFFIXES[_suffix(path)][1]), ("mean", [0.0] * 3), ("std", [1.0] * 3)):
            self.meta.setdefault(key, value)

    def __getattr__(self, name: str):  # input_name, output_name, input_shape, input_dtype, quant of the backend
        return getattr(self.__dict__["backend"], name)

    @property
    def runtime_version(self) -> str:
        """The runtime's version."""
        return self.backend.version

    @property
    def input_size(self) -> int:
        """Input side in pixels, from the metadata or the input shape."""
        if "input_size" in self.meta:
            return int(self.meta["input_size"])
        dims = self.input_shape[2:] if self.meta.get("layout", "NCHW") == "NCHW" else self.input_shape[1:3]
        return int(dims[0])

    @property
    def channels(self) -> int:
        """Input channels, from the metadata or the input shape."""
        if self.meta.get("in_channels"):
            return int(self.meta["in_channels"])
        shape = self.input_shape
        dim = shape[1] if self.meta.get("layout") == "NCHW" else (shape[3] if len(shape) == 4 else 3)
        return int(dim) if isinstance(dim, int) and dim > 0 else 3

    @property
    def precision(self) -> str:
        """fp32, fp16 or int8, from the metadata or the input type."""
        if self.meta.get("precision"):
            return str(self.meta["precision"])
        return {np.int8: "int8", np.uint8: "int8", np.float16: "fp16"}.get(self.input_dtype, "unknown")

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the model insists on, or None when the batch dimension is dynamic."""
        first = self.input_shape[0] if self.input_shape else None
        if self.backend.dynamic_batch or not isinstance(first, int) or first <= 0:
            return None
        return first

    def prepare(self, images: np.ndarray) -> np.ndarray:
        """uint8 NHWC images, already at the model's input size -> the model's input tensor."""
        if images.ndim != 4 or images.dtype != np.uint8:
            raise RunnerError(f"images must be uint8 NHWC, got {images.dtype} {images.shape}")
        mean = np.asarray(self.meta["mean"], dtype=np.float32)
        std = np.asarray(self.meta["std"], dtype=np.float32)
        x = (images.astype(np.float32) / 255.0 - mean) / std
        if self.meta["layout"] == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        x = np.ascontiguousarray(x)
        if self.quant is not None and self.input_dtype in (np.int8, np.uint8):
            scale, zero = self.quant
            info = np.iinfo(self.input_dtype)
            return np.clip(np.rint(x / scale) + zero, info.min, info.max).astype(self.input_dtype)
        return x.astype(self.input_dtype, copy=False)

    def run(self, x: np.ndarray) -> np.ndarray:
        """One inference on a prepared batch; returns float32 logits."""
        return np.asarray(self.backend.run(x), dtype=np.float32)

    def predict(self, images: np.ndarray, batch: int | None = None) -> np.ndarray:
        """Logits for uint8 NHWC images, in batches the model accepts."""
        step = self.fixed_batch or batch or 64
        outs = []
        for i in range(0, len(images), step):
            chunk = images[i : i + step]
            pad = step - len(chunk) if self.fixed_batch else 0
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            y = self.run(self.prepare(chunk))
            outs.append(y[: len(y) - pad] if pad else y)
        return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


open_model = Model  # the name the package and board scripts use


# -- environment ------------------------------------------------------------------------------------------------------
# ARM "CPU part" ids of the cores edge boards carry (from the Arm technical reference manuals).
_ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd0d": "Cortex-A77",
    "0xd41": "Cortex-A78",
    "0xd44": "Cortex-X1",
    "0xd46": "Cortex-A510",
    "0xd47": "Cortex-A710",
    "0xd4f": "Neoverse-V2",
}
EMULATION_VAR = "SQNXT_EDGE_EMULATION"  # set by an emulated board's launcher: what emulates what
LAUNCHER_VAR = "SQNXT_EDGE_LAUNCHER"  # a command prefix for child processes (an emulator, taskset ...)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def _cpuinfo() -> tuple[dict, int, int]:
    """/proc/cpuinfo's first value of every field, its processors, and its physical cores (x86 only says those)."""
    fields: dict[str, str] = {}
    processors, cores, phys = 0, set(), "0"
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        key = key.lower()
        processors += key == "processor"
        phys = value if key == "physical id" else phys
        if key == "core id":
            cores.add((phys, value))
        fields.setdefault(key, value)
    return fields, processors, len(cores)


def cpu_info() -> dict:
    """The CPU facts that decide int8 speed, read from the machine (never assumed): model, cores, ISA features."""
    arch = platform.machine().lower()
    fields, processors, _ = _cpuinfo()
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    model = fields.get("model name") or ""
    if not model and fields.get("cpu part"):
        model = _ARM_PARTS.get(fields["cpu part"].lower(), f"ARM part {fields['cpu part']}")
    board = _read("/sys/firmware/devicetree/base/model").strip("\x00\n ")
    is_arm = arch in ("aarch64", "arm64") or arch.startswith("arm")
    features = {
        "avx2": "avx2" in flags,
        "avx512": "avx512f" in flags,
        "vnni": bool({"avx512_vnni", "avx_vnni", "avx512vnni"} & flags),
        "amx": "amx_int8" in flags,
        "neon": is_arm and (bool({"asimd", "neon"} & flags) or arch in ("aarch64", "arm64")),
        "dotprod": "asimddp" in flags,
        "i8mm": "i8mm" in flags,
        "fp16": bool({"asimdhp", "fphp"} & flags),
    }
    if sys.platform == "darwin" and arch == "arm64":  # Apple silicon: every core has dotprod
        features.update(neon=True, dotprod=True, fp16=True)
    return {
        "arch": arch,
        "model": model or platform.processor() or arch,
        "board": board or None,
        "cores": processors or os.cpu_count(),
        "features": features,
        "int8_dot": features["vnni"] or features["dotprod"],
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def default_threads() -> int:
    """Physical cores (hyper-threads share execution units, so they are a poor default thread count)."""
    _, processors, cores = _cpuinfo()
    return cores or processors or os.cpu_count() or 1  # ARM lists one "processor" per core and no "core id"


def _mem_total_mb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _cpufreq(name: str) -> str | None:
    return _read(f"/sys/devices/system/cpu/cpu0/cpufreq/{name}").strip() or None


def environment() -> dict:
    """The machine's state as read now: CPU facts, memory, governor, load, numpy; recorded with every result."""
    env = cpu_info()
    cur, top = _cpufreq("scaling_cur_freq"), _cpufreq("cpuinfo_max_freq")
    env.update(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        physical_cores=default_threads(),
        mem_total_mb=_mem_total_mb(),
        governor=_cpufreq("scaling_governor"),
        cpu_mhz=round(int(cur) / 1000) if cur and cur.isdigit() else None,
        cpu_max_mhz=round(int(top) / 1000) if top and top.isdigit() else None,
        loadavg=[round(v, 2) for v in os.getloadavg()],
        numpy=np.__version__,
        runner_version=RUNNER_VERSION,
    )
    emulation = _decode(os.environ.get(EMULATION_VAR) or "")
    env["emulated"] = bool(emulation)
    if emulation:  # timings and memory are the emulator's, not the board's
        env["emulation"] = emulation
    return env


def runtime_versions() -> tuple[dict, dict]:
    """{runtime: version or None} for every runtime this runner can drive (but torch), plus why missing ones failed."""
    versions, errors = {}, {}
    for name in RUNTIMES:
        if name == "torch":
            continue
        try:
            versions[name] = _version(name, _need(name))
        except RunnerError as exc:
            versions[name], errors[name] = None, str(exc)
    versions["numpy"] = np.__version__
    return versions, errors


# -- measuring --------------------------------------------------------------------------------------------------------
# Habits of TFLite's benchmark_model and onnxruntime's perf_test: one model per fresh process, a first run timed on
# its own, warm-up, then timed runs until both a count and a duration are reached; raw samples kept, stats derived.


@dataclass(frozen=True)
class Settings:
    """One measurement, as the harness asks for it; turned into this file's argv once (`to_argv`), locally, over
    SSH and on an emulated board alike. `latency=False` only scores `data`; `logits` returns them (parity)."""

    runtime: str = "auto"
    threads: int | None = None  # None: the machine's physical cores
    batch: int = 1
    warmup: int = 10
    runs: int = 100
    min_seconds: float = 1.0
    data: str | None = None  # an npz of labels + images_<size>
    latency: bool = True
    logits: bool = False
    samples: bool = False  # keep every raw latency sample
    profile: bool = False  # also every node's time from onnxruntime's own profiler (see "profiling" below)
    timeout: float | None = None  # seconds per measuring process

    def check(self) -> Settings:
        """Raise RunnerError for values no run could honour; returns self."""
        for name, low in (("threads", 1), ("batch", 1), ("warmup", 0), ("runs", 1), ("min_seconds", 0)):
            value = getattr(self, name)
            if value is not None and value < low:
                raise RunnerError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
        _known(self.runtime)
        if not self.data and (self.logits or not self.latency):
            raise RunnerError("--no-latency and --logits need --data")
        return self

    def to_argv(self) -> list[str]:
        """The runner command line that reproduces these settings (what a board receives)."""
        argv = [
            "--runtime",
            self.runtime,
            "--batch",
            self.batch,
            "--warmup",
            self.warmup,
            "--runs",
            self.runs,
            "--min-seconds",
            self.min_seconds,
        ]
        for flag, value in (("--threads", self.threads), ("--data", self.data), ("--timeout", self.timeout)):
            argv += [flag, value] if value else []
        for flag, on in (
            ("--no-latency", not self.latency),
            ("--logits", self.logits),
            ("--samples", self.samples),
            ("--profile", self.profile),
        ):
            argv += [flag] if on else []
        return [str(a) for a in argv]


def time_runs(run, warmup: int = 10, runs: int = 100, min_seconds: float = 1.0) -> tuple[float, list[float]]:
    """(first_ms, samples_ms): the first call alone, `warmup` untimed calls, then at least `runs` calls and
    `min_seconds`. Nothing prints and the garbage collector is off while the clock runs."""
    import gc

    clock = time.perf_counter_ns
    t0 = clock()
    run()
    first_ms = (clock() - t0) / 1e6
    for _ in range(warmup):
        run()
    samples = []
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        deadline = clock() + int(min_seconds * 1e9)
        while len(samples) < runs or clock() < deadline:
            t0 = clock()
            run()
            samples.append(clock() - t0)
    finally:
        if gc_was_on:
            gc.enable()
    return first_ms, [ns / 1e6 for ns in samples]


def describe(path: str, runtime: str | None = None) -> dict:
    """The fields every result row starts with: the artifact, its format and runtime."""
    ext = os.path.splitext(str(path))[1].lower()
    return {"artifact": str(path), "format": SUFFIXES.get(ext, ("unknown",))[0], "runtime": runtime}


def load_data(path: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 NHWC at `size`, labels) from an npz holding `labels` and `images_<size>`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            key = f"images_{int(size)}"
            if key not in data.files or "labels" not in data.files:
                raise RunnerError(f"{os.path.basename(path)} has no '{key}'/'labels' (has: {', '.join(data.files)})")
            return data[key], data["labels"]
    except (OSError, ValueError) as exc:
        raise RunnerError(f"cannot read data file {path}: {_first_line(exc)}") from None


def measure_artifact(path: str, s: Settings) -> dict:
    """Load one artifact and time it on a synthetic batch: the body of one fresh child process."""
    threads = s.threads or default_threads()
    clock = time.perf_counter_ns
    t0 = clock()
    model = open_model(path, runtime=runtimes_for(path, s.runtime)[0], threads=threads)
    init_ms = (clock() - t0) / 1e6
    if model.fixed_batch and model.fixed_batch != s.batch:
        raise RunnerError(
            f"{os.path.basename(path)} takes a fixed batch of {model.fixed_batch}; it cannot run --batch {s.batch}"
        )
    n = model.input_size
    images = np.random.default_rng(0).integers(0, 256, size=(s.batch, n, n, model.channels), dtype=np.uint8)
    x = model.prepare(images)
    first_ms, samples = time_runs(lambda: model.run(x), warmup=s.warmup, runs=s.runs, min_seconds=s.min_seconds)
    result = describe(path, model.runtime)
    result.update(
        precision=model.precision,
        runtime_version=model.runtime_version,
        threads=threads,
        batch=s.batch,
        input_size=n,
        size_bytes=os.path.getsize(path),
        init_ms=init_ms,
        warmup=s.warmup,
        pid=os.getpid(),
    )
    result.update(latency_fields(first_ms, samples, s.batch, s.samples))
    return result


def measure_accuracy(path: str, s: Settings) -> dict:
    """top-1/top-5 of one artifact on the npz, through its own preprocessing; with `logits`, every image's too."""
    model = open_model(path, runtime=runtimes_for(path, s.runtime)[0], threads=s.threads or default_threads())
    images, labels = load_data(s.data, model.input_size)
    out = model.predict(images, batch=64)
    result = {**topk_accuracy(out, labels), "runtime": model.runtime, "runtime_version": model.runtime_version}
    if s.logits:
        result["logits"] = out.tolist()  # float32 values survive JSON exactly
    return result


# -- profiling (sqnxt-edge profile) ----------------------------------------------------------------------------------
# Raw data only; the package maps nodes to layers. TFLite's Python interpreter exposes no op profiler.


def profile_artifact(path: str, s: Settings) -> dict:
    """The usual measurement, then `warmup` + `runs` rounds of one plain run (`e2e_us`) and one run with onnxruntime's
    profiler on (interleaved: both see the same load); every node's kernel time (us) in the last `runs` rounds."""
    result = measure_artifact(path, s)
    if result["runtime"] != "onnxruntime":
        raise RunnerError(
            f"{os.path.basename(path)}: per-layer profiles need onnxruntime's profiler, not "
            f"{result['runtime']} (TFLite has benchmark_model --enable_op_profiling)"
        )
    model = open_model(path, "onnxruntime", result["threads"])
    n, clock, e2e = model.input_size, time.perf_counter_ns, []
    x = model.prepare(np.random.default_rng(0).integers(0, 256, (s.batch, n, n, model.channels), dtype=np.uint8))
    with tempfile.TemporaryDirectory(prefix="sqnxt-profile-") as tmp:
        profiled = _OnnxRuntime(path, result["threads"], profile=os.path.join(tmp, "ort"))
        for _ in range(s.warmup + s.runs):
            t0 = clock()
            model.run(x)
            e2e.append((clock() - t0) / 1e3)
            profiled.run(x)
        with open(profiled.sess.end_profiling(), encoding="utf-8") as fh:
            events = json.load(fh)
    start = sorted(e["ts"] for e in events if e.get("name") == "model_run")[-s.runs]  # the timed rounds only
    nodes: dict = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= start:
            nodes.setdefault(e["name"][:-12], {"op": e.get("args", {}).get("op_name"), "us": []})["us"].append(e["dur"])
    result["profile"] = {
        "profiler": f"onnxruntime {profiled.version} enable_profiling",
        "e2e_us": e2e[s.warmup :],
        "nodes": [{"name": k, **v} for k, v in nodes.items()],
    }
    return result


# -- summarizing ------------------------------------------------------------------------------------------------------


def summarize(samples_ms) -> dict:
    """mean, std, min, p50, p90, p99, max of raw latency samples (ms)."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise RunnerError("no samples to summarize")
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {
        "mean": float(a.mean()),
        "std": float(a.std(ddof=1)) if a.size > 1 else 0.0,
        "min": float(a.min()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(a.max()),
    }


def latency_fields(first_ms: float, samples_ms: list, batch: int, keep_samples: bool = False) -> dict:
    """The timing part of a result."""
    stats = summarize(samples_ms)
    fields = {
        "first_ms": first_ms,
        "runs": len(samples_ms),
        "latency_ms": stats,
        "throughput_ips": batch * 1000.0 / stats["mean"] if stats["mean"] > 0 else None,
    }
    if keep_samples:
        fields["samples_ms"] = [round(v, 6) for v in samples_ms]
    return fields


def topk_accuracy(logits: np.ndarray, labels: np.ndarray) -> dict:
    """top-1 (and top-5 when there are at least 5 classes) of logits against integer labels."""
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(logits) != len(labels) or len(labels) == 0:
        raise RunnerError(f"{len(logits)} predictions for {len(labels)} labels")
    top1 = float(np.mean(np.argmax(logits, axis=1) == labels))
    top5 = None
    if logits.shape[1] >= 5:
        best5 = np.argsort(-logits, axis=1, kind="stable")[:, :5]
        top5 = float(np.mean(np.any(best5 == labels[:, None], axis=1)))
    return {"top1": top1, "top5": top5, "n": len(labels)}


# -- child harness ----------------------------------------------------------------------------------------------------


def run_child(cmd: list, timeout: float | None = None) -> tuple[dict, float | None]:
    """Run `cmd` (a child that prints one JSON object) in a fresh process; return (its JSON, its peak RSS in MB).

    Peak RSS comes from os.wait4's rusage of exactly that child (KiB on Linux, bytes on macOS). A child that fails
    gives {"error": one line}.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=errf)
        deadline, timed_out = time.monotonic() + (timeout or float("inf")), False
        try:  # polled like Popen.wait(timeout) does, but through wait4 (POSIX), which also gives the rusage
            while not (reaped := os.wait4(proc.pid, os.WNOHANG))[0]:
                if time.monotonic() > deadline and not timed_out:
                    proc.kill()  # not reaped yet, so the pid is still this child's
                    timed_out = True
                time.sleep(0.05)  # at most 50 ms late; no wakeups worth measuring
        except BaseException:  # interrupted: the child goes with us
            proc.kill()
            proc.wait()
            raise
        _, status, usage = reaped
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024.0)
        out.seek(0)
        errf.seek(0)
        text = out.read().decode("utf-8", "replace").strip()
        err_text = errf.read().decode("utf-8", "replace").strip()
    try:
        payload = json.loads(text.splitlines()[-1]) if text else None
    except ValueError:
        payload = None
    if timed_out:
        return {"error": f"timed out after {timeout:g} s"}, peak
    if isinstance(payload, dict) and ("error" in payload or proc.returncode == 0):
        return payload, peak
    if proc.returncode < 0:
        why = f"killed by signal {-proc.returncode}" + (" (out of memory?)" if proc.returncode == -9 else "")
    else:
        last = err_text.splitlines()[-1] if err_text else ""
        why = f"exited with code {proc.returncode}" + (f": {last[:300]}" if last else "")
    return {"error": f"measuring process {why}"}, peak


def _self_cmd(*args) -> list:
    """This file as a fresh child, through the launcher when there is one (an emulated board's qemu)."""
    launcher = shlex.split(os.environ.get(LAUNCHER_VAR, ""))
    return [*launcher, sys.executable, os.path.abspath(__file__), *[str(a) for a in args]]


def _child_main(fn) -> int:
    """Child side: print one JSON object; a failure becomes {"error": one line} and exit 1."""
    try:
        payload, code = fn(), 0
    except RunnerError as exc:
        payload, code = {"error": str(exc)}, 1
    except Exception as exc:  # a runtime's own exception types: still one line, never a traceback on the board
        payload, code = {"error": f"{type(exc).__name__}: {_first_line(exc)}"}, 1
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()
    return code


def _bare(runtime: str) -> dict:
    """What a measurement imports and nothing more: the memory every model's share is measured above."""
    module = _need(runtime)
    if runtime == "torch":
        _plugin(runtime)
    return {"runtime": runtime, "runtime_version": _version(runtime, module)}


def measure(artifacts: list, s: Settings, progress=None) -> dict:
    """Measure every artifact with every runtime that runs it here (one per engine), each in its own fresh child
    process; one failure never stops the others."""
    s = replace(s, threads=s.threads or default_threads()).check()
    plan = []
    for path in artifacts:
        try:
            if not os.path.isfile(path):
                raise RunnerError(f"artifact not found: {path}")
            plan += [(path, rt) for rt in runtimes_for(path, s.runtime, every=s.latency)]
        except RunnerError as exc:
            plan.append((path, exc))
    baseline = {}
    for rt in dict.fromkeys(r for _, r in plan if isinstance(r, str) and s.latency):
        payload, peak = run_child(_self_cmd("--bare", rt), s.timeout)
        baseline[rt] = {**payload, "peak_rss_mb": peak}
    results = []
    for i, (path, rt) in enumerate(plan):
        if isinstance(rt, RunnerError):
            results.append({"artifact": path, "runtime": None, "error": str(rt)})
            continue
        one = replace(s, runtime=rt)
        result = describe(path, rt)
        if s.latency:
            timed, peak = run_child(_self_cmd("--one", *replace(one, data=None).to_argv(), path), s.timeout)
            bare = baseline.get(rt, {}).get("peak_rss_mb")
            result.update(
                timed,
                peak_rss_mb=peak,
                model_peak_rss_mb=peak - bare if peak is not None and bare is not None else None,
            )
        if s.data and "error" not in result:
            scored, _ = run_child(_self_cmd("--one", *replace(one, latency=False).to_argv(), path), s.timeout)
            result.update(scored, threads=s.threads)
        if "error" in result:
            result = {"artifact": path, "runtime": rt, "error": result["error"]}
        results.append(result)
        if progress:
            progress(i + 1, len(plan), result)
    env = environment()
    env["runtimes"] = {b["runtime"]: b.get("runtime_version") for b in baseline.values() if "runtime" in b}
    return {"runner_version": RUNNER_VERSION, "env": env, "baseline": baseline, "results": results}


# -- command line -----------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="runner.py", description="Measure exported models (ONNX, ORT, TFLite): prints one JSON object."
    )
    p.add_argument("artifacts", nargs="*", metavar="ARTIFACT")
    p.add_argument("--threads", type=int, default=None, help="intra-op / num_threads (default: physical cores)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runs", type=int, default=100, help="at least this many timed runs")
    p.add_argument("--min-seconds", type=float, default=1.0, help="and at least this long")
    p.add_argument("--runtime", default="auto", help=f"auto (one per engine) or {', '.join(RUNTIMES)}")
    p.add_argument("--data", default=None, metavar="FILE.npz", help="labels + images_<size> for top-1/top-5")
    p.add_argument("--no-latency", dest="latency", action="store_false", help="only score --data (no timing)")
    p.add_argument("--logits", action="store_true", help="with --data: include every image's logits")
    p.add_argument("--samples", action="store_true", help="include every raw latency sample (ms)")
    p.add_argument("--profile", action="store_true", help="per-node times from onnxruntime's profiler (raw)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per measuring process (default: none)")
    p.add_argument("--progress", action="store_true", help="one JSON line per finished artifact on stderr")
    p.add_argument("--env-only", action="store_true", help="print the environment and installed runtimes")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--bare", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list | None = None) -> int:
    """The runner's command line (on a board: `python3 runner.py ...`); returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.bare:
        return _child_main(lambda: _bare(args.bare))
    try:
        s = Settings(**{f.name: getattr(args, f.name) for f in fields(Settings)}).check()
    except RunnerError as exc:
        parser.error(str(exc))
    if args.one:
        if len(args.artifacts) != 1:
            parser.error("--one takes exactly one ARTIFACT")
        path = args.artifacts[0]
        timed = profile_artifact if s.profile else measure_artifact  # profiling: see its section
        return _child_main(lambda: measure_accuracy(path, s) if s.data else timed(path, s))
    if args.env_only:
        versions, errors = runtime_versions()
        print(
            json.dumps(
                {
                    "runner_version": RUNNER_VERSION,
                    "env": environment(),
                    "runtimes": versions,
                    "runtime_errors": errors,
                },
                indent=1,
            ),
            flush=True,
        )
        return 0
    if not args.artifacts:
        parser.error("give at least one ARTIFACT (or --env-only)")
    if s.data and not os.path.isfile(s.data):
        parser.error(f"data file not found: {s.data}")

    def progress(done, total, result):
        if args.progress:
            sys.stderr.write(
                json.dumps(
                    {
                        "done": done,
                        "total": total,
                        "artifact": result.get("artifact"),
                        "runtime": result.get("runtime"),
                        "error": result.get("error"),
                    }
                )
                + "\n"
            )
            sys.stderr.flush()

    report = measure(args.artifacts, s, progress)
    print(json.dumps(report, indent=1), flush=True)
    return 1 if any("error" in r for r in report["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
