"""The run's context: temperatures, clocks, throttling and other load, read before and after every measurement (and
per window in a sustained run), so a figure taken hot, throttled, below its clock or beside other work says so.

"Why is my latency twice the published number?" is nearly always clocks, throttling, the governor, the power supply
or other load; none of them is assumed here, each is read where the board exposes it: thermal zones
(/sys/class/thermal), cpufreq per core, a Raspberry Pi's firmware flags (`vcgencmd get_throttled`), /proc/stat and
/proc/loadavg. Files are read through `machine._read` and the firmware through `_vcgencmd` (the tests' seams).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from . import machine

THERMAL = "/sys/class/thermal/thermal_zone{}/{}"
CPUFREQ = "/sys/devices/system/cpu/cpu{}/cpufreq/{}"

# `vcgencmd get_throttled` bits (Raspberry Pi firmware): 0-3 now, 16-19 the same since boot
THROTTLE_BITS = {0: "under_voltage", 1: "freq_capped", 2: "throttled", 3: "soft_temp_limit"}
SLOW_BITS = ("freq_capped", "throttled", "soft_temp_limit")  # what lowers the clock

# When a result is flagged (data, not code): its cores' clock below this share of their maximum, other processes
# using at least this many cores' worth of CPU during the run.
CLOCK_RATIO = 0.95
OTHER_CORES = 0.25


def _number(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else None


_now = time.time  # the wall clock of a snapshot (a seam, like `_vcgencmd`)


def _vcgencmd() -> str:
    """The firmware's `get_throttled` answer ("throttled=0x50005"), "" where there is no vcgencmd."""
    tool = shutil.which("vcgencmd")
    if not tool:
        return ""
    try:
        return subprocess.run([tool, "get_throttled"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def decode_throttled(value: int) -> dict:
    """The firmware's bit field as names: what holds now, and what happened since boot."""
    return {
        "raw": hex(value),
        "now": [name for bit, name in THROTTLE_BITS.items() if value >> bit & 1],
        "since_boot": [name for bit, name in THROTTLE_BITS.items() if value >> (bit + 16) & 1],
    }


def throttled() -> int | None:
    """`vcgencmd get_throttled` as a number, None where the board has no such tool."""
    text = _vcgencmd().strip()
    if "=" not in text:
        return None
    try:
        return int(text.split("=", 1)[1].strip(), 0)
    except ValueError:
        return None


def temperatures() -> list[dict]:
    """Every thermal zone: type, temperature (°C) and its lowest passive trip point (where the kernel throttles)."""
    zones = []
    for i in range(64):
        kind, temp = machine._read(THERMAL.format(i, "type")).strip(), _number(machine._read(THERMAL.format(i, "temp")))
        if not kind and temp is None:
            break
        passive = []
        for j in range(16):
            trip = machine._read(THERMAL.format(i, f"trip_point_{j}_type")).strip()
            if not trip:
                break
            at = _number(machine._read(THERMAL.format(i, f"trip_point_{j}_temp")))
            if trip == "passive" and at is not None:
                passive.append(at / 1000)
        zones.append(
            {
                "zone": i,
                "type": kind or None,
                "temp_c": None if temp is None else round(temp / 1000, 1),
                "passive_c": min(passive) if passive else None,
            }
        )
    return zones


def clocks(cpus: int | None = None) -> list[dict]:
    """Per core: current, minimum and maximum clock (MHz), the governor's ceiling and the governor, where readable."""
    out = []
    for cpu in range(cpus or machine.processors()):

        def mhz(name: str, cpu: int = cpu) -> float | None:
            khz = _number(machine._read(CPUFREQ.format(cpu, name)))
            return None if khz is None else round(khz / 1000)

        row = {
            "cpu": cpu,
            "cur_mhz": mhz("scaling_cur_freq"),
            "min_mhz": mhz("scaling_min_freq") or mhz("cpuinfo_min_freq"),
            "max_mhz": mhz("cpuinfo_max_freq"),
            "limit_mhz": mhz("scaling_max_freq"),
            "governor": machine._read(CPUFREQ.format(cpu, "scaling_governor")).strip() or None,
        }
        if any(v is not None for k, v in row.items() if k != "cpu"):  # a core without cpufreq says nothing
            out.append(row)
    return out


def cpu_times() -> tuple[int, int] | None:
    """(busy, all) jiffies of the whole machine since boot, from /proc/stat's first line."""
    parts = machine._read("/proc/stat").split("\n", 1)[0].split()
    if len(parts) < 5 or parts[0] != "cpu":
        return None
    ticks = [int(p) for p in parts[1:] if p.isdigit()]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return sum(ticks[:8]) - idle, sum(ticks[:8])


def own_cpu_seconds() -> float:
    """CPU time this process (all its threads) has used."""
    t = os.times()
    return t.user + t.system


def loadavg() -> list[float] | None:
    """/proc/loadavg's three averages."""
    parts = machine._read("/proc/loadavg").split()
    try:
        return [float(p) for p in parts[:3]] if len(parts) >= 3 else None
    except ValueError:
        return None


def snapshot(cpus: int | None = None) -> dict:
    """Everything above, now (a few dozen small file reads: cheap enough between windows)."""
    firmware = throttled()
    return {
        "time": _now(),
        "own_cpu_s": own_cpu_seconds(),
        "temps": temperatures(),
        "clocks": clocks(cpus),
        "throttled": firmware,
        "stat": cpu_times(),
        "loadavg": loadavg(),
    }


def hottest(snap: dict) -> float | None:
    """The highest zone temperature of a snapshot (°C)."""
    temps = [z["temp_c"] for z in snap["temps"] if z["temp_c"] is not None]
    return max(temps) if temps else None


def top_mhz(snap: dict, cores: list[int] | None = None) -> float | None:
    """The fastest current clock among `cores` (all when None)."""
    cur = [c["cur_mhz"] for c in snap["clocks"] if c["cur_mhz"] and (cores is None or c["cpu"] in cores)]
    return max(cur) if cur else None


def between(before: dict, after: dict, cores: list[int] | None = None) -> dict:
    """The context of what ran between two snapshots: temperatures, clocks, firmware flags, load; plus `flags`."""
    wall = max(after["time"] - before["time"], 1e-9)
    load: dict = {"loadavg_before": before["loadavg"], "loadavg_after": after["loadavg"]}
    if before["stat"] and after["stat"]:
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        busy = (after["stat"][0] - before["stat"][0]) / hz / wall  # cores' worth of CPU, every process
        own = (after["own_cpu_s"] - before["own_cpu_s"]) / wall
        load.update(busy_cores=round(busy, 2), own_cores=round(own, 2), other_cores=round(max(0.0, busy - own), 2))
    zones = [
        {**{k: z[k] for k in ("zone", "type", "passive_c")}, "before_c": z["temp_c"], "after_c": a["temp_c"]}
        for z, a in zip(before["temps"], after["temps"])
    ]
    clock = [
        {
            **{k: c[k] for k in ("cpu", "min_mhz", "max_mhz", "limit_mhz", "governor")},
            "before_mhz": b["cur_mhz"],
            "after_mhz": c["cur_mhz"],
        }
        for b, c in zip(before["clocks"], after["clocks"])
        if cores is None or c["cpu"] in cores
    ]
    fw = {
        "before": None if before["throttled"] is None else decode_throttled(before["throttled"]),
        "after": None if after["throttled"] is None else decode_throttled(after["throttled"]),
    }
    governors = sorted({c["governor"] for c in clock if c["governor"]})
    ctx = {
        "seconds": round(wall, 3),
        "temp_c": {"before": hottest(before), "after": hottest(after)},
        "zones": zones,
        "clocks": clock,
        "governor": ",".join(governors) or None,
        "firmware": fw if fw["after"] is not None else None,
        "load": load,
    }
    ctx["flags"] = flags(ctx)
    return ctx


def flags(ctx: dict) -> list[str]:
    """What makes a result unrepresentative: throttled (firmware says so, or a zone at its passive trip point),
    under-voltage, the run's cores below their maximum clock, other processes' load beside the run."""
    out = []
    fw = ctx.get("firmware") or {}
    now = set((fw.get("before") or {}).get("now", [])) | set((fw.get("after") or {}).get("now", []))
    new = set((fw.get("after") or {}).get("since_boot", [])) - set((fw.get("before") or {}).get("since_boot", []))
    hot = any(
        z["passive_c"] is not None
        and max((t for t in (z["before_c"], z["after_c"]) if t is not None), default=-1e9) >= z["passive_c"]
        for z in ctx.get("zones") or []
    )
    if (now | new) & set(SLOW_BITS) or hot:
        out.append("throttled")
    if "under_voltage" in now | new:
        out.append("under_voltage")
    cur = [c["after_mhz"] for c in ctx.get("clocks") or [] if c["after_mhz"]]
    top = [c["max_mhz"] for c in ctx.get("clocks") or [] if c["max_mhz"]]
    if cur and top and max(cur) < CLOCK_RATIO * max(top):
        out.append("clock_below_max")
    if (ctx.get("load") or {}).get("other_cores", 0) >= OTHER_CORES:
        out.append("other_load")
    return out


def hottest_now() -> float | None:
    """The hottest zone's temperature now (°C), None where there is no thermal zone."""
    temps = [z["temp_c"] for z in temperatures() if z["temp_c"] is not None]
    return max(temps) if temps else None
