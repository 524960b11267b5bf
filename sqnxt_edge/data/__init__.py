"""Datasets as uint8 image sets with their class names and normalization; no downloads, ever."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from .base import ImageSet, preprocess, resize_uint8
from .digits import load_digits

__all__ = ["ImageSet", "preprocess", "resize_uint8", "load_dataset", "DATASETS", "default_input_size"]

# name -> default model input size
DATASETS: dict[str, int] = {"digits": 32}


def default_input_size(name: str) -> int:
    return DATASETS.get(name, 224)


def load_dataset(name: str, split: str = "train", data_dir: str | Path | None = None, channels: int = 3,
                 image_size: int | None = None) -> ImageSet:
    """Load `split` ("train" or "test") of a dataset by name."""
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}; use 'train' or 'test'")
    if name == "digits":
        return load_digits(split, channels=channels)
    raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
