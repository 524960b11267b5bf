"""Checkpoint -> verified exports -> accuracy -> benchmark -> one report folder, and the embedded demo.

The pipeline adds no second implementation of any stage: it calls `export()`, `run_bench()` and `train()`.
"""

from .calibration import calibrate_board, zoo_artifacts
from .config import PipelineConfig, PipelineResult
from .demo import DemoConfig, run_demo
from .run import run_pipeline

__all__ = [
    "PipelineConfig",
    "PipelineResult",
    "run_pipeline",
    "DemoConfig",
    "run_demo",
    "calibrate_board",
    "zoo_artifacts",
]
