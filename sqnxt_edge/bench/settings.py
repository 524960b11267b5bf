"""What a bench is asked to do: the device, the measurement and the data, as one typed config.

`BenchConfig.measurement()` gives the runner's own `Settings`, the one object that becomes the runner's argv, on this
machine, over SSH and on an emulated board alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import runner
from ..errors import BenchError

__all__ = ["BenchConfig", "BENCH_RUNTIMES", "LOCAL_TIMEOUT"]

BENCH_RUNTIMES = ("auto", *runner.RUNTIMES)
LOCAL_TIMEOUT = 900.0  # seconds per measuring process: a hung runtime cannot stall the bench forever


@dataclass
class BenchConfig:
    """How to measure: where (device), with what runtime and threads, how many runs, on what data."""

    device: str = "local"
    runtime: str = "auto"  # auto: every installed runtime that runs the artifact (one per engine)
    threads: int | None = None  # None: one per pinned core, else the device's physical cores
    cores: str | None = None  # pin the measuring processes to these cores ("4-7")
    batch: int = 1
    warmup: int = 10
    runs: int = 100
    min_seconds: float = 1.0
    data: str | None = None  # dataset name: top-1 on its test split
    data_dir: str | None = None
    samples: bool = False  # keep raw per-run samples (needed for --plot)
    devices_file: Path | None = None
    timeout: float | None = None  # per measuring process locally (default 900 s); whole remote run (device's)
    export_dir: Path = Path("export")
    duration: float | None = None  # sustained: seconds per artifact, latency per window with temperature and clock
    window: float | None = None  # ... seconds per window (default: about 60 windows)
    cooldown: str | None = None  # between artifacts: to a temperature ("50C") or for a time ("30s")
    # foreign PyTorch files (a state_dict, the seed notebook's whole pickled model): their architecture and facts
    model: str | None = None
    num_classes: int | None = None
    input_size: int | None = None
    dataset: str | None = None

    def validate(self) -> None:
        """Raise BenchError (one line) for settings no run could honour."""
        if self.runtime not in BENCH_RUNTIMES:
            raise BenchError(f"unknown runtime {self.runtime!r}; choose one of {', '.join(BENCH_RUNTIMES)}")
        try:
            self.measurement().check()
        except runner.RunnerError as exc:
            raise BenchError(str(exc)) from None

    def measurement(self, data_file: str | Path | None = None, timeout: float | None = None) -> runner.Settings:
        """The runner's settings for this bench (`data_file`: the npz written from `data`)."""
        return runner.Settings(
            runtime=self.runtime,
            threads=self.threads,
            cores=self.cores,
            batch=self.batch,
            warmup=self.warmup,
            runs=self.runs,
            min_seconds=self.min_seconds,
            data=str(data_file) if data_file else None,
            samples=self.samples,
            timeout=timeout,
            duration=self.duration,
            window=self.window,
            cooldown=self.cooldown,
        )
