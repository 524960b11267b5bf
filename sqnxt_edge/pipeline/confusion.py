"""Which classes a file confuses: the top-1 classes of the exported fp32 and int8 files on the labelled test split,
counted per (true, predicted) class, here (through the runner's `Model`, the same preprocessing as everywhere).
Per-class collapse after int8 shows here while the overall top-1 still looks fine."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import runner
from ..data import load_dataset, resize_uint8
from ..errors import SqnxtError
from ..export import ExportResult
from .figures import confusion_matrix

__all__ = ["confusion_panels", "MAX_IMAGES"]

MAX_IMAGES = 10_000  # a seeded sample of a larger split: the picture does not need more


def _files(exported: ExportResult) -> list[dict]:
    """The first runnable file of each precision export made, fp32 first (an .ort is its .onnx again)."""
    seen: dict[str, dict] = {}
    for a in exported.artifacts:
        path = Path(exported.output_dir) / a["path"]
        if a.get("format") == "ort" or a.get("precision") in seen or not path.is_file():
            continue
        if path.suffix.lower() in runner.SUFFIXES:
            seen[a["precision"]] = {**a, "file": path}
    order = sorted(seen, key=lambda p: (p != "fp32", p))
    return [seen[p] for p in order]


def confusion_panels(
    exported: ExportResult, data: str | None, data_dir, channels: int
) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """([(title, counts[true, predicted])] for the fp32 and int8 files, class names); ([], []) without labelled
    data or when no file runs here."""
    if not data:
        return [], []
    try:
        images = load_dataset(data, "test", data_dir, channels=channels).sample(MAX_IMAGES)
    except SqnxtError:
        return [], []
    panels = []
    for a in _files(exported):
        try:
            model = runner.open_model(str(a["file"]))
            logits = model.predict(resize_uint8(images.images, model.input_size))
        except runner.RunnerError:
            continue
        if logits.shape[1] != len(images.classes):
            continue
        counts = confusion_matrix(runner.top_classes(logits), images.labels, len(images.classes))
        top1 = 100.0 * np.trace(counts) / max(int(counts.sum()), 1)
        title = f"{a['file'].name}\n{model.runtime}: top-1 {top1:.2f}% of {len(images)} {data} test images"
        panels.append((title, counts))
    return panels, list(map(str, images.classes))
