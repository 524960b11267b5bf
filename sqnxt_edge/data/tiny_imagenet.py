"""Tiny ImageNet-200 in its published folder layout; `test` is the labelled `val/` split (test labels are secret).

tiny-imagenet-200/wnids.txt, words.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG, val/val_annotations.txt
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import ImageSet, normalization, to_channels
from .images import list_images, read_images

__all__ = ["load_tiny_imagenet"]

FOLDER = "tiny-imagenet-200"
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"


def _root(data_dir: Path | None) -> Path:
    candidates = [data_dir, data_dir / FOLDER] if data_dir is not None else [Path("data") / FOLDER, Path(FOLDER)]
    for root in candidates:
        if root is not None and (root / "wnids.txt").is_file():
            return root
    where = f"--data-dir {data_dir}" if data_dir is not None else "--data-dir DIR"
    raise DataError(
        f"tiny-imagenet not found: {where} must contain {FOLDER}/ with wnids.txt (download {URL} and unzip it there)"
    )


def _read_lines(path: Path) -> list[str]:
    try:
        return [line.rstrip("\n\r") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def _class_names(root: Path, wnids: list[str]) -> list[str]:
    """The first synonym from words.txt ("n01443537<TAB>goldfish, Carassius auratus" -> "goldfish")."""
    words = {}
    if (root / "words.txt").is_file():
        for line in _read_lines(root / "words.txt"):
            wnid, _, text = line.partition("\t")
            words[wnid.strip()] = text.split(",")[0].strip()
    return [words.get(w) or w for w in wnids]


def load_tiny_imagenet(
    split: str, data_dir: Path | None = None, channels: int = 3, image_size: int | None = 64
) -> ImageSet:
    """A Tiny ImageNet split from its released layout (wnids.txt, train/, val/)."""
    root = _root(data_dir)
    wnids = [w.strip() for w in _read_lines(root / "wnids.txt")]
    if not wnids or len(set(wnids)) != len(wnids):
        raise DataError(f"{root / 'wnids.txt'} is empty or lists a class twice")
    index = {w: i for i, w in enumerate(wnids)}
    paths: list[Path] = []
    labels: list[int] = []
    if split == "train":
        for wnid in wnids:
            folder = root / "train" / wnid / "images"
            if not folder.is_dir():
                raise DataError(f"tiny-imagenet: missing {folder} (incomplete extraction of {URL}?)")
            files = list_images(folder)
            paths += files
            labels += [index[wnid]] * len(files)
    else:
        ann = root / "val" / "val_annotations.txt"
        if not ann.is_file():
            raise DataError(f"tiny-imagenet: missing {ann} (incomplete extraction of {URL}?)")
        for n, line in enumerate(_read_lines(ann), 1):
            parts = line.split("\t")
            if len(parts) < 2 or parts[1] not in index:
                raise DataError(f"{ann}:{n}: expected '<file>\\t<wnid>...' with a wnid from wnids.txt")
            paths.append(root / "val" / "images" / parts[0])
            labels.append(index[parts[1]])
    if not paths:
        raise DataError(f"tiny-imagenet: no {split} images under {root}")
    images = read_images(paths, image_size)
    return ImageSet(
        "tiny-imagenet",
        split,
        to_channels(images, channels),
        np.asarray(labels, np.int64),
        _class_names(root, wnids),
        *normalization("imagenet", channels),
    )
