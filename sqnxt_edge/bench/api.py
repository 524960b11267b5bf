"""The bench harness: one config, one call, one result object, whether the device is this machine or a board.

The system under test (device), the sample data and the test settings are separate; measuring happens in the
runner's child processes, statistics in `stats`, output in `report`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .. import runner
from ..errors import BenchError, DeviceError, SqnxtError
from ..formats import format_of
from ..progress import progress_bar
from . import stats
from .discover import discover_artifacts
from .recommend import recommend
from .settings import BENCH_RUNTIMES, LOCAL_TIMEOUT, BenchConfig

ESTIMATE_LABEL = "ESTIMATE, not a measurement"  # how every offer of the cost model is headed

__all__ = ["BenchConfig", "BenchRun", "BoardUnreachable", "run_bench", "board_estimates", "BENCH_RUNTIMES"]


@dataclass
class BenchRun:
    """One bench: the machine's state, a result per artifact and runtime, and the artifacts that failed."""

    env: dict[str, Any]
    results: list[dict[str, Any]]  # measured artifacts x runtimes, in the order given
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"artifact", "error"}
    baseline: dict[str, Any] = field(default_factory=dict)  # bare runtime peak RSS per runtime
    config: dict[str, Any] = field(default_factory=dict)
    reference: str | None = None  # what `speedup` is relative to
    estimates: dict[str, Any] = field(default_factory=dict)  # an emulated board's: what the board itself would do
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {"artifact", "runtime", "why"}: see _finish
    boards: dict[str, Any] = field(default_factory=dict)  # several boards (bench.boards): each one's outcome
    recommended: list[dict[str, Any]] = field(default_factory=list)  # the file to ship per precision: `recommend`

    @property
    def ok(self) -> bool:
        """True when every artifact was measured."""
        return not self.errors

    @property
    def emulated(self) -> bool:
        """Measured on an emulated board: latencies are the emulator's, never the board's speed."""
        return bool(self.env.get("emulated"))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form `bench --json` prints and the report writers read."""
        out = {
            "env": self.env,
            "config": self.config,
            "baseline": self.baseline,
            "reference": self.reference,
            "results": self.results,
            "errors": self.errors,
            "skipped": self.skipped,
            "recommended": self.recommended,
        }
        out = {**out, "estimates": self.estimates} if self.estimates else out
        return {**out, "boards": self.boards} if self.boards else out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchRun:
        """The JSON form back (what a board's worker process prints)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _runs_here(path: Path, config: BenchConfig) -> str | None:
    """Why `path` cannot be measured as configured (None when it can)."""
    fmt = format_of(path)
    if fmt is None:
        return None  # the runner names the problem
    if config.runtime not in ("auto", *fmt.runtimes):
        return f"{path.name}: runtime {config.runtime} cannot run {fmt.name} files (it runs {', '.join(fmt.runtimes)})"
    if fmt.name == "pytorch" and config.device != "local":
        return f"{path.name}: PyTorch checkpoints are the local baseline; export it to measure on {config.device}"
    return None


class BoardUnreachable(DeviceError):
    """The board could not be measured (unreachable, unknown, its run failed as a whole). `estimates` holds what the
    cost model says it would do, labelled as an estimate with its basis (`board_estimates`), for the caller to show."""

    def __init__(self, message: str, estimates: dict[str, Any]):
        super().__init__(message)
        self.estimates = estimates


def run_bench(
    artifacts: Sequence[str | Path] | None = None, config: BenchConfig | None = None, progress: bool = True
) -> BenchRun:
    """Measure `artifacts` (default: the newest export manifest's) on `config.device`; failures become
    per-artifact errors, the rest are still measured."""
    config = config or BenchConfig()
    config.validate()
    named = bool(artifacts)
    paths = [Path(a) for a in artifacts] if artifacts else discover_artifacts(config.export_dir)
    if not named:  # a runtime narrows the manifest instead of failing on what it cannot run
        paths = [p for p in paths if _runs_here(p, config) is None]
    if not paths:
        raise BenchError(f"nothing to measure with runtime {config.runtime}")
    refused = {str(p): why for p in paths if (why := _runs_here(p, config))}
    todo = [p for p in paths if str(p) not in refused]
    report: dict = {"env": {}, "baseline": {}, "results": []}
    with tempfile.TemporaryDirectory(prefix="sqnxt-bench-") as tmp:
        imported = _import_foreign(todo, config, Path(tmp), refused) if config.model else {}
        todo = [imported.get(str(p), p) for p in todo if str(p) not in refused]
        data_file = None
        if config.data and todo:
            from .dataset import write_data_npz

            data_file = write_data_npz(config.data, todo, Path(tmp) / "data.npz", config.data_dir)
        if todo:
            with progress_bar(f"bench on {config.device}", total=len(todo), enabled=progress) as advance:
                try:
                    report = _measure(todo, config, data_file, advance)
                except DeviceError as exc:  # the board cannot say: what it would do, labelled, goes with the error
                    if config.device == "local":
                        raise
                    raise BoardUnreachable(str(exc), _offer(todo, config)) from None
        originals = {str(new): old for old, new in imported.items()}
        for r in report.get("results") or []:  # report a foreign file under its own name
            if str(r.get("artifact")) in originals:
                r["artifact"], r["imported"] = originals[str(r["artifact"])], True
    results = [{"artifact": p, "error": e} for p, e in refused.items()]
    run = _finish(report, results, paths, config)
    run.recommended = [r.to_dict() for r in recommend(run.results)]
    if run.emulated:
        run.estimates = board_estimates(todo, config, run.env)
    return run


def board_estimates(artifacts: list[Path], config: BenchConfig, env: dict | None = None) -> dict:
    """What the board would do, from the cost model, when a bench cannot say (the board is unreachable, or emulated:
    an emulator's latencies are not the board's speed). Labelled as estimates, each with its basis."""
    from ..profiling import estimates_for

    device: str | None = config.device
    problems: list[str] = []
    emulation = (env or {}).get("emulation") if (env or {}).get("emulated") else None
    if isinstance(emulation, dict) and emulation.get("profile"):
        device = emulation["profile"]  # the board being emulated, by its hardware profile
    elif emulation is not None or (env or {}).get("emulated"):
        device = None if device == "local" else device
    found: list = []
    if device:
        found, problems = estimates_for(artifacts, device, config.threads, config.devices_file)
    else:
        problems.append("the emulated board names no hardware profile to estimate from")
    return {
        "label": ESTIMATE_LABEL,
        "device": device or config.device,
        "estimates": [{k: v for k, v in e.to_dict().items() if k != "layers"} for e in found],
        "problems": problems,
    }


def _offer(artifacts: list[Path], config: BenchConfig) -> dict[str, Any]:
    """`board_estimates`, or an empty offer that says why there is none."""
    try:
        return board_estimates(artifacts, config)
    except SqnxtError as exc:
        return {
            "label": ESTIMATE_LABEL,
            "device": config.device,
            "estimates": [],
            "problems": [str(exc)],
        }


def _import_foreign(paths: list[Path], config: BenchConfig, tmp: Path, refused: dict) -> dict[str, Path]:
    """Foreign PyTorch files as temporary sqnxt-edge checkpoints, which the runner's torch plugin loads:
    {original: temporary}. A file that cannot be read joins `refused`."""
    from ..checkpoint import load_checkpoint, save_checkpoint
    from ..errors import SqnxtError

    imported: dict[str, Path] = {}
    for i, path in enumerate(paths):
        fmt = format_of(path)
        if fmt is None or fmt.name != "pytorch":
            continue
        try:
            ckpt = load_checkpoint(
                path,
                model=config.model,
                num_classes=config.num_classes,
                input_size=config.input_size,
                dataset=config.dataset,
                data_dir=config.data_dir,
            )
            if ckpt.foreign:
                imported[str(path)] = save_checkpoint(ckpt, tmp / f"{i}-{path.stem}.pt")
        except SqnxtError as exc:
            refused[str(path)] = str(exc)
    return imported


def _measure(paths: list[Path], config: BenchConfig, data_file: Path | None, advance) -> dict:
    from ..devices import Target
    from .local import plugin_env

    def step(artifact, error) -> None:
        advance(1, Path(artifact or "").name)

    target = Target(config.device, config.devices_file)
    if target.is_local:  # each measuring process bounded; the PyTorch baseline as the runner's plugin
        return target.run(
            paths, config.measurement(None, config.timeout or LOCAL_TIMEOUT), data_file, None, step, plugin_env()
        )
    report = target.run(paths, config.measurement(), data_file, config.timeout)
    named = {str(p) for p in paths}
    stray = [r.get("artifact") for r in report.get("results") or [] if r.get("artifact") not in named]
    if stray:
        raise BenchError(f"{config.device}: the runner returned results for unknown artifacts: {stray[:3]}")
    return report


def _finish(report: dict, refused: list[dict], paths: list[Path], config: BenchConfig) -> BenchRun:
    env = report.get("env") or runner.environment()
    env.setdefault("device", config.device)
    order = {str(p): i for i, p in enumerate(paths)}
    everything = sorted(refused + list(report.get("results") or []), key=lambda r: order.get(str(r["artifact"]), 0))
    measured, errors, skipped = [], [], []
    ran = {str(r["artifact"]) for r in everything if "error" not in r}
    for r in everything:
        if "error" in r and config.runtime == "auto" and str(r["artifact"]) in ran:
            # an extra engine `auto` tried (OpenVINO on a QOperator int8 file): the artifact has its row already
            skipped.append({"artifact": str(r["artifact"]), "runtime": r.get("runtime"), "why": str(r["error"])})
        elif "error" in r:
            errors.append({"artifact": str(r.get("artifact")), "error": str(r["error"])})
        else:
            r["env"] = env
            measured.append(r)
    reference = None
    if env.get("emulated"):  # an emulator's timings compare with nothing
        for r in measured:
            r["emulated"] = True
    else:
        reference = stats.add_speedups(measured)
    for r in measured:
        r["noise_pct"] = stats.noise_pct(r["latency_ms"]) if r.get("latency_ms") else None
        if r.get("samples_ms"):
            r["p50_ci_ms"] = list(stats.median_ci(r["samples_ms"]))
    cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    return BenchRun(
        env=env,
        results=measured,
        errors=errors,
        baseline=report.get("baseline") or {},
        config=cfg,
        reference=reference,
        skipped=skipped,
    )
