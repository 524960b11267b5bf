"""What int8 cost: fp32 vs int8 top-1 on held-out images, and how often the two agree.

Both artifacts run through the team's one runner (`runner.open_model`), with their own metadata-driven
preprocessing, so an int8 TFLite with quantized inputs and an ONNX are judged the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, ExportError

__all__ = ["AccuracyReport", "accuracy_report", "predict_top1", "report_from_predictions"]


@dataclass(frozen=True)
class AccuracyReport:
    """Top-1 in percent; `drop` in points (fp32 - int8, positive = int8 worse); `agreement` in percent."""

    top1_fp32: float
    top1_int8: float
    drop: float
    agreement: float
    n: int

    def to_dict(self) -> dict:
        """The report as JSON-ready data."""
        return asdict(self)

    def within(self, max_drop: float) -> bool:
        """True when int8 loses at most `max_drop` top-1 points."""
        return self.drop <= max_drop + 1e-9


def predict_top1(artifact: Path, images: np.ndarray, model=None) -> np.ndarray:
    """Top-1 class per image; images are resized to the artifact's own input size first."""
    from ..data import resize_uint8
    from ..runner import RunnerError, open_model

    try:
        model = model or open_model(str(artifact))
        x = resize_uint8(images, model.input_size)
        return model.predict(x).argmax(axis=1)
    except RunnerError as exc:
        raise ExportError(str(exc)) from None


def report_from_predictions(p32: np.ndarray, p8: np.ndarray, labels: np.ndarray) -> AccuracyReport:
    """The report from top-1 classes already computed (one top-1 rule: argmax, ties to the lowest index)."""
    labels = np.asarray(labels).reshape(-1)
    top32 = float(np.mean(p32 == labels) * 100.0)
    top8 = float(np.mean(p8 == labels) * 100.0)
    return AccuracyReport(
        top1_fp32=round(top32, 3),
        top1_int8=round(top8, 3),
        drop=round(top32 - top8, 3),
        agreement=round(float(np.mean(p32 == p8) * 100.0), 3),
        n=len(labels),
    )


def accuracy_report(fp32_artifact: Path, int8_artifact: Path, images: np.ndarray, labels: np.ndarray) -> AccuracyReport:
    """Evaluate both artifacts on the same uint8 NHWC images (any size; resized per artifact) and labels."""
    if not isinstance(images, np.ndarray) or images.ndim != 4 or images.dtype != np.uint8 or len(images) == 0:
        raise DataError(
            f"evaluation images must be a non-empty uint8 array (N, H, W, C), got {getattr(images, 'shape', None)}"
        )
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(images):
        raise DataError(f"{len(images)} evaluation images but {len(labels)} labels")
    return report_from_predictions(
        predict_top1(Path(fp32_artifact), images), predict_top1(Path(int8_artifact), images), labels
    )
