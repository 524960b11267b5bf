"""What the pipeline is asked to do (`PipelineConfig`) and what it produced (`PipelineResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..bench import BenchRun
from ..export import ExportResult

__all__ = ["PipelineConfig", "PipelineResult"]


@dataclass
class PipelineConfig:
    """What `pipeline` does after export: which formats, int8, where to benchmark, on what data."""

    formats: list[str] = field(default_factory=lambda: ["onnx"])
    int8: bool = False
    device: str = "local"
    devices_file: Path | None = None
    data: str | None = None  # accuracy data (test split); default: the checkpoint's own dataset
    data_dir: str | None = None
    export_dir: Path | None = None  # default: export/<checkpoint name>/
    output_dir: Path | None = None  # the report folder; default: reports/<export folder name>/
    threads: int | None = None
    batch: int = 1
    warmup: int = 10
    runs: int = 100
    min_seconds: float = 1.0


@dataclass
class PipelineResult:
    """A pipeline run: the export, the bench, the report files and each stage's time."""

    output_dir: Path
    export: ExportResult
    bench: BenchRun
    files: dict[str, Path]
    stages: list[dict] = field(default_factory=list)  # [{"stage", "seconds"}], in order

    @property
    def seconds(self) -> float:
        """Total time of the stages."""
        return round(sum(s["seconds"] for s in self.stages), 3)

    @property
    def ok(self) -> bool:
        """True when every artifact was measured."""
        return self.bench.ok
