"""A sustained bench read for people: one line per result saying whether and when the board throttled and how much
slower it ran after, and a PNG of latency and temperature (and clock) against time. Nothing here measures: the
runner's windows (`runner.sustained`) are the data.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BenchError
from ..plots import new_figure, save_png
from .api import BenchRun

__all__ = ["summary_lines", "plot_sustained"]


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def _label(r: dict) -> str:
    where = f"{r['device']}: " if r.get("device") else ""
    return f"{where}{Path(str(r['artifact'])).name} {r.get('runtime')}"


def summary_lines(run: BenchRun) -> list[str]:
    """One sentence per sustained result: throttled when and how much slower after, or how the speed drifted."""
    lines = []
    for r in run.results:
        s = r.get("sustained")
        if not s:
            continue
        temp = s.get("temp_c") or {}
        heat = f"; {temp['first']:.0f} -> max {temp['max']:.0f} C" if temp else "; no thermal zone"
        if s.get("throttled"):
            lines.append(
                f"{_label(r)}: THROTTLED at {_clock(s['at_s'])} of {_clock(s['seconds'])} ({s['why']}); "
                f"p50 after {s['slower_pct']:+.1f}% vs before{heat}"
            )
        else:
            lines.append(
                f"{_label(r)}: no throttling in {_clock(s['seconds'])} ({s['windows']} windows); "
                f"p50 last vs first windows {s['drift_pct']:+.1f}%{heat}"
            )
        if r.get("emulated"):
            lines[-1] += " (EMULATED: the emulator's latencies and the board folder's fixed readings)"
    return lines


def plot_sustained(run: BenchRun, path: str | Path) -> Path:
    """Latency per window (p50, p90 band) and the hottest zone's temperature against time, one panel per result;
    the first throttled window marked."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise BenchError(f"cannot plot to {path.name}: use a .png file")
    measured = [r for r in run.results if r.get("windows")]
    if not measured:
        raise BenchError("nothing to plot: no artifact was measured with --duration")
    fig = new_figure(figsize=(9.0, 3.2 * len(measured)), layout="constrained")
    axes = fig.subplots(len(measured), 1, squeeze=False)[:, 0]
    for ax, r in zip(axes, measured):
        w = r["windows"]
        t = [x["t_s"] for x in w]
        ax.plot(t, [x["p50_ms"] for x in w], color="tab:blue", label="p50")
        ax.fill_between(t, [x["p50_ms"] for x in w], [x["p90_ms"] for x in w], color="tab:blue", alpha=0.2)
        ax.set_ylabel("latency per batch (ms)" + (", EMULATED" if r.get("emulated") else ""))
        ax.set_xlabel("time (s)")
        ax.grid(alpha=0.3)
        temps = [(x["t_s"], x["temp_c"]) for x in w if x.get("temp_c") is not None]
        if temps:
            hot = ax.twinx()
            hot.plot(*zip(*temps), color="tab:red", label="temperature")
            hot.set_ylabel("hottest zone (C)", color="tab:red")
        s = r.get("sustained") or {}
        if s.get("throttled"):
            ax.axvline(s["at_s"], color="black", linestyle="--", label=f"throttled ({s['why']})")
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title(_label(r), fontsize=9)
    return save_png(fig, path)
