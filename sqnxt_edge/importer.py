"""Reading PyTorch files that sqnxt-edge did not write, without running anything from them.

Everything goes through `torch.load(weights_only=True)`. A model pickled whole (the seed notebook's
`torch.save({'net': net, 'acc': ..., 'epoch': ...})`) names its classes in the pickle; the ones on an allow-list
(torch.nn layers and containers, the seed's `SqueezeNext`/`BasicBlock`, pytorch-cifar100's `SqueezeNet`/`Fire`)
are mapped to `ModuleState`, a stand-in that only keeps the state the unpickler hands it. No class from the file is
looked up, instantiated or executed; any other global (a function, `os.system` ...) is refused by torch's
weights-only unpickler before anything runs. The state_dict is then rebuilt from the stand-ins the way
`nn.Module.state_dict` does it.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError

__all__ = [
    "ModuleState",
    "ForeignWeights",
    "safe_load",
    "pickle_globals",
    "foreign_weights",
    "is_state_dict",
    "ALLOWED_MODULE_CLASSES",
]

_NN = {
    "conv": ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d"),
    "batchnorm": ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d"),
    "linear": ("Linear", "Identity"),
    "container": ("Sequential", "ModuleList", "ModuleDict"),
    "activation": ("ReLU", "ReLU6", "LeakyReLU", "PReLU", "Sigmoid", "Tanh", "Hardswish", "SiLU", "Softmax"),
    "pooling": ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d"),
    "dropout": ("Dropout", "Dropout2d"),
    "flatten": ("Flatten",),
}
ALLOWED_MODULE_CLASSES = frozenset(
    {f"torch.nn.modules.{mod}.{cls}" for mod, classes in _NN.items() for cls in classes}
    | {"torch.nn.parallel.data_parallel.DataParallel", "torch.nn.parallel.distributed.DistributedDataParallel"}
)
# The model classes of the re-implementations people trained with, in whatever module their script defined them.
_SEED_CLASS_NAMES = frozenset({"SqueezeNext", "BasicBlock", "SqueezeNet", "Fire"})
_NESTED_KEYS = ("state_dict", "model_state_dict", "net", "model")
_METADATA_KEYS = ("acc", "best_acc", "epoch")


class ModuleState:
    """Stands in for a pickled nn.Module: keeps the state the unpickler hands it, nothing else."""

    source = "?"  # the class the file named, set on each per-name subclass

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {}

    def state_dict(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Parameters, persistent buffers, then children, recursively: `nn.Module.state_dict`'s order and keys."""
        out: dict[str, torch.Tensor] = {}
        skip = self.state.get("_non_persistent_buffers_set") or set()
        for group in ("_parameters", "_buffers"):
            for name, value in (self.state.get(group) or {}).items():
                if value is None or (group == "_buffers" and name in skip):
                    continue
                if not isinstance(value, torch.Tensor):
                    raise CheckpointError(f"{self.source} holds a {type(value).__name__} as {prefix}{name}")
                out[prefix + name] = value.detach()
        for name, child in (self.state.get("_modules") or {}).items():
            if isinstance(child, ModuleState):
                out.update(child.state_dict(f"{prefix}{name}."))
        return out


def _stand_in(full_name: str) -> type:
    return type(full_name.rpartition(".")[2], (ModuleState,), {"source": full_name, "__module__": __name__})


def _allowed(full_name: str) -> bool:
    return full_name in ALLOWED_MODULE_CLASSES or full_name.rpartition(".")[2] in _SEED_CLASS_NAMES


def _scan(stream, pickles: int) -> list[str]:
    names: list[str] = []
    for _ in range(pickles):
        for op, arg, _pos in pickletools.genops(stream):
            if op.name == "GLOBAL":
                names.append(str(arg).replace(" ", "."))
    return names


def pickle_globals(path: Path) -> list[str]:
    """Every global a torch file's pickle names, read with pickletools (nothing is unpickled). Zip files (torch >= 1.6)
    hold one data.pkl; legacy files four pickles in a row (magic, protocol, sys info, the object)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                pkl = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                return _scan(io.BytesIO(archive.read(pkl)), 1) if pkl else []
        with open(path, "rb") as fh:
            return _scan(fh, 4)
    except Exception:
        return []


_BAD_FILE = (
    pickle.UnpicklingError,
    zipfile.BadZipFile,
    EOFError,
    RuntimeError,
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    UnicodeDecodeError,
    OverflowError,
    MemoryError,
)
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)|unrecognized function ([\w.<> ]+)")


def _refusal(path: Path, exc: Exception, legacy: bool) -> CheckpointError:
    text = str(exc)
    if legacy and "persistent_load" in text:
        return CheckpointError(
            f"{path} is a whole model pickled by PyTorch < 1.6 (legacy format, its source code inside), which cannot "
            "be read without running it: where it was written, save torch.load(file)['net'].state_dict() and import "
            "that file"
        )
    match = _GLOBAL.search(text)
    what = f"it needs {match.group(1) or match.group(2)}, which" if match else "it holds objects that"
    return CheckpointError(
        f"{path} is not a safe checkpoint: {what} is not a tensor, a plain container or an "
        "allow-listed module class; refused, nothing from it was run"
    )


def _load(path: Path, stand_ins: list) -> Any:
    try:
        with torch.serialization.safe_globals(stand_ins):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        return exc
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    except _BAD_FILE as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?): {detail}"
        ) from None


def safe_load(path: str | Path) -> Any:
    """`torch.load(weights_only=True)`; a file that names module classes is read again with the allow-listed ones as
    `ModuleState`. One-line CheckpointError for a missing, corrupt or unsafe file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    result = _load(path, [])
    if isinstance(result, pickle.UnpicklingError):  # scan only then: plain checkpoints pay nothing
        stand_ins = [(_stand_in(name), name) for name in dict.fromkeys(pickle_globals(path)) if _allowed(name)]
        result = _load(path, stand_ins) if stand_ins else result
    if isinstance(result, pickle.UnpicklingError):
        raise _refusal(path, result, not zipfile.is_zipfile(path))
    return result


def is_state_dict(obj: Any) -> bool:
    """True for a non-empty dict of tensors keyed by strings: a state_dict."""
    return (
        isinstance(obj, dict)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


@dataclass
class ForeignWeights:
    """A foreign file's weights as a state_dict, what it was, and the scalars saved beside it (acc, epoch)."""

    state_dict: dict[str, torch.Tensor]
    kind: str  # "a state_dict", "a whole pickled SqueezeNext (under 'net')" ...
    metadata: dict[str, Any] = field(default_factory=dict)


def _weights(obj: Any) -> tuple[dict, str] | None:
    if isinstance(obj, ModuleState):
        return obj.state_dict(), f"a whole pickled {obj.source.rpartition('.')[2]}"
    if is_state_dict(obj):
        return dict(obj), "a state_dict"
    return None


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """DataParallel / DDP save every key under `module.`; so may torch.compile (`_orig_mod.`)."""
    for prefix in ("module.", "_orig_mod."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _scalar(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return value if isinstance(value, (int, float, str, bool)) else None


def foreign_weights(obj: Any, path: Path) -> ForeignWeights:
    """The state_dict inside what `safe_load` returned: bare, `module.`-prefixed, a whole module, or either nested
    under state_dict / model_state_dict / net / model."""
    found, where = _weights(obj), ""
    if found is None and isinstance(obj, dict):
        for key in _NESTED_KEYS:
            found = _weights(obj.get(key))
            if found is not None:
                where = f" (under '{key}')"
                break
    if found is None:
        raise CheckpointError(
            f"{path} holds no weights sqnxt-edge can read: not a sqnxt-edge checkpoint, a "
            f"state_dict, nor one under {' / '.join(_NESTED_KEYS)}"
        )
    state, kind = found
    if not state:
        raise CheckpointError(f"{path}: {kind} without any tensor")
    meta = {}
    if isinstance(obj, dict):
        meta = {k: v for k in _METADATA_KEYS if k in obj and (v := _scalar(obj[k])) is not None}
    return ForeignWeights(_strip_prefix(state), kind + where, meta)
