"""How many threads CPU training uses: the cores that nobody else is using when it starts.

Measured here (benchmarks/training/README.md): on the idle 2-core machine 2 threads train 1.4-2x faster than 1, and
OMP_WAIT_POLICY=PASSIVE halves that speed (its threads sleep between the many small ops of a training step); with one
other busy process on the 2 cores, 2 threads ran 3x slower than 1 (every op waits for the thread the scheduler
parked), and PASSIVE recovered little of it. So no wait policy is set, and the thread count follows the load when
the run starts. It stays fixed for the run and is recorded with it, and a resumed run uses it again: another count
would sum in another order, and `--resume` promises the very weights of an uninterrupted run. `--threads` or
`OMP_NUM_THREADS` fix it.
"""

from __future__ import annotations

import math
import os
import time

__all__ = ["training_threads", "others_busy"]


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat (None where there is none)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal (guest time is inside user)
    return total - idle, total


def others_busy(window: float = 0.3) -> float | None:
    """CPUs' worth of time other processes use, watched for `window` seconds (None without /proc/stat)."""
    before, own0, t0 = _cpu_jiffies(), time.process_time(), time.perf_counter()
    if before is None:
        return None
    time.sleep(window)
    after, own1, t1 = _cpu_jiffies(), time.process_time(), time.perf_counter()
    if after is None:
        return None
    clock = os.sysconf("SC_CLK_TCK")
    busy = (after[0] - before[0]) / clock - (own1 - own0)  # everyone's busy time minus ours
    return max(0.0, busy / (t1 - t0))


def training_threads(fixed: int | None = None) -> tuple[int, str]:
    """(threads, why) for a CPU training run: `fixed`, else OMP_NUM_THREADS, else the physical cores other
    processes leave free (a process busy half the time or more takes its core)."""
    from ..runner import default_threads

    if fixed:
        return fixed, "--threads"
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env), "OMP_NUM_THREADS"
    cores, others = default_threads(), others_busy()
    if others is None:
        return cores, "physical cores"
    free = max(1, min(cores, (os.cpu_count() or cores) - math.floor(others + 0.5)))
    return free, f"{cores} physical cores, {others:.1f} busy with other processes"
