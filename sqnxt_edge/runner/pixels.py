"""The pixel rules, once, in numpy: how a decoded uint8 image becomes the image a model is fed (before `Model.prepare`
normalises it). The package's `data.preprocess` and a board's runner both call these, so a photo gives the same
pixels on this machine, on a board without Pillow or torch, and in training.

The rules: a non-square image is first cut to its centred square (integer offsets, the extra pixel on the right or
bottom); grey or colour becomes the model's channel count (ITU-R 601 luma for grey); the square is then resized to
the input size with a bilinear filter on half-pixel centres, antialiased when shrinking (the filter widens by the
scale, as Pillow and torch's `antialias=True` do), and rounded half-to-even to uint8.
"""

from __future__ import annotations

import numpy as np

__all__ = ["centre_square", "fit", "resize_uint8", "resize_weights", "to_channels"]

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float32 weights of the bilinear filter on half-pixel centres; the triangle widens by the scale
    when shrinking (antialias), so every input pixel counts. Rows sum to 1."""
    scale = n_in / n_out
    support = max(scale, 1.0)  # the triangle's half-width in input pixels
    inv = 1.0 / support
    centre = (np.arange(n_out, dtype=np.float64) + 0.5) * scale
    j = np.arange(n_in, dtype=np.float64)
    w = np.clip(1.0 - np.abs((j[None, :] + 0.5 - centre[:, None]) * inv), 0.0, None)
    lo = np.maximum((centre - support + 0.5).astype(np.int64), 0)  # Pillow's window: [lo, hi)
    hi = np.minimum((centre + support + 0.5).astype(np.int64), n_in)
    w[(j[None, :] < lo[:, None]) | (j[None, :] >= hi[:, None])] = 0.0
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def resize_uint8(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 NHWC -> uint8 NHWC at size x size (bilinear, half-pixel centres, antialiased when shrinking, rounded)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 NHWC, got {images.dtype} {images.shape}")
    _, h, w, _ = images.shape
    if h == size and w == size:
        return images
    wy, wx = resize_weights(h, size), resize_weights(w, size)
    x = np.einsum("oh,nhwc->nowc", wy, images.astype(np.float32), optimize=True)
    x = np.einsum("pw,nowc->nopc", wx, x, optimize=True)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 NHWC RGB (or grey) -> the requested channel count (ITU-R 601 luma for grey, rounded)."""
    have = images.shape[-1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=-1)
    if have == 3 and channels == 1:
        return np.clip(np.rint(images.astype(np.float32) @ _LUMA), 0, 255).astype(np.uint8)[..., None]
    raise ValueError(f"cannot convert {have}-channel images to {channels} channels")


def centre_square(image: np.ndarray) -> np.ndarray:
    """The centred square of an HWC image (integer offsets: the extra pixel stays on the right or bottom)."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top : top + side, left : left + side]


def fit(image: np.ndarray, size: int, channels: int) -> np.ndarray:
    """One decoded image (uint8 HW, HWC with 1, 3 or 4 channels) -> uint8 (size, size, channels): the centred
    square, the model's channels (alpha dropped), resized. What `predict` does to a photo, here and on a board."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise ValueError(f"an image must be uint8 HW or HWC, got {image.dtype} {image.shape}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 4:
        image = image[:, :, :3]
    if image.shape[2] == 2:  # grey + alpha
        image = image[:, :, :1]
    square = to_channels(centre_square(image), channels)
    return resize_uint8(np.ascontiguousarray(square)[None], size)[0]
