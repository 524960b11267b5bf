"""The user's flow in one call: export every requested format (fp32, and int8 with --int8), verify it, measure
accuracy and speed side by side, and write the report."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from ..bench import BenchConfig, run_bench
from ..checkpoint import Checkpoint, load_checkpoint
from ..errors import SqnxtError
from ..export import ExportConfig, export
from .config import PipelineConfig, PipelineResult
from .report import write_pipeline_report

__all__ = ["PipelineConfig", "PipelineResult", "run_pipeline"]


def run_pipeline(
    ckpt: Checkpoint | str | os.PathLike,
    config: PipelineConfig | None = None,
    say: Callable[[str], None] | None = None,
    progress: bool = True,
    stages: list[dict] | None = None,
) -> PipelineResult:
    """Export, verify, evaluate and benchmark `ckpt`; the PyTorch checkpoint itself is the local baseline.
    `stages` are earlier stages' times ({"stage", "seconds"}, e.g. training) for the report's time table."""
    stages = list(stages or [])
    config = config or PipelineConfig()
    say = say or (lambda message: None)
    ckpt = ckpt if isinstance(ckpt, Checkpoint) else load_checkpoint(ckpt)
    data = config.data or ckpt.dataset
    exported = export(
        ckpt,
        ExportConfig(
            formats=list(config.formats),
            int8=config.int8,
            output_dir=config.export_dir,
            data_dir=config.data_dir or ckpt.data_dir,
        ),
        progress=say,
    )
    stages.append({"stage": "export + verify (+ int8 calibration and accuracy)", "seconds": exported.seconds})
    started = time.perf_counter()
    artifacts = exported.paths()
    if config.device == "local" and ckpt.path is not None:
        artifacts.append(ckpt.path)  # PyTorch eager: the baseline a user would otherwise ship
    say(f"benchmarking {len(artifacts)} artifacts on {config.device}")
    bench = run_bench(
        artifacts,
        BenchConfig(
            device=config.device,
            devices_file=config.devices_file,
            threads=config.threads,
            batch=config.batch,
            warmup=config.warmup,
            runs=config.runs,
            min_seconds=config.min_seconds,
            data=data,
            data_dir=config.data_dir or ckpt.data_dir,
            samples=True,
        ),
        progress=progress,
    )
    if not bench.results:
        raise SqnxtError("no artifact could be measured: " + "; ".join(e["error"] for e in bench.errors))
    stages.append({"stage": "evaluate + benchmark", "seconds": round(time.perf_counter() - started, 3)})
    out = Path(config.output_dir) if config.output_dir else Path("reports") / exported.output_dir.name
    files = write_pipeline_report(out, ckpt, exported, bench, config, stages)
    return PipelineResult(out, exported, bench, files, stages)
