"""Static int8 quantization of an fp32 ONNX artifact with onnxruntime.quantization.

Pipeline, one step per function: `prepare` (quant_pre_process: shape inference + optimization) -> `calibrate`
(tensor ranges from real images) -> `quantize_prepared` (QDQ or QOperator with those ranges) -> `finish` (the fp32
artifact's metadata, precision="int8", atomic write, sidecar).

Why we calibrate ourselves: ORT 1.31's `quantize_static(calibrate_method=Entropy)` does not forward the histogram
bin count, so entropy silently equals MinMax (byte-identical files). We build the calibrator with `num_bins`
and hand the ranges to quantize_static through its calibration cache.
"""

from __future__ import annotations

import io
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import atomic_write, embed_onnx_metadata, write_sidecar
from ..errors import ExportError, first_line
from ..layer_names import short_scope
from ..progress import progress_bar
from .calibration import CalibrationReader, check_images
from .config import Int8Config

__all__ = [
    "quantize_onnx",
    "prepare",
    "calibrate",
    "quantize_prepared",
    "finish",
    "resolve_exclude",
    "open_fp32",
    "Int8Session",
    "CALIB_CHUNK",
]

CALIB_CHUNK = 64  # images per collect_data call: bounds the memory histogram calibrators hold at 227 px
_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
_QTYPES = {"uint8": "QUInt8", "int8": "QInt8"}
_FORMATS = {"qdq": "QDQ", "qoperator": "QOperator"}
# ORT's entropy search is a Python loop over thresholds x quantized bins: 512 bins keeps it near a minute for
# SqNxt-23's ~270 tensors while still giving it thresholds to choose from (128 bins = MinMax exactly).
_DEFAULT_BINS = {"minmax": 0, "entropy": 512, "percentile": 2048}
_STEM_OPS = ("Conv",)
_HEAD_OPS = ("Conv", "Gemm", "MatMul")
_QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def open_fp32(path: Path):
    """The fp32 artifact through the team's one inference wrapper."""
    from ..runner import RunnerError, open_model

    try:
        return open_model(str(path))
    except RunnerError as exc:
        raise ExportError(str(exc)) from None


def prepare(fp32_onnx: Path, dest: Path) -> Path:
    """quant_pre_process (shape inference + ORT graph optimization), then name every node so `exclude` can."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(fp32_onnx), str(dest), skip_symbolic_shape=True)
    except Exception as exc:  # ORT raises several unrelated types here
        raise ExportError(f"{fp32_onnx.name}: onnxruntime pre-processing failed: {first_line(exc)}") from None
    model = onnx.load(str(dest))
    used = {n.name for n in model.graph.node if n.name}
    changed = False
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in used:
                name += "_"
            node.name, changed = name, True
            used.add(name)
    if changed:
        onnx.save(model, str(dest))
    return dest


def resolve_exclude(model_path: Path, exclude: tuple[str, ...]) -> list[str]:
    """Node names to keep in fp32: "stem" = the first Conv, "head" = the last Conv/Gemm/MatMul, others verbatim."""
    if not exclude:
        return []
    import onnx

    nodes = onnx.load(str(model_path), load_external_data=False).graph.node
    names: list[str] = []
    for item in exclude:
        if item == "stem":
            names += [n.name for n in nodes if n.op_type in _STEM_OPS][:1]
        elif item == "head":
            names += [n.name for n in nodes if n.op_type in _HEAD_OPS][-1:]
        else:
            names.append(item)
    return names


def calibrate(
    prepared: Path, fp32_model, images: np.ndarray, config: Int8Config, workdir: Path, progress: bool = False
):
    """Tensor ranges (ORT `TensorsData`) of every float tensor over the calibration images."""
    from onnxruntime.quantization import CalibrationMethod, create_calibrator

    method = getattr(CalibrationMethod, _METHODS[config.calib_method])
    options: dict[str, Any] = {"num_bins": config.num_bins or _DEFAULT_BINS[config.calib_method]}
    if config.calib_method == "entropy":
        options["num_quantized_bins"] = 128
    if config.calib_method == "percentile":
        options.update(percentile=config.percentile, symmetric=False)
    try:
        calibrator = create_calibrator(
            prepared,
            None,
            augmented_model_path=str(workdir / "augmented.onnx"),
            calibrate_method=method,
            extra_options=options,
        )
        with (
            progress_bar(f"calibrating ({config.calib_method})", len(images), progress) as advance,
            redirect_stdout(sys.stderr if progress else io.StringIO()),
        ):  # ORT prints; keep stdout for --json
            # ORT's histogram collector stacks per-run outputs with np.asarray: every run needs the same batch size.
            reader = CalibrationReader(
                fp32_model, images, batch=16 if config.calib_method == "minmax" else 1, on_batch=advance
            )
            for start in range(0, len(images), CALIB_CHUNK):
                reader.set_range(start, start + CALIB_CHUNK)
                calibrator.collect_data(reader)
            return calibrator.compute_data()
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"calibration failed: {first_line(exc)}") from None


def quantize_prepared(prepared: Path, ranges, config: Int8Config, dest: Path, workdir: Path) -> Path:
    """quantize_static on the prepared model with precomputed ranges (via ORT's calibration cache)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import save_tensors_data

    cache = workdir / f"ranges-{config.calib_method}.json"
    if not cache.exists():
        save_tensors_data(ranges, cache)
    extra = dict(config.extra)
    try:
        quantize_static(
            str(prepared),
            str(dest),
            calibration_data_reader=None,
            quant_format=getattr(QuantFormat, _FORMATS[config.quant_format]),
            per_channel=config.per_channel,
            reduce_range=config.reduce_range,
            activation_type=getattr(QuantType, _QTYPES[config.activation_type]),
            weight_type=getattr(QuantType, _QTYPES[config.weight_type]),
            nodes_to_exclude=resolve_exclude(prepared, config.exclude),
            calibrate_method=getattr(CalibrationMethod, _METHODS[config.calib_method]),
            calibration_cache_path=str(cache),
            extra_options=extra,
        )
    except Exception as exc:
        raise ExportError(f"int8 quantization ({config.label}) failed: {first_line(exc)}") from None
    return dest


def int8_metadata(base: dict, config: Int8Config) -> dict:
    """`base` (the artifact metadata the export builds, or the fp32 file's) with precision and the recipe added."""
    return {**base, "precision": "int8", "quantization": config.to_dict()}


def finish(quantized: Path, fp32_model, config: Int8Config, out: Path, meta: dict | None = None) -> Path:
    """Embed the int8 metadata (`meta`, default the fp32 artifact's, plus precision and recipe) in the model's
    metadata_props and its sidecar; write both atomically."""
    import onnx

    model = compact(onnx.load(str(quantized)))
    meta = int8_metadata(fp32_model.meta if meta is None else meta, config)
    embed_onnx_metadata(model, meta)
    atomic_write(out, lambda tmp: onnx.save(model, str(tmp)))
    write_sidecar(out, meta)
    return out


def _rewrite_stem(prepared: Path, dest: Path) -> Path:
    import onnx

    from .stem_s2d import space_to_depth_stem

    model = onnx.load(str(prepared))
    if space_to_depth_stem(model) is None:
        raise ExportError("the s2d stem needs a stride-2 convolution over <= 4 channels reading the input directly")
    onnx.save(model, str(dest))
    return dest


class Int8Session:
    """One fp32 ONNX and its calibration images, quantized with any number of configurations: pre-processing runs
    once and calibration once per method, so each further configuration costs one quantize_static (what the default
    choice, its fallbacks and `--int8-tune` all need)."""

    def __init__(self, fp32_onnx: Path, calib_images: np.ndarray, progress: bool = False):
        self.fp32_onnx = Path(fp32_onnx)
        self.fp32 = open_fp32(self.fp32_onnx)
        self.images = check_images(calib_images, self.fp32.input_size, self.fp32.channels)
        self.progress = progress
        self._tmp = tempfile.TemporaryDirectory(prefix="sqnxt-int8-")
        self.work = Path(self._tmp.name)
        self._prepared: dict[bool, Path] = {}
        self._ranges: dict[tuple[str, bool], object] = {}
        self._count = 0

    def __enter__(self) -> Int8Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Delete the working folder (prepared model, calibration caches)."""
        self._tmp.cleanup()

    def prepared(self, s2d_stem: bool = False) -> Path:
        """The pre-processed fp32 model (shape inference + optimization), made once; with `s2d_stem`, its stem
        rewritten as space-to-depth + a stride-1 convolution (an ExportError when the stem is not one it can)."""
        if s2d_stem not in self._prepared:
            if not s2d_stem:
                self._prepared[False] = prepare(self.fp32_onnx, self.work / "prepared.onnx")
            else:
                self._prepared[True] = _rewrite_stem(self.prepared(), self.work / "prepared-s2d.onnx")
        return self._prepared[s2d_stem]

    def can_s2d(self) -> bool:
        """Whether this model's stem can be rewritten as space-to-depth (`stem_s2d`)."""
        try:
            self.prepared(True)
        except ExportError:
            return False
        return True

    def ranges(self, config: Int8Config):
        """Tensor ranges for `config`'s calibration method (and stem form), calibrated once per pair."""
        key = (config.calib_method, config.s2d_stem)
        if key not in self._ranges:
            work = self.work / ("s2d" if config.s2d_stem else "plain")
            work.mkdir(exist_ok=True)
            self._ranges[key] = calibrate(
                self.prepared(config.s2d_stem), self.fp32, self.images, config, work, self.progress
            )
        return self._ranges[key]

    def quantize(self, config: Int8Config, out: Path, meta: dict | None = None) -> Path:
        """Write the int8 model of `config` to `out` (atomic, with its sidecar; `meta`: see `finish`)."""
        self._count += 1
        work = self.work / ("s2d" if config.s2d_stem else "plain")
        raw = quantize_prepared(
            self.prepared(config.s2d_stem), self.ranges(config), config, self.work / f"q{self._count}.raw.onnx", work
        )
        return finish(raw, self.fp32, config, Path(out), meta)


def compact(model):
    """Drop what inference never reads, so the int8 file is about a quarter of the fp32 one: shape annotations,
    all-zero zero points of int8 weights and int32 biases (DequantizeLinear defaults to 0), the long generated
    tensor names and the Quantize/DequantizeLinear node names (graph input and output names, and the layer names of
    the other nodes, are kept)."""
    from onnx import numpy_helper

    graph = model.graph
    del graph.value_info[:]
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    dropped = set()
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and len(node.input) == 3 and node.input[0] in inits:
            zp = inits.get(node.input[2])
            if (
                zp is not None
                and zp.data_type in (3, 6)
                and inits[node.input[0]].data_type == zp.data_type
                and consumers.get(zp.name) == 1
                and not numpy_helper.to_array(zp).any()
            ):
                del node.input[2]
                dropped.add(zp.name)
    if dropped:
        keep = [t for t in graph.initializer if t.name not in dropped]
        del graph.initializer[:]
        graph.initializer.extend(keep)
    fixed = {v.name for v in graph.input} | {v.name for v in graph.output}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in fixed:
            return name
        if name not in names:
            names[name] = f"t{len(names)}"
        return names[name]

    for t in graph.initializer:
        t.name = short(t.name)
    for v in graph.input:
        v.name = short(v.name)
    for node in graph.node:
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
        if node.op_type in _QDQ_OPS or not node.name:
            node.ClearField("name")
        else:  # onnxruntime's profiler reports a fused kernel under this name: `sqnxt-edge profile` finds its layer
            node.name = short_scope(node.name)
        node.ClearField("doc_string")
    return model


def quantize_onnx(
    fp32_onnx: Path,
    out: Path,
    calib_images: np.ndarray,
    config: Int8Config,
    progress: bool = False,
    meta: dict | None = None,
) -> Path:
    """Calibrate on `calib_images` (uint8 NHWC at the model input) and write the int8 ONNX to `out` (atomic)."""
    with Int8Session(fp32_onnx, calib_images, progress) as session:
        return session.quantize(config, out, meta)
