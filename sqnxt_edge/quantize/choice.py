"""Which int8 configurations to try for a target, in which order: only those numerically safe on every CPU class the
target covers (`targets`), fastest first where this machine can tell.

Why measure: the fast configuration depends on the CPU's int8 kernels, not on the model (QDQ S8S8 runs slower than
fp32 on x86, U8S8 1.5-1.8x faster: benchmarks/int8/). When this machine belongs to the target (always, for the
portable default), a probe (a SqueezeNext with random weights, the zoo's block mix) is quantized with each candidate
and timed, interleaved with its fp32 ONNX on one thread: a few seconds, then cached in `int8-choice.json` in the
cache folder under the ISA features that change int8 kernels + the runtime version + the target. Another class's
order comes from the table (not measured here, said so). Speed only orders the candidates: the export then
quantizes them in that order and keeps the first that passes its accuracy gates on real images.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..artifacts import atomic_write
from ..cache import cache_dir
from .config import Int8Config
from .targets import CPU_CLASSES, PORTABLE, class_of, covers, is_safe, isa_key

__all__ = [
    "Int8Choice",
    "CANDIDATES",
    "candidates_for",
    "default_int8_config",
    "choose_int8",
    "cache_path",
    "measure_candidates",
]


def _qdq(act: str, weight: str = "int8", reduce_range: bool = False) -> Int8Config:
    return Int8Config(act, weight, "qdq", per_channel=True, reduce_range=reduce_range)


# QDQ per-channel only: the default .onnx goes into apps and other engines (OpenVINO, onnxruntime's mobile EPs and
# TensorRT read QDQ; QOperator is onnxruntime's alone), and per-tensor weights cost accuracy on these narrow layers for
# no speed (benchmarks/int8/). `--int8-tune` may still try the rest.
CANDIDATES = (_qdq("uint8"), _qdq("uint8", reduce_range=True), _qdq("int8"), _qdq("uint8", "uint8"))
# The order to try when this machine cannot time them. x86: MLAS multiplies uint8 activations by int8 weights
# natively (VNNI; VPMADDUBSW without it), QDQ U8S8 ran 1.4-2.5x faster than fp32 here while onnxruntime's own default
# S8S8 ran slower than fp32 (benchmarks/int8/). ARM64: MLAS has native S8S8 kernels with dotprod (SDOT) and without
# (NEON), while U8S8 goes through a sign flip (onnxruntime PRs #9770/#9902, S8S8 QDQ fusion #9961), and
# quantize_static's docstring recommends S8S8 for ARM (not yet measured on a board: `--int8-tune` there decides).
_PRIOR = {"x86": ("QDQ U8S8 per-channel", "QDQ U8S8 per-channel 7-bit"), "arm": ("QDQ S8S8 per-channel",)}
Probe = Callable[[Path], Path]  # folder -> an fp32 ONNX (with its sidecar) written there


@dataclass
class Int8Choice:
    """The configurations to try for a target, best first, why, and the measurements behind the order."""

    target: str
    candidates: list[Int8Config]
    key: str
    source: str  # "measured" (just now), "cache" (measured before on this CPU class) or "table" (not measured here)
    reason: str
    speedups: dict[str, float] = field(default_factory=dict)  # candidate label -> fp32 p50 / int8 p50, here

    @property
    def config(self) -> Int8Config:
        """The configuration to try first."""
        return self.candidates[0]

    def to_dict(self) -> dict:
        """The choice as JSON-ready data (the manifest's record)."""
        return {
            "target": self.target,
            "order": [c.label for c in self.candidates],
            "key": self.key,
            "source": self.source,
            "reason": self.reason,
            "speedups": self.speedups,
        }


def cache_path() -> Path:
    """Where int8 choices are cached, one per CPU class (ISA features), runtime version and target."""
    return cache_dir() / "int8-choice.json"


def candidates_for(target: str, pool: tuple[Int8Config, ...] = CANDIDATES) -> list[Int8Config]:
    """The configurations of `pool` that are numerically safe on every class `target` covers, in the table's order."""
    safe = [c for c in pool if is_safe(c, target)]
    arch = "arm" if target != PORTABLE and CPU_CLASSES[target].arch == "arm" else "x86"
    first = [c for label in _PRIOR[arch] for c in safe if c.label == label]
    return first + [c for c in safe if c not in first]


def default_int8_config(target: str = PORTABLE) -> Int8Config:
    """The first configuration to try for `target` before anything is timed (what `export --int8` starts from)."""
    return candidates_for(target)[0]


def measure_candidates(
    fp32_onnx: Path, images: np.ndarray, candidates=CANDIDATES, threads: int = 1, rounds: int = 6, reps: int = 10
) -> dict[str, float]:
    """{label: fp32 p50 / int8 p50} for each candidate, timed interleaved with the fp32 model (same conditions)."""
    from ..runner import open_model
    from .latency import interleaved_latency
    from .onnx_int8 import Int8Session

    session = Int8Session(fp32_onnx, images)
    with tempfile.TemporaryDirectory(prefix="sqnxt-int8-probe-") as tmp:
        models = {"fp32": open_model(str(fp32_onnx), threads=threads)}
        for i, cfg in enumerate(candidates):
            models[cfg.label] = open_model(str(session.quantize(cfg, Path(tmp) / f"q{i}.onnx")), threads=threads)
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


def _ordered(candidates: list[Int8Config], speedups: dict[str, float]) -> list[Int8Config]:
    return sorted(candidates, key=lambda c: -speedups.get(c.label, 0.0))


def choose_int8(target: str = PORTABLE, probe: Probe | None = None, cache: Path | None = None) -> Int8Choice:
    """The configurations to try for `target` (portable or a CPU class), fastest on this machine first when this
    machine is one of the classes the target covers and `probe` gives a model to time; cached per ISA features."""
    import onnxruntime

    from ..runner import cpu_info

    here = cpu_info()
    candidates = candidates_for(target)
    key = f"{isa_key(here, 'onnxruntime ' + onnxruntime.__version__)}|{target}"
    mine = class_of(here).name
    path = cache or cache_path()
    entry = _read_cache(path).get(key)
    labels = {c.label for c in candidates}
    if isinstance(entry, dict) and set(entry.get("speedups") or {}) == labels:
        speedups = entry["speedups"]
        return Int8Choice(target, _ordered(candidates, speedups), key, "cache", entry.get("reason", ""), speedups)
    if mine not in covers(target) or probe is None:
        why = "not timed" if probe is None else f"this machine is {mine}: not measured here"
        return Int8Choice(target, candidates, key, "table", f"the table's order for {target} ({why})")
    with tempfile.TemporaryDirectory(prefix="sqnxt-int8-probe-") as tmp:
        from ..runner import open_model

        fp32 = probe(Path(tmp))
        size = open_model(str(fp32)).input_size
        images = np.random.default_rng(0).integers(0, 256, (16, size, size, 3), dtype=np.uint8)
        speedups = measure_candidates(fp32, images, tuple(candidates))
    ordered = _ordered(candidates, speedups)
    listing = ", ".join(f"{c.label} {speedups[c.label]:.2f}x" for c in ordered)
    reason = (
        f"safe on {', '.join(covers(target))}; timed on this {mine} CPU ({here.get('model')}) with onnxruntime "
        f"{onnxruntime.__version__} vs fp32, 1 thread: {listing}"
    )
    data = _read_cache(path)
    data[key] = {"order": [c.label for c in ordered], "reason": reason, "speedups": speedups}
    try:
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8"))
    except Exception:  # a read-only home still gets the choice, just not cached
        pass
    return Int8Choice(target, ordered, key, "measured", reason, speedups)
