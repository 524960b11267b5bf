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

import json
import os
import platform
import sys

import numpy as np

__all__ = ["read_metadata", "open_model", "Model", "RUNTIMES", "cpu_info"]

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


if __name__ == "__main__":  # the measuring entry point is added by the bench stage
    sys.exit("usage: runner.py ARTIFACT ... (see sqnxt-edge bench)")
