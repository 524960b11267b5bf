"""Where a measurement runs, decided in one place: a `Target` is this machine ("local") or a registered board (over
SSH, or emulated: an aarch64 board or an x86 CPU class under QEMU). Bench, profile, eval on a board and export's
--verify-on all hand their runner settings to `Target.run`, so "local" always means the same thing (runner.pyz in
a child process, exactly what a board receives) and a board is always reached the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from .. import runner
from .local import Progress, run_local
from .registry import Device, get_device
from .transport import run_runner

__all__ = ["Target", "LOCAL"]

LOCAL = "local"


@dataclass(frozen=True)
class Target:
    """A place to run the runner: `name` is "local" or a device of the registry (`devices_file`, else the default)."""

    name: str = LOCAL
    devices_file: str | os.PathLike | None = None

    @property
    def is_local(self) -> bool:
        """True for this machine."""
        return self.name == LOCAL

    @cached_property
    def device(self) -> Device | None:
        """The registered board (read once; DeviceError when it is unknown), None for this machine."""
        return None if self.is_local else get_device(self.name, self.devices_file)

    def run(
        self,
        artifacts: list[Path],
        settings: runner.Settings,
        data_file: str | os.PathLike | None = None,
        timeout: float | None = None,
        progress: Progress | None = None,
        env: dict | None = None,
    ) -> dict:
        """The runner's JSON report for `artifacts` measured (or scored on `data_file`) with `settings` here.

        `timeout` bounds a board's whole run (default: the device's); locally each measuring process is bounded by
        `settings.timeout`. `progress` hears of each finished artifact locally; `env` adds a harness's runtime
        plugins to a local run (a board has only its own runtimes)."""
        if data_file is not None:
            settings = replace(settings, data=str(data_file))
        if self.device is None:
            return run_local([Path(a) for a in artifacts], settings, progress, env)
        data = Path(data_file) if data_file is not None else None
        return run_runner(self.device, [Path(a) for a in artifacts], settings, data, timeout)
