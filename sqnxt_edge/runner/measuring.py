"""Measuring: the settings of one measurement, timing raw samples, and one fresh child per artifact and runtime.

Habits of TFLite's benchmark_model and onnxruntime's perf_test: one model per fresh process, a first run timed on
its own, warm-up, then timed runs until both a count and a duration are reached; raw samples kept, stats derived
(`result`). Nothing prints while the clock runs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

from . import context
from .backends import known, runtimes_for
from .contract import RUNNER_VERSION, RunnerError, artifact_bytes, describe, load_data
from .harness import run_child, self_cmd
from .machine import affinity, default_threads, environment, parse_cores
from .model import open_model
from .result import latency_fields, topk_accuracy
from .sustained import (
    COOLDOWN_LIMIT,
    cool_down,
    default_window,
    gc_paused,
    parse_cooldown,
    summary,
    time_windows,
    warm_up,
)


@dataclass(frozen=True)
class Settings:
    """One measurement, as the harness asks for it; turned into the runner's argv once (`to_argv`), locally, over
    SSH and on an emulated board alike. `latency=False` only scores `data`; `logits` returns them (parity)."""

    runtime: str = "auto"
    threads: int | None = None  # None: the pinned cores, else the machine's physical cores
    cores: str | None = None  # run on these cores only ("4-7"): pinned before any runtime starts its threads
    batch: int = 1
    warmup: int = 10
    runs: int = 100
    min_seconds: float = 1.0
    data: str | None = None  # an npz of labels + images_<size>
    latency: bool = True
    logits: bool = False
    samples: bool = False  # keep every raw latency sample
    profile: bool = False  # also every node's time from the runtime's own profiler (profile.py)
    timeout: float | None = None  # seconds per measuring process
    duration: float | None = None  # sustained: keep running this many seconds, latency per window
    window: float | None = None  # ... of this many seconds (default: about 60 windows)
    cooldown: str | None = None  # between artifacts: to a temperature ("50C") or for a time ("30s")

    def check(self) -> Settings:
        """Raise RunnerError for values no run could honour; returns self."""
        for name, low in (("threads", 1), ("batch", 1), ("warmup", 0), ("runs", 1), ("min_seconds", 0)):
            value = getattr(self, name)
            if value is not None and value < low:
                raise RunnerError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
        for name in ("duration", "window"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise RunnerError(f"--{name} must be > 0, got {getattr(self, name)}")
        if self.cores:
            parse_cores(self.cores)
        if self.cooldown:
            parse_cooldown(self.cooldown)
        known(self.runtime)
        if not self.data and (self.logits or not self.latency):
            raise RunnerError("--no-latency and --logits need --data")
        return self

    def to_argv(self) -> list[str]:
        """The runner command line that reproduces these settings (what a board receives)."""
        argv = [
            "--runtime",
            self.runtime,
            "--batch",
            self.batch,
            "--warmup",
            self.warmup,
            "--runs",
            self.runs,
            "--min-seconds",
            self.min_seconds,
        ]
        for flag, value in (
            ("--threads", self.threads),
            ("--cores", self.cores),
            ("--data", self.data),
            ("--timeout", self.timeout),
            ("--duration", self.duration),
            ("--window", self.window),
            ("--cooldown", self.cooldown),
        ):
            argv += [flag, value] if value else []
        for flag, on in (
            ("--no-latency", not self.latency),
            ("--logits", self.logits),
            ("--samples", self.samples),
            ("--profile", self.profile),
        ):
            argv += [flag] if on else []
        return [str(a) for a in argv]

    def resolve_threads(self) -> int:
        """The threads a run uses: as asked, else one per pinned core, else the physical cores."""
        return self.threads or (len(parse_cores(self.cores)) if self.cores else default_threads())

    def extra_seconds(self, artifacts: int) -> float:
        """How much longer than a plain bench a run of `artifacts` may take (sustained runs, cool-downs), for the
        timeouts that bound a whole run."""
        per = self.duration or 0.0
        if self.cooldown:
            kind, value = parse_cooldown(self.cooldown)
            per += value if kind == "seconds" else COOLDOWN_LIMIT
        return artifacts * per * (2 if self.runtime == "auto" else 1)  # auto: up to two engines per artifact


def time_runs(run, warmup: int = 10, runs: int = 100, min_seconds: float = 1.0) -> tuple[float, list[float]]:
    """(first_ms, samples_ms): the first call alone, `warmup` untimed calls, then at least `runs` calls and
    `min_seconds`. Nothing prints and the garbage collector is off while the clock runs."""
    clock = time.perf_counter_ns
    first_ms = warm_up(run, warmup)
    samples: list[int] = []
    with gc_paused():
        deadline = clock() + int(min_seconds * 1e9)
        while len(samples) < runs or clock() < deadline:
            t0 = clock()
            run()
            samples.append(clock() - t0)
    return first_ms, [ns / 1e6 for ns in samples]


def measure_artifact(path: str, s: Settings) -> dict:
    """Load one artifact and time it on a synthetic batch: the body of one fresh child process. The run's context
    (temperatures, clocks, firmware flags, load) is read before and after the timed runs; a sustained run
    (`duration`) also records every window."""
    threads = s.resolve_threads()
    cores = affinity()  # the kernel's answer (the runner pinned itself before anything started threads)
    clock = time.perf_counter_ns
    t0 = clock()
    model = open_model(path, runtime=runtimes_for(path, s.runtime)[0], threads=threads)
    init_ms = (clock() - t0) / 1e6
    if model.fixed_batch and model.fixed_batch != s.batch:
        raise RunnerError(
            f"{os.path.basename(path)} takes a fixed batch of {model.fixed_batch}; it cannot run --batch {s.batch}"
        )
    x = model.synthetic(s.batch)
    before = context.snapshot()
    if s.duration:
        window = s.window or default_window(s.duration)
        first_ms, samples, windows = time_windows(lambda: model.run(x), s.warmup, s.duration, window, cores)
    else:
        first_ms, samples = time_runs(lambda: model.run(x), warmup=s.warmup, runs=s.runs, min_seconds=s.min_seconds)
    ctx = context.between(before, context.snapshot(), cores)
    result = describe(path, model.runtime)
    result.update(
        precision=model.precision,
        runtime_version=model.runtime_version,
        threads=threads,
        cores=cores,
        batch=s.batch,
        input_size=model.input_size,
        size_bytes=artifact_bytes(path),
        init_ms=init_ms,
        warmup=s.warmup,
        pid=os.getpid(),
        flags=ctx.pop("flags"),
        context=ctx,
    )
    result.update(latency_fields(first_ms, samples, s.batch, s.samples))
    if s.duration:
        top = max((c["max_mhz"] for c in ctx["clocks"] if c["max_mhz"]), default=None)
        result.update(window_s=window, windows=windows, sustained=summary(windows, top))
    return result


def measure_accuracy(path: str, s: Settings) -> dict:
    """top-1/top-5 of one artifact on the npz, through its own preprocessing; with `logits`, every image's too."""
    if not s.data:
        raise RunnerError("scoring needs --data")
    model = open_model(path, runtime=runtimes_for(path, s.runtime)[0], threads=s.resolve_threads())
    images, labels = load_data(s.data, model.input_size)
    out = model.predict(images, batch=64)
    result = {**topk_accuracy(out, labels), "runtime": model.runtime, "runtime_version": model.runtime_version}
    if s.logits:
        result["logits"] = out.tolist()  # float32 values survive JSON exactly
    return result


def measure(artifacts: list, s: Settings, progress=None) -> dict:
    """Measure every artifact with every runtime that runs it here (one per engine), each in its own fresh child
    process; one failure never stops the others."""
    s = replace(s, threads=s.resolve_threads()).check()
    limit = s.timeout + (s.duration or 0) if s.timeout else None  # a sustained child runs `duration` longer
    plan: list[tuple[str, str | RunnerError]] = []
    for path in artifacts:
        try:
            if not os.path.isfile(path):
                raise RunnerError(f"artifact not found: {path}")
            plan += [(path, rt) for rt in runtimes_for(path, s.runtime, every=s.latency)]
        except RunnerError as exc:
            plan.append((path, exc))
    baseline = {}
    for name in dict.fromkeys(r for _, r in plan if isinstance(r, str) and s.latency):
        payload, peak = run_child(self_cmd("--bare", name, *(["--cores", s.cores] if s.cores else [])), s.timeout)
        baseline[name] = {**payload, "peak_rss_mb": peak}
    results = []
    for i, (path, rt) in enumerate(plan):
        if isinstance(rt, RunnerError):
            results.append({"artifact": path, "runtime": None, "error": str(rt)})
            continue
        one = replace(s, runtime=rt, cooldown=None)
        result = describe(path, rt)
        rested = cool_down(s.cooldown) if s.cooldown and i > 0 else None  # the previous artifact's heat goes first
        if s.latency:
            timed, peak = run_child(self_cmd("--one", *replace(one, data=None).to_argv(), path), limit)
            bare = baseline.get(rt, {}).get("peak_rss_mb")
            result.update(
                timed,
                peak_rss_mb=peak,
                model_peak_rss_mb=peak - bare if peak is not None and bare is not None else None,
            )
        if s.data and "error" not in result:
            scored, _ = run_child(self_cmd("--one", *replace(one, latency=False).to_argv(), path), s.timeout)
            result.update(scored, threads=s.threads)
        if "error" in result:
            result = {"artifact": path, "runtime": rt, "error": result["error"]}
        elif rested:
            result["cooldown"] = rested
        results.append(result)
        if progress:
            progress(i + 1, len(plan), result)
    env = environment()
    env["runtimes"] = {b["runtime"]: b.get("runtime_version") for b in baseline.values() if "runtime" in b}
    return {"runner_version": RUNNER_VERSION, "env": env, "baseline": baseline, "results": results}
