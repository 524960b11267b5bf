"""What int8 cost: fp32 vs int8 top-1 on held-out images, and how often the two agree.

Both artifacts run through the team's one runner (`runner.open_model`), with their own metadata-driven
preprocessing, so an int8 TFLite with quantized inputs and an ONNX are judged the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, ExportError

__all__ = ["AccuracyReport", "ClassAccuracy", "accuracy_report", "predict_top1", "report_from_predictions"]


@dataclass(frozen=True)
class ClassAccuracy:
    """One class's top-1 in percent, fp32 and int8; `flagged` when int8 lost more than the budget on it."""

    index: int
    label: str
    n: int
    top1_fp32: float
    top1_int8: float
    drop: float
    flagged: bool


@dataclass(frozen=True)
class AccuracyReport:
    """Top-1 in percent; `drop` in points (fp32 - int8, positive = int8 worse); `agreement` in percent; each
    class's figures in `per_class` (int8 can collapse a class while the overall top-1 looks fine)."""

    top1_fp32: float
    top1_int8: float
    drop: float
    agreement: float
    n: int
    per_class: tuple[ClassAccuracy, ...] = ()
    max_drop: float | None = None  # the budget classes were flagged against

    def to_dict(self) -> dict:
        """The report as JSON-ready data (`flagged_classes`: the labels of the classes over the budget)."""
        out = asdict(self)
        out["per_class"] = [asdict(c) for c in self.per_class]
        out["flagged_classes"] = [c.label for c in self.flagged]
        return out

    @property
    def flagged(self) -> list[ClassAccuracy]:
        """The classes int8 lost more than the budget on."""
        return [c for c in self.per_class if c.flagged]

    def within(self, max_drop: float) -> bool:
        """True when int8 loses at most `max_drop` top-1 points."""
        return self.drop <= max_drop + 1e-9


def predict_top1(artifact: Path, images: np.ndarray, model=None) -> np.ndarray:
    """Top-1 class per image (the one top-1 rule: ties to the lowest index); images are resized to the artifact's
    own input size first."""
    from ..data import resize_uint8
    from ..runner import RunnerError, open_model, top_classes

    try:
        model = model or open_model(str(artifact))
        x = resize_uint8(images, model.input_size)
        return top_classes(model.predict(x))
    except RunnerError as exc:
        raise ExportError(str(exc)) from None


def _per_class(p32, p8, labels, classes, max_drop) -> tuple[ClassAccuracy, ...]:
    from ..runner import per_class_counts

    count = max(len(classes or ()), int(labels.max()) + 1 if len(labels) else 0)
    n, ok32 = per_class_counts(p32, labels, count)
    _, ok8 = per_class_counts(p8, labels, count)
    rows = []
    for i in range(count):
        if n[i] == 0:
            continue
        a32, a8 = 100.0 * ok32[i] / n[i], 100.0 * ok8[i] / n[i]
        label = str(classes[i]) if classes is not None and i < len(classes) else str(i)
        flagged = bool(max_drop is not None and a32 - a8 > max_drop + 1e-9)
        rows.append(
            ClassAccuracy(
                i, label, int(n[i]), round(float(a32), 3), round(float(a8), 3), round(float(a32 - a8), 3), flagged
            )
        )
    return tuple(rows)


def report_from_predictions(
    p32: np.ndarray,
    p8: np.ndarray,
    labels: np.ndarray,
    classes: list[str] | None = None,
    max_drop: float | None = None,
) -> AccuracyReport:
    """The report from top-1 classes already computed (`runner.top_classes`: ties to the lowest index); each class's
    figures too, flagged when int8 lost more than `max_drop` points on it."""
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    p32, p8 = np.asarray(p32).reshape(-1), np.asarray(p8).reshape(-1)
    top32 = float(np.mean(p32 == labels) * 100.0)
    top8 = float(np.mean(p8 == labels) * 100.0)
    return AccuracyReport(
        top1_fp32=round(top32, 3),
        top1_int8=round(top8, 3),
        drop=round(top32 - top8, 3),
        agreement=round(float(np.mean(p32 == p8) * 100.0), 3),
        n=len(labels),
        per_class=_per_class(p32, p8, labels, classes, max_drop),
        max_drop=max_drop,
    )


def accuracy_report(
    fp32_artifact: Path,
    int8_artifact: Path,
    images: np.ndarray,
    labels: np.ndarray,
    classes: list[str] | None = None,
    max_drop: float | None = None,
) -> AccuracyReport:
    """Evaluate both artifacts on the same uint8 NHWC images (any size; resized per artifact) and labels; classes
    that lost more than `max_drop` points are flagged."""
    if not isinstance(images, np.ndarray) or images.ndim != 4 or images.dtype != np.uint8 or len(images) == 0:
        raise DataError(
            f"evaluation images must be a non-empty uint8 array (N, H, W, C), got {getattr(images, 'shape', None)}"
        )
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(images):
        raise DataError(f"{len(images)} evaluation images but {len(labels)} labels")
    return report_from_predictions(
        predict_top1(Path(fp32_artifact), images),
        predict_top1(Path(int8_artifact), images),
        labels,
        classes,
        max_drop,
    )
