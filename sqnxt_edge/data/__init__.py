"""Datasets as uint8 image sets with their class names and normalization; no downloads, ever.

Each dataset is a row of facts (`DatasetInfo`): default input size, mean/std, the augmentation it trains with, the
recipe that suits it, and the loader. Loaders read the official on-disk formats from `data_dir`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .augment import Augment, augment_batch
from .base import CIFAR_MEAN, CIFAR_STD, IMAGENET_MEAN, IMAGENET_STD, ImageSet, preprocess, resize_uint8

__all__ = [
    "ImageSet",
    "preprocess",
    "resize_uint8",
    "load_dataset",
    "DATASETS",
    "default_input_size",
    "DatasetInfo",
    "DATASET_INFO",
    "dataset_info",
    "Augment",
    "augment_batch",
]


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset implies for training: default input size, normalisation, augmentation, recipe."""

    name: str
    input_size: int  # default model input
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: Augment | None  # training augmentation; digits must not flip (a flipped 2 is not a 2)
    recipe: str  # default training recipe
    loader: str  # "module:function" taking (split, data_dir, channels, image_size)
    needs_dir: bool = True
    description: str = ""


DATASET_INFO: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "digits",
            32,
            (0.5,) * 3,
            (0.5,) * 3,
            Augment(pad=2, flip=False),
            "digits-fast",
            "digits:load_digits_split",
            needs_dir=False,
            description="scikit-learn's bundled 8x8 digits, 1,797 images, 10 classes (embedded)",
        ),
        DatasetInfo(
            "cifar10",
            32,
            CIFAR_MEAN,
            CIFAR_STD,
            Augment(pad=4, flip=True),
            "seed-cifar",
            "cifar:load_cifar10",
            description="CIFAR-10, python pickle batches (cifar-10-batches-py/)",
        ),
        DatasetInfo(
            "cifar100",
            32,
            CIFAR_MEAN,
            CIFAR_STD,
            Augment(pad=4, flip=True),
            "seed-cifar",
            "cifar:load_cifar100",
            description="CIFAR-100 fine labels, python pickles (cifar-100-python/)",
        ),
        DatasetInfo(
            "tiny-imagenet",
            64,
            IMAGENET_MEAN,
            IMAGENET_STD,
            Augment(pad=4, flip=True),
            "seed-cifar",
            "tiny_imagenet:load_tiny_imagenet",
            description="Tiny ImageNet-200 (tiny-imagenet-200/)",
        ),
        DatasetInfo(
            "folder",
            64,
            IMAGENET_MEAN,
            IMAGENET_STD,
            Augment(pad=4, flip=True),
            "seed-cifar",
            "folder:load_folder",
            description="any ImageFolder tree: root/<class>/*.png|jpg",
        ),
    )
}

# name -> default model input size (the original public mapping)
DATASETS: dict[str, int] = {name: info.input_size for name, info in DATASET_INFO.items()}

_ALIASES = {
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
    "tinyimagenet": "tiny-imagenet",
    "tiny-imagenet-200": "tiny-imagenet",
    "imagefolder": "folder",
}


def dataset_info(name: str) -> DatasetInfo:
    """The facts of a dataset by name or alias; DataError (one line) for an unknown one."""
    key = _ALIASES.get(str(name).strip().lower(), str(name).strip().lower())
    if key not in DATASET_INFO:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_INFO)}")
    return DATASET_INFO[key]


def default_input_size(name: str) -> int:
    """The dataset's default model input size (224 for a name it does not know)."""
    try:
        return dataset_info(name).input_size
    except DataError:
        return 224


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | Path | None = None,
    channels: int = 3,
    image_size: int | None = None,
) -> ImageSet:
    """Load `split` ("train" or "test"; "val" is an alias of "test") of a dataset by name.

    `image_size` is the side that `folder` images are resized to at load (so they stack); other datasets keep
    their stored resolution and are resized per batch by `preprocess`.
    """
    split = {"val": "test", "validation": "test"}.get(split, split)
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}; use 'train' or 'test'")
    info = dataset_info(name)
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels}")
    module, func = info.loader.split(":")
    loader = getattr(importlib.import_module(f"{__name__}.{module}"), func)
    data_dir = Path(data_dir).expanduser() if data_dir is not None else None
    return loader(split, data_dir=data_dir, channels=channels, image_size=image_size or info.input_size)
