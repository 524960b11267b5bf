"""The bench harness: one config, one call, one result object, whether the device is this machine or a board.

The system under test (device), the sample data and the test settings are separate; measuring happens in the
runner's child processes, statistics in `stats`, output in `report`.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BenchError
from . import local, stats
from .discover import discover_artifacts
from .runner import RUNTIMES

__all__ = ["BenchConfig", "BenchRun", "run_bench", "BENCH_RUNTIMES"]

BENCH_RUNTIMES = ("auto", *RUNTIMES, "torch")
LOCAL_TIMEOUT = 900.0  # seconds per measuring process: a hung runtime cannot stall the bench forever


@dataclass
class BenchConfig:
    device: str = "local"
    runtime: str = "auto"
    threads: int | None = None  # None: the device's physical cores
    batch: int = 1
    warmup: int = 10
    runs: int = 100
    min_seconds: float = 1.0
    data: str | None = None  # dataset name: top-1 on its test split
    data_dir: str | None = None
    samples: bool = False  # keep raw per-run samples (needed for --plot)
    devices_file: Path | None = None
    timeout: float | None = None  # per measuring process locally (default 900 s); whole remote run (device's)
    export_dir: Path = Path("export")

    def validate(self) -> None:
        if self.runtime not in BENCH_RUNTIMES:
            raise BenchError(f"unknown runtime {self.runtime!r}; choose one of {', '.join(BENCH_RUNTIMES)}")
        for name, low in (("threads", 1), ("batch", 1), ("warmup", 0), ("runs", 1), ("min_seconds", 0)):
            value = getattr(self, name)
            if value is not None and value < low:
                raise BenchError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")


@dataclass
class BenchRun:
    env: dict[str, Any]
    results: list[dict[str, Any]]  # measured artifacts, in the order given
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"artifact", "error"}
    baseline: dict[str, Any] = field(default_factory=dict)  # bare runtime peak RSS per runtime
    config: dict[str, Any] = field(default_factory=dict)
    reference: str | None = None  # what `speedup` is relative to

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "config": self.config, "baseline": self.baseline, "reference": self.reference,
                "results": self.results, "errors": self.errors}


def _runtime_can_run(runtime: str, path: Path) -> bool:
    ext = path.suffix.lower()
    if runtime == "auto":
        return True
    if runtime == "torch":
        return ext == ".pt"
    return ext in ((".onnx", ".ort") if runtime == "onnxruntime" else (".tflite",))


def _progress_bar(enabled: bool, total: int, device: str):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = Console(stderr=True)
    bar = Progress(TextColumn("[bold]bench[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=err, transient=True, disable=not enabled)
    task = bar.add_task(f"on {device}", total=total)

    def advance(artifact: str | None, error: str | None) -> None:
        bar.update(task, advance=1, description=f"on {device}: {Path(artifact or '').name}")

    return bar, advance


def run_bench(artifacts: list[str | Path] | None = None, config: BenchConfig | None = None,
              progress: bool = True) -> BenchRun:
    """Measure `artifacts` (default: the newest export manifest's) on `config.device`; failures become
    per-artifact errors, the rest are still measured."""
    config = config or BenchConfig()
    config.validate()
    named = artifacts is not None and len(artifacts) > 0
    paths = [Path(a) for a in artifacts] if named else discover_artifacts(config.export_dir)
    if not named and config.runtime != "auto":
        paths = [p for p in paths if _runtime_can_run(config.runtime, p)]
    if not paths:
        raise BenchError(f"nothing to measure with runtime {config.runtime}")
    with tempfile.TemporaryDirectory(prefix="sqnxt-bench-") as tmp:
        data_file = None
        if config.data:
            from .dataset import write_data_npz

            data_file = write_data_npz(config.data, paths, Path(tmp) / "data.npz", config.data_dir)
        if config.device == "local":
            report = _run_local(paths, config, data_file, progress)
        else:
            report = _run_remote(paths, config, data_file, progress)
    return _finish(report, config)


def _split(paths: list[Path], config: BenchConfig) -> tuple[list[Path], list[Path], dict[str, str]]:
    pts, others, refused = [], [], {}
    for p in paths:
        if p.suffix.lower() == ".pt":
            if config.device != "local":
                refused[str(p)] = (f"{p.name}: PyTorch checkpoints are the local baseline; export it to measure "
                                   f"on {config.device}")
            elif config.runtime not in ("auto", "torch"):
                refused[str(p)] = f"{p.name}: runtime {config.runtime} cannot run .pt checkpoints"
            else:
                pts.append(p)
        elif config.runtime == "torch":
            refused[str(p)] = f"{p.name}: runtime torch runs only .pt checkpoints"
        else:
            others.append(p)
    return pts, others, refused


def _args(config: BenchConfig, data_file: Path | None) -> list[str]:
    runtime = "auto" if config.runtime == "torch" else config.runtime
    return local.runner_args(config.threads, config.batch, config.warmup, config.runs, config.min_seconds,
                             runtime, config.samples, data_file)


def _run_local(paths: list[Path], config: BenchConfig, data_file: Path | None, progress: bool) -> dict:
    pts, others, refused = _split(paths, config)
    bar, advance = _progress_bar(progress, len(pts) + len(others), "local")
    by_path: dict[str, dict] = {p: {"artifact": p, "error": e} for p, e in refused.items()}
    baseline: dict = {}
    with bar:
        report = {"env": None}
        if others:
            report = local.run_runner(others, _args(config, data_file), advance, config.timeout or LOCAL_TIMEOUT)
            baseline.update(report.get("baseline") or {})
            for p, r in zip(others, report.get("results") or []):
                by_path[str(p)] = r
        if pts:
            bare, results = local.run_torch(pts, config.threads, config.batch, config.warmup, config.runs,
                                            config.min_seconds, config.samples, data_file, advance,
                                            config.timeout or LOCAL_TIMEOUT)
            baseline["torch"] = bare
            for p, r in zip(pts, results):
                by_path[str(p)] = r
    env = report.get("env") or _local_env()
    if pts:
        env.setdefault("runtimes", {})["torch"] = baseline["torch"].get("runtime_version")
    return {"env": env, "baseline": baseline, "results": [by_path[str(p)] for p in paths]}


def _local_env() -> dict:
    from .runner import environment

    return environment()


def _run_remote(paths: list[Path], config: BenchConfig, data_file: Path | None, progress: bool) -> dict:
    from .remote import run_runner_remote  # the devices stage; imported only when a board is asked for

    _, others, refused = _split(paths, config)
    results: dict[str, dict] = {p: {"artifact": p, "error": e} for p, e in refused.items()}
    report: dict = {"env": {}, "baseline": {}, "results": []}
    if others:
        bar, _ = _progress_bar(progress, len(others), config.device)
        with bar:
            report = run_runner_remote(config.device, others, _args(config, data_file), data_file,
                                       config.devices_file, config.timeout)
        remote = report.get("results") or []
        if len(remote) != len(others):
            raise BenchError(f"{config.device}: the runner returned {len(remote)} results for {len(others)} artifacts")
        for p, r in zip(others, remote):
            results[str(p)] = {**r, "artifact": str(p)}  # report the local path the user named
    return {"env": report.get("env") or {}, "baseline": report.get("baseline") or {},
            "results": [results[str(p)] for p in paths]}


def _finish(report: dict, config: BenchConfig) -> BenchRun:
    env = report.get("env") or {}
    env.setdefault("device", config.device)
    measured, errors = [], []
    for r in report["results"]:
        if "error" in r:
            errors.append({"artifact": str(r.get("artifact")), "error": str(r["error"])})
        else:
            r["env"] = env
            measured.append(r)
    reference = stats.add_speedups(measured)
    for r in measured:
        r["noise_pct"] = stats.noise_pct(r["latency_ms"])
        if r.get("samples_ms"):
            r["p50_ci_ms"] = list(stats.median_ci(r["samples_ms"]))
    cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    return BenchRun(env=env, results=measured, errors=errors, baseline=report.get("baseline") or {}, config=cfg,
                    reference=reference)
