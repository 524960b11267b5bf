"""`sqnxt-edge demo`: the whole life of a model on data that ships inside a dependency (scikit-learn's digits):
train 1.0-SqNxt-23, export ONNX fp32 + int8 (and TFLite when its extra is installed), verify, benchmark, report."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..training import TrainConfig, TrainResult, train
from .config import PipelineConfig, PipelineResult
from .run import run_pipeline

__all__ = ["DemoConfig", "run_demo", "default_formats"]


def default_formats() -> list[str]:
    """ONNX always; TFLite too when litert-torch and a TFLite runtime are importable."""
    tflite = importlib.util.find_spec("litert_torch") is not None and (
        importlib.util.find_spec("ai_edge_litert") is not None or importlib.util.find_spec("tflite_runtime") is not None
    )
    return ["onnx", "tflite"] if tflite else ["onnx"]


@dataclass
class DemoConfig:
    """The demo's settings: model, epochs, formats, int8, threads and output folder."""

    model: str = "1.0-SqNxt-23"
    epochs: int | None = None  # default: the digits recipe's
    formats: list[str] | None = None  # default: default_formats()
    int8: bool = True
    output_dir: Path | None = None  # default: runs/demo-<timestamp>/
    threads: int | None = None
    seed: int = 0


def run_demo(
    config: DemoConfig | None = None, say: Callable[[str], None] | None = None, progress: bool = True
) -> tuple[TrainResult, PipelineResult]:
    """Train on the embedded digits, then run the pipeline on the best checkpoint: the one-command tour."""
    config = config or DemoConfig()
    say = say or (lambda message: None)
    root = Path(config.output_dir) if config.output_dir else Path("runs") / f"demo-{datetime.now():%Y%m%d-%H%M%S}"
    say(f"1/2 training {config.model} on the embedded digits data -> {root / 'train'}")
    trained = train(
        TrainConfig(model=config.model, data="digits", epochs=config.epochs, seed=config.seed, out=root / "train"),
        progress=progress,
    )
    say(f"trained: best test top-1 {trained.best_top1:.2f}% at epoch {trained.best_epoch} in {trained.seconds:.0f} s")
    say("2/2 export, verify, evaluate and benchmark")
    result = run_pipeline(
        trained.best_path,
        PipelineConfig(
            formats=config.formats or default_formats(),
            int8=config.int8,
            threads=config.threads,
            export_dir=Path("export") / root.name,
            output_dir=root / "report",
        ),
        say=say,
        progress=progress,
        stages=[{"stage": f"train ({trained.epochs} epochs)", "seconds": trained.seconds}],
    )
    return trained, result
