"""The pipeline's report folder: `report.md` (the table people read), `results.json` (everything, for machines),
`latency.png` (distribution per artifact) and `accuracy_vs_latency.png` (the trade-off in one picture)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from .._version import __version__
from ..artifacts import atomic_write
from ..bench import BenchRun, report as bench_report
from ..checkpoint import Checkpoint
from ..export import ExportResult
from ..plots import new_figure, save_png
from .config import PipelineConfig

__all__ = ["write_pipeline_report", "summary_rows", "int8_reports", "plot_accuracy_vs_latency"]


def summary_rows(bench: BenchRun) -> list[dict]:
    """format, precision, size, accuracy, p50/p99, memory, speed-up: one row per measured artifact."""
    return [
        {
            "artifact": r["name"],
            "format": r["format"],
            "precision": r["precision"],
            "runtime": r["runtime"],
            "size_mb": r["size_mb"],
            "top1": None if r["top1"] is None else 100 * r["top1"],
            "p50": r["p50"],  # ms, as the runner's Latency names it
            "p99": r["p99"],
            "peak_rss_mb": r["peak_rss_mb"],
            "model_peak_rss_mb": r["model_peak_rss_mb"],
            "speedup": r["speedup"],
        }
        for r in bench_report.rows(bench)
    ]


def int8_reports(exported: ExportResult) -> list[dict]:
    """The fp32-vs-int8 accuracy report export measured for each int8 artifact."""
    return [
        {"artifact": a["path"], **a["accuracy"]}
        for a in exported.artifacts
        if a.get("precision") == "int8" and a.get("accuracy")
    ]


def _fmt(value, spec: str, none: str = "-") -> str:
    return none if value is None else format(value, spec)


def _time_table(stages: list[dict], exported: ExportResult) -> list[str]:
    """Where the time went: the stages, then the export's own steps (each message to the next)."""
    lines = ["", "## Where the time went", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {s['stage']} | {s['seconds']:.1f} |" for s in stages]
    lines += [f"| total | {sum(s['seconds'] for s in stages):.1f} |"]
    if exported.timings:
        lines += ["", "Export steps:", "", "| step | seconds |", "|---|---:|"]
        lines += [f"| {t['step']} | {t['seconds']:.1f} |" for t in exported.timings]
    return lines


def _device(env: dict) -> str:
    device = env.get("device", "local")
    return str(device.get("name", "?")) if isinstance(device, dict) else str(device)


def _markdown(
    ckpt: Checkpoint, exported: ExportResult, bench: BenchRun, plots: dict[str, Path], stages: list[dict] | None = None
) -> str:
    rows = summary_rows(bench)
    env = bench.env or {}
    feats = ", ".join(k for k, v in (env.get("features") or {}).items() if v) or "-"
    lines = [
        f"# {ckpt.model_name} on {ckpt.dataset or 'unknown data'}: export and benchmark report",
        "",
        f"Checkpoint `{ckpt.path}` (sha256 `{(ckpt.sha256 or '')[:12]}`), {ckpt.num_classes} classes, "
        f"{ckpt.input_size}x{ckpt.input_size} input, epoch {ckpt.epoch}. Device: {_device(env)} - "
        f"{env.get('model', '?')} ({env.get('arch', '?')}, {env.get('cores', '?')} cores; {feats}). "
        f"Threads {bench.config.get('threads') or 'default'}, batch {bench.config.get('batch')}.",
        "",
        "| artifact | format | precision | size MB | top-1 % | p50 ms | p99 ms | peak MB (model) | speed-up |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    emu = " (emu)" if bench.emulated else ""  # an emulator's timings are labelled and never compared
    if emu:
        lines[-2] = f"| artifact | format | precision | size MB | top-1 % | p50 ms{emu} | p99 ms{emu} | peak MB{emu} |"
        lines[-1] = "|---|---|---|---:|---:|---:|---:|---:|"
    for r in rows:
        peak = _fmt(r["peak_rss_mb"], ".0f") + (
            f" ({r['model_peak_rss_mb']:+.0f})" if r["model_peak_rss_mb"] is not None else ""
        )
        lines.append(
            f"| {r['artifact']} | {r['format']} | {r['precision']} | {_fmt(r['size_mb'], '.2f')} | "
            f"{_fmt(r['top1'], '.2f')} | {_fmt(r['p50'], '.3f')} | {_fmt(r['p99'], '.3f')} | {peak} |"
            + ("" if emu else f" {_fmt(r['speedup'], '.2f')}x |")
        )
    ref = Path(bench.reference).name if bench.reference else "-"
    if emu:
        info = env.get("emulation") or {}
        lines += [
            "",
            f"**EMULATED**: measured under {info.get('emulator', 'an emulator')} on "
            f"{(info.get('host') or {}).get('model', 'this machine')}. Accuracy is the board's; latencies and "
            "memory are the emulator's, not the board's speed, so no speed-up is given.",
        ]
    else:
        lines += [
            "",
            f"Speed-up is the median latency of `{ref}` divided by each artifact's. Peak MB is the "
            "measuring process's peak resident memory; in brackets, its excess over the bare runtime's.",
        ]
    q = int8_reports(exported)
    if q:
        lines += [
            "",
            "## int8 accuracy cost (held-out data)",
            "",
            "| artifact | fp32 top-1 % | int8 top-1 % | drop (pts) | top-1 agreement % | images |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['artifact']} | {r['top1_fp32']:.2f} | {r['top1_int8']:.2f} | {r['drop']:+.2f} | "
            f"{r['agreement']:.1f} | {r['n']} |"
            for r in q
        ]
    if stages:
        lines += _time_table(stages, exported)
    if bench.errors:
        lines += ["", "## Not measured", ""] + [f"- `{Path(e['artifact']).name}`: {e['error']}" for e in bench.errors]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{name}]({path.name})" for name, path in plots.items()]
    lines += [
        "",
        f"Artifacts and their manifest: `{exported.output_dir}`. Made by sqnxt-edge {__version__} on "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.",
    ]
    return "\n".join(lines) + "\n"


def plot_accuracy_vs_latency(bench: BenchRun, path: Path) -> Path | None:
    """Top-1 against p50 latency per artifact, or None when there is nothing honest to plot."""
    points = [r for r in summary_rows(bench) if r["top1"] is not None and r["p50"]]
    if not points or bench.emulated:  # a trade-off against an emulator's latency would mislead
        return None
    fig = new_figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.subplots()
    for r in points:
        ax.scatter(r["p50"], r["top1"], s=40 + 20 * (r["size_mb"] or 0))
        ax.annotate(
            f"{r['format']} {r['precision']}",
            (r["p50"], r["top1"]),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=8,
        )
    ax.set_xlabel("median latency per batch (ms)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title("accuracy vs latency (marker area ~ file size)", fontsize=9)
    ax.grid(alpha=0.3)
    return save_png(fig, path)


def write_pipeline_report(
    out: Path,
    ckpt: Checkpoint,
    exported: ExportResult,
    bench: BenchRun,
    config: PipelineConfig,
    stages: list[dict] | None = None,
) -> dict[str, Path]:
    """Write the report folder (Markdown, JSON, CSV, plots); returns the files by role."""
    out.mkdir(parents=True, exist_ok=True)
    plots: dict[str, Path] = {}
    if any(r.get("samples_ms") for r in bench.results):
        plots["latency"] = bench_report.plot_latency(bench, out / "latency.png")
    acc = plot_accuracy_vs_latency(bench, out / "accuracy_vs_latency.png")
    if acc:
        plots["accuracy vs latency"] = acc
    results = {
        "toolkit_version": __version__,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "checkpoint": ckpt.summary(),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(config).items()},
        "summary": summary_rows(bench),
        "stages": stages or [],
        "export_steps": exported.timings,
        "int8_accuracy": int8_reports(exported),
        "export": exported.manifest,
        "bench": {
            **bench.to_dict(),
            "results": [{k: v for k, v in r.items() if k != "samples_ms"} for r in bench.results],
        },
    }
    text = json.dumps(results, indent=2, default=str) + "\n"
    files = {
        "results": atomic_write(out / "results.json", lambda tmp: tmp.write_text(text, encoding="utf-8")),
        "report": atomic_write(
            out / "report.md",
            lambda tmp: tmp.write_text(_markdown(ckpt, exported, bench, plots, stages or []), encoding="utf-8"),
        ),
    }
    files.update({name.replace(" ", "_"): p for name, p in plots.items()})
    return files
