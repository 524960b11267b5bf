"""Reporters: a rich table for people, JSON/CSV/Markdown files for machines and docs, a latency plot.

They only read a `BenchRun`; nothing here measures.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, fields
from pathlib import Path

from ..artifacts import atomic_write
from ..errors import BenchError
from ..plots import new_figure, save_png
from ..runner import Latency, Measurement
from .api import BenchRun
from .recommend import recommendation_lines

__all__ = ["COLUMNS", "rows", "rich_table", "to_csv", "to_markdown", "to_json", "write_report", "plot_latency"]

# (key, header, formatter) in display order: one table drives the console, CSV and Markdown.
COLUMNS = [
    ("device", "device", str),  # shown when several boards were measured
    ("name", "artifact", str),
    ("kind", "format", str),
    ("runtime", "runtime", str),
    ("threads", "thr", str),
    ("size_mb", "MB", lambda v: f"{v:.2f}"),
    ("top1", "top-1", lambda v: f"{100 * v:.2f}%"),
    ("p50", "p50 ms", lambda v: f"{v:.3f}"),
    ("p90", "p90 ms", lambda v: f"{v:.3f}"),
    ("p99", "p99 ms", lambda v: f"{v:.3f}"),
    ("noise_pct", "±std", lambda v: f"{v:.0f}%"),
    ("throughput_ips", "img/s", lambda v: f"{v:.1f}"),
    ("peak", "peak MB (model)", str),
    ("speedup", "speed-up", lambda v: f"{v:.2f}x"),
    ("flags", "flags", str),  # shown when a result was taken throttled, below its clock or beside other load
]
_OPTIONAL = ("device", "flags")  # columns shown only when they say something


def rows(run: BenchRun) -> list[dict]:
    """One flat dict per measured artifact (raw numbers, no formatting): the runner's `Measurement` fields as they
    are named there (latency statistics flattened: `p50` is `latency_ms.p50`), plus the harness's own."""
    out = []
    for r in run.results:
        m = Measurement.from_dict(r)
        lat = asdict(m.latency_ms) if m.latency_ms else dict.fromkeys(f.name for f in fields(Latency))
        device = r.get("device") or (r.get("env") or {}).get("device") or (run.env or {}).get("device")
        out.append(
            {
                "device": device.get("name") if isinstance(device, dict) else device,
                "name": Path(str(m.artifact)).name,
                "artifact": m.artifact,
                "format": m.format,
                "precision": m.precision,
                "runtime": m.runtime,
                "runtime_version": m.runtime_version,
                "threads": m.threads,
                "batch": m.batch,
                "size_bytes": m.size_bytes,
                "size_mb": m.size_mb,
                "top1": m.top1,
                "top5": m.top5,
                "n": m.n,
                "init_ms": m.init_ms,
                "first_ms": m.first_ms,
                "runs": m.runs,
                **lat,
                "noise_pct": m.extra.get("noise_pct"),
                "throughput_ips": m.throughput_ips,
                "peak_rss_mb": m.peak_rss_mb,
                "model_peak_rss_mb": m.model_peak_rss_mb,
                "speedup": m.extra.get("speedup"),
                "flags": ", ".join(f.replace("_", " ") for f in m.flags) if m.flags else None,
                "cores": ",".join(map(str, m.cores)) if m.cores else None,
                "temp_c": ((m.context or {}).get("temp_c") or {}).get("after"),
                **({"emulated": True} if m.extra.get("emulated") else {}),
                "kind": f"{m.format} {m.precision}" + (f" b{m.batch}" if (m.batch or 1) > 1 else ""),
                "peak": _peak(m),
            }
        )
    return out


def _peak(m: Measurement) -> str | None:
    peak, model = m.peak_rss_mb, m.model_peak_rss_mb
    if peak is None:
        return None
    return f"{peak:.0f} ({model:+.0f})" if model is not None else f"{peak:.0f}"


_TIMED = ("p50", "p90", "p99", "noise_pct", "throughput_ips", "peak")  # what an emulator's figures fill


def _columns(with_accuracy: bool, emulated: bool = False, data: list[dict] | None = None) -> list[tuple]:
    """The columns shown: no top-1 without data; on an emulated board no speed-up, and every timed figure is
    headed as the emulator's; a device column for several boards, a flags column when a result has flags."""
    data = data or []
    shown = {"device"} if len({r.get("device") for r in data}) > 1 else set()
    shown |= {"flags"} if any(r.get("flags") for r in data) else set()
    cols = [
        c
        for c in COLUMNS
        if (with_accuracy or c[0] != "top1")
        and not (emulated and c[0] == "speedup")
        and (c[0] not in _OPTIONAL or c[0] in shown)
    ]
    return [(k, f"{h.replace(' (model)', '')} (emu)" if emulated and k in _TIMED else h, f) for k, h, f in cols]


def _cells(row: dict, with_accuracy: bool, emulated: bool = False, data: list[dict] | None = None) -> list[str]:
    cols = _columns(with_accuracy, emulated, data)
    return ["-" if row.get(key) is None else fmt(row.get(key)) for key, _, fmt in cols]


def _headers(with_accuracy: bool, emulated: bool = False, data: list[dict] | None = None) -> list[str]:
    return [h for _, h, _ in _columns(with_accuracy, emulated, data)]


def _title(run: BenchRun) -> str:
    env = run.env or {}
    if isinstance(env.get("devices"), dict):  # several boards at once (bench.boards)
        each = [
            f"{name} ({e.get('model', '?')}, {e.get('cores', '?')} cores{', EMULATED' if e.get('emulated') else ''})"
            for name, e in env["devices"].items()
        ]
        return f"{len(each)} boards: {'; '.join(each)} - speed-up within each board"
    feats = ", ".join(k for k, v in (env.get("features") or {}).items() if v) or "-"
    device = env.get("device", "local")
    device = device.get("name", "?") if isinstance(device, dict) else device
    where = f"{device}: {env.get('model', '?')} ({env.get('arch', '?')}, {env.get('cores', '?')} cores; {feats})"
    if run.emulated:
        emu = env.get("emulation") or {}
        host = (emu.get("host") or {}).get("model") or "this machine"
        return (
            f"{where} - EMULATED ({emu.get('emulator', 'emulator')} on {host}): latencies are the emulator's, "
            "not the board's speed"
        )
    return f"{where} - speed-up vs {Path(run.reference).name if run.reference else '-'}"


def rich_table(run: BenchRun):
    """The bench as a terminal table (one row per artifact and runtime)."""
    from rich.table import Table

    data = rows(run)
    acc = any(r["top1"] is not None for r in data)
    table = Table(title=_title(run), title_justify="left")
    headers = _headers(acc, run.emulated, data)
    left = 4 if headers[0] == "device" else 3
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i < left or header == "flags" else "right", no_wrap=i == 0)
    for row in data:
        table.add_row(*_cells(row, acc, run.emulated, data))
    return table


def to_json(run: BenchRun) -> str:
    """The bench as indented JSON text."""
    return json.dumps(run.to_dict(), indent=2, default=str) + "\n"


def to_csv(run: BenchRun) -> str:
    """The bench as CSV text, one row per artifact and runtime, errors in their own column."""
    data = rows(run)
    buf = io.StringIO()
    fields = list(data[0]) if data else [k for k, _, _ in COLUMNS]
    fields = [f for f in fields if f not in ("kind", "peak")]
    fields = fields if "device" in fields else ["device", *fields]
    writer = csv.DictWriter(buf, fieldnames=[*fields, "error"], lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in data:
        writer.writerow(row)
    for e in run.errors:
        writer.writerow(
            {
                "device": e.get("device"),
                "name": Path(e["artifact"]).name,
                "artifact": e["artifact"],
                "error": e["error"],
            }
        )
    return buf.getvalue()


def to_markdown(run: BenchRun) -> str:
    """The bench as a Markdown table, with the environment it ran in."""
    data = rows(run)
    acc = any(r["top1"] is not None for r in data)
    headers = _headers(acc, run.emulated, data)
    lines = [
        f"**{_title(run)}**",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i < 3 + (headers[0] == "device") else "---:" for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(_cells(row, acc, run.emulated, data)) + " |" for row in data]
    if run.recommended:
        lines += ["", *(f"- {line}" for line in recommendation_lines(run.recommended))]
    for e in run.errors:
        where = f"{e['device']}: " if e.get("device") else ""
        lines.append(f"\nerror: {where}{Path(e['artifact']).name}: {e['error']}")
    return "\n".join(lines) + "\n"


_WRITERS = {".json": to_json, ".csv": to_csv, ".md": to_markdown}


def write_report(run: BenchRun, path: str | Path) -> Path:
    """Write the bench in the format the suffix names (.json, .csv, .md, .png); returns the path."""
    path = Path(path)
    writer = _WRITERS.get(path.suffix.lower())
    if writer is None:
        raise BenchError(f"cannot write {path.name}: use a .json, .csv or .md file")
    text = writer(run)
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def plot_latency(run: BenchRun, path: str | Path) -> Path:
    """Latency distribution per artifact (violin + box, log scale when spreads differ a lot) as a PNG."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise BenchError(f"cannot plot to {path.name}: use a .png file")
    measured = [r for r in run.results if r.get("samples_ms")]
    if not measured:
        raise BenchError("nothing to plot: no artifact was measured with samples")
    names = [
        (f"{r['device']}: " if r.get("device") else "") + f"{Path(str(r['artifact'])).name}\n{r.get('runtime')} "
        f"{r.get('precision')}"
        for r in measured
    ]
    samples = [r["samples_ms"] for r in measured]
    fig = new_figure(figsize=(max(6.0, 1.6 * len(measured)), 4.5), layout="constrained")
    ax = fig.subplots()
    ax.violinplot(samples, showextrema=False)
    ax.boxplot(samples, widths=0.15, showfliers=False)
    ax.set_xticks(range(1, len(names) + 1), names, fontsize=8)
    lo, hi = min(min(s) for s in samples), max(max(s) for s in samples)
    if lo > 0 and hi / lo > 20:
        ax.set_yscale("log")
    ax.set_ylabel("latency per batch (ms)" + (", EMULATED: not the board's" if run.emulated else ""))
    ax.set_title(_title(run), fontsize=9)
    ax.grid(axis="y", alpha=0.3)

    return save_png(fig, path)
