#!/usr/bin/env python3
"""Does the cost model predict this machine? Calibrate on one model, estimate every zoo variant, compare with bench.

    python benchmarks/estimate/run_estimate.py            # writes results.json, results.md, estimate_vs_measured.png

1. Export every zoo variant at 32 px (10 classes) and 227 px (1000 classes) to ONNX fp32 and int8 (random weights:
   latency does not depend on them; int8 calibrated on a few digits images). Exports are cached in --work.
2. `sqnxt_edge.profiling.calibrate` on ONE model (default 1.0-SqNxt-23, its 32 and 227 px exports, fp32 and int8):
   profiles on this machine, the factors fitted to them, stored in a throw-away device registry.
3. `sqnxt-edge bench`'s harness measures every artifact (1 thread, batch 1, each in a fresh process) in --passes
   shuffled passes. The machine is shared: other jobs only ever add time, so the lowest pass p50 is the measurement
   least disturbed by them (scores against the median pass p50 are recorded too).
4. `sqnxt_edge.profiling.estimate` predicts every artifact, calibrated and uncalibrated (profile only).
5. The share of estimates within +-10 % and +-20 % of the measured p50, and the rank correlation (Spearman).
6. `sqnxt_edge.profiling.profile` of every artifact once: how often the per-layer sum agrees with the end-to-end
   median within 15 %.
7. offline.py on these results: leave-one-model-out fits to the end-to-end p50s (-> offline.json, offline.md).

The calibration model itself is reported but left out of the scores (it would flatter them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SIZES = {32: 10, 227: 1000}


def export_all(models: list[str], sizes: list[int], work: Path, calib_size: int) -> dict:
    """{(model, size, precision): artifact path}, exporting what the cache lacks."""
    import torch

    from sqnxt_edge.checkpoint import Checkpoint, save_checkpoint
    from sqnxt_edge.export import ExportConfig, export
    from sqnxt_edge.models import create_model

    out = {}
    for size in sizes:
        for name in models:
            folder = work / f"{name}-{size}"
            paths = {p: folder / f"{name}.{p}.onnx" for p in ("fp32", "int8")}
            if not all(p.is_file() for p in paths.values()):
                print(f"== export {name} @ {size} px", file=sys.stderr, flush=True)
                torch.manual_seed(0)
                model = create_model(name, SIZES[size], size).eval()
                ckpt = Checkpoint(
                    model_name=name,
                    num_classes=SIZES[size],
                    input_size=size,
                    stem=model.stem_kind,
                    classes=[str(i) for i in range(SIZES[size])],
                    state_dict=model.state_dict(),
                )
                pt = save_checkpoint(ckpt, work / f"{name}-{size}.pt")
                export(
                    pt,
                    ExportConfig(
                        formats=["onnx"],
                        int8=True,
                        calib_data="digits",
                        calib_size=calib_size,
                        verify=False,
                        output_dir=folder,
                    ),
                )
            out.update({(name, size, p): path for p, path in paths.items()})
    return out


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def scores(rows: list[dict], estimated: str) -> dict:
    """Agreement of the `estimated` column with the measured p50: share within +-10 % / +-20 %, rank correlation."""
    errs = np.array([100 * (r[estimated] - r["measured_ms"]) / r["measured_ms"] for r in rows])
    return {
        "n": len(rows),
        "within_10pct": float(np.mean(np.abs(errs) <= 10)),
        "within_20pct": float(np.mean(np.abs(errs) <= 20)),
        "median_abs_error_pct": float(np.median(np.abs(errs))),
        "spearman": spearman([r["measured_ms"] for r in rows], [r[estimated] for r in rows]),
    }


def _agreement(profiles: list[dict]) -> dict | None:
    if not profiles:
        return None
    a = np.abs([p["agreement_pct"] for p in profiles])
    return {
        "n": len(profiles),
        "within_15pct": float(np.mean(a <= 15)),
        "median_abs_pct": float(np.median(a)),
        "p90_abs_pct": float(np.percentile(a, 90)),
    }


def run(args) -> dict:
    from sqnxt_edge import __version__
    from sqnxt_edge.bench import BenchConfig, run_bench
    from sqnxt_edge.models import list_models
    from sqnxt_edge.profiling import calibrate, estimate, profile
    from sqnxt_edge.profiling.estimate import local_cache_mb
    from sqnxt_edge.runner import environment

    load_before = os.getloadavg()
    models = args.models or list_models()
    if args.calib_model not in models:
        models = [args.calib_model, *models]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    artifacts = export_all(models, args.sizes, work, args.calib_images)
    with tempfile.TemporaryDirectory(prefix="sqnxt-estimate-") as tmp:
        calibrated_reg, plain_reg = Path(tmp) / "calibrated.toml", Path(tmp) / "none.toml"
        # the one model, profiled --calib-repeats times (each a fresh process): a shared CPU's load changes by the
        # second, and one unlucky profile would shift every estimate
        calib = [artifacts[(args.calib_model, s, p)] for s in args.calib_sizes for p in args.precisions]
        calib = calib * args.calib_repeats
        print(f"== calibrate on {', '.join(str(a.relative_to(work)) for a in calib)}", file=sys.stderr, flush=True)
        fitted = calibrate(
            calib, "local", args.threads, runs=args.profile_runs, devices_file=calibrated_reg, progress=False
        )
        calibrations = {
            f"{c.model} @{c.input_size} px {c.precision}": {
                "basis": c.basis,
                "factors": c.factors,
                "hardware": c.hardware,
                "measured_ms": c.measured_ms,
                "estimated_ms": c.ms,
            }
            for c in fitted
        }
        todo = [a for (m, s, p), a in artifacts.items() if p in args.precisions]
        passes: dict[str, list] = {}
        for i in range(args.passes):  # each pass in a new order: the load hits different artifacts each time
            order = [todo[j] for j in np.random.default_rng(i).permutation(len(todo))]
            print(
                f"== bench pass {i + 1}/{args.passes}: {len(todo)} artifacts, {args.threads} thread(s), load "
                f"{os.getloadavg()[0]:.1f}",
                file=sys.stderr,
                flush=True,
            )
            bench = run_bench(
                order,
                BenchConfig(
                    threads=args.threads,
                    runtime="onnxruntime",
                    runs=args.runs,
                    warmup=args.warmup,
                    min_seconds=args.min_seconds,
                ),
                progress=False,
            )
            for r in bench.results:
                passes.setdefault(str(r["artifact"]), []).append(r["latency_ms"]["p50"])
        p50 = {a: float(min(v)) for a, v in passes.items()}
        agreement = {}
        if args.agreement:
            print(f"== profile {len(todo)} artifacts once, load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
            for art, r in zip(todo, profile(todo, "local", args.threads, runs=args.profile_runs, progress=False)):
                agreement[str(art)] = {
                    "sum_ms": r.sum_ms,
                    "e2e_ms": r.e2e_ms,
                    "agreement_pct": r.agreement_pct,
                    "stem_share": r.stem_share,
                    "loadavg": r.env.get("loadavg"),
                }
        rows = []
        for (model, size, precision), art in artifacts.items():
            if precision not in args.precisions or str(art) not in p50:
                continue
            cal = estimate(art, "local", threads=args.threads, devices_file=calibrated_reg)
            ref = estimate(art, "local", threads=args.threads, devices_file=plain_reg)
            measured = p50[str(art)]
            rows.append(
                {
                    "model": model,
                    "input_size": size,
                    "precision": precision,
                    "macs": cal.macs,
                    "measured_ms": measured,
                    "measured_passes_ms": passes[str(art)],
                    "median_pass_ms": float(np.median(passes[str(art)])),
                    "profile": agreement.get(str(art)),
                    "estimated_ms": cal.ms,
                    "uncalibrated_ms": ref.ms,
                    "error_pct": 100 * (cal.ms - measured) / measured,
                    "uncalibrated_error_pct": 100 * (ref.ms - measured) / measured,
                    "calibration_model": model == args.calib_model and size in args.calib_sizes,
                }
            )
    (work / "last-rows.json").write_text(json.dumps({"rows": rows, "calibrations": calibrations}), encoding="utf-8")
    scored = [r for r in rows if not r["calibration_model"]]
    by = {
        "all": scored,
        **{f"{s} px": [r for r in scored if r["input_size"] == s] for s in args.sizes},
        **{p: [r for r in scored if r["precision"] == p] for p in args.precisions},
    }
    return {
        "toolkit_version": __version__,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python benchmarks/estimate/run_estimate.py " + " ".join(sys.argv[1:]),
        "threads": args.threads,
        "calibration_model": f"{args.calib_model} @ {' and '.join(map(str, args.calib_sizes))} px",
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "env": environment(),
        "cache_mb": local_cache_mb(),
        "calibrations": calibrations,
        "rows": rows,
        "passes": args.passes,
        # how much the measurement itself moves between passes: the floor under any estimate's error
        "measurement_spread_pct": float(
            np.median(
                [
                    100 * (max(r["measured_passes_ms"]) - min(r["measured_passes_ms"])) / r["median_pass_ms"]
                    for r in rows
                ]
            )
        ),
        "scores": {k: scores(v, "estimated_ms") for k, v in by.items() if v},
        "scores_vs_median_pass": {
            k: scores([{**r, "measured_ms": r["median_pass_ms"]} for r in v], "estimated_ms")
            for k, v in by.items()
            if v
        },
        "profile_agreement": _agreement([r["profile"] for r in rows if r["profile"]]),
        "scores_uncalibrated": {k: scores(v, "uncalibrated_ms") for k, v in by.items() if v},
    }


def markdown(res: dict) -> str:
    lines = [
        f"Command: `{res['command']}`  ",
        f"Recorded {res['created_utc']}, {res['threads']} thread(s), load "
        f"average before {[round(v, 2) for v in res['loadavg_before']]}, after "
        f"{[round(v, 2) for v in res['loadavg_after']]}; calibrated on {res['calibration_model']}; measured = "
        f"lowest p50 of {res['passes']} bench passes, which differ by {res['measurement_spread_pct']:.1f}% "
        "(median max-min spread).",
        "",
    ]
    agree = res.get("profile_agreement")
    if agree:
        lines += [
            f"Profiles: the per-layer sum is within 15% of the end-to-end median for "
            f"{100 * agree['within_15pct']:.0f}% of {agree['n']} artifacts (median |difference| "
            f"{agree['median_abs_pct']:.1f}%, 90th percentile {agree['p90_abs_pct']:.1f}%).",
            "",
        ]
    lines += [
        "| scored set | n | within +-10% | within +-20% | median abs error | Spearman | vs median pass: +-20% | "
        "uncalibrated: +-20% / Spearman |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, s in res["scores"].items():
        u, m = res["scores_uncalibrated"][key], res["scores_vs_median_pass"][key]
        lines.append(
            f"| {key} | {s['n']} | {100 * s['within_10pct']:.0f}% | {100 * s['within_20pct']:.0f}% | "
            f"{s['median_abs_error_pct']:.1f}% | {s['spearman']:.3f} | {100 * m['within_20pct']:.0f}% | "
            f"{100 * u['within_20pct']:.0f}% / {u['spearman']:.3f} |"
        )
    lines += [
        "",
        "| model | px | precision | MMACs | measured p50 ms (passes) | estimated ms | error | uncalibrated ms | "
        "error | profile: layers vs e2e |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(res["rows"], key=lambda r: (r["input_size"], r["precision"], r["measured_ms"])):
        mark = " (calibration)" if r["calibration_model"] else ""
        spread = "/".join(f"{v:.2f}" for v in sorted(r["measured_passes_ms"]))
        agree = f"{r['profile']['agreement_pct']:+.1f}%" if r.get("profile") else "-"
        lines.append(
            f"| {r['model']}{mark} | {r['input_size']} | {r['precision']} | {r['macs'] / 1e6:.1f} | "
            f"{r['measured_ms']:.3f} ({spread}) | {r['estimated_ms']:.3f} | {r['error_pct']:+.1f}% | "
            f"{r['uncalibrated_ms']:.3f} | {r['uncalibrated_error_pct']:+.1f}% | {agree} |"
        )
    return "\n".join(lines) + "\n"


def plot(res: dict, path: Path) -> None:
    from sqnxt_edge.plots import new_figure, save_png

    fig = new_figure(figsize=(6.5, 6), layout="constrained")
    ax = fig.subplots()
    for (size, precision), marker in zip([(s, p) for s in SIZES for p in ("fp32", "int8")], "osov"):
        pts = [r for r in res["rows"] if r["input_size"] == size and r["precision"] == precision]
        if pts:
            ax.scatter(
                [r["measured_ms"] for r in pts],
                [r["estimated_ms"] for r in pts],
                marker=marker,
                label=f"{size} px {precision}",
                alpha=0.8,
            )
    lo = min(min(r["measured_ms"], r["estimated_ms"]) for r in res["rows"]) * 0.8
    hi = max(max(r["measured_ms"], r["estimated_ms"]) for r in res["rows"]) * 1.2
    ax.plot([lo, hi], [lo, hi], "k-", lw=1)
    for f, style in ((1.1, ":"), (1.2, "--")):
        ax.plot([lo, hi], [lo * f, hi * f], "k" + style, lw=0.8)
        ax.plot([lo, hi], [lo / f, hi / f], "k" + style, lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"measured p50 ms (sqnxt-edge bench, lowest of {res['passes']} passes)")
    ax.set_ylabel("estimated ms (calibrated cost model)")
    ax.set_title(f"calibrated on {res['calibration_model']}; lines: +-10%, +-20%", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save_png(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=None, help="default: every zoo variant")
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--calib-model", default="1.0-SqNxt-23")
    parser.add_argument("--calib-sizes", nargs="+", type=int, default=[32, 227])
    parser.add_argument("--calib-repeats", type=int, default=3, help="profiles of the calibration model")
    parser.add_argument("--passes", type=int, default=4, help="bench passes; the lowest p50 is compared")
    parser.add_argument(
        "--no-agreement",
        dest="agreement",
        action="store_false",
        help="skip profiling every artifact (the per-layer sum vs end-to-end check)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--min-seconds", type=float, default=0.5)
    parser.add_argument("--profile-runs", type=int, default=50)
    parser.add_argument("--calib-images", type=int, default=16, help="int8 calibration images (digits)")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "sqnxt-estimate-exports"))
    parser.add_argument("-o", "--output", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    res = run(args)
    args.output.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    (args.output.parent / "results.md").write_text(markdown(res), encoding="utf-8")
    plot(res, args.output.parent / "estimate_vs_measured.png")
    print(markdown(res))
    import offline  # the same rows, scored leave-one-model-out (no timing)

    lomo = offline.evaluate(res)
    (args.output.parent / "offline.json").write_text(json.dumps(lomo, indent=2) + "\n", encoding="utf-8")
    (args.output.parent / "offline.md").write_text(offline.markdown(lomo), encoding="utf-8")
    print(offline.markdown(lomo))


if __name__ == "__main__":
    main()
