"""The in-memory image set every loader returns, and the one preprocessing every consumer shares.

Images stay uint8 NHWC at their stored resolution; resizing to the model's input and normalizing happen per batch in
torch, so a 227 px model never needs the whole dataset upsampled in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DataError
from ..runner import pixels

__all__ = [
    "ImageSet",
    "preprocess",
    "resize_uint8",
    "to_channels",
    "normalization",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CIFAR_MEAN",
    "CIFAR_STD",
]

# Per-channel normalization of the datasets' families: (RGB mean, RGB std, grey mean, grey std).
_NORMS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), (0.449,), (0.226,)),
    "cifar": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), (0.4809,), (0.2009,)),  # the seed's (spec 2)
}
IMAGENET_MEAN, IMAGENET_STD = _NORMS["imagenet"][:2]
CIFAR_MEAN, CIFAR_STD = _NORMS["cifar"][:2]


def normalization(family: str, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of a dataset family for RGB (3) or grey (1) images."""
    mean, std, grey_mean, grey_std = _NORMS[family]
    return (mean, std) if channels == 3 else (grey_mean, grey_std)


@dataclass
class ImageSet:
    """A dataset split in memory: uint8 NHWC images, int64 labels, class names and normalisation."""

    name: str
    split: str
    images: np.ndarray  # uint8, (N, H, W, C)
    labels: np.ndarray  # int64, (N,)
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise DataError(
                f"{self.name}/{self.split}: images must be uint8 (N, H, W, C), "
                f"got {self.images.dtype} {self.images.shape}"
            )
        if len(self.images) != len(self.labels):
            raise DataError(f"{self.name}/{self.split}: {len(self.images)} images but {len(self.labels)} labels")
        if len(self.images) == 0:
            raise DataError(f"{self.name}/{self.split}: no images")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def channels(self) -> int:
        """Channels per image (1 or 3)."""
        return int(self.images.shape[-1])

    def subset(self, indices) -> ImageSet:
        """The images and labels at `indices`, with the same classes and normalisation."""
        idx = np.asarray(indices)
        return ImageSet(self.name, self.split, self.images[idx], self.labels[idx], self.classes, self.mean, self.std)

    def sample(self, n: int, seed: int = 0) -> ImageSet:
        """A reproducible random subset of at most n images."""
        if n >= len(self):
            return self
        rng = np.random.default_rng(seed)
        return self.subset(np.sort(rng.choice(len(self), size=n, replace=False)))


def resize_uint8(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 NHWC -> uint8 NHWC at size x size (bilinear, half-pixel centres, antialiased when shrinking, rounded):
    the runner's pixel rules (`runner.pixels`), the one implementation a board and an app follow too."""
    try:
        return pixels.resize_uint8(np.asarray(images), size)
    except ValueError as exc:
        raise DataError(str(exc)) from None


def preprocess(images: np.ndarray | torch.Tensor, input_size: int, mean, std) -> torch.Tensor:
    """uint8 NHWC -> normalized float32 NCHW at the model's input size: the exact transform exported artifacts
    record in their metadata (resize, /255, subtract mean, divide by std)."""
    if isinstance(images, torch.Tensor):
        images = images.numpy()
    x = torch.from_numpy(resize_uint8(images, input_size)).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - m) / s


def to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 NHWC RGB (or grey) -> the requested channel count (ITU-R 601 luma for grey; `runner.pixels`)."""
    try:
        return pixels.to_channels(images, channels)
    except ValueError as exc:
        raise DataError(str(exc)) from None
