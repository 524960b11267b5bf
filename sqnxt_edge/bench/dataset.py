"""`--data DATASET`: the test split resized once per input size, in the npz the runner reads (labels, images_<size>)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import runner
from ..artifacts import atomic_write
from ..errors import SqnxtError
from ..formats import format_of

__all__ = ["input_size_of", "write_data_npz"]


def input_size_of(path: Path) -> tuple[int, int] | None:
    """(input size, channels) of an artifact or checkpoint, or None when it cannot be read (its child will say why)."""
    try:
        fmt = format_of(path)
        if fmt is not None and fmt.name == "pytorch":
            from ..checkpoint import load_checkpoint

            ckpt = load_checkpoint(path)
            return ckpt.input_size, ckpt.in_channels
        meta = runner.read_metadata(str(path))
        if "input_size" in meta:
            return int(meta["input_size"]), int(meta.get("in_channels") or 3)
        model = runner.open_model(str(path))
        return model.input_size, model.channels
    except (SqnxtError, runner.RunnerError, OSError, ValueError, TypeError):
        return None


def write_data_npz(dataset: str, artifacts: list[Path], dest: str | os.PathLike, data_dir: str | None = None) -> Path:
    """Write `labels` + `images_<size>` for every input size the artifacts need."""
    from ..data import load_dataset, resize_uint8

    shapes = {s for s in (input_size_of(Path(a)) for a in artifacts) if s}
    channels = max((c for _, c in shapes), default=3)
    images = load_dataset(dataset, split="test", data_dir=data_dir, channels=channels)
    arrays = {"labels": images.labels.astype(np.int64)}
    for size in sorted({s for s, _ in shapes}):
        arrays[f"images_{size}"] = resize_uint8(images.images, size)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub checks **arrays against allow_pickle: bool

    return atomic_write(dest, write)
