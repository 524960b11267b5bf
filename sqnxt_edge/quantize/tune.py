"""`--int8-tune`: try the candidate configurations, keep those within the accuracy budget, pick the fastest.

Calibration runs once per calibration method and its ranges are shared by every candidate, so tuning costs one
calibration plus a quantize + evaluate + short interleaved timing per candidate.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..artifacts import copy_artifact
from ..errors import ExportError
from .accuracy import predict_top1
from .calibration import check_images
from .choice import candidates_for
from .config import Int8Config
from .latency import interleaved_latency
from .onnx_int8 import Int8Session
from .targets import PORTABLE, is_safe

__all__ = ["TuneRow", "TuneResult", "TuneError", "tune_onnx", "default_candidates"]


@dataclass
class TuneRow:
    """One tuned candidate: accuracy, agreement with fp32, latency and speed-up."""

    label: str
    top1: float
    drop: float
    agreement: float
    p50_ms: float
    speedup: float
    within_budget: bool
    bytes: int
    chosen: bool = False
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The row as JSON-ready data."""
        return asdict(self)


@dataclass
class TuneResult:
    """The tuning table and the candidate chosen (None when none is within budget)."""

    chosen: Int8Config | None
    path: Path | None
    rows: list[TuneRow]
    fp32_top1: float
    fp32_p50_ms: float
    max_drop: float
    threads: int
    batch: int

    def to_dict(self) -> dict:
        """The result as JSON-ready data."""
        return {
            "chosen": self.chosen.to_dict() if self.chosen else None,
            "path": str(self.path) if self.path else None,
            "fp32": {"top1": self.fp32_top1, "p50_ms": self.fp32_p50_ms},
            "max_drop": self.max_drop,
            "threads": self.threads,
            "batch": self.batch,
            "rows": [r.to_dict() for r in self.rows],
        }


class TuneError(ExportError):
    """No candidate met the accuracy budget; `.result` holds the table to print."""

    def __init__(self, message: str, result: TuneResult):
        super().__init__(message)
        self.result = result


def default_candidates(base: Int8Config | None = None, target: str = PORTABLE) -> list[Int8Config]:
    """activation type x QDQ/QOperator x per-channel (7-bit weights where full range is unsafe on `target`), plus
    the first choice with its stem, then its head, in fp32, and with its stem as space-to-depth (`stem_s2d`: tried
    where the model's stem allows it); only configurations safe on every class of `target`."""
    base = base or candidates_for(target)[0]
    grid = []
    for a, f, pc in itertools.product(("uint8", "int8"), ("qdq", "qoperator"), (True, False)):
        cfg = base.with_(activation_type=a, quant_format=f, per_channel=pc, reduce_range=False, exclude=())
        grid.append(cfg if is_safe(cfg, target) else cfg.with_(reduce_range=True))
    extra = [base.with_(exclude=("stem",)), base.with_(exclude=("head",)), base.with_(exclude=("stem", "head"))]
    extra.append(base.with_(s2d_stem=True))
    seen, out = set(), []
    for cfg in [base, *grid, *extra]:
        if cfg.label not in seen and is_safe(cfg, target):
            seen.add(cfg.label)
            out.append(cfg)
    return out


def tune_onnx(
    fp32_onnx: Path,
    out: Path,
    calib_images: np.ndarray,
    eval_images: np.ndarray,
    eval_labels: np.ndarray,
    max_drop: float = 1.0,
    threads: int = 1,
    batch: int = 1,
    candidates: list[Int8Config] | None = None,
    progress: bool = False,
    rounds: int = 8,
    reps: int = 5,
    target: str = PORTABLE,
    meta: dict | None = None,
) -> TuneResult:
    """Quantize every candidate, evaluate it on held-out images, time it at batch `batch` with `threads` threads
    (interleaved with fp32), and write the fastest one within `max_drop` points to `out`.

    Only configurations numerically safe on every CPU class of `target` are tried (`targets.is_safe`). Raises
    TuneError (an ExportError carrying the table) when none is within budget; nothing is written then.
    """
    from ..data import resize_uint8
    from ..runner import open_model

    fp32_onnx, out = Path(fp32_onnx), Path(out)
    defaulted = not candidates
    candidates = list(candidates or default_candidates(target=target))
    unsafe = [c.label for c in candidates if not is_safe(c, target)]
    if unsafe:
        raise ExportError(
            f"{', '.join(unsafe)} not numerically safe on every CPU class of {target} (full-range U8S8 "
            "saturates on x86 without VNNI): use 7-bit weights (reduce_range) or target a class"
        )
    with Int8Session(fp32_onnx, calib_images, progress) as session:  # opens the fp32 model, checks the images
        fp32 = session.fp32
        if defaulted:  # the space-to-depth stem only where this model's stem is one it can rewrite
            candidates = [c for c in candidates if not c.s2d_stem or session.can_s2d()]
        size = fp32.input_size
        labels = np.asarray(eval_labels).reshape(-1)
        eval_x = check_images(resize_uint8(eval_images, size), size, fp32.channels, "evaluation images")
        p32 = predict_top1(fp32_onnx, eval_x, fp32)
        top32 = float(np.mean(p32 == labels) * 100)
        timing_batch = fp32.fixed_batch or batch
        sample = eval_x[np.arange(timing_batch) % len(eval_x)]
        files = [session.quantize(cfg, session.work / f"cand{i}.onnx", meta) for i, cfg in enumerate(candidates)]
        models = {"fp32": open_model(str(fp32_onnx), threads=threads)}
        models.update({f"c{i}": open_model(str(f), threads=threads) for i, f in enumerate(files)})
        inputs = {k: m.prepare(sample) for k, m in models.items()}
        times = interleaved_latency(models, inputs, rounds=rounds, reps=reps)
        fp32_ms = times["fp32"].p50
        rows = []
        for i, (cfg, f) in enumerate(zip(candidates, files)):
            p8 = predict_top1(f, eval_x, models[f"c{i}"])
            top8 = float(np.mean(p8 == labels) * 100)
            ms = times[f"c{i}"].p50
            rows.append(
                TuneRow(
                    cfg.label,
                    round(top8, 3),
                    round(top32 - top8, 3),
                    round(float(np.mean(p8 == p32) * 100), 3),
                    round(ms, 4),
                    round(fp32_ms / ms, 3),
                    top32 - top8 <= max_drop + 1e-9,
                    f.stat().st_size,
                    config=cfg.to_dict(),
                )
            )
        ok = [i for i, r in enumerate(rows) if r.within_budget]
        result = TuneResult(None, None, rows, round(top32, 3), round(fp32_ms, 4), max_drop, threads, timing_batch)
        if not ok:
            best = min(rows, key=lambda r: r.drop)
            raise TuneError(
                f"no int8 configuration is within the {max_drop:g}-point budget "
                f"(smallest drop {best.drop:.2f} with {best.label})",
                result,
            )
        pick = min(ok, key=lambda i: rows[i].p50_ms)
        rows[pick].chosen = True
        result.chosen = candidates[pick]
        result.path = copy_artifact(files[pick], out)
        del models
    return result
