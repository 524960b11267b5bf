"""Calibration data: a seeded sample of real images at the model input, and the reader that feeds it to ORT.

Every check happens here, before anything is written: an export that would calibrate on the wrong data fails with
one line instead of producing a quietly broken int8 model.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["calibration_images", "check_images", "load_image_folder", "CalibrationReader"]

_CHANNELS_OF_MODE = {
    "1": 1,
    "L": 1,
    "I": 1,
    "I;16": 1,
    "F": 1,
    "LA": 1,
    "P": 3,
    "RGB": 3,
    "RGBA": 3,
    "CMYK": 3,
    "YCbCr": 3,
}


def check_images(images: np.ndarray, size: int, channels: int, what: str = "calibration images") -> np.ndarray:
    """uint8 NHWC at size x size with `channels` channels, at least one image, or a one-line DataError."""
    if not isinstance(images, np.ndarray) or images.ndim != 4 or images.dtype != np.uint8:
        shape = getattr(images, "shape", None)
        raise DataError(
            f"{what} must be a uint8 array (N, H, W, C), got {getattr(images, 'dtype', type(images).__name__)} {shape}"
        )
    if len(images) == 0:
        raise DataError(f"{what}: no images")
    if images.shape[-1] != channels:
        raise DataError(f"{what} have {images.shape[-1]} channel(s) but the model takes {channels}")
    if images.shape[1:3] != (size, size):
        raise DataError(f"{what} are {images.shape[1]}x{images.shape[2]} but the model takes {size}x{size}")
    return images


def _list_images(folder: Path) -> list[Path]:
    from ..data.images import IMAGE_SUFFIXES  # the data package brings torch: only when a folder is read

    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _read_image(path: Path, channels: int, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    from ..runner.pixels import fit

    try:
        with Image.open(path) as img:
            have = _CHANNELS_OF_MODE.get(img.mode, 3)
            if have != channels:
                kind = "grayscale" if have == 1 else "colour"
                raise DataError(f"{path} is a {kind} image ({have} channel(s)) but the model takes {channels}")
            arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(
            f"cannot read image {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    return fit(arr, size, channels)  # the centred square, resized: what predict and a board do to a photo


def load_image_folder(
    folder: str | os.PathLike, size: int, channels: int, limit: int | None = None, seed: int = 0
) -> np.ndarray:
    """Images found recursively under `folder` (class sub-folders optional), a seeded sample of `limit`, resized."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"calibration folder not found: {folder}")
    files = _list_images(folder)
    if not files:
        raise DataError(f"no images (.png, .jpg, .jpeg, .bmp, ...) under {folder}")
    if limit is not None and limit < len(files):
        rng = np.random.default_rng(seed)
        files = [files[i] for i in np.sort(rng.choice(len(files), size=limit, replace=False))]
    return np.stack([_read_image(p, channels, size) for p in files])


def _is_folder(value: str) -> bool:
    """A known dataset name wins over a same-named folder in the working directory; anything path-like is a folder."""
    from ..data import DATASETS

    if value in DATASETS:
        return False
    return Path(value).is_dir() or os.sep in value or value.startswith((".", "~"))


def calibration_images(
    ckpt, calib_data: str | np.ndarray | None = None, calib_size: int = 300, seed: int = 0, data_dir: str | None = None
) -> np.ndarray:
    """A reproducible sample of `calib_size` real images, uint8 NHWC at `ckpt.input_size`.

    `calib_data`: a dataset name (its train split), a folder of images, an array, or None for the checkpoint's own
    dataset. Raises DataError (one line) for empty/unreadable/mismatched data.
    """
    from ..data import load_dataset, resize_uint8

    if calib_size < 1:
        raise DataError(f"--calib-size must be at least 1, got {calib_size}")
    size, channels = int(ckpt.input_size), int(ckpt.in_channels)
    if isinstance(calib_data, np.ndarray):
        if (
            calib_data.ndim == 4
            and calib_data.dtype == np.uint8
            and calib_data.shape[-1] == channels
            and len(calib_data)
        ):
            calib_data = resize_uint8(calib_data, size)
        images = check_images(calib_data, size, channels)
        if calib_size < len(images):
            images = images[np.sort(np.random.default_rng(seed).choice(len(images), calib_size, replace=False))]
        return images
    if calib_data is not None and _is_folder(str(calib_data)):
        return check_images(load_image_folder(calib_data, size, channels, calib_size, seed), size, channels)
    name = calib_data or ckpt.dataset
    if not name:
        raise DataError("the checkpoint records no dataset: pass --calib-data DIR|DATASET")
    root = data_dir if calib_data else (data_dir or ckpt.data_dir)
    data = load_dataset(name, "train", data_dir=root, channels=channels, image_size=size)
    if data.channels != channels:
        raise DataError(f"dataset {name!r} has {data.channels} channel(s) but the model takes {channels}")
    data = data.sample(calib_size, seed)
    return check_images(resize_uint8(data.images, size), size, channels)


class CalibrationReader:
    """onnxruntime `CalibrationDataReader`: batches prepared by the runner's `Model.prepare` of the fp32 artifact,
    so calibration sees exactly the tensors inference will see (normalization and layout from the metadata)."""

    def __init__(self, model, images: np.ndarray, batch: int = 16, on_batch: Callable[[int], None] | None = None):
        self.model = model
        self.images = images
        self.batch = model.fixed_batch or batch
        self.on_batch = on_batch
        self.start, self.stop = 0, len(images)
        self._pos = 0

    def set_range(self, start_index: int, end_index: int) -> None:
        """Read only images [start_index, end_index) (onnxruntime's calibrators call this)."""
        self.start, self.stop = start_index, min(end_index, len(self.images))
        self._pos = self.start

    def __len__(self) -> int:
        return len(self.images)

    def get_next(self) -> dict | None:
        """The next batch as {input name: array}, or None when the range is done."""
        if self._pos >= self.stop:
            return None
        chunk = self.images[self._pos : min(self._pos + self.batch, self.stop)]
        n = len(chunk)
        if self.model.fixed_batch and n < self.batch:  # pad a fixed-batch model's last chunk with repeats
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch - n, axis=0)])
        self._pos += n
        if self.on_batch:
            self.on_batch(n)
        return {self.model.input_name: self.model.prepare(chunk)}

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item
