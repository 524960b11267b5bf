"""Which file to ship: per device and per precision, the fastest artifact among those that passed verification.

Reads bench results as they are (`BenchRun.results`, the bench JSON's `results`: the runner's `Measurement` fields
plus the harness's `env`); nothing here measures. Verification is what the export recorded in the artifact's
sidecar (`verified_on`: written only when the file matched PyTorch, and for int8 passed the accuracy gates), so a
file exported with --no-verify, a foreign file or a checkpoint is never named. An emulated board's latencies are
the emulator's: no file is named there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..runner import Measurement, read_metadata

__all__ = ["Recommendation", "passed_verification", "recommend", "recommendation_lines"]


def passed_verification(artifact: str | Path) -> bool:
    """Whether the export verified this file against PyTorch (its sidecar lists where: `verified_on`)."""
    try:
        return bool(read_metadata(str(artifact)).get("verified_on"))
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class Recommendation:
    """The file to ship for one device and precision, and why; `artifact` is None when no measured file qualifies
    (`why` then says what was missing)."""

    device: str
    precision: str
    artifact: str | None
    runtime: str | None = None
    threads: int | None = None
    p50_ms: float | None = None  # ms per batch, the bench's p50
    size_bytes: int | None = None  # with the files it needs beside it
    top1: float | None = None  # 0..1 on the bench's --data, None without
    candidates: int = 0  # verified results (artifact x runtime) of this precision measured on this device
    why: str = ""
    excluded: list[dict[str, str]] = field(default_factory=list)  # [{"artifact", "why"}] measured but not eligible

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the bench JSON's `recommended` list)."""
        return asdict(self)

    def line(self) -> str:
        """One line for under the bench table."""
        head = f"{self.device}, {self.precision}:"
        if self.artifact is None:
            return f"{head} no file to recommend ({self.why})"
        return f"{head} ship {Path(self.artifact).name} with {self.runtime} ({self.why})"


def _device(result: dict) -> str:
    """The board a result was measured on: its own `device` (a several-board bench), else its environment's."""
    device = result.get("device") or (result.get("env") or {}).get("device") or "local"
    return str(device.get("name", "?")) if isinstance(device, dict) else str(device)


def _why(best: Measurement, ranked: list[Measurement]) -> str:
    assert best.latency_ms is not None
    parts = [f"fastest verified: p50 {best.latency_ms.p50:.3f} ms at {best.threads or '?'} thread(s)"]
    nxt = ranked[1] if len(ranked) > 1 else None
    if nxt is not None and nxt.latency_ms is not None:
        parts[0] += f", next {Path(nxt.artifact).name} ({nxt.runtime}) {nxt.latency_ms.p50:.3f} ms"
    if best.size_mb is not None:
        parts.append(f"{best.size_mb:.2f} MB")
    if best.top1 is not None:
        parts.append(f"top-1 {100 * best.top1:.2f}%")
    return "; ".join(parts)


def recommend(results: Sequence[dict], verified: Callable[[str], bool] = passed_verification) -> list[Recommendation]:
    """Per device and precision (in the order they first appear), the fastest verified artifact.

    `results`: bench results (`BenchRun.results` or the bench JSON's `results`), one per artifact x runtime, each
    with `device` or `env.device` (the board it ran on). `verified(artifact path)` says whether a file may be
    shipped (default: the export's record in its sidecar). Ranked by p50 latency, then size; checkpoints (the
    PyTorch baseline) are never named; on an emulated device nothing is named (its latencies are the emulator's).
    Returns one `Recommendation` per (device, precision), `artifact` None when none qualifies; `.line()` is the
    sentence for a report, `.to_dict()` its JSON.
    """
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        if "error" in r or not r.get("artifact"):
            continue
        groups.setdefault((_device(r), str(r.get("precision") or "unknown")), []).append(r)
    out = []
    for (device, precision), rows in groups.items():
        ok: list[Measurement] = []
        excluded: list[dict[str, str]] = []
        for r in rows:
            m = Measurement.from_dict(r)
            name = Path(m.artifact).name
            if m.format == "pytorch":
                excluded.append(
                    {"artifact": m.artifact, "why": "a checkpoint: the PyTorch baseline, not a file to ship"}
                )
            elif m.latency_ms is None:
                excluded.append({"artifact": m.artifact, "why": "no latency measured"})
            elif not verified(m.artifact):
                excluded.append({"artifact": m.artifact, "why": f"{name} has no verification record from the export"})
            else:
                ok.append(m)
        if any(r.get("emulated") or (r.get("env") or {}).get("emulated") for r in rows):
            why = "emulated: latencies are the emulator's, not the board's speed; bench on the board itself"
            out.append(Recommendation(device, precision, None, candidates=len(ok), why=why, excluded=excluded))
            continue
        if not ok:
            why = "no measured artifact of this precision passed verification at export"
            out.append(Recommendation(device, precision, None, why=why, excluded=excluded))
            continue
        ranked = sorted(ok, key=lambda m: (m.latency_ms.p50, m.size_bytes or 0))  # type: ignore[union-attr]
        best = ranked[0]
        out.append(
            Recommendation(
                device,
                precision,
                best.artifact,
                best.runtime,
                best.threads,
                best.latency_ms.p50,  # type: ignore[union-attr]
                best.size_bytes,
                best.top1,
                len(ok),
                _why(best, ranked),
                excluded,
            )
        )
    return out


def recommendation_lines(recommended: Sequence[Recommendation | dict]) -> list[str]:
    """One line per recommendation (objects or their JSON form), for under a bench table."""
    return [(r if isinstance(r, Recommendation) else Recommendation(**r)).line() for r in recommended]
