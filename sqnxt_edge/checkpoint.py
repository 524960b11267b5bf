"""The checkpoint format: one `.pt` file that carries everything export, eval and bench need.

It holds only tensors and plain containers, so it loads with `torch.load(weights_only=True)`: a hostile file cannot
run code. A bare state_dict is accepted too when the caller names the model.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .artifacts import atomic_write, sha256_file
from .data.base import IMAGENET_MEAN, IMAGENET_STD
from .errors import CheckpointError, SqnxtError
from .models import create_model, resolve_name

__all__ = [
    "FORMAT", "FORMAT_VERSION", "Checkpoint", "load_checkpoint", "save_checkpoint", "atomic_write", "sha256_file",
    "IMAGENET_MEAN", "IMAGENET_STD", "plain",
]

FORMAT = "sqnxt-edge-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """A model and the facts needed to use it: what it is, what it was trained on, how to feed it."""

    model_name: str
    num_classes: int
    input_size: int
    in_channels: int = 3
    stem: str | None = None
    classes: list[str] = field(default_factory=list)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    dataset: str | None = None
    data_dir: str | None = None
    epoch: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # optimizer / scheduler / rng state for --resume
    path: Path | None = None
    sha256: str | None = None

    def build_model(self) -> nn.Module:
        """The model in eval mode with the checkpoint's weights (strict: every key must match)."""
        model = create_model(self.model_name, self.num_classes, self.input_size, self.in_channels, self.stem)
        if self.state_dict:
            try:
                model.load_state_dict(self.state_dict, strict=True)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()
                raise CheckpointError(
                    f"weights do not fit {self.model_name} ({self.num_classes} classes, {self.input_size} px): "
                    f"{first[1].strip() if len(first) > 1 else first[0]}"
                ) from None
        return model.eval()

    def class_names(self) -> list[str]:
        return self.classes or [str(i) for i in range(self.num_classes)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": {
                "name": self.model_name,
                "num_classes": self.num_classes,
                "input_size": self.input_size,
                "in_channels": self.in_channels,
                "stem": self.stem,
            },
            "classes": list(self.classes),
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "dataset": self.dataset,
            "data_dir": self.data_dir,
            "epoch": int(self.epoch),
            "metrics": dict(self.metrics),
            "config": dict(self.config),
            "state_dict": self.state_dict,
            **self.extra,
        }

    def summary(self) -> dict[str, Any]:
        """Everything but the tensors: what `--json` and manifests show."""
        data = self.to_dict()
        for key in ("state_dict", *self.extra):
            data.pop(key, None)
        data["path"] = str(self.path) if self.path else None
        data["sha256"] = self.sha256
        return data


def plain(obj: Any) -> Any:
    """Reduce to what `torch.load(weights_only=True)` accepts: tensors, str/int/float/bool/None, lists, tuples, dicts.

    Subclasses of str (torch's TorchVersion), Paths and numpy scalars would otherwise make the file unloadable.
    """
    if isinstance(obj, torch.Tensor) or obj is None or type(obj) in (str, int, float, bool):
        return obj
    if isinstance(obj, dict):
        return {plain(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj) if type(obj) in (list, tuple) else [plain(v) for v in obj]
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return plain(obj.item())
    return str(obj)


def save_checkpoint(ckpt: Checkpoint, path: str | os.PathLike) -> Path:
    data = plain(ckpt.to_dict())
    return atomic_write(path, lambda tmp: torch.save(data, tmp))


_BAD_FILE = (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError, TypeError, AttributeError,
             KeyError, IndexError, UnicodeDecodeError, OverflowError, MemoryError)


def _read(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).strip().splitlines()[0] if "weights_only" not in str(exc) else "it holds objects other than tensors and plain containers, refused for safety"
        raise CheckpointError(f"{path} is not a safe checkpoint: {reason}") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    except _BAD_FILE as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?): {detail}") from None


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def load_checkpoint(
    path: str | os.PathLike,
    model: str | None = None,
    num_classes: int | None = None,
    input_size: int | None = None,
    in_channels: int = 3,
) -> Checkpoint:
    """Load our checkpoint format, or a bare state_dict when `model` (and `num_classes`) are given.

    Never executes anything from the file; every failure is a `CheckpointError` with a one-line reason.
    """
    path = Path(path)
    obj = _read(path)
    digest = sha256_file(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        version = obj.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise CheckpointError(f"{path} has checkpoint format version {version!r}; this sqnxt-edge reads <= {FORMAT_VERSION}")
        try:
            info = obj["model"]
            known = set(Checkpoint.__dataclass_fields__)
            extra = {k: v for k, v in obj.items() if k not in known and k not in ("format", "format_version", "model")}
            ckpt = Checkpoint(
                model_name=resolve_name(str(info["name"])),
                num_classes=int(info["num_classes"]),
                input_size=int(info["input_size"]),
                in_channels=int(info.get("in_channels", 3)),
                stem=info.get("stem"),
                classes=[str(c) for c in obj.get("classes") or []],
                mean=tuple(float(v) for v in obj.get("mean") or IMAGENET_MEAN),
                std=tuple(float(v) for v in obj.get("std") or IMAGENET_STD),
                dataset=obj.get("dataset"),
                data_dir=obj.get("data_dir"),
                epoch=int(obj.get("epoch") or 0),
                metrics=dict(obj.get("metrics") or {}),
                config=dict(obj.get("config") or {}),
                state_dict=obj["state_dict"],
                extra=extra,
            )
        except SqnxtError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path} is a damaged sqnxt-edge checkpoint (bad field: {exc})") from None
        if not _is_state_dict(ckpt.state_dict):
            raise CheckpointError(f"{path} is a damaged sqnxt-edge checkpoint (no weights)")
    elif _is_state_dict(obj) or (isinstance(obj, dict) and _is_state_dict(obj.get("state_dict"))):
        state = obj if _is_state_dict(obj) else obj["state_dict"]
        if model is None:
            raise CheckpointError(
                f"{path} is a bare state_dict: name its model with --model (and --num-classes, --input-size)"
            )
        if num_classes is None:
            num_classes = _guess_num_classes(state)
        ckpt = Checkpoint(
            model_name=resolve_name(model),
            num_classes=num_classes,
            input_size=input_size or 224,
            in_channels=in_channels,
            state_dict=state,
        )
    else:
        raise CheckpointError(f"{path} is not a sqnxt-edge checkpoint nor a state_dict")
    ckpt.path = path
    ckpt.sha256 = digest
    return ckpt


def _guess_num_classes(state: dict[str, torch.Tensor]) -> int:
    """The classifier's output width: the last 2-D (FC) or 4-D 1x1 (SqueezeNet) weight."""
    for key in reversed(list(state)):
        t = state[key]
        if key.endswith("weight") and t.ndim in (2, 4):
            return int(t.shape[0])
    raise CheckpointError("cannot tell the number of classes from the state_dict: pass --num-classes")
