"""What an export is asked to do (`ExportConfig`) and what it produced (`ExportResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ExportError
from ..formats import parse_formats
from ..quantize.config import CALIB_METHODS

__all__ = ["ExportConfig", "ExportResult", "TOLERANCES", "DEFAULT_OPSET"]

DEFAULT_OPSET = 17

# Parity criteria against PyTorch on the verification images, per precision (written into the manifest):
# - fp32: every logit within 1e-4 (max_abs).
# - fp16: weights (and in ONNX activations) carry 11-bit mantissas, so logits may move by ~1% of their scale: every
#   logit within 2% of the largest |logit| (at least 0.02), and the top-1 class must agree on every "decisive" image,
#   i.e. one whose PyTorch top-1/top-2 margin exceeds twice that tolerance (near-ties may flip; they are counted in
#   the reported agreement but do not fail the check).
# - int8: logits change by design; >= 95% top-1 agreement with PyTorch, plus the accuracy drop on held-out data
#   against --max-drop (quantize.accuracy_report).
TOLERANCES: dict[str, dict[str, float | bool | None]] = {
    "fp32": {"max_abs": 1e-4, "rel_to_max_logit": None, "min_agreement": None, "decisive_agreement": True},
    "fp16": {"max_abs": 2e-2, "rel_to_max_logit": 2e-2, "min_agreement": None, "decisive_agreement": True},
    "int8": {"max_abs": None, "rel_to_max_logit": None, "min_agreement": 0.95, "decisive_agreement": False},
}


@dataclass
class ExportConfig:
    """Typed options of `export()`; the CLI maps its flags one to one onto these fields."""

    formats: list[str] = field(default_factory=lambda: ["onnx"])
    int8: bool = False
    fp16: bool = False
    opset: int = DEFAULT_OPSET
    batch: int | None = None  # fixed batch (default 1); exclusive with dynamic_batch
    dynamic_batch: bool = False
    simplify: bool = True
    verify: bool = True
    verify_size: int = 500  # test images used for parity (all of them when fewer)
    calib_data: str | None = None
    calib_size: int | None = None  # default 300 (with --int8)
    calib_method: str = "minmax"
    int8_tune: bool = False
    max_drop: float = 1.0
    eval_data: str | None = None
    data_dir: str | None = None
    # int8 TFLite with float32 input/output (QUANTIZE / DEQUANTIZE inside the file): loads in LiteRT.js too, and apps
    # feed it like the fp32 file. False (--int8-io): int8 input and output, for integer-only pipelines
    tflite_float_io: bool = True
    output_dir: str | Path | None = None
    seed: int = 0
    lock_wait: float = 600.0  # seconds to wait for another export into the same folder (not an artifact property)
    int8_target: str = "portable"  # the CPU classes the int8 files must be right on (quantize.targets)
    verify_on: str | None = None  # a registered board (real or emulated) every artifact must also pass on
    devices_file: str | Path | None = None

    def __post_init__(self) -> None:
        self.formats = parse_formats(self.formats)
        if self.batch is not None and self.dynamic_batch:
            raise ExportError("--batch and --dynamic-batch exclude each other: pick one")
        if self.batch is not None and self.batch < 1:
            raise ExportError(f"--batch must be at least 1, got {self.batch}")
        if not 7 <= int(self.opset) <= 21:
            raise ExportError(f"--opset must be between 7 and 21, got {self.opset}")
        if self.calib_method not in CALIB_METHODS:
            raise ExportError(f"--calib-method must be one of {', '.join(CALIB_METHODS)}, got {self.calib_method!r}")
        if self.calib_size is not None and self.calib_size < 1:
            raise ExportError(f"--calib-size must be at least 1, got {self.calib_size}")
        if not self.lock_wait >= 0:
            raise ExportError(f"--lock-wait must be >= 0 seconds, got {self.lock_wait}")
        if self.max_drop < 0:
            raise ExportError(f"--max-drop must be >= 0 points, got {self.max_drop}")
        from ..quantize.targets import PORTABLE, check_target

        self.int8_target = check_target(self.int8_target)
        if not self.int8:
            used = [
                flag
                for flag, on in (
                    ("--int8-tune", self.int8_tune),
                    ("--calib-data", self.calib_data),
                    ("--calib-size", self.calib_size is not None),
                    ("--eval-data", self.eval_data),
                    ("--int8-io", not self.tflite_float_io),
                    ("--calib-method", self.calib_method != "minmax"),
                    ("--int8-target", self.int8_target != PORTABLE),
                )
                if on
            ]
            if used:
                raise ExportError(f"{', '.join(used)} only apply with --int8")
        self.calib_size = 300 if self.calib_size is None else self.calib_size
        if self.int8_tune and "onnx" not in self.formats:
            raise ExportError("--int8-tune tunes the ONNX int8 model: add --format onnx")
        if not self.tflite_float_io and "tflite" not in self.formats:
            raise ExportError("--int8-io applies to --format tflite")
        if self.verify_on and not self.verify:
            raise ExportError("--verify-on verifies on a board too: it cannot go with --no-verify")

    @property
    def fixed_batch(self) -> int | None:
        """The batch baked into the graph, or None for a dynamic batch."""
        return None if self.dynamic_batch else (self.batch or 1)

    @property
    def precisions(self) -> list[str]:
        """The precisions to write, fp32 first (fp16 and int8 are checked against it)."""
        return ["fp32"] + (["fp16"] if self.fp16 else []) + (["int8"] if self.int8 else [])

    def to_dict(self) -> dict[str, Any]:
        """What the manifest records: how the artifacts were made (not the lock wait; the board only when used)."""
        board_only = ("verify_on", "devices_file")
        return {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in self.__dict__.items()
            if k != "lock_wait" and (k not in board_only or v is not None)
        }


@dataclass
class ExportResult:
    """The written artifacts (manifest entries), the manifest's path and the whole manifest."""

    output_dir: Path
    manifest_path: Path
    manifest: dict[str, Any]
    artifacts: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    timings: list[dict[str, Any]] = field(default_factory=list)  # [{"step", "seconds"}] in order

    @property
    def seconds(self) -> float:
        """Total time of the export's steps."""
        return round(sum(t["seconds"] for t in self.timings), 3)

    def paths(self) -> list[Path]:
        """The written artifacts' paths, in manifest order."""
        return [self.output_dir / a["path"] for a in self.artifacts]
