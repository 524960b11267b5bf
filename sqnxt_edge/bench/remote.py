"""Measuring on a registered board: the same runner settings, carried there by the devices' transport."""

from __future__ import annotations

from pathlib import Path

from .. import runner
from ..devices import get_device, run_runner
from ..errors import BenchError

__all__ = ["run_remote"]


def run_remote(
    device_name: str,
    artifacts: list[Path],
    settings: runner.Settings,
    data_file: Path | None,
    devices_file: Path | None = None,
    timeout: float | None = None,
) -> dict:
    """The runner's report from the board, every result naming the local path the user gave."""
    device = get_device(device_name, devices_file)
    report = run_runner(device, artifacts, settings, data_file, timeout)
    named = {str(p) for p in artifacts}
    stray = [r.get("artifact") for r in report.get("results") or [] if r.get("artifact") not in named]
    if stray:
        raise BenchError(f"{device_name}: the runner returned results for unknown artifacts: {stray[:3]}")
    return report
