"""What a training run is asked to do (`TrainConfig`) and what it produced (`TrainResult`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TrainConfig", "TrainResult"]


@dataclass
class TrainConfig:
    """One training run. `None` means "take it from the recipe / the dataset's defaults"."""

    model: str = "1.0-SqNxt-23"
    data: str = "digits"
    data_dir: Path | None = None
    recipe: str | None = None  # default: the dataset's recipe
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None  # at the batch size actually used (overrides the recipe's scaled lr)
    weight_decay: float | None = None
    input_size: int | None = None  # default: the dataset's
    stem: str | None = None
    augment: bool = True
    seed: int = 0
    out: Path | None = None  # default: runs/<model>-<data>-<timestamp>/
    resume: bool = False
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int | None = None  # CPU threads; default: the physical cores other processes leave free (threads.py)
    amp: bool | None = None  # default: on with CUDA
    eval_batch_size: int = 256

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON-ready data (paths as strings)."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass
class TrainResult:
    """A finished run: where its checkpoints went, the best epoch and the history."""

    out_dir: Path
    best_path: Path
    last_path: Path
    best_top1: float
    best_epoch: int
    epochs: int
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)  # the effective config
    metrics_path: Path | None = None
    curves_path: Path | None = None

    @property
    def final_top1(self) -> float:
        """Test top-1 after the last epoch."""
        return float(self.history[-1]["test_top1"]) if self.history else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (paths as strings)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, Path):
                data[key] = str(value)
        data["final_top1"] = self.final_top1
        return data
