#!/usr/bin/env python3
"""Every runtime in one run: each checkpoint exported to every format (fp32 and int8 where the format has it), then
`sqnxt-edge bench` itself (a fresh process per artifact and runtime, the runtime's own thread count) over all of
them, rounds interleaved (every artifact x runtime once per round, threads alternating), medians of the per-round
p50s; top-1 on the digits test split measured once per artifact and runtime; `bench.recommend` on the result.

    python benchmarks/runtimes/runtimes.py CKPT [CKPT ...] --rounds 3 -o benchmarks/runtimes/results.json

Run it on an otherwise idle machine: it records the load before and after and every result's own flags.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from sqnxt_edge.artifacts import atomic_write
from sqnxt_edge.bench import BenchConfig, run_bench
from sqnxt_edge.errors import SqnxtError
from sqnxt_edge.export import ExportConfig, export
from sqnxt_edge.runner import environment

FAMILIES = (["onnx", "ort"], ["tflite"], ["pte"], ["ncnn"])  # exported apart: one family's failure costs only its own


def _export(ckpt: Path, out: Path, log: list) -> list[Path]:
    """Every family, fp32 + int8 where it has int8; returns the verified artifacts."""
    from sqnxt_edge.formats import get_format

    paths: list[Path] = []
    for family in FAMILIES:
        int8 = all("int8" in get_format(f).precisions for f in family)
        manifest = out / family[0] / "manifest.json"
        if manifest.is_file():  # exported by an earlier run into the same --export-dir: reuse it
            names = json.loads(manifest.read_text())["artifacts"]  # {file name: entry}
            paths += [out / family[0] / n for n in names if n.endswith(tuple(family_suffixes(family)))]
            continue
        try:
            res = export(ckpt, ExportConfig(formats=family, int8=int8, output_dir=out / family[0]))
        except SqnxtError as exc:
            log.append({"checkpoint": ckpt.name, "formats": family, "error": str(exc)})
            print(f"export {family} failed: {exc}", file=sys.stderr)
            continue
        paths += [p for p in res.paths() if p.suffix != ".ort" or "ort" in family]
    return paths


def family_suffixes(family: list[str]) -> list[str]:
    """The file endings of a family's formats."""
    from sqnxt_edge.formats import get_format

    return [suffix for f in family for suffix in get_format(f).suffixes]


def _key(r: dict) -> tuple:
    return (r["artifact"], r.get("runtime"), r.get("threads"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--export-dir", type=Path, default=Path("/tmp/sqnxt-runtimes"))
    ap.add_argument("-o", "--output", default="benchmarks/runtimes/results.json")
    args = ap.parse_args()
    started, env = time.time(), environment()
    load_before = env["loadavg"]
    exports, artifacts = [], {}
    for ckpt in args.checkpoints:
        artifacts[ckpt] = _export(ckpt, args.export_dir / ckpt.parent.name, exports)
    samples: dict[tuple, list[float]] = {}
    rows: dict[tuple, dict] = {}
    for rnd in range(args.rounds):
        threads = args.threads if rnd % 2 == 0 else list(reversed(args.threads))
        for t in threads:
            for ckpt, paths in artifacts.items():
                data = "digits" if rnd == 0 else None  # top-1 once per artifact, runtime and thread count
                cfg = BenchConfig(runtime="auto", threads=t, runs=args.runs, data=data)
                run = run_bench([*paths, ckpt], cfg, progress=False)
                for r in run.results:
                    if r.get("error") or not r.get("latency_ms"):
                        continue
                    k = _key(r)
                    samples.setdefault(k, []).append(r["latency_ms"]["p50"])
                    row = rows.setdefault(k, {"checkpoint": str(ckpt)})
                    for f in ("artifact", "format", "runtime", "runtime_version", "precision", "threads", "size_bytes"):
                        row[f] = r.get(f)
                    if r.get("top1") is not None:
                        row["top1"] = r["top1"]
                    row.setdefault("flags", set()).update(r.get("flags") or [])
                print(f"round {rnd + 1}/{args.rounds}, {t} thread(s), {ckpt}: {len(run.results)} results", flush=True)
    table = []
    for k, row in rows.items():
        row["p50_ms_per_round"] = [round(v, 4) for v in samples[k]]
        row["p50_ms"] = round(statistics.median(samples[k]), 4)
        row["flags"] = sorted(row["flags"])
        table.append(row)
    table.sort(key=lambda r: (r["checkpoint"], r["threads"], r["p50_ms"]))
    from sqnxt_edge.bench.recommend import recommend

    ship = {}
    for ckpt in artifacts:
        for t in args.threads:
            mine = [r for r in table if r["checkpoint"] == str(ckpt) and r["threads"] == t]
            picks = recommend([{**r, "latency_ms": {"p50": r["p50_ms"]}, "device": "local"} for r in mine])
            ship[f"{ckpt.parent.name} {t} thread(s)"] = [p.to_dict() if hasattr(p, "to_dict") else p for p in picks]
    out = {
        "command": "python benchmarks/runtimes/runtimes.py " + " ".join(sys.argv[1:]),
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.time() - started),
        "machine": {k: env.get(k) for k in ("model", "arch", "cores", "features")},
        "loadavg_before": load_before,
        "loadavg_after": environment()["loadavg"],
        "rounds": args.rounds,
        "runs_per_measurement": args.runs,
        "export_failures": exports,
        "recommended": ship,
        "rows": table,
    }
    atomic_write(args.output, lambda p: p.write_text(json.dumps(out, indent=1, default=str) + "\n"))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
