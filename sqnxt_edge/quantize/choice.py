"""Which int8 configuration runs fastest on this CPU: measured once per CPU model and onnxruntime version, cached.

Why measure: the fast activation type and format depend on the CPU's int8 kernels, not on the model. On one AVX-512
VNNI machine QDQ U8S8 ran 1.5-1.75x faster than fp32, on another only 1.08x while S8S8 ran slower than fp32
(benchmarks/int8/). A table cannot know; a probe can. The probe (the export stage gives one: a SqueezeNext with random
weights, the zoo's block mix and channel counts) is quantized with each candidate and timed, interleaved with its fp32
ONNX, on one thread: a few seconds, then cached in `int8-choice.json` in the cache folder (sqnxt_edge.cache) under
"arch|cpu model|onnxruntime version". A board's CPU is not probed from here: it gets the table default.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..artifacts import atomic_write
from ..cache import cache_dir
from .config import Int8Config, default_int8_config

__all__ = ["Int8Choice", "CANDIDATES", "choose_int8", "cache_path", "cpu_key", "measure_candidates"]

# Per-channel weights only: per-tensor costs accuracy on these narrow layers for no speed (benchmarks/int8/).
# QDQ only: the default .onnx goes into apps and other engines (OpenVINO, onnxruntime's mobile EPs, TensorRT read
# QDQ; QOperator's QLinearConv is onnxruntime's alone: OpenVINO refuses it). `--int8-tune` may still pick QOperator.
CANDIDATES = tuple(Int8Config(act, "int8", "qdq", per_channel=True) for act in ("uint8", "int8"))
Probe = Callable[[Path], Path]  # folder -> an fp32 ONNX (with its sidecar) written there


@dataclass
class Int8Choice:
    """The configuration to use, why, and the measurements behind it."""

    config: Int8Config
    key: str
    source: str  # "measured" (just now), "cache" (measured before on this CPU) or "table" (not measured here)
    reason: str
    speedups: dict[str, float] = field(default_factory=dict)  # candidate label -> fp32 p50 / int8 p50

    def to_dict(self) -> dict:
        """The choice as JSON-ready data (what the cache stores)."""
        return {
            "config": self.config.to_dict(),
            "key": self.key,
            "source": self.source,
            "reason": self.reason,
            "speedups": self.speedups,
        }


def cache_path() -> Path:
    """Where int8 choices are cached, one per CPU and onnxruntime version."""
    return cache_dir() / "int8-choice.json"


def cpu_key(cpu: dict, ort_version: str) -> str:
    """The cache key for a CPU: architecture, model and onnxruntime version."""
    return f"{cpu.get('arch')}|{cpu.get('model')}|onnxruntime {ort_version}"


def measure_candidates(
    fp32_onnx: Path, images: np.ndarray, candidates=CANDIDATES, threads: int = 1, rounds: int = 6, reps: int = 10
) -> dict[str, float]:
    """{label: fp32 p50 / int8 p50} for each candidate, timed interleaved with the fp32 model (same conditions)."""
    from ..runner import open_model
    from .latency import interleaved_latency
    from .onnx_int8 import calibrate, finish, open_fp32, prepare, quantize_prepared

    fp32 = open_fp32(fp32_onnx)
    with tempfile.TemporaryDirectory(prefix="sqnxt-int8-probe-") as tmp:
        work = Path(tmp)
        prepared = prepare(fp32_onnx, work / "prepared.onnx")
        ranges = calibrate(prepared, fp32, images, candidates[0], work)
        models = {"fp32": open_model(str(fp32_onnx), threads=threads)}
        for i, cfg in enumerate(candidates):
            q = quantize_prepared(prepared, ranges, cfg, work / f"q{i}.raw.onnx", work)
            models[cfg.label] = open_model(str(finish(q, fp32_onnx, fp32, cfg, work / f"q{i}.onnx")), threads=threads)
        x = images[:1]
        times = interleaved_latency(models, {k: m.prepare(x) for k, m in models.items()}, rounds=rounds, reps=reps)
    base = times["fp32"].p50
    return {label: round(base / t.p50, 3) for label, t in times.items() if label != "fp32"}


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def choose_int8(cpu: dict | None = None, probe: Probe | None = None, cache: Path | None = None) -> Int8Choice:
    """The int8 configuration for `cpu` (None: this machine). This machine's choice is measured once on `probe`'s
    model and cached; another CPU (a board), or no probe, gets the table default, labelled as not measured here."""
    import onnxruntime

    from ..runner import cpu_info

    here = cpu_info()
    target = cpu or here
    key = cpu_key(target, onnxruntime.__version__)
    path = cache or cache_path()
    entry = _read_cache(path).get(key)
    if isinstance(entry, dict) and entry.get("label") in {c.label for c in CANDIDATES}:
        cfg = next(c for c in CANDIDATES if c.label == entry["label"])
        return Int8Choice(cfg, key, "cache", entry.get("reason", ""), entry.get("speedups", {}))
    if target.get("model") != here.get("model") or target.get("arch") != here.get("arch") or probe is None:
        cfg = default_int8_config(target)
        return Int8Choice(
            cfg,
            key,
            "table",
            f"{cfg.label}: the table default for {target.get('model')}, "
            "not measured here (use --int8-tune on the target)",
        )
    with tempfile.TemporaryDirectory(prefix="sqnxt-int8-probe-") as tmp:
        from ..runner import open_model

        fp32 = probe(Path(tmp))
        size = open_model(str(fp32)).input_size
        images = np.random.default_rng(0).integers(0, 256, (16, size, size, 3), dtype=np.uint8)
        speedups = measure_candidates(fp32, images)
    best = max(speedups, key=speedups.__getitem__)
    cfg = next(c for c in CANDIDATES if c.label == best)
    others = ", ".join(f"{label} {s:.2f}x" for label, s in sorted(speedups.items(), key=lambda kv: -kv[1])[1:])
    verdict = "fastest" if speedups[best] >= 1.0 else "least slow (no int8 configuration beats fp32 on this CPU)"
    reason = (
        f"{best}: {verdict} of {len(speedups)} measured on {target.get('model')} with onnxruntime "
        f"{onnxruntime.__version__} ({speedups[best]:.2f}x vs fp32, 1 thread; {others})"
    )
    data = _read_cache(path)
    data[key] = {
        "label": best,
        "reason": reason,
        "speedups": speedups,
        "median_speedup": statistics.median(speedups.values()),
    }
    try:
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8"))
    except Exception:  # a read-only home still gets the choice, just not cached
        pass
    return Int8Choice(cfg, key, "measured", reason, speedups)
