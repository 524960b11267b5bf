"""Reading image files with Pillow into one uint8 NHWC array (resized at load so a folder of any sizes stacks)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..runner import pixels

__all__ = ["IMAGE_SUFFIXES", "read_image", "read_images", "list_images"]

# what Pillow reads; training folders and calibration folders alike
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pnm")


def list_images(folder: Path) -> list[Path]:
    """The image files directly in `folder` (known suffixes, any case), sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image(path: Path, size: int | None) -> np.ndarray:
    """One RGB image as uint8 HWC; when `size` is given: its centred square resized to `size` (`runner.pixels.fit`,
    what `predict` and a board do to a photo)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
        return rgb if size is None else pixels.fit(rgb, size, 3)  # the pixel rules every consumer shares
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(
            f"cannot read image {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None


def read_images(paths: list[Path], size: int | None, workers: int = 4) -> np.ndarray:
    """All images as one (N, size, size, 3) uint8 array; `size=None` requires them to share one size already."""
    if not paths:
        raise DataError("no images to read")
    with ThreadPoolExecutor(max_workers=workers) as pool:  # Pillow decodes without the GIL
        arrays = list(pool.map(lambda p: read_image(p, size), paths))
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DataError(f"images have different sizes {sorted(shapes)[:3]}...; give an image size to resize them")
    return np.stack(arrays)
