"""`sqnxt-edge profile`: where the time goes, layer by layer, measured by the runtime's own profiler.

The runner (the one file that runs on boards) returns onnxruntime's raw per-node kernel times; here they are mapped
to the model's layers through the names the export keeps, with each layer's MACs, bytes moved, achieved GFLOP/s and
share, and rolled up per stage and per layer kind.

Two corrections keep the figures honest, both measured in the same run on the same machine: the profiler's own floor
per node (the profiled time of a probe chain of tiny Adds) is subtracted from every node, and the per-layer sum is
checked against the median of plain runs interleaved with the profiled ones (`agreement_pct`).
"""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import runner
from ..errors import SqnxtError
from ..progress import progress_bar
from .layers import KINDS, LayerTable, artifact_layers
from .probe import PROBE_NODES, write_probe

__all__ = ["ProfileError", "LayerTime", "ProfileResult", "profile", "AGREEMENT_PCT"]

AGREEMENT_PCT = 15.0  # the per-layer sum must be this close to the end-to-end median


class ProfileError(SqnxtError):
    """A profile that cannot be made (unsupported artifact or runtime, a failed run)."""


@dataclass
class LayerTime:
    """One layer's measured time in a profile, with its share and achieved throughput."""

    name: str
    kind: str
    stage: str
    op: str
    us: float  # median per inference, profiler floor subtracted
    share: float  # of the summed time (layers + runtime nodes)
    macs: int = 0
    bytes: int = 0
    gflops: float | None = None  # achieved: 2 x MACs / time
    nodes: int = 0  # profiler nodes folded into this layer


@dataclass
class ProfileResult:
    """A per-layer profile of one artifact on one device, with the roll-ups and the check."""

    artifact: str
    model: str
    input_size: int
    precision: str
    device: str
    threads: int | None
    runtime: str
    latency_ms: float  # p50 of the ordinary measurement (the same figure `sqnxt-edge bench` reports)
    e2e_ms: float  # median of the plain runs interleaved with the profiled ones
    sum_ms: float  # layers + runtime nodes
    agreement_pct: float  # (sum - e2e) / e2e
    floor_us: float  # the profiler's own time per node, subtracted
    dispatch_us: float  # onnxruntime's cost per node without the profiler (the probe's plain latency / nodes)
    layers: list[LayerTime]
    runtime_nodes: list[LayerTime]  # the runtime's own nodes (layout reorders, quantize/dequantize, flatten)
    by_stage: dict[str, float]  # share per stage
    by_kind: dict[str, float]  # share per layer kind
    stem_share: float
    stem_macs_share: float
    runs: int
    env: dict = field(default_factory=dict)
    profiler: str = ""
    cores: list[int] | None = None  # the cores the runner ran on (its affinity), as the kernel reported it

    @property
    def agrees(self) -> bool:
        """True when the summed layers agree with the end-to-end time."""
        return abs(self.agreement_pct) <= AGREEMENT_PCT

    def measured_us(self) -> dict[str, float]:
        """Measured time per layer name, what calibration fits to."""
        return {l.name: l.us for l in self.layers}

    def to_dict(self) -> dict:
        """The profile as JSON-ready data."""
        return {**asdict(self), "agrees": self.agrees}


def _check(path: Path) -> None:
    if not path.is_file():
        raise ProfileError(f"artifact not found: {path}")
    if runner.describe(str(path))["format"] == "ncnn":
        from ..runner.backends.ncnn import Ncnn

        raise ProfileError(
            f"{path.name}: no per-layer profile: {Ncnn.no_profile}; profile the .onnx of the same export"
        )
    if path.suffix.lower() not in (".onnx", ".ort"):
        raise ProfileError(
            f"{path.name}: per-layer profiles come from onnxruntime's profiler (.onnx, .ort); "
            "ai-edge-litert's Python interpreter exposes no op profiler (TFLite's own tool: "
            "benchmark_model --enable_op_profiling): profile the .onnx of the same export"
        )


def run_on(
    paths: list[Path], device: str, settings: runner.Settings, devices_file, progress: bool, what: str = "profiling"
) -> dict:
    """The runner's report through the one target seam (locally too: runner.pyz in a child, as on a board), its
    `results` checked to be one per path, in order."""
    from ..devices import Target

    target = Target(device, devices_file)
    where = "" if target.is_local else f" on {device}"
    with progress_bar(f"{what}{where}", len(paths), progress) as advance:
        report = target.run(paths, settings, progress=lambda artifact, error: advance(1, Path(str(artifact)).name))
    results = list(report.get("results") or [])  # in the order given (an artifact may be run twice)
    if [str(r.get("artifact")) for r in results] != [str(p) for p in paths]:
        raise ProfileError(f"the runner on {device} returned results for other artifacts than asked")
    return {**report, "results": results}


def p50_of(result: dict) -> float:
    """The p50 (ms) of the runner's ordinary measurement, through its typed result."""
    latency = runner.Measurement.from_dict(result).latency_ms
    if latency is None:
        raise ProfileError(f"{Path(str(result.get('artifact'))).name}: the runner returned no latency")
    return latency.p50


def _median(values) -> float:
    return float(statistics.median(values)) if values else 0.0


def _fold(
    result: dict, table: LayerTable, meta: dict, device: str, floor: float, dispatch: float, env: dict
) -> ProfileResult:
    prof = result["profile"]
    precision = str(meta.get("precision") or result.get("precision") or "fp32")
    per_layer: dict[str, list] = {l.name: [0.0, 0] for l in table.layers}
    runtime_nodes: dict[str, list] = {}
    for node in prof["nodes"]:
        us = max(0.0, _median(node["us"]) - floor)
        owner = table.layer_of(node["name"])
        slot = per_layer[owner] if owner in per_layer else runtime_nodes.setdefault(str(node.get("op")), [0.0, 0])
        slot[0] += us
        slot[1] += 1
    total = sum(v[0] for v in per_layer.values()) + sum(v[0] for v in runtime_nodes.values())

    def share(us: float) -> float:
        return us / total if total else 0.0

    layers = []
    for layer in table.layers:
        us, n = per_layer[layer.name]
        layers.append(
            LayerTime(
                layer.name,
                layer.kind,
                layer.stage,
                layer.op,
                us,
                share(us),
                layer.macs,
                layer.bytes(precision),
                2 * layer.macs / us / 1e3 if us and layer.macs else None,
                n,
            )
        )
    others = [LayerTime(op, "runtime", "runtime", op, us, share(us), nodes=n) for op, (us, n) in runtime_nodes.items()]
    by_stage: dict[str, float] = {}
    by_kind: dict[str, float] = dict.fromkeys(KINDS, 0.0)
    for row in layers + others:
        by_stage[row.stage] = by_stage.get(row.stage, 0.0) + row.share
        by_kind[row.kind] = by_kind.get(row.kind, 0.0) + row.share
    e2e = _median(prof["e2e_us"]) / 1e3
    stem_macs = sum(l.macs for l in table.layers if l.stage == "stem")
    return ProfileResult(
        artifact=str(result["artifact"]),
        model=table.model,
        input_size=table.input_size,
        precision=precision,
        device=device,
        threads=result.get("threads"),
        runtime=f"onnxruntime {result.get('runtime_version')}",
        latency_ms=p50_of(result),
        e2e_ms=e2e,
        sum_ms=total / 1e3,
        agreement_pct=100.0 * (total / 1e3 - e2e) / e2e if e2e else 0.0,
        floor_us=floor,
        dispatch_us=dispatch,
        layers=layers,
        runtime_nodes=others,
        by_stage=by_stage,
        by_kind={k: v for k, v in by_kind.items() if v},
        stem_share=by_stage.get("stem", 0.0),
        stem_macs_share=stem_macs / table.macs if table.macs else 0.0,
        runs=len(prof["e2e_us"]),
        env=env,
        profiler=str(prof.get("profiler")),
        cores=result.get("cores"),
    )


def profile(
    artifacts: Sequence[str | os.PathLike],
    device: str = "local",
    threads: int | None = None,
    runs: int = 50,
    warmup: int = 10,
    devices_file: str | os.PathLike | None = None,
    timeout: float | None = None,
    progress: bool = True,
    cores: str | None = None,
) -> list[ProfileResult]:
    """Profile each ONNX / ORT artifact on `device` ('local' or a registered board) through the runner; `cores`
    ("4-7") pins the runner there first, as `bench --cores` does (threads then default to one per pinned core)."""
    paths = [Path(a) for a in artifacts]
    if not paths:
        raise ProfileError("give at least one .onnx or .ort artifact")
    tables = {}
    for path in paths:
        _check(path)
        tables[str(path)] = artifact_layers(path)
    settings = runner.Settings(
        runtime="onnxruntime",
        threads=threads,
        warmup=warmup,
        runs=runs,
        min_seconds=0.5,
        profile=True,
        timeout=timeout,
        cores=cores,
    ).check()
    with tempfile.TemporaryDirectory(prefix="sqnxt-profile-") as tmp:
        probe = write_probe(Path(tmp))
        report = run_on([probe, *paths], device, settings, devices_file, progress)
    results = report["results"]
    probe_result = results[0]
    if "profile" not in probe_result:
        raise ProfileError(f"the profiler probe failed on {device}: {probe_result.get('error', 'no result')}")
    floor = _median([_median(n["us"]) for n in probe_result["profile"]["nodes"]])
    dispatch = _median(probe_result["profile"]["e2e_us"]) / PROBE_NODES
    env = report.get("env") or {}
    out = []
    for path, result in zip(paths, results[1:]):
        if "error" in result:
            raise ProfileError(f"{path.name}: {result['error']}")
        table, meta = tables[str(path)]
        out.append(_fold(result, table, meta, device, floor, dispatch, env))
    return out
