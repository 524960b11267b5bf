"""Any ImageFolder tree: `root/<class>/*.png|jpg|jpeg|bmp`, class names sorted.

When `root/train/` and `root/test/` (or `root/val/`) exist they are the splits; otherwise a seeded, stratified
80/20 split of `root/` is drawn (the same every time). Images are resized at load (shorter side, centre crop) to one
size so they stack.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import ImageSet, normalization, to_channels
from .images import list_images, read_images

__all__ = ["load_folder"]

SEED = 0
TEST_FRACTION = 0.2


def _scan(root: Path) -> tuple[list[str], list[Path], list[int]]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = list_images(root / name)
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise DataError(f"folder: no images in {root}; expected {root}/<class>/*.png|jpg|jpeg|bmp")
    return classes, paths, labels


def load_folder(split: str, data_dir: Path | None = None, channels: int = 3, image_size: int | None = 64) -> ImageSet:
    """An ImageFolder tree (DIR/<class>/*.png|jpg, optionally under train/ and test/) as a split."""
    if data_dir is None:
        raise DataError(
            "the folder dataset needs --data-dir DIR laid out as DIR/<class>/*.png|jpg (or DIR/train, DIR/test)"
        )
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"folder: {root} is not a directory; --data-dir must point at DIR/<class>/*.png|jpg")
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        classes, paths, labels = _scan(root / "train" if split == "train" else test_dir)
        if split == "test":
            train_classes = sorted(
                p.name for p in (root / "train").iterdir() if p.is_dir() and not p.name.startswith(".")
            )
            if classes != train_classes:
                raise DataError(f"folder: {test_dir} and {root / 'train'} have different class folders")
    else:
        classes, paths, labels = _scan(root)
        idx = _split(np.asarray(labels), split)
        paths, labels = [paths[i] for i in idx], [labels[i] for i in idx]
        if not paths:
            raise DataError(f"folder: too few images in {root} for a {split} split")
    images = read_images(paths, image_size)
    return ImageSet(
        "folder",
        split,
        to_channels(images, channels),
        np.asarray(labels, np.int64),
        classes,
        *normalization("imagenet", channels),
    )


def _split(labels: np.ndarray, split: str) -> np.ndarray:
    """Seeded stratified 80/20 indices (each class keeps at least one training image)."""
    rng = np.random.default_rng(SEED)
    chosen = []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_test = round(len(idx) * TEST_FRACTION) if len(idx) > 1 else 0
        chosen.append(idx[:n_test] if split == "test" else idx[n_test:])
    return np.sort(np.concatenate(chosen))
