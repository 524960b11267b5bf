"""Measuring: the settings of one measurement, timing raw samples, and one fresh child per artifact and runtime.

Habits of TFLite's benchmark_model and onnxruntime's perf_test: one model per fresh process, a first run timed on
its own, warm-up, then timed runs until both a count and a duration are reached; raw samples kept, stats derived
(`result`). Nothing prints while the clock runs.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass, replace

from .backends import known, runtimes_for
from .contract import RUNNER_VERSION, RunnerError, artifact_bytes, describe, load_data
from .harness import run_child, self_cmd
from .machine import default_threads, environment
from .model import open_model
from .result import latency_fields, topk_accuracy


@dataclass(frozen=True)
class Settings:
    """One measurement, as the harness asks for it; turned into the runner's argv once (`to_argv`), locally, over
    SSH and on an emulated board alike. `latency=False` only scores `data`; `logits` returns them (parity)."""

    runtime: str = "auto"
    threads: int | None = None  # None: the machine's physical cores
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

    def check(self) -> Settings:
        """Raise RunnerError for values no run could honour; returns self."""
        for name, low in (("threads", 1), ("batch", 1), ("warmup", 0), ("runs", 1), ("min_seconds", 0)):
            value = getattr(self, name)
            if value is not None and value < low:
                raise RunnerError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
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
        for flag, value in (("--threads", self.threads), ("--data", self.data), ("--timeout", self.timeout)):
            argv += [flag, value] if value else []
        for flag, on in (
            ("--no-latency", not self.latency),
            ("--logits", self.logits),
            ("--samples", self.samples),
            ("--profile", self.profile),
        ):
            argv += [flag] if on else []
        return [str(a) for a in argv]


def time_runs(run, warmup: int = 10, runs: int = 100, min_seconds: float = 1.0) -> tuple[float, list[float]]:
    """(first_ms, samples_ms): the first call alone, `warmup` untimed calls, then at least `runs` calls and
    `min_seconds`. Nothing prints and the garbage collector is off while the clock runs."""
    clock = time.perf_counter_ns
    t0 = clock()
    run()
    first_ms = (clock() - t0) / 1e6
    for _ in range(warmup):
        run()
    samples: list[int] = []
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        deadline = clock() + int(min_seconds * 1e9)
        while len(samples) < runs or clock() < deadline:
            t0 = clock()
            run()
            samples.append(clock() - t0)
    finally:
        if gc_was_on:
            gc.enable()
    return first_ms, [ns / 1e6 for ns in samples]


def measure_artifact(path: str, s: Settings) -> dict:
    """Load one artifact and time it on a synthetic batch: the body of one fresh child process."""
    threads = s.threads or default_threads()
    clock = time.perf_counter_ns
    t0 = clock()
    model = open_model(path, runtime=runtimes_for(path, s.runtime)[0], threads=threads)
    init_ms = (clock() - t0) / 1e6
    if model.fixed_batch and model.fixed_batch != s.batch:
        raise RunnerError(
            f"{os.path.basename(path)} takes a fixed batch of {model.fixed_batch}; it cannot run --batch {s.batch}"
        )
    x = model.synthetic(s.batch)
    first_ms, samples = time_runs(lambda: model.run(x), warmup=s.warmup, runs=s.runs, min_seconds=s.min_seconds)
    result = describe(path, model.runtime)
    result.update(
        precision=model.precision,
        runtime_version=model.runtime_version,
        threads=threads,
        batch=s.batch,
        input_size=model.input_size,
        size_bytes=artifact_bytes(path),
        init_ms=init_ms,
        warmup=s.warmup,
        pid=os.getpid(),
    )
    result.update(latency_fields(first_ms, samples, s.batch, s.samples))
    return result


def measure_accuracy(path: str, s: Settings) -> dict:
    """top-1/top-5 of one artifact on the npz, through its own preprocessing; with `logits`, every image's too."""
    if not s.data:
        raise RunnerError("scoring needs --data")
    model = open_model(path, runtime=runtimes_for(path, s.runtime)[0], threads=s.threads or default_threads())
    images, labels = load_data(s.data, model.input_size)
    out = model.predict(images, batch=64)
    result = {**topk_accuracy(out, labels), "runtime": model.runtime, "runtime_version": model.runtime_version}
    if s.logits:
        result["logits"] = out.tolist()  # float32 values survive JSON exactly
    return result


def measure(artifacts: list, s: Settings, progress=None) -> dict:
    """Measure every artifact with every runtime that runs it here (one per engine), each in its own fresh child
    process; one failure never stops the others."""
    s = replace(s, threads=s.threads or default_threads()).check()
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
        payload, peak = run_child(self_cmd("--bare", name), s.timeout)
        baseline[name] = {**payload, "peak_rss_mb": peak}
    results = []
    for i, (path, rt) in enumerate(plan):
        if isinstance(rt, RunnerError):
            results.append({"artifact": path, "runtime": None, "error": str(rt)})
            continue
        one = replace(s, runtime=rt)
        result = describe(path, rt)
        if s.latency:
            timed, peak = run_child(self_cmd("--one", *replace(one, data=None).to_argv(), path), s.timeout)
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
        results.append(result)
        if progress:
            progress(i + 1, len(plan), result)
    env = environment()
    env["runtimes"] = {b["runtime"]: b.get("runtime_version") for b in baseline.values() if "runtime" in b}
    return {"runner_version": RUNNER_VERSION, "env": env, "baseline": baseline, "results": results}
