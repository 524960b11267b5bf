"""The pipeline's report folder: `report.md` (the table people read, the file to ship first), `results.json`
(everything, for machines), `latency.png` (distribution per artifact), `accuracy_vs_latency.png` (the trade-off in
one picture) and `confusion_matrix.png` (which classes the fp32 and int8 files confuse)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from .._version import __version__
from ..artifacts import atomic_write
from ..bench import BenchRun, report as bench_report
from ..bench.recommend import recommendation_lines
from ..checkpoint import Checkpoint
from ..export import ExportResult
from .config import PipelineConfig
from .figures import plot_accuracy_vs_latency as _plot_points, plot_confusion

__all__ = ["write_pipeline_report", "summary_rows", "int8_reports", "plot_accuracy_vs_latency", "recommended"]


def summary_rows(bench: BenchRun) -> list[dict]:
    """format, precision, size, accuracy, p50/p99, memory, speed-up: one row per measured artifact."""
    return [
        {
            "artifact": r["name"],
            "path": r["artifact"],
            "format": r["format"],
            "precision": r["precision"],
            "runtime": r["runtime"],
            "runtime_version": r["runtime_version"],
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


def recommended(bench: BenchRun) -> list[dict]:
    """The files to ship, fastest first, each with the runtime that ran it fastest ({"artifact", "runtime"}): the
    report lists their rows first, marked. `run_bench` decided them once (`bench.recommend`: per precision, the fastest
    measured file the export verified; never the checkpoint; nothing on an emulated board) into `bench.recommended`."""
    if bench.emulated:  # the run's own env says so even when its rows do not
        return []
    picks = [r for r in bench.recommended if r.get("artifact")]
    return [{"artifact": r["artifact"], "runtime": r["runtime"]} for r in sorted(picks, key=lambda r: r["p50_ms"] or 0)]


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
        "| artifact | runtime | format | precision | size MB | top-1 % | p50 ms | p99 ms | peak MB (model) "
        "| speed-up |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    emu = " (emu)" if bench.emulated else ""  # an emulator's timings are labelled and never compared
    if emu:
        lines[-2] = (
            f"| artifact | runtime | format | precision | size MB | top-1 % | p50 ms{emu} | p99 ms{emu} "
            f"| peak MB{emu} |"
        )
        lines[-1] = "|---|---|---|---|---:|---:|---:|---:|---:|"
    ship = [(r["artifact"], r["runtime"]) for r in recommended(bench)]
    rank = {key: i for i, key in enumerate(ship)}
    rows.sort(key=lambda r: rank.get((r["path"], r["runtime"]), len(ship)))  # stable: bench order after them
    for r in rows:
        peak = _fmt(r["peak_rss_mb"], ".0f") + (
            f" ({r['model_peak_rss_mb']:+.0f})" if r["model_peak_rss_mb"] is not None else ""
        )
        name = f"**{r['artifact']}** (recommended)" if (r["path"], r["runtime"]) in rank else r["artifact"]
        runtime = f"{r['runtime'] or '-'} {r['runtime_version'] or ''}".strip()
        lines.append(
            f"| {name} | {runtime} | {r['format']} | {r['precision']} | {_fmt(r['size_mb'], '.2f')} | "
            f"{_fmt(r['top1'], '.2f')} | {_fmt(r['p50'], '.3f')} | {_fmt(r['p99'], '.3f')} | {peak} |"
            + ("" if emu else f" {_fmt(r['speedup'], '.2f')}x |")
        )
    if ship:
        each = ", ".join(f"`{Path(a).name}` with {rt}" for a, rt in ship)
        lines += ["", f"Recommended: {each} (the fastest file the export verified, per precision)."]
        lines += [f"- {line}" for line in recommendation_lines(bench.recommended)]  # why: latency, size, top-1
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
        for r in q:
            names = set(map(str, r.get("flagged_classes") or []))
            flagged = [c for c in r.get("per_class") or [] if str(c.get("label")) in names]
            if flagged:
                listing = ", ".join(f"{c['label']} ({c['top1_fp32']:.1f}% -> {c['top1_int8']:.1f}%)" for c in flagged)
                lines += ["", f"Classes of `{r['artifact']}` that lost more than {r['max_drop']:g} points: {listing}."]
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
    """Top-1 against p50 latency (log axis) per artifact and runtime, or None when there is nothing honest to plot."""
    if bench.emulated:  # a trade-off against an emulator's latency would mislead
        return None
    title = "accuracy vs latency per file and runtime (marker area ~ file size)"
    return _plot_points(summary_rows(bench), path, title)


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
    from .confusion import confusion_panels

    panels, classes = confusion_panels(
        exported, config.data or ckpt.dataset, config.data_dir or ckpt.data_dir, ckpt.in_channels
    )
    if panels:
        plots["confusion matrix"] = plot_confusion(panels, classes, out / "confusion_matrix.png")
    results = {
        "toolkit_version": __version__,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "checkpoint": ckpt.summary(),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(config).items()},
        "summary": summary_rows(bench),
        "stages": stages or [],
        "export_steps": exported.timings,
        "int8_accuracy": int8_reports(exported),
        "recommended": recommended(bench),
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
