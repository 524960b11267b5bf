"""The embedded default: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes).

It ships inside a dependency, so the demo and the tests train on real images with no download. Grey levels 0..16
become 0..255 and are repeated over three channels, so the model takes RGB like every other dataset.
"""

from __future__ import annotations

import numpy as np

from .base import ImageSet

SEED = 0
TEST_FRACTION = 0.2
CLASSES = [str(i) for i in range(10)]


def load_digits(split: str = "train", channels: int = 3) -> ImageSet:
    """scikit-learn's embedded 8x8 digits, split reproducibly: the dataset that needs no download."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    grey = np.clip(np.rint(bunch.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)  # (N, 8, 8)
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, random_state=SEED, stratify=labels
    )
    idx = np.sort(train_idx if split == "train" else test_idx)
    images = np.repeat(grey[idx, :, :, None], channels, axis=3)
    return ImageSet(
        "digits", split, np.ascontiguousarray(images), labels[idx], CLASSES, (0.5,) * channels, (0.5,) * channels
    )


def load_digits_split(split: str, data_dir=None, channels: int = 3, image_size: int | None = None) -> ImageSet:
    """The registry's loader signature; digits need no folder and keep their 8x8 resolution."""
    return load_digits(split, channels=channels)
