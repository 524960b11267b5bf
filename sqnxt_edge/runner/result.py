"""What a measurement says, typed: `Measurement` (with its `Latency` statistics) is read from the runner's JSON once
and used as-is by the bench, pipeline and profiling reports, so every field is named once, here.

The wire format stays the JSON the runner prints (keys = these field names); statistics come from raw samples
(`summarize`), never the other way round. Accuracy follows one top-1 rule (`top_classes`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from .contract import RunnerError


@dataclass(frozen=True)
class Latency:
    """Statistics of one measurement's raw latency samples, in ms per batch (the JSON's `latency_ms`)."""

    mean: float
    std: float
    min: float
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, samples_ms) -> Latency:
        """mean, std (n-1), min, p50, p90, p99, max of raw samples (ms)."""
        a = np.asarray(samples_ms, dtype=np.float64)
        if a.size == 0:
            raise RunnerError("no samples to summarize")
        p50, p90, p99 = np.percentile(a, [50, 90, 99])
        std = float(a.std(ddof=1)) if a.size > 1 else 0.0
        return cls(float(a.mean()), std, float(a.min()), float(p50), float(p90), float(p99), float(a.max()))

    @classmethod
    def from_dict(cls, data: dict | None) -> Latency | None:
        """The JSON's `latency_ms` object (missing statistics as NaN); None when there is none."""
        if not data:
            return None
        return cls(**{f.name: float(data.get(f.name, float("nan"))) for f in fields(cls)})


@dataclass
class Measurement:
    """One artifact x runtime as the runner reports it. `extra` keeps what a harness adds to a result (speed-up,
    noise, env ...), so `to_dict()` gives back the JSON it was read from."""

    artifact: str
    format: str | None = None
    runtime: str | None = None
    runtime_version: str | None = None
    precision: str | None = None
    threads: int | None = None
    batch: int | None = None
    input_size: int | None = None
    size_bytes: int | None = None
    init_ms: float | None = None  # loading the model
    first_ms: float | None = None  # the first inference, alone
    warmup: int | None = None
    runs: int | None = None  # timed runs
    latency_ms: Latency | None = None
    throughput_ips: float | None = None  # images per second at `batch`
    samples_ms: list[float] | None = None  # every timed run, when asked for
    peak_rss_mb: float | None = None  # of the measuring process
    model_peak_rss_mb: float | None = None  # above the bare runtime's
    top1: float | None = None
    top5: float | None = None
    n: int | None = None  # images scored
    logits: list | None = None
    profile: dict | None = None  # the runtime's per-node times (raw), with --profile
    pid: int | None = None
    cores: list[int] | None = None  # the measuring process's real affinity (sched_getaffinity)
    flags: list[str] | None = None  # throttled, under_voltage, clock_below_max, other_load (runner.context)
    context: dict | None = None  # temperatures, clocks, firmware flags and load before/after the timed runs
    window_s: float | None = None  # a sustained run's window
    windows: list[dict] | None = None  # ... one row per window: t_s, p50_ms, temp_c, mhz, throttled
    sustained: dict | None = None  # ... whether and when it throttled, how much slower after
    cooldown: dict | None = None  # the wait before this artifact (--cooldown)
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> Measurement:
        """One result of the runner's JSON (keys it does not define go to `extra`)."""
        names = {f.name for f in fields(cls)} - {"extra", "latency_ms"}
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names and k != "latency_ms"}
        return cls(**known, latency_ms=Latency.from_dict(data.get("latency_ms")), extra=extra)

    def to_dict(self) -> dict:
        """The JSON form: fields that are set, then `extra`."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or value is None:
                continue
            out[f.name] = asdict(value) if isinstance(value, Latency) else value
        return {**out, **self.extra}

    @property
    def size_mb(self) -> float | None:
        """The artifact's size in MiB."""
        return self.size_bytes / 2**20 if self.size_bytes is not None else None


def summarize(samples_ms) -> dict:
    """mean, std, min, p50, p90, p99, max of raw latency samples (ms), as the JSON's `latency_ms`."""
    return asdict(Latency.of(samples_ms))


def latency_fields(first_ms: float, samples_ms: list, batch: int, keep_samples: bool = False) -> dict:
    """The timing part of a result."""
    stats = Latency.of(samples_ms)
    out = {
        "first_ms": first_ms,
        "runs": len(samples_ms),
        "latency_ms": asdict(stats),
        "throughput_ips": batch * 1000.0 / stats.mean if stats.mean > 0 else None,
    }
    if keep_samples:
        out["samples_ms"] = [round(v, 6) for v in samples_ms]
    return out


def top_classes(logits: np.ndarray, k: int = 1) -> np.ndarray:
    """The k best classes of each row, best first: THE top-1 rule of the project (ties go to the lowest index,
    as numpy's argmax does). Shape (n,) for k=1, else (n, k)."""
    logits = np.asarray(logits)
    if k == 1:
        return np.argmax(logits, axis=1)
    return np.argsort(-logits, axis=1, kind="stable")[:, :k]  # stable: equal scores keep index order


def per_class_counts(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(images, correct) per class index of top-1 classes against integer labels: what per-class accuracy is made of
    (eval --per-class and the int8 report count the same way)."""
    predicted = np.asarray(predicted).reshape(-1)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    n = np.bincount(labels, minlength=num_classes)
    correct = np.bincount(labels[predicted == labels], minlength=num_classes)
    return n[:num_classes], correct[:num_classes]


def topk_accuracy(logits: np.ndarray, labels: np.ndarray) -> dict:
    """top-1 (and top-5 when there are at least 5 classes) of logits against integer labels."""
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(logits) != len(labels) or len(labels) == 0:
        raise RunnerError(f"{len(logits)} predictions for {len(labels)} labels")
    top1 = float(np.mean(top_classes(logits) == labels))
    top5 = None
    if logits.shape[1] >= 5:
        top5 = float(np.mean(np.any(top_classes(logits, 5) == labels[:, None], axis=1)))
    return {"top1": top1, "top5": top5, "n": len(labels)}
