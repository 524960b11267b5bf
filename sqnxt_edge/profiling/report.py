"""People's side of profile / estimate / select: rich tables and the plots. Nothing here measures or estimates."""

from __future__ import annotations

from pathlib import Path

from ..plots import new_figure, save_png
from .layers import KINDS
from .profile import AGREEMENT_PCT, ProfileResult
from .select import Selection

__all__ = [
    "profile_tables",
    "estimate_tables",
    "selection_table",
    "plot_profile",
    "plot_pareto",
    "stem_line",
    "estimate_label",
]

_KIND_COLOURS = dict(
    zip(
        (*KINDS, "runtime"),
        (
            "#d62728",
            "#1f77b4",
            "#2ca02c",
            "#9467bd",
            "#e377c2",
            "#8c564b",
            "#ff7f0e",
            "#7f7f7f",
            "#bcbd22",
            "#17becf",
            "#c7c7c7",
        ),
    )
)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def stem_line(r: ProfileResult) -> str:
    """The paper's figure: how much of the time the stem takes (it measured 26% for 1.0-SqNxt-23's 7x7 stem on its
    accelerator, which led to the 5x5 stem of v2)."""
    stem = next((l for l in r.layers if l.kind == "stem"), None)
    conv = f"{_pct(stem.share)} in its {stem.op.split(' ')[1].split('/')[0]} conv, " if stem else ""
    return (
        f"stem: {_pct(r.stem_share)} of {r.model}'s time at {r.input_size} px {r.precision} ({conv}"
        f"{_pct(r.stem_macs_share)} of its MACs) on {r.device}"
    )


def _share_table(title: str, shares: dict[str, float], us_total: float):
    from rich.table import Table

    t = Table(title=title)
    for col in ("", "share", "ms"):
        t.add_column(col, justify="left" if not col else "right")
    for key, share in sorted(shares.items(), key=lambda kv: -kv[1]):
        t.add_row(key, _pct(share), f"{share * us_total / 1e3:.3f}")
    return t


def profile_tables(r: ProfileResult, top: int | None = None) -> list:
    """The per-layer table (all layers, or the `top` slowest), the roll-ups, and the summary lines."""
    from rich.table import Table

    rows = sorted(r.layers + r.runtime_nodes, key=lambda l: -l.us)[:top] if top else r.layers + r.runtime_nodes
    t = Table(
        title=f"{Path(r.artifact).name} on {r.device}: per layer ({r.runtime}, {r.threads} thread(s), "
        f"median of {r.runs} profiled runs)"
    )
    for col in ("layer", "kind", "stage", "us", "share", "MMACs", "KB moved", "GFLOP/s"):
        t.add_column(col, justify="left" if col in ("layer", "kind", "stage") else "right")
    for l in rows:
        t.add_row(
            l.name,
            l.kind,
            l.stage,
            f"{l.us:.1f}",
            _pct(l.share),
            f"{l.macs / 1e6:.2f}" if l.macs else "-",
            f"{l.bytes / 1024:.1f}" if l.bytes else "-",
            f"{l.gflops:.1f}" if l.gflops else "-",
        )
    total = r.sum_ms * 1e3
    verdict = "agrees" if r.agrees else f"does NOT agree (> {AGREEMENT_PCT:.0f}%)"
    load, cores = (r.env.get("loadavg") or [0])[0], r.env.get("physical_cores") or r.env.get("cores") or 1
    busy = f" (CPU busy: load {load} on {cores} core(s), so end-to-end times include waiting)" if load > cores else ""
    summary = (
        f"per-layer sum {r.sum_ms:.3f} ms vs end-to-end median {r.e2e_ms:.3f} ms: {r.agreement_pct:+.1f}%, "
        f"{verdict}{busy}; profiler floor {r.floor_us:.1f} us/node subtracted; bench p50 {r.latency_ms:.3f} ms; "
        f"{r.threads} thread(s) on cores {','.join(map(str, r.cores or [])) or '?'}"
    )
    return [
        t,
        _share_table("per stage", r.by_stage, total),
        _share_table("per layer kind", r.by_kind, total),
        stem_line(r),
        summary,
    ]


def estimate_label(e) -> str:
    """The line that labels an estimate as one (never shown as a measurement)."""
    return (
        f"ESTIMATE, not a measurement: {e.model} @{e.input_size} px {e.precision} on {e.device} "
        f"({e.threads} thread(s)): {e.ms:.3f} ms, expected range {e.low_ms:.3f}-{e.high_ms:.3f} ms"
        + (
            f" (measured {e.measured_ms:.3f} ms, {100 * (e.ms - e.measured_ms) / e.measured_ms:+.1f}%)"
            if e.measured_ms
            else ""
        )
    )


def estimate_tables(e, layers: bool = False) -> list:
    """The estimate's headline (always labelled), roll-ups, every hardware figure with its source, and the basis."""
    from rich.table import Table

    out: list = [
        estimate_label(e),
        f"basis: {e.basis}",
        f"range: {e.interval_basis}",
        f"thread scaling: {(e.thread_scaling or {}).get('source', '-')}",
    ]
    if layers:
        t = Table(title="per layer (estimated)")
        for col in ("layer", "kind", "us", "compute", "memory", "overhead"):
            t.add_column(col, justify="left" if col in ("layer", "kind") else "right")
        for l in e.layers:
            t.add_row(
                l["name"],
                l["kind"],
                f"{l['us']:.1f}",
                f"{l['compute_us']:.1f}",
                f"{l['memory_us']:.1f}",
                f"{l['overhead_us']:.1f}",
            )
        out.append(t)
    out += [
        _share_table("per stage (estimated)", e.by_stage, e.ms * 1e3),
        _share_table("per layer kind (estimated)", e.by_kind, e.ms * 1e3),
    ]
    hw = Table(title=f"hardware figures: {e.hardware['name']}")
    for col in ("figure", "value", "source"):
        hw.add_column(col, overflow="fold")
    for key in ("peak_gflops_fp32", "peak_gops_int8", "mem_bandwidth_gbs", "layer_overhead_us"):
        value = e.hardware.get(key)
        hw.add_row(
            key,
            "-" if value is None else f"{value:g}",
            e.hardware["sources"].get(key) or e.hardware["sources"].get("calibration", "-"),
        )
    out.append(hw)
    return out + [f"note: {n}" for n in e.notes]


def calibration_tables(estimates: list) -> list:
    """After `estimate --calibrate`: each calibration file's measured p50 beside the fitted model's estimate and
    range, then what each precision's factors and range stand on (once, not per file)."""
    from rich.table import Table

    t = Table(title=f"calibrated on {estimates[0].device} (ESTIMATES of the calibration files beside their p50)")
    for col in ("model", "px", "precision", "measured p50 ms", "estimate ms", "error", "range ms"):
        t.add_column(col, justify="left" if col in ("model", "precision") else "right")
    for e in estimates:
        t.add_row(
            e.model,
            str(e.input_size),
            e.precision,
            f"{e.measured_ms:.3f}" if e.measured_ms else "-",
            f"{e.ms:.3f}",
            f"{100 * (e.ms - e.measured_ms) / e.measured_ms:+.1f}%" if e.measured_ms else "-",
            f"{e.low_ms:.3f}-{e.high_ms:.3f}",
        )
    out: list = [t]
    for precision in dict.fromkeys(e.precision for e in estimates):
        e = next(x for x in estimates if x.precision == precision)
        out += [f"{precision} basis: {e.basis}", f"{precision} range: {e.interval_basis}"]
    return out + list(dict.fromkeys(n for e in estimates for n in e.notes))


def selection_table(s: Selection):
    """The selection as a table: every variant, fitting ones first."""
    from rich.table import Table

    t = Table(
        title=f"variants on {s.device} within {s.budget_ms:g} ms at {s.input_size} px (accuracy: {s.dataset}); "
        "an estimate fits when the upper end of its range does"
    )
    cols = ("model", "prec", "latency ms", "range ms", "how", "fits", "top-1", "params", "MB", "accuracy source")
    for col in cols:
        t.add_column(
            col,
            justify="right" if col in ("latency ms", "range ms", "top-1", "params", "MB") else "left",
            overflow="fold",
        )
    for c in s.candidates:
        t.add_row(
            c.model,
            c.precision,
            f"{c.latency_ms:.2f}",
            "-" if c.measured else f"{c.latency_low_ms:.2f}-{c.latency_high_ms:.2f}",
            c.latency_source,
            "yes" if c.fits else "no",
            "unknown" if c.top1 is None else f"{c.top1:.2f}%",
            f"{c.params:,}",
            f"{c.size_mb:.2f}",
            c.accuracy_source,
        )
    return t


def plot_profile(results: list[ProfileResult], path: str | Path) -> Path:
    """Per-layer time in execution order coloured by kind, and each profile's time per stage split by kind."""
    fig = new_figure(figsize=(12, 3.6 * len(results)), layout="constrained")
    axes = fig.subplots(len(results), 2, squeeze=False, gridspec_kw={"width_ratios": [3, 1]})
    for (ax, ax_stage), r in zip(axes, results):
        rows = r.layers + r.runtime_nodes
        ax.bar(range(len(rows)), [l.us for l in rows], color=[_KIND_COLOURS.get(l.kind, "#333") for l in rows])
        ax.set_title(
            f"{r.model} @{r.input_size} px {r.precision} on {r.device}: {r.sum_ms:.2f} ms (stem {_pct(r.stem_share)})",
            fontsize=9,
        )
        ax.set_xlabel("layer (execution order)")
        ax.set_ylabel("us per inference")
        stages = list(dict.fromkeys(l.stage for l in rows))
        bottom = [0.0] * len(stages)
        for kind in (*KINDS, "runtime"):
            vals = [sum(l.us for l in rows if l.stage == s and l.kind == kind) / 1e3 for s in stages]
            if any(vals):
                ax_stage.bar(stages, vals, bottom=bottom, color=_KIND_COLOURS[kind], label=kind)
                bottom = [b + v for b, v in zip(bottom, vals)]
        ax_stage.set_ylabel("ms")
        ax_stage.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax_stage.legend(fontsize=6)
    return save_png(fig, path)


def plot_pareto(s: Selection, path: str | Path) -> Path:
    """Latency against top-1 for the variants with a known accuracy, the Pareto front, and the budget."""
    fig = new_figure(figsize=(7.5, 5), layout="constrained")
    ax = fig.subplots()
    known = [c for c in s.candidates if c.top1 is not None]
    for precision, marker in (("fp32", "o"), ("int8", "s"), ("fp16", "^")):
        pts = [c for c in known if c.precision == precision]
        if pts:
            ax.scatter([c.latency_ms for c in pts], [c.top1 for c in pts], marker=marker, label=precision)
    front, best = [], float("-inf")
    for c in sorted(known, key=lambda c: (c.latency_ms, -(c.top1 or 0.0))):  # known: every top1 is set
        if c.top1 is not None and c.top1 > best:
            front.append(c)
            best = c.top1
    if front:
        ax.plot([c.latency_ms for c in front], [c.top1 for c in front], "k--", lw=1, label="Pareto front")
    for c in known:
        ax.annotate(
            f"{c.model} {c.precision}", (c.latency_ms, c.top1), fontsize=6, xytext=(3, 3), textcoords="offset points"
        )
    ax.axvline(s.budget_ms, color="red", lw=1, label=f"budget {s.budget_ms:g} ms")
    unknown = len(s.candidates) - len(known)
    ax.set_title(
        f"{s.device}, {s.input_size} px: latency vs top-1 ({s.dataset}); {unknown} without a known accuracy not shown",
        fontsize=9,
    )
    ax.set_xlabel("latency ms (estimated unless measured)")
    ax.set_ylabel("top-1 %")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_png(fig, path)
