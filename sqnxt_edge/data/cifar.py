"""CIFAR-10 / CIFAR-100 from the official python-pickle batches, read with an unpickler that cannot run code.

The files are pickled dicts of bytes, lists and one uint8 numpy array. A plain `pickle.load` would execute any
callable a hostile file names, so `SafeUnpickler` allows only the few numpy reconstructors those files use.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import ImageSet, normalization, to_channels

__all__ = ["load_cifar10", "load_cifar100", "safe_pickle_load", "SafeUnpickler"]

URLS = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
}
FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class SafeUnpickler(pickle.Unpickler):
    """Refuses every global but numpy array/dtype reconstruction and bytes decoding."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}")
        if module == "_codecs":
            import codecs

            return codecs.encode
        if module == "numpy":
            return getattr(np, name)
        from numpy._core import multiarray  # numpy >= 2 (numpy.core is a deprecated alias)

        return getattr(multiarray, name)


def safe_pickle_load(path: Path) -> object:
    """Unpickle a CIFAR batch with an unpickler that builds no arbitrary objects; DataError if unreadable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"{path} is not a CIFAR batch: {exc}") from None
    except Exception as exc:  # truncated or garbage bytes raise many types
        raise DataError(
            f"{path} is not a readable CIFAR batch (corrupt or truncated?): {type(exc).__name__}: {exc}"
        ) from None


def _str_keys(obj: object, path: Path) -> dict:
    if not isinstance(obj, dict):
        raise DataError(f"{path} is not a CIFAR batch (expected a dict, got {type(obj).__name__})")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _names(values, path: Path) -> list[str]:
    if not isinstance(values, list) or not values:
        raise DataError(f"{path} has no class names")
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _str_keys(safe_pickle_load(path), path)
    data, labels = batch.get("data"), batch.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path} is not a CIFAR batch: 'data' must be a uint8 array of shape (N, 3072)")
    labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
    if len(labels) != len(data):
        raise DataError(f"{path} is not a CIFAR batch: {len(data)} images but {len(labels)} '{label_key}'")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _root(name: str, data_dir: Path | None, marker: str) -> Path:
    folder = FOLDERS[name]
    candidates = [data_dir, data_dir / folder] if data_dir is not None else [Path("data") / folder, Path(folder)]
    for root in candidates:
        if root is not None and (root / marker).is_file():
            return root
    where = f"--data-dir {data_dir}" if data_dir is not None else "--data-dir DIR"
    raise DataError(f"{name} not found: {where} must contain {folder}/ (download {URLS[name]} and extract it there)")


def _load(
    name: str,
    split: str,
    data_dir: Path | None,
    files: list[str],
    label_key: str,
    meta: str,
    names_key: str,
    channels: int,
) -> ImageSet:
    root = _root(name, data_dir, meta)
    classes = _names(_str_keys(safe_pickle_load(root / meta), root / meta).get(names_key), root / meta)
    missing = [f for f in files if not (root / f).is_file()]
    if missing:
        raise DataError(f"{name}: {root} lacks {', '.join(missing)} (re-extract {URLS[name]})")
    parts = [_batch(root / f, label_key) for f in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise DataError(f"{name}: labels outside 0..{len(classes) - 1} in {root}")
    return ImageSet(
        name,
        split,
        np.ascontiguousarray(to_channels(images, channels)),
        labels,
        classes,
        *normalization("cifar", channels),
    )


def load_cifar10(
    split: str, data_dir: Path | None = None, channels: int = 3, image_size: int | None = None
) -> ImageSet:
    """A CIFAR-10 split from the python-version batches in `data_dir`."""
    files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    return _load("cifar10", split, data_dir, files, "labels", "batches.meta", "label_names", channels)


def load_cifar100(
    split: str, data_dir: Path | None = None, channels: int = 3, image_size: int | None = None
) -> ImageSet:
    """A CIFAR-100 split (fine labels) from the python-version files in `data_dir`."""
    return _load(
        "cifar100",
        split,
        data_dir,
        ["train" if split == "train" else "test"],
        "fine_labels",
        "meta",
        "fine_label_names",
        channels,
    )
