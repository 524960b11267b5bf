"""The machine's state, read (never assumed): CPU model and ISA features, cores, memory, governor, load, runtimes.

Recorded with every result, so a figure always says where and under what conditions it was taken.
"""

from __future__ import annotations

import os
import platform
import socket
import sys

import numpy as np

from .backends import RUNTIMES, need, version
from .contract import EMULATION_VAR, RUNNER_VERSION, RunnerError, decode

# ARM "CPU part" ids of the cores edge boards carry (from the Arm technical reference manuals).
_ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd0d": "Cortex-A77",
    "0xd41": "Cortex-A78",
    "0xd44": "Cortex-X1",
    "0xd46": "Cortex-A510",
    "0xd47": "Cortex-A710",
    "0xd4f": "Neoverse-V2",
}


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def _cpuinfo() -> tuple[dict, int, int]:
    """/proc/cpuinfo's first value of every field, its processors, and its physical cores (x86 only says those)."""
    fields: dict[str, str] = {}
    processors, cores, phys = 0, set(), "0"
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        key = key.lower()
        processors += key == "processor"
        phys = value if key == "physical id" else phys
        if key == "core id":
            cores.add((phys, value))
        fields.setdefault(key, value)
    return fields, processors, len(cores)


def cpu_info() -> dict:
    """The CPU facts that decide int8 speed, read from the machine (never assumed): model, cores, ISA features."""
    arch = platform.machine().lower()
    fields, processors, _ = _cpuinfo()
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    model = fields.get("model name") or ""
    if not model and fields.get("cpu part"):
        model = _ARM_PARTS.get(fields["cpu part"].lower(), f"ARM part {fields['cpu part']}")
    board = _read("/sys/firmware/devicetree/base/model").strip("\x00\n ")
    is_arm = arch in ("aarch64", "arm64") or arch.startswith("arm")
    features = {
        "avx2": "avx2" in flags,
        "avx512": "avx512f" in flags,
        "vnni": bool({"avx512_vnni", "avx_vnni", "avx512vnni"} & flags),
        "amx": "amx_int8" in flags,
        "neon": is_arm and (bool({"asimd", "neon"} & flags) or arch in ("aarch64", "arm64")),
        "dotprod": "asimddp" in flags,
        "i8mm": "i8mm" in flags,
        "fp16": bool({"asimdhp", "fphp"} & flags),
    }
    if sys.platform == "darwin" and arch == "arm64":  # Apple silicon: every core has dotprod
        features.update(neon=True, dotprod=True, fp16=True)
    return {
        "arch": arch,
        "model": model or platform.processor() or arch,
        "board": board or None,
        "cores": processors or os.cpu_count(),
        "features": features,
        "int8_dot": features["vnni"] or features["dotprod"],
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def processors() -> int:
    """Logical CPUs as /proc/cpuinfo lists them (else os.cpu_count)."""
    return _cpuinfo()[1] or os.cpu_count() or 1


def core_types() -> list[dict]:
    """Each core's type on an ARM CPU (its "CPU part" and top clock): a heterogeneous CPU (big.LITTLE, RK3588's
    4 x A76 + 4 x A55) lists two kinds or more. [] where /proc/cpuinfo says no part (x86)."""
    cores, cpu = [], None
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        key = key.lower()
        if key == "processor" and value.isdigit():
            cpu = int(value)
        elif key == "cpu part" and cpu is not None:
            top = _read(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/cpuinfo_max_freq").strip()
            name = _ARM_PARTS.get(value.lower(), f"ARM part {value}")
            cores.append(
                {"cpu": cpu, "part": value, "name": name, "max_mhz": int(top) // 1000 if top.isdigit() else None}
            )
    return cores


def big_cores(types: list[dict]) -> list[int]:
    """The fast cores of a heterogeneous CPU (the highest top clock, else the part that is no little core), [] when
    all cores are alike."""
    if len({t["name"] for t in types}) < 2:
        return []
    clocks = [t["max_mhz"] for t in types if t["max_mhz"]]
    if len(clocks) == len(types) and len(set(clocks)) > 1:
        return [t["cpu"] for t in types if t["max_mhz"] == max(clocks)]
    little = ("Cortex-A53", "Cortex-A55", "Cortex-A35", "Cortex-A510")
    return [t["cpu"] for t in types if t["name"] not in little]


def parse_cores(spec: str) -> list[int]:
    """`4-7`, `0,2` or `0-1,4` -> sorted core numbers; a RunnerError for anything else."""
    cores: set[int] = set()
    try:
        for part in spec.split(","):
            low, _, high = part.strip().partition("-")
            cores.update(range(int(low), int(high or low) + 1))
    except ValueError:
        raise RunnerError(f"--cores {spec!r}: give core numbers like 4-7 or 0,2") from None
    if not cores or min(cores) < 0:
        raise RunnerError(f"--cores {spec!r}: give core numbers like 4-7 or 0,2")
    return sorted(cores)


def core_list(cores) -> str:
    """Core numbers as the shortest spec `parse_cores` reads back (0-3,6)."""
    spans: list[list[int]] = []
    for c in sorted(cores):
        if spans and c == spans[-1][1] + 1:
            spans[-1][1] = c
        else:
            spans.append([c, c])
    return ",".join(f"{a}-{b}" if b > a else f"{a}" for a, b in spans)


def pin(spec: str | None) -> list[int] | None:
    """Run this process (and the threads and children it starts from now on) on the cores `spec` names: called first
    thing in the runner, before any runtime makes its thread pool. Returns the affinity the kernel then reports."""
    if not spec:
        return affinity()
    cores = parse_cores(spec)
    if not hasattr(os, "sched_setaffinity"):
        raise RunnerError("--cores needs Linux (os.sched_setaffinity)")
    try:
        os.sched_setaffinity(0, cores)
    except OSError as exc:
        have = core_list(range(processors()))
        raise RunnerError(f"--cores {spec}: {exc.strerror} (this machine has CPUs {have})") from None
    return affinity()


def affinity() -> list[int] | None:
    """The cores this process may run on, as the kernel says (None where it cannot say)."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def default_threads() -> int:
    """Physical cores (hyper-threads share execution units, so they are a poor default thread count)."""
    _, processors, cores = _cpuinfo()
    return cores or processors or os.cpu_count() or 1  # ARM lists one "processor" per core and no "core id"


def _mem_total_mb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _cpufreq(name: str) -> str | None:
    return _read(f"/sys/devices/system/cpu/cpu0/cpufreq/{name}").strip() or None


def environment() -> dict:
    """The machine's state as read now: CPU facts, memory, governor, load, numpy; recorded with every result."""
    env = cpu_info()
    cur, top = _cpufreq("scaling_cur_freq"), _cpufreq("cpuinfo_max_freq")
    env.update(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        physical_cores=default_threads(),
        mem_total_mb=_mem_total_mb(),
        governor=_cpufreq("scaling_governor"),
        cpu_mhz=round(int(cur) / 1000) if cur and cur.isdigit() else None,
        cpu_max_mhz=round(int(top) / 1000) if top and top.isdigit() else None,
        loadavg=[round(v, 2) for v in os.getloadavg()],
        affinity=affinity(),
        numpy=np.__version__,
        runner_version=RUNNER_VERSION,
    )
    types = core_types()
    if len({t["name"] for t in types}) > 1:  # a heterogeneous CPU: which core is which, and the big ones
        env.update(core_types=types, big_cores=big_cores(types))
    emulation = decode(os.environ.get(EMULATION_VAR) or "")
    env["emulated"] = bool(emulation)
    if emulation:  # timings and memory are the emulator's, not the board's
        env["emulation"] = emulation
    return env


def runtime_versions() -> tuple[dict, dict]:
    """{runtime: version or None} for every runtime this runner can drive (but torch), plus why missing ones failed."""
    versions: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    for name, row in RUNTIMES.items():
        if row.backend is None:  # a plugin's runtime (torch): the harness's business
            continue
        try:
            versions[name] = version(name, need(name))
        except RunnerError as exc:
            versions[name], errors[name] = None, str(exc)
    versions["numpy"] = np.__version__
    return versions, errors
