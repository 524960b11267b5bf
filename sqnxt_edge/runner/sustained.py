"""Sustained runs and cool-downs: a board's speed at minute 1 is not its speed at minute 30.

`time_windows` keeps the model running for a duration and records every window's latency beside the temperature,
clock and firmware flags read at its end (`context.snapshot`); `summary` says whether and when the board throttled
and how much slower it ran after. `cool_down` waits between artifacts, to a temperature or for a time, so one
artifact's heat does not slow the next.
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

from . import context
from .contract import RunnerError

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
COOLDOWN_LIMIT = 900.0  # seconds a cool-down to a temperature may wait at most


def parse_duration(text) -> float:
    """`10m`, `90s`, `1h`, `1.5` (seconds) -> seconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(s|m|min|h)?\s*", str(text))
    if not m or float(m.group(1)) <= 0:
        raise RunnerError(f"duration {text!r}: give a time like 90s, 10m or 1h")
    return float(m.group(1)) * _UNITS[m.group(2) or ""]


def parse_cooldown(text: str) -> tuple[str, float]:
    """`50C` -> ("temp_c", 50.0): wait until the hottest zone is at most that; `30s`/`2m` -> ("seconds", 30.0)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*[cC]\s*", str(text))
    if m:
        return "temp_c", float(m.group(1))
    try:
        return "seconds", parse_duration(text)
    except RunnerError:
        raise RunnerError(f"--cooldown {text!r}: give a temperature like 50C or a time like 30s") from None


def default_window(duration: float) -> float:
    """About 60 windows a run, each 1-60 s."""
    return min(60.0, max(1.0, duration / 60))


def _stats(samples_ms: list[float]) -> dict:
    ordered = sorted(samples_ms)
    return {
        "n": len(ordered),
        "p50_ms": ordered[len(ordered) // 2],
        "p90_ms": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "mean_ms": sum(ordered) / len(ordered),
    }


def warm_up(run, warmup: int) -> float:
    """The first call alone (its ms: the cold start), then `warmup` untimed calls: how every timed loop begins."""
    t0 = time.perf_counter_ns()
    run()
    first_ms = (time.perf_counter_ns() - t0) / 1e6
    for _ in range(warmup):
        run()
    return first_ms


@contextmanager
def gc_paused() -> Iterator[None]:
    """The garbage collector off while the clock runs, then as it was."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def time_windows(run, warmup: int, duration: float, window: float, cores=None) -> tuple[float, list, list]:
    """(first_ms, samples_ms, windows): the first call alone, `warmup` untimed calls, then calls for `duration`
    seconds; every `window` seconds one row {t_s, n, p50_ms, p90_ms, mean_ms, temp_c, mhz, throttled}. The readings
    happen between timed calls, never inside one."""
    clock = time.perf_counter_ns
    first_ms = warm_up(run, warmup)
    samples: list[float] = []
    windows: list[dict] = []
    with gc_paused():
        start = clock()
        end, next_cut, cut = start + int(duration * 1e9), start + int(window * 1e9), 0
        while True:
            t0 = clock()
            run()
            t1 = clock()
            samples.append((t1 - t0) / 1e6)
            if t1 >= next_cut or t1 >= end:
                snap = context.snapshot()
                fw = snap["throttled"]
                windows.append(
                    {
                        "t_s": round((t1 - start) / 1e9, 3),
                        **_stats(samples[cut:]),
                        "temp_c": context.hottest(snap),
                        "mhz": context.top_mhz(snap, cores),
                        "throttled": None if fw is None else context.decode_throttled(fw)["now"],
                    }
                )
                cut, next_cut = len(samples), next_cut + int(window * 1e9)
                if t1 >= end:
                    break
    return first_ms, samples, windows


def _event(w: dict, top_mhz: float | None) -> str | None:
    if set(w.get("throttled") or ()) & set(context.SLOW_BITS):
        return "firmware: " + ", ".join(w["throttled"])
    if top_mhz and w.get("mhz") and w["mhz"] < context.CLOCK_RATIO * top_mhz:
        return f"clock {w['mhz']:.0f} of {top_mhz:.0f} MHz"
    return None


def summary(windows: list[dict], max_mhz: float | None = None) -> dict:
    """Whether and when the run throttled (the first window the firmware reports it, or its clock fell below its
    maximum) and how much slower the windows after ran than those before (median of window p50s)."""
    if not windows:
        return {"windows": 0, "throttled": False}
    top = max_mhz or max((w["mhz"] for w in windows if w.get("mhz")), default=None)
    first = next((i for i, w in enumerate(windows) if _event(w, top)), None)
    temps = [w["temp_c"] for w in windows if w.get("temp_c") is not None]
    out: dict = {
        "windows": len(windows),
        "seconds": windows[-1]["t_s"],
        "throttled": first is not None,
        "temp_c": {"first": temps[0], "max": max(temps), "last": temps[-1]} if temps else None,
    }

    def median(rows: list[dict]) -> float:
        values = sorted(w["p50_ms"] for w in rows)
        return values[len(values) // 2]

    if first is not None:
        before, after = windows[:first] or windows[:1], windows[first:]
        out.update(at_s=windows[first]["t_s"], why=_event(windows[first], top))  # the window that saw it ends
        out["slower_pct"] = round(100 * (median(after) / median(before) - 1), 1)
    else:  # no event: how the speed drifted from the first windows to the last
        k = max(1, len(windows) // 5)
        out["drift_pct"] = round(100 * (median(windows[-k:]) / median(windows[:k]) - 1), 1)
    return out


def cool_down(spec: str, limit: float = COOLDOWN_LIMIT) -> dict:
    """Wait as `spec` says (parse_cooldown); returns what happened: {"waited_s", "temp_c", ...}."""
    kind, value = parse_cooldown(spec)
    started = time.monotonic()
    if kind == "seconds":
        time.sleep(value)
        return {"target": spec, "waited_s": round(time.monotonic() - started, 1), "temp_c": context.hottest_now()}
    temp = context.hottest_now()
    if temp is None:
        return {"target": spec, "waited_s": 0.0, "temp_c": None, "note": "no thermal zone to read: not waited"}
    while temp is not None and temp > value and time.monotonic() - started < limit:
        time.sleep(1.0)
        temp = context.hottest_now()
    out = {"target": spec, "waited_s": round(time.monotonic() - started, 1), "temp_c": temp}
    if temp is not None and temp > value:
        out["note"] = f"still {temp:.1f} C after {limit:.0f} s"
    return out
