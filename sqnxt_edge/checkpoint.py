"""The checkpoint format: one `.pt` file that carries everything export, eval and bench need.

It holds only tensors and plain containers, so it loads with `torch.load(weights_only=True)`: a hostile file cannot
run code. Foreign files (a bare or nested state_dict, a model pickled whole by the seed's notebook) are read through
`importer` when the caller names the model, and `import_checkpoint` turns them into this format.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .artifacts import atomic_write, sha256_file
from .data.base import IMAGENET_MEAN, IMAGENET_STD
from .errors import CheckpointError, DataError, SqnxtError
from .importer import foreign_weights, is_state_dict, safe_load
from .models import ZooNet, create_model, default_size, get_spec, resolve_name

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "load_checkpoint",
    "save_checkpoint",
    "random_checkpoint",
    "import_checkpoint",
    "atomic_write",
    "sha256_file",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "plain",
    "mismatch",
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
    foreign: bool = False  # read from a file sqnxt-edge did not write (see config["import"])

    def build_model(self) -> ZooNet:
        """The model in eval mode with the checkpoint's weights (strict: every key and shape must match)."""
        model = create_model(self.model_name, self.num_classes, self.input_size, self.in_channels, self.stem)
        if self.state_dict:
            problem = mismatch(model.state_dict(), self.state_dict)
            if problem:
                raise CheckpointError(
                    f"weights do not fit {self.model_name} ({self.num_classes} classes, "
                    f"{self.input_size} px): {problem}"
                )
            model.load_state_dict(self.state_dict, strict=True)
        return model.eval()

    def class_names(self) -> list[str]:
        """The class names, or the class indices as strings when the checkpoint has none."""
        return self.classes or [str(i) for i in range(self.num_classes)]

    def to_dict(self) -> dict[str, Any]:
        """The plain dict that is saved (format tag and version first), loadable with weights_only."""
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


def random_checkpoint(name: str, num_classes: int, input_size: int, seed: int = 0) -> Checkpoint:
    """A zoo model with freshly initialised weights (torch seeded with `seed`) as a checkpoint: what latency
    measurements and estimate calibrations export, since speed does not depend on the weights' values."""
    torch.manual_seed(seed)
    model = create_model(name, num_classes, input_size).eval()
    return Checkpoint(
        model_name=name,
        num_classes=num_classes,
        input_size=input_size,
        stem=model.stem_kind,
        classes=[str(i) for i in range(num_classes)],
        state_dict=model.state_dict(),
    )


def save_checkpoint(ckpt: Checkpoint, path: str | os.PathLike) -> Path:
    """Save atomically as plain containers (so `weights_only` loading accepts it); returns the path."""
    data = plain(ckpt.to_dict())
    return atomic_write(path, lambda tmp: torch.save(data, tmp))


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or "scalar"


def mismatch(expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor], show: int = 3) -> str | None:
    """The first `show` missing / unexpected / mis-shaped keys and how many more, in one short line (None: they fit).
    BatchNorm's num_batches_tracked may be missing (PyTorch < 0.4.1 did not save it)."""
    problems = [
        f"{k} is {_shape(given[k])}, the model's {_shape(expected[k])}"
        for k in expected
        if k in given and tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    problems += [f"missing {k}" for k in expected if k not in given and not k.endswith("num_batches_tracked")]
    problems += [f"unexpected {k}" for k in given if k not in expected]
    if not problems:
        return None
    more = f" (and {len(problems) - show} more)" if len(problems) > show else ""
    return "; ".join(problems[:show]) + more


def load_checkpoint(
    path: str | os.PathLike,
    model: str | None = None,
    num_classes: int | None = None,
    input_size: int | None = None,
    in_channels: int = 3,
    dataset: str | None = None,
    data_dir: str | os.PathLike | None = None,
) -> Checkpoint:
    """Load our checkpoint format, or a foreign file (state_dict, nested, `module.`-prefixed, or a model pickled
    whole) when `model` names its architecture; `num_classes` defaults to the classifier's width, `input_size` to
    the dataset's, `dataset` gives the normalization and class names. Our own files ignore these options.

    Never executes anything from the file; every failure is a `CheckpointError` with a one-line reason.
    """
    path = Path(path)
    obj = safe_load(path)
    digest = sha256_file(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        version = obj.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path} has checkpoint format version {version!r}; this sqnxt-edge reads <= {FORMAT_VERSION}"
            )
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
        if not is_state_dict(ckpt.state_dict):
            raise CheckpointError(f"{path} is a damaged sqnxt-edge checkpoint (no weights)")
    else:
        ckpt = _from_foreign(obj, path, digest, model, num_classes, input_size, in_channels, dataset, data_dir)
    ckpt.path = path
    ckpt.sha256 = digest
    return ckpt


def _dataset_facts(name: str, data_dir, in_channels: int) -> tuple[str, tuple, tuple, list[str], int]:
    """(canonical name, mean, std, class names, input size) of a dataset; the class names only when the dataset is
    at hand (embedded, or in `data_dir`)."""
    from .data import dataset_info, load_dataset

    info = dataset_info(name)
    mean, std = info.mean, info.std
    if in_channels != len(mean):
        mean, std = (sum(mean) / len(mean),) * in_channels, (sum(std) / len(std),) * in_channels
    classes: list[str] = []
    if data_dir or not info.needs_dir:
        try:
            classes = list(load_dataset(info.name, "test", data_dir, channels=in_channels).classes)
        except DataError:
            pass
    return info.name, tuple(mean), tuple(std), classes, info.input_size


def _from_foreign(
    obj, path: Path, digest: str, model, num_classes, input_size, in_channels, dataset, data_dir
) -> Checkpoint:
    weights = foreign_weights(obj, path)
    if model is None:
        raise CheckpointError(
            f"{path} is {weights.kind}, not a sqnxt-edge checkpoint: name its model with --model "
            "(and --num-classes, --input-size, --dataset), or convert it with `sqnxt-edge import`"
        )
    classes: list[str]
    try:
        spec = get_spec(model)
        state = spec.adapt_state(weights.state_dict) if spec.adapt_state else weights.state_dict
        mean, std, classes, size = IMAGENET_MEAN, IMAGENET_STD, [], default_size(spec.name)
        if dataset:
            dataset, mean, std, classes, size = _dataset_facts(dataset, data_dir, in_channels)
        size = input_size or size
    except SqnxtError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    n = num_classes or _guess_num_classes(state)
    if classes and len(classes) != n:
        raise CheckpointError(f"{path} has {n} classes but {dataset} has {len(classes)}")
    source = {"source": str(path), "sha256": digest, "kind": weights.kind, "saved_with_it": weights.metadata}
    return Checkpoint(
        model_name=spec.name,
        num_classes=n,
        input_size=int(size),
        in_channels=in_channels,
        classes=classes,
        mean=mean,
        std=std,
        dataset=dataset,
        data_dir=str(data_dir) if data_dir else None,
        epoch=int(weights.metadata.get("epoch") or 0),
        config={"import": source},
        state_dict=state,
        foreign=True,
    )


def import_checkpoint(source: str | os.PathLike, output: str | os.PathLike, model: str, **options: Any) -> Checkpoint:
    """A foreign file as a sqnxt-edge checkpoint at `output` (never over an existing file), after checking that the
    weights fit `model` and run. `options`: num_classes, input_size, in_channels, dataset, data_dir."""
    output = Path(output)
    if output.exists():
        raise CheckpointError(f"{output} exists; choose another -o/--output (nothing was overwritten)")
    ckpt = load_checkpoint(source, model=model, **options)
    if not ckpt.foreign:
        raise CheckpointError(f"{source} is already a sqnxt-edge checkpoint: use it as it is")
    net = ckpt.build_model()
    with torch.no_grad():
        net(torch.zeros(1, ckpt.in_channels, ckpt.input_size, ckpt.input_size))
    ckpt.stem = net.stem_kind
    ckpt.state_dict = {k: v.contiguous() for k, v in ckpt.state_dict.items()}
    save_checkpoint(ckpt, output)
    ckpt.path, ckpt.sha256 = output, sha256_file(output)
    return ckpt


def _guess_num_classes(state: dict[str, torch.Tensor]) -> int:
    """The classifier's output width: the last 2-D (FC) or 4-D 1x1 (SqueezeNet) weight."""
    for key in reversed(list(state)):
        t = state[key]
        if key.endswith("weight") and t.ndim in (2, 4):
            return int(t.shape[0])
    raise CheckpointError("cannot tell the number of classes from the state_dict: pass --num-classes")
