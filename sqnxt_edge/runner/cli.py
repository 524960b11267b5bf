"""The runner's command line: `python runner.pyz [SETTINGS] ARTIFACT...` prints one JSON object (the report of
`measuring.measure`); `--env-only` prints the machine and its runtimes. Exit 0: all measured, 1: some artifact
failed (its result says why), 2: usage error. `--one` and `--bare` are the child processes' own entry points.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields

from .backends import RUNTIMES
from .contract import RUNNER_VERSION, RunnerError
from .harness import bare, child_main
from .machine import environment, pin, runtime_versions
from .measuring import Settings, measure, measure_accuracy, measure_artifact
from .predict import PredictSettings, predict_report
from .profile import profile_artifact
from .sustained import parse_duration


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="runner.pyz", description="Measure exported models (ONNX, ORT, TFLite): prints one JSON object."
    )
    p.add_argument("artifacts", nargs="*", metavar="ARTIFACT")
    p.add_argument(
        "--threads", type=int, default=None, help="intra-op / num_threads (default: pinned cores, else physical cores)"
    )
    p.add_argument("--cores", default=None, help="run on these cores only, e.g. 4-7 or 0,2 (sched_setaffinity)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runs", type=int, default=100, help="at least this many timed runs")
    p.add_argument("--min-seconds", type=float, default=1.0, help="and at least this long")
    p.add_argument("--runtime", default="auto", help=f"auto (one per engine) or {', '.join(RUNTIMES)}")
    p.add_argument("--data", default=None, metavar="FILE.npz", help="labels + images_<size> for top-1/top-5")
    p.add_argument("--no-latency", dest="latency", action="store_false", help="only score --data (no timing)")
    p.add_argument("--logits", action="store_true", help="with --data: include every image's logits")
    p.add_argument("--samples", action="store_true", help="include every raw latency sample (ms)")
    p.add_argument("--profile", action="store_true", help="per-node times from onnxruntime's profiler (raw)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per measuring process (default: none)")
    p.add_argument("--duration", type=_seconds, default=None, help="sustained: run this long (90s, 10m), per window")
    p.add_argument("--window", type=_seconds, default=None, help="sustained: seconds per window (default ~60 windows)")
    p.add_argument("--cooldown", default=None, help="between artifacts: to a temperature (50C) or for a time (30s)")
    p.add_argument("--progress", action="store_true", help="one JSON line per finished artifact on stderr")
    p.add_argument("--predict", type=int, default=None, metavar="K", help="top-K of each image in --data (images .npz)")
    p.add_argument("--env-only", action="store_true", help="print the environment and installed runtimes")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--bare", default=None, help=argparse.SUPPRESS)
    return p


def _seconds(text: str) -> float:
    try:
        return parse_duration(text)
    except RunnerError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _predict(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """`--predict K`: every artifact's top-K of the images in --data; exit 0 when anything was predicted."""
    if not args.artifacts:
        parser.error("give at least one ARTIFACT")
    try:
        s = PredictSettings(runtime=args.runtime, threads=args.threads, data=args.data, top_k=args.predict)
        report = predict_report(args.artifacts, s)
    except RunnerError as exc:
        parser.error(str(exc))
    print(json.dumps(report, indent=1), flush=True)
    done = any("top" in p for r in report["results"] for p in r.get("predictions", []))
    return 0 if done else 1


def main(argv: list | None = None) -> int:
    """The runner's command line (on a board: `python3 runner.pyz ...`); returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:  # first thing: every thread a runtime starts later, and every child, inherits the cores
        pin(args.cores)
    except RunnerError as exc:
        parser.error(str(exc))
    if args.bare:
        return child_main(lambda: bare(args.bare))
    if args.predict is not None:
        return _predict(parser, args)
    try:
        s = Settings(**{f.name: getattr(args, f.name) for f in fields(Settings)}).check()
    except RunnerError as exc:
        parser.error(str(exc))
    if args.one:
        if len(args.artifacts) != 1:
            parser.error("--one takes exactly one ARTIFACT")
        path = args.artifacts[0]
        timed = profile_artifact if s.profile else measure_artifact
        return child_main(lambda: measure_accuracy(path, s) if s.data else timed(path, s))
    if args.env_only:
        versions, errors = runtime_versions()
        print(
            json.dumps(
                {
                    "runner_version": RUNNER_VERSION,
                    "env": environment(),
                    "runtimes": versions,
                    "runtime_errors": errors,
                },
                indent=1,
            ),
            flush=True,
        )
        return 0
    if not args.artifacts:
        parser.error("give at least one ARTIFACT (or --env-only)")
    if s.data and not os.path.isfile(s.data):
        parser.error(f"data file not found: {s.data}")

    def progress(done, total, result):
        if args.progress:
            sys.stderr.write(
                json.dumps(
                    {
                        "done": done,
                        "total": total,
                        "artifact": result.get("artifact"),
                        "runtime": result.get("runtime"),
                        "error": result.get("error"),
                    }
                )
                + "\n"
            )
            sys.stderr.flush()

    report = measure(args.artifacts, s, progress)
    print(json.dumps(report, indent=1), flush=True)
    return 1 if any("error" in r for r in report["results"]) else 0
