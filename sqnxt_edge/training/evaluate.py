"""`evaluate(artifact, data)`: top-1 / top-5 of a checkpoint (torch) or an exported .onnx / .ort / .tflite.

Checkpoints run through the shared `preprocess`; exported artifacts run through the device-side runner
(`sqnxt_edge.runner`), which normalizes from the artifact's own metadata: the figure is what an app would see.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import runner
from ..checkpoint import load_checkpoint
from ..data import load_dataset, resize_uint8
from ..errors import CheckpointError, DataError, DeviceError
from ..formats import ALL_FORMATS, format_of
from .distributed import pick_device
from .metrics import topk_correct, torch_logits

__all__ = ["EvalResult", "evaluate"]


@dataclass
class EvalResult:
    """Top-1/top-5 of a checkpoint or artifact on a split, where it ran and how long it took."""

    top1: float  # percent
    top5: float  # percent
    n: int
    correct1: int
    correct5: int
    artifact: str
    kind: str  # checkpoint | onnx | ort | tflite | pte
    model_name: str | None
    dataset: str
    split: str
    input_size: int
    runtime: str
    seconds: float
    device: str | None = None  # the board it ran on (None: this machine)
    env: dict | None = None  # that board's environment, as its runner read it
    per_class: list[dict] | None = None  # {index, label, n, correct, top1} per class, with per_class=True

    @property
    def emulated(self) -> bool:
        """True when it ran on an emulated board."""
        return bool(self.env and self.env.get("emulated"))

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (board fields only when a board was used)."""
        d = asdict(self)
        if self.per_class is None:
            d.pop("per_class")
        if self.device is None:
            d.pop("device"), d.pop("env")
        else:
            d["emulated"] = self.emulated
        return d


def evaluate(
    artifact: str | Path,
    data: str | None = None,
    split: str = "test",
    data_dir: str | Path | None = None,
    batch_size: int = 256,
    model: str | None = None,
    num_classes: int | None = None,
    input_size: int | None = None,
    device: str = "auto",
    runtime: str = "auto",
    threads: int | None = None,
    limit: int | None = None,
    dataset: str | None = None,
    board: str | None = None,
    devices_file: str | Path | None = None,
    per_class: bool = False,
) -> EvalResult:
    """Accuracy of `artifact` on a dataset split. `data=None` takes the dataset recorded with the artifact;
    `model`/`num_classes`/`input_size`/`dataset` describe a foreign file (state_dict or whole pickled model; `dataset`:
    what it was trained on, default `data`). `limit` evaluates a seeded sample. `device` is PyTorch's
    (checkpoints); `board` a registered device an exported artifact runs on instead. `per_class` adds each class's
    top-1 (`EvalResult.per_class`)."""
    path = Path(artifact)
    if not path.is_file():
        raise CheckpointError(f"artifact not found: {path}")
    fmt = format_of(path)
    started = time.perf_counter()
    if fmt is None:
        known = ", ".join(s for f in ALL_FORMATS.values() for s in f.suffixes)
        raise CheckpointError(
            f"{path.name}: cannot evaluate {path.suffix or 'a file without suffix'}; give a {known} file"
        )
    if board not in (None, "local"):
        if fmt.name == "pytorch":
            raise CheckpointError(
                f"{path.name}: checkpoints evaluate on this machine; export it to evaluate on {board}"
            )
        result = _eval_on_board(
            path, fmt.name, data, split, data_dir, runtime, threads, limit, board, devices_file, started
        )
    elif fmt.name == "pytorch":
        foreign = {"model": model, "num_classes": num_classes, "input_size": input_size, "dataset": dataset or data}
        result = _eval_checkpoint(path, data, split, data_dir, batch_size, foreign, device, limit, started)
    else:
        result = _eval_exported(path, fmt.name, data, split, data_dir, batch_size, runtime, threads, limit, started)
    if not per_class:
        result.per_class = None
    return result


def _dataset(data, recorded, what: Path, split, data_dir, channels, limit):
    name = data or recorded
    if not name:
        raise DataError(f"{what.name} does not record its dataset: name it with --data")
    images = load_dataset(name, split, data_dir, channels=channels)
    return images.sample(limit) if limit else images


def _result(logits, images, path, kind, model_name, split, input_size, runtime, started) -> EvalResult:
    logits = np.asarray(logits, dtype=np.float32)
    if logits.ndim != 2 or logits.shape[1] != len(images.classes):
        raise DataError(
            f"{path.name} predicts {logits.shape[-1] if logits.ndim else '?'} classes but "
            f"{images.name} has {len(images.classes)}"
        )
    hits = topk_correct(logits, images.labels)
    n = len(images)
    counts, correct = runner.per_class_counts(runner.top_classes(logits), images.labels, len(images.classes))
    per_class = [
        {"index": i, "label": str(c), "n": int(counts[i]), "correct": int(correct[i]),
         "top1": round(100.0 * correct[i] / counts[i], 3) if counts[i] else None}
        for i, c in enumerate(images.classes)
    ]  # fmt: skip
    return EvalResult(
        top1=100.0 * hits[1] / n,
        top5=100.0 * hits[5] / n,
        n=n,
        correct1=hits[1],
        correct5=hits[5],
        artifact=str(path),
        kind=kind,
        model_name=model_name,
        dataset=images.name,
        split=split,
        input_size=int(input_size),
        runtime=runtime,
        seconds=round(time.perf_counter() - started, 3),
        per_class=per_class,
    )


def _eval_checkpoint(path, data, split, data_dir, batch_size, foreign, device, limit, started):
    ckpt = load_checkpoint(path, data_dir=data_dir, **foreign)
    images = _dataset(
        data,
        ckpt.dataset,
        path,
        split,
        data_dir or (ckpt.data_dir if not data or data == ckpt.dataset else None),
        ckpt.in_channels,
        limit,
    )
    if ckpt.num_classes != len(images.classes):
        raise DataError(f"{path.name} has {ckpt.num_classes} classes but {images.name} has {len(images.classes)}")
    # a bare state_dict carries no normalization: use the dataset's
    mean, std = (ckpt.mean, ckpt.std) if ckpt.dataset else (images.mean, images.std)
    dev = pick_device(device)
    net = ckpt.build_model().to(dev)
    logits = torch_logits(net, images.images, ckpt.input_size, mean, std, batch_size, dev)
    return _result(
        logits.numpy(),
        images,
        path,
        "checkpoint",
        ckpt.model_name,
        split,
        ckpt.input_size,
        f"torch-{dev.type}",
        started,
    )


def _eval_exported(path, kind, data, split, data_dir, batch_size, runtime, threads, limit, started):
    try:
        model = runner.open_model(str(path), runtime=runtime, threads=threads)
    except runner.RunnerError as exc:
        raise CheckpointError(str(exc)) from None
    channels = int(model.meta.get("in_channels", 3))
    images = _dataset(data, model.meta.get("dataset"), path, split, data_dir, channels, limit)
    try:
        logits = model.predict(resize_uint8(images.images, model.input_size), batch_size)
    except runner.RunnerError as exc:
        raise CheckpointError(str(exc)) from None
    return _result(
        logits,
        images,
        path,
        kind,
        model.meta.get("model_name"),
        split,
        model.input_size,
        f"{model.runtime} {model.runtime_version}",
        started,
    )


def _eval_on_board(path, kind, data, split, data_dir, runtime, threads, limit, board, devices_file, started):
    """The artifact runs on the board through the runner (the same preprocessing from its metadata); the logits come
    back and are scored here exactly like a local evaluation."""
    from ..devices import Target

    target = Target(board, devices_file)
    assert target.device is not None  # read before any work: an unknown board fails fast (DeviceError)
    meta = runner.read_metadata(str(path))
    if "input_size" not in meta:  # no sidecar: the model file's own metadata
        try:
            meta = runner.open_model(str(path)).meta
        except runner.RunnerError as exc:
            raise CheckpointError(f"{path.name}: no .meta.json sidecar and {exc}") from None
    size = int(meta["input_size"])
    images = _dataset(data, meta.get("dataset"), path, split, data_dir, int(meta.get("in_channels") or 3), limit)
    with tempfile.TemporaryDirectory(prefix="sqnxt-eval-") as tmp:
        npz = Path(tmp) / "data.npz"
        arrays = {"labels": images.labels.astype(np.int64), f"images_{size}": resize_uint8(images.images, size)}
        np.savez(npz, **arrays)
        settings = runner.Settings(runtime=runtime, threads=threads, latency=False, logits=True)
        report = target.run([path], settings, npz)
    result = (report.get("results") or [{}])[0]
    if "error" in result or "logits" not in result:
        raise DeviceError(f"{path.name} on {board}: {result.get('error', 'the runner returned no logits')}")
    out = _result(
        result["logits"],
        images,
        path,
        kind,
        meta.get("model_name"),
        split,
        size,
        f"{result.get('runtime')} {result.get('runtime_version')}",
        started,
    )
    out.device, out.env = board, report.get("env")
    return out
