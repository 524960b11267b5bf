#!/usr/bin/env python3
"""sqnxt-edge runner: open an exported model, feed it images the way its metadata says, time it.

ONE FILE, copied as-is to a board: it imports only the standard library, numpy and the runtime it needs
(onnxruntime for .onnx/.ort, ai-edge-litert or else tflite-runtime for .tflite). Nothing from sqnxt_edge.
The package imports this file for evaluation and parity checks, so local and remote figures mean the same thing.

Preprocessing contract (written by `sqnxt-edge export` into ONNX metadata_props and a `<artifact>.meta.json`
sidecar): uint8 RGB images resized to `input_size`, x = (pixel / 255 - mean) / std, laid out as `layout`
(NCHW or NHWC); int8/uint8 inputs are quantized with the tensor's own scale and zero point.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

__all__ = [
    "read_metadata", "open_model", "Model", "RUNTIMES", "cpu_info", "RUNNER_VERSION", "RunnerError",
    "environment", "default_threads", "time_runs", "summarize", "latency_fields", "run_child", "main",
]

RUNNER_VERSION = "1.0"
RUNTIMES = ("onnxruntime", "litert", "tflite-runtime")
_DEFAULT_META = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}


class RunnerError(Exception):
    """A problem with an artifact or runtime, reported as one line."""


def _decode(value):
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def sidecar_path(path: str) -> str:
    return path + ".meta.json"


def read_metadata(path: str, embedded: dict | None = None) -> dict:
    """The artifact's preprocessing facts: its sidecar JSON, else what the model file embeds, else {}."""
    side = sidecar_path(path)
    if os.path.isfile(side):
        with open(side, encoding="utf-8") as fh:
            return json.load(fh)
    return {k: _decode(v) for k, v in (embedded or {}).items()}


def runtime_for(path: str, runtime: str = "auto") -> str:
    ext = os.path.splitext(path)[1].lower()
    if runtime not in ("auto", *RUNTIMES):
        raise RunnerError(f"unknown runtime {runtime!r}")
    if ext in (".onnx", ".ort"):
        if runtime not in ("auto", "onnxruntime"):
            raise RunnerError(f"{os.path.basename(path)}: {runtime} cannot run {ext} files")
        return "onnxruntime"
    if ext == ".tflite":
        if runtime == "onnxruntime":
            raise RunnerError(f"{os.path.basename(path)}: onnxruntime cannot run .tflite files")
        return runtime if runtime != "auto" else "litert"
    raise RunnerError(f"{os.path.basename(path)}: unsupported artifact type {ext or '(none)'}")


def _import_tflite_interpreter(runtime: str):
    """ai-edge-litert first (the maintained one), tflite-runtime as the fallback on boards that only have it."""
    order = ["litert", "tflite-runtime"] if runtime == "litert" else ["tflite-runtime"]
    errors = []
    for name in order:
        try:
            if name == "litert":
                from ai_edge_litert.interpreter import Interpreter
            else:
                from tflite_runtime.interpreter import Interpreter
            return name, Interpreter
        except ImportError as exc:
            errors.append(str(exc))
    if runtime == "tflite-runtime":
        raise RunnerError("tflite-runtime is not installed: pip install tflite-runtime (or use ai-edge-litert)")
    raise RunnerError("no TFLite runtime installed: pip install ai-edge-litert (or tflite-runtime)")


class Model:
    """One loaded artifact with a uniform interface over the runtimes."""

    def __init__(self, path: str, runtime: str = "auto", threads: int | None = None):
        if not os.path.isfile(path):
            raise RunnerError(f"artifact not found: {path}")
        self.path = path
        self.runtime = runtime_for(path, runtime)
        self.threads = threads
        if self.runtime == "onnxruntime":
            self._open_onnxruntime()
        else:
            self._open_tflite()
        self.meta.setdefault("layout", "NCHW" if self.runtime == "onnxruntime" else "NHWC")
        for key, value in _DEFAULT_META.items():
            self.meta.setdefault(key, value)

    # -- runtimes -------------------------------------------------------------------------------------------------
    def _open_onnxruntime(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise RunnerError("onnxruntime is not installed: pip install onnxruntime") from None
        opts = ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads = int(self.threads)
            opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self._sess = ort.InferenceSession(self.path, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise RunnerError(f"{os.path.basename(self.path)}: onnxruntime cannot load it: {_first_line(exc)}") from None
        self.runtime_version = ort.__version__
        inp = self._sess.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = list(inp.shape)
        self.input_dtype = np.float16 if "float16" in inp.type else np.float32
        self._quant = None
        self.output_name = self._sess.get_outputs()[0].name
        self.meta = read_metadata(self.path, self._sess.get_modelmeta().custom_metadata_map)

    def _open_tflite(self) -> None:
        self.runtime, Interpreter = _import_tflite_interpreter(self.runtime)
        kwargs = {"num_threads": int(self.threads)} if self.threads else {}
        try:
            self._interp = Interpreter(model_path=self.path, **kwargs)
            self._interp.allocate_tensors()
        except Exception as exc:
            raise RunnerError(f"{os.path.basename(self.path)}: {self.runtime} cannot load it: {_first_line(exc)}") from None
        self.runtime_version = _tflite_version(self.runtime)
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        self._in, self._out = inp, out
        self.input_name, self.output_name = inp["name"], out["name"]
        self.input_shape = [int(d) for d in inp["shape"]]
        self.input_dtype = np.dtype(inp["dtype"]).type
        scale, zero = inp.get("quantization", (0.0, 0))
        self._quant = (float(scale), int(zero)) if scale else None
        self.meta = read_metadata(self.path)

    # -- data -----------------------------------------------------------------------------------------------------
    @property
    def input_size(self) -> int:
        if "input_size" in self.meta:
            return int(self.meta["input_size"])
        dims = self.input_shape[2:] if self.meta.get("layout", "NCHW") == "NCHW" else self.input_shape[1:3]
        return int(dims[0])

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the model insists on, or None when the batch dimension is dynamic."""
        first = self.input_shape[0] if self.input_shape else None
        if not isinstance(first, int) or first <= 0:
            return None
        if self.runtime != "onnxruntime" and self._dynamic_tflite_batch():
            return None
        return first

    def _dynamic_tflite_batch(self) -> bool:
        sig = self._in.get("shape_signature") if hasattr(self, "_in") else None
        return sig is not None and len(sig) > 0 and int(sig[0]) == -1

    def prepare(self, images: np.ndarray) -> np.ndarray:
        """uint8 NHWC images, already at the model's input size -> the model's input tensor."""
        if images.ndim != 4 or images.dtype != np.uint8:
            raise RunnerError(f"images must be uint8 NHWC, got {images.dtype} {images.shape}")
        mean = np.asarray(self.meta["mean"], dtype=np.float32)
        std = np.asarray(self.meta["std"], dtype=np.float32)
        x = (images.astype(np.float32) / 255.0 - mean) / std
        if self.meta["layout"] == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return self.quantize_input(np.ascontiguousarray(x))

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Normalized float input -> what the input tensor holds (float32, float16, or int8/uint8 quantized)."""
        if self._quant is not None and self.input_dtype in (np.int8, np.uint8):
            scale, zero = self._quant
            info = np.iinfo(self.input_dtype)
            return np.clip(np.rint(x / scale) + zero, info.min, info.max).astype(self.input_dtype)
        return x.astype(self.input_dtype, copy=False)

    def run(self, x: np.ndarray) -> np.ndarray:
        """One inference on a prepared batch; returns float32 logits."""
        if self.runtime == "onnxruntime":
            return np.asarray(self._sess.run([self.output_name], {self.input_name: x})[0], dtype=np.float32)
        interp = self._interp
        if list(x.shape) != list(interp.get_input_details()[0]["shape"]):
            interp.resize_tensor_input(self._in["index"], list(x.shape))
            interp.allocate_tensors()
        interp.set_tensor(self._in["index"], x)
        interp.invoke()
        y = interp.get_tensor(self._out["index"])
        scale, zero = self._out.get("quantization", (0.0, 0))
        if scale and y.dtype in (np.int8, np.uint8):
            return (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)

    def predict(self, images: np.ndarray, batch: int | None = None) -> np.ndarray:
        """Logits for uint8 NHWC images, in batches the model accepts."""
        step = self.fixed_batch or batch or 64
        outs = []
        for i in range(0, len(images), step):
            chunk = images[i:i + step]
            pad = step - len(chunk) if self.fixed_batch else 0
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            y = self.run(self.prepare(chunk))
            outs.append(y[: len(y) - pad] if pad else y)
        return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def open_model(path: str, runtime: str = "auto", threads: int | None = None) -> Model:
    return Model(path, runtime=runtime, threads=threads)


# ARM "CPU part" ids of the cores edge boards carry (from the Arm technical reference manuals).
_ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
              "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
              "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd41": "Cortex-A78", "0xd44": "Cortex-X1",
              "0xd46": "Cortex-A510", "0xd47": "Cortex-A710", "0xd4f": "Neoverse-V2"}


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def cpu_info() -> dict:
    """The CPU facts that decide int8 speed, read from the machine (never assumed): model, cores, ISA features."""
    arch = platform.machine().lower()
    text = _read("/proc/cpuinfo")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
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
        "cores": os.cpu_count(),
        "features": features,
        "int8_dot": features["vnni"] or features["dotprod"],
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _tflite_version(runtime: str) -> str:
    try:
        from importlib.metadata import version

        return version("ai-edge-litert" if runtime == "litert" else "tflite-runtime")
    except Exception:
        return "unknown"




# -- measuring ------------------------------------------------------------------------------------------------------
# Habits of TFLite's benchmark_model and onnxruntime's perf_test: one model per fresh process, a first run timed on
# its own, warm-up, then timed runs until both a count and a duration are reached; raw samples kept, stats derived.

_FORMATS = {".onnx": "onnx", ".ort": "ort", ".tflite": "tflite", ".pt": "pytorch"}


def physical_cores() -> int | None:
    """Physical cores (hyper-threads share execution units, so they are a poor default thread count)."""
    found, phys = set(), "0"
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "physical id":
            phys = value.strip()
        elif key == "core id":
            found.add((phys, value.strip()))
    if found:
        return len(found)
    if sys.platform == "darwin":
        try:
            return int(subprocess.run(["sysctl", "-n", "hw.physicalcpu"], capture_output=True, text=True,
                                      timeout=5).stdout.strip())
        except (OSError, ValueError, subprocess.SubprocessError):
            return None
    return None


def default_threads() -> int:
    return physical_cores() or os.cpu_count() or 1


def _mem_total_mb() -> float | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024.0, 1)
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
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        load = None
    env.update(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        physical_cores=physical_cores(),
        mem_total_mb=_mem_total_mb(),
        governor=_cpufreq("scaling_governor"),
        cpu_mhz=round(int(cur) / 1000) if cur and cur.isdigit() else None,
        cpu_max_mhz=round(int(top) / 1000) if top and top.isdigit() else None,
        loadavg=load,
        numpy=np.__version__,
        runner_version=RUNNER_VERSION,
    )
    return env


def import_runtime(runtime: str) -> tuple:
    """Import a runtime the way measuring does and return (actual runtime name, version); RunnerError if absent."""
    if runtime == "onnxruntime":
        try:
            import onnxruntime
        except ImportError:
            raise RunnerError("onnxruntime is not installed: pip install onnxruntime") from None
        return "onnxruntime", onnxruntime.__version__
    if runtime in ("litert", "tflite-runtime"):
        name, _ = _import_tflite_interpreter(runtime)
        return name, _tflite_version(name)
    raise RunnerError(f"unknown runtime {runtime!r}")


def runtime_versions() -> tuple[dict, dict]:
    """{runtime: version or None} for every runtime this runner can drive, plus why the missing ones failed."""
    versions, errors = {}, {}
    for name in RUNTIMES:
        try:
            actual, version = import_runtime(name) if name != "litert" else _import_litert_only()
            versions[name] = version if actual == name else None
        except RunnerError as exc:
            versions[name], errors[name] = None, str(exc)
    versions["numpy"] = np.__version__
    return versions, errors


def _import_litert_only():
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401
    except ImportError:
        raise RunnerError("ai-edge-litert is not installed: pip install ai-edge-litert") from None
    return "litert", _tflite_version("litert")


def time_runs(run, warmup: int = 10, runs: int = 100, min_seconds: float = 1.0) -> tuple[float, list[float]]:
    """Time `run()`: the first call alone, `warmup` untimed calls, then at least `runs` calls and `min_seconds`.

    Returns (first_ms, samples_ms). Nothing prints and the garbage collector is off while the clock runs.
    """
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


def summarize(samples_ms) -> dict:
    """mean, std, min, p50, p90, p99, max of raw latency samples (ms)."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise RunnerError("no samples to summarize")
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0, "min": float(a.min()),
            "p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(a.max())}


def latency_fields(first_ms: float, samples_ms: list, batch: int, keep_samples: bool = False) -> dict:
    """The timing part of a result, shared by the runner and the PyTorch baseline."""
    stats = summarize(samples_ms)
    fields = {"first_ms": first_ms, "runs": len(samples_ms), "latency_ms": stats,
              "throughput_ips": batch * 1000.0 / stats["mean"] if stats["mean"] > 0 else None}
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
    return {"top1": top1, "top5": top5, "n": int(len(labels))}


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


def _precision(model: Model) -> str:
    if model.meta.get("precision"):
        return str(model.meta["precision"])
    return {np.int8: "int8", np.uint8: "int8", np.float16: "fp16"}.get(model.input_dtype, "unknown")


def _channels(model: Model) -> int:
    if model.meta.get("in_channels"):
        return int(model.meta["in_channels"])
    shape = model.input_shape
    dim = shape[1] if model.meta.get("layout") == "NCHW" and len(shape) == 4 else (shape[3] if len(shape) == 4 else 3)
    return int(dim) if isinstance(dim, int) and dim > 0 else 3


def describe(path: str) -> dict:
    return {"artifact": path, "format": _FORMATS.get(os.path.splitext(path)[1].lower(), "unknown")}


def measure_artifact(path: str, runtime: str = "auto", threads: int | None = None, batch: int = 1,
                     warmup: int = 10, runs: int = 100, min_seconds: float = 1.0, keep_samples: bool = False) -> dict:
    """Load one artifact and time it on a synthetic batch: the body of one fresh child process."""
    threads = threads or default_threads()
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise RunnerError(f"cannot read {path}: {exc.strerror or exc}") from None
    clock = time.perf_counter_ns
    t0 = clock()
    model = open_model(path, runtime=runtime, threads=threads)
    init_ms = (clock() - t0) / 1e6
    fixed = model.fixed_batch
    if fixed and fixed != batch:
        raise RunnerError(f"{os.path.basename(path)} takes a fixed batch of {fixed}; it cannot run --batch {batch}")
    s = model.input_size
    images = np.random.default_rng(0).integers(0, 256, size=(batch, s, s, _channels(model)), dtype=np.uint8)
    x = model.prepare(images)
    first_ms, samples = time_runs(lambda: model.run(x), warmup=warmup, runs=runs, min_seconds=min_seconds)
    result = describe(path)
    result.update(precision=_precision(model), runtime=model.runtime, runtime_version=model.runtime_version,
                  threads=threads, batch=batch, input_size=s, size_bytes=size, init_ms=init_ms, warmup=warmup,
                  pid=os.getpid())
    result.update(latency_fields(first_ms, samples, batch, keep_samples))
    return result


def measure_accuracy(path: str, data: str, runtime: str = "auto", threads: int | None = None) -> dict:
    """top-1/top-5 of one artifact on an npz, through its own preprocessing (Model.predict)."""
    model = open_model(path, runtime=runtime, threads=threads or default_threads())
    images, labels = load_data(data, model.input_size)
    return topk_accuracy(model.predict(images, batch=64), labels)


# -- child processes --------------------------------------------------------------------------------------------------

def run_child(cmd: list, timeout: float | None = None) -> tuple[dict, float | None]:
    """Run `cmd` (a child that prints one JSON object) in a fresh process; return (its JSON, its peak RSS in MB).

    Peak RSS comes from os.wait4's rusage of exactly that child (KiB on Linux, bytes on macOS). A child that fails
    gives {"error": one line}.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=errf)
        lock, state = threading.Lock(), {"reaped": False, "timed_out": False}

        def _kill():
            with lock:
                if not state["reaped"]:
                    state["timed_out"] = True
                    proc.kill()

        timer = threading.Timer(timeout, _kill) if timeout else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            if hasattr(os, "wait4"):
                _, status, usage = os.wait4(proc.pid, 0)
                with lock:
                    state["reaped"] = True
                proc.returncode = os.waitstatus_to_exitcode(status)
                scale = 2**20 if sys.platform == "darwin" else 1024.0
                peak = usage.ru_maxrss / scale
            else:  # no per-child rusage (Windows): timings still valid, memory unknown
                proc.wait()
                with lock:
                    state["reaped"] = True
                peak = None
        finally:
            if timer:
                timer.cancel()
        out.seek(0)
        errf.seek(0)
        text = out.read().decode("utf-8", "replace").strip()
        err_text = errf.read().decode("utf-8", "replace").strip()
    payload = None
    if text:
        try:
            payload = json.loads(text.splitlines()[-1])
        except ValueError:
            payload = None
    if state["timed_out"]:
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
    return [sys.executable, os.path.abspath(__file__), *[str(a) for a in args]]


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
    actual, version = import_runtime(runtime)
    return {"runtime": actual, "runtime_version": version}


def measure_baseline(runtime: str, timeout: float | None = None) -> dict:
    """Peak RSS of a child that only imports numpy + the runtime: what every model's share is measured above."""
    payload, peak = run_child(_self_cmd("--bare", runtime), timeout)
    payload["peak_rss_mb"] = peak
    return payload


def measure(artifacts: list, runtime: str = "auto", threads: int | None = None, batch: int = 1, warmup: int = 10,
            runs: int = 100, min_seconds: float = 1.0, data: str | None = None, keep_samples: bool = False,
            timeout: float | None = None, progress=None) -> dict:
    """Measure every artifact in its own fresh child process; one failure never stops the others."""
    threads = threads or default_threads()
    common = ["--threads", threads, "--runtime", runtime]
    plan, results, baseline = [], [], {}
    for path in artifacts:
        try:
            if not os.path.isfile(path):
                raise RunnerError(f"artifact not found: {path}")
            plan.append((path, runtime_for(path, runtime)))
        except RunnerError as exc:
            plan.append((path, exc))
    for rt in dict.fromkeys(r for _, r in plan if isinstance(r, str)):
        baseline[rt] = measure_baseline(rt, timeout)
    for i, (path, rt) in enumerate(plan):
        if isinstance(rt, RunnerError):
            result = {"artifact": path, "error": str(rt)}
        else:
            args = ["--one", path, *common, "--batch", batch, "--warmup", warmup, "--runs", runs,
                    "--min-seconds", min_seconds] + (["--samples"] if keep_samples else [])
            result, peak = run_child(_self_cmd(*args), timeout)
            if "error" not in result:
                result["peak_rss_mb"] = peak
                bare = baseline.get(rt, {}).get("peak_rss_mb")
                result["model_peak_rss_mb"] = peak - bare if peak is not None and bare is not None else None
                if data:
                    acc, _ = run_child(_self_cmd("--one", path, *common, "--data", data), timeout)
                    result = {"artifact": path, "error": acc["error"]} if "error" in acc else {**result, **acc}
            else:
                result = {"artifact": path, "error": result["error"]}
        results.append(result)
        if progress:
            progress(i + 1, len(plan), result)
    env = environment()
    env["runtimes"] = {b["runtime"]: b.get("runtime_version") for b in baseline.values() if "runtime" in b}
    return {"runner_version": RUNNER_VERSION, "env": env, "baseline": baseline, "results": results}


# -- command line -----------------------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="runner.py", description="Measure exported models (ONNX, ORT, TFLite): prints one JSON object.")
    p.add_argument("artifacts", nargs="*", metavar="ARTIFACT")
    p.add_argument("--threads", type=int, default=None, help="intra-op / num_threads (default: physical cores)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runs", type=int, default=100, help="at least this many timed runs")
    p.add_argument("--min-seconds", type=float, default=1.0, help="and at least this long")
    p.add_argument("--runtime", default="auto", choices=("auto", *RUNTIMES))
    p.add_argument("--data", default=None, metavar="FILE.npz", help="labels + images_<size> for top-1/top-5")
    p.add_argument("--samples", action="store_true", help="include every raw latency sample (ms)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per measuring process (default: none)")
    p.add_argument("--progress", action="store_true", help="one JSON line per finished artifact on stderr")
    p.add_argument("--env-only", action="store_true", help="print the environment and installed runtimes")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--bare", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.bare:
        return _child_main(lambda: _bare(args.bare))
    for name, low in (("threads", 1), ("batch", 1), ("warmup", 0), ("runs", 1), ("min_seconds", 0)):
        value = getattr(args, name)
        if value is not None and value < low:
            parser.error(f"--{name.replace('_', '-')} must be >= {low}")
    if args.one:
        if len(args.artifacts) != 1:
            parser.error("--one takes exactly one ARTIFACT")
        path = args.artifacts[0]
        if args.data:
            return _child_main(lambda: measure_accuracy(path, args.data, args.runtime, args.threads))
        return _child_main(lambda: measure_artifact(path, args.runtime, args.threads, args.batch, args.warmup,
                                                    args.runs, args.min_seconds, args.samples))
    if args.env_only:
        versions, errors = runtime_versions()
        _print_json({"runner_version": RUNNER_VERSION, "env": environment(), "runtimes": versions,
                     "runtime_errors": errors})
        return 0
    if not args.artifacts:
        parser.error("give at least one ARTIFACT (or --env-only)")
    if args.data and not os.path.isfile(args.data):
        parser.error(f"data file not found: {args.data}")

    def progress(done, total, result):
        if args.progress:
            sys.stderr.write(json.dumps({"done": done, "total": total, "artifact": result.get("artifact"),
                                         "error": result.get("error")}) + "\n")
            sys.stderr.flush()

    report = measure(args.artifacts, args.runtime, args.threads, args.batch, args.warmup, args.runs,
                     args.min_seconds, args.data, args.samples, args.timeout, progress)
    _print_json(report)
    return 1 if any("error" in r for r in report["results"]) else 0


def _print_json(data: dict) -> None:
    sys.stdout.write(json.dumps(data, indent=1) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
