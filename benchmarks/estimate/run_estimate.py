#!/usr/bin/env python3
"""Does the cost model predict this machine? Calibrate as a user would, estimate every zoo variant, compare with bench.

    python benchmarks/estimate/run_estimate.py            # writes results.json, results.md, estimate_vs_measured.png

1. Export every zoo variant at 32 px (10 classes) and 227 px (1000 classes) to ONNX fp32 and int8 with
   `sqnxt_edge.pipeline.zoo_artifacts` (random weights: latency does not depend on them; int8 calibrated on a few
   digits images), cached in --work. A variant that does not build at a size (the seed variants at 227 px) is skipped.
2. `sqnxt_edge.profiling.calibrate` twice, each into a throw-away device registry, on profiles taken one round
   before each bench pass (so they meet the same load as the measurements) and those passes' p50s of the same files
   (what calibrate's own plain measurement is): on the calibration set
   (`CALIBRATION_MODELS`, what `sqnxt-edge estimate --calibrate` uses: 5 models, both sizes, fp32 and int8; fitted
   end to end) and, for comparison, on ONE model (1.0-SqNxt-23; fitted per layer).
3. `sqnxt-edge bench`'s harness measures every artifact (1 thread, batch 1, each in a fresh process) in --passes
   shuffled passes. The machine is shared: other jobs only ever add time, so the lowest pass p50 is the measurement
   least disturbed by them (scores against the median pass p50 are recorded too).
4. `sqnxt_edge.profiling.estimate` predicts every artifact: calibrated on the set, on one model, and uncalibrated.
5. The share of estimates within +-10 % and +-20 % of the measured p50, and the rank correlation (Spearman), over
   the models each calibration did NOT see (its own models are shown, not scored: they would flatter it).
6. `sqnxt_edge.profiling.profile` of every artifact once: how often the per-layer sum agrees with the end-to-end
   median within 15 %.
7. offline.py on these results: leave-one-model-out fits to the end-to-end p50s (-> offline.json, offline.md).
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


def export_all(models: list[str], sizes: list[int], work: Path) -> dict:
    """{(model, size, precision): artifact path} for every model that builds at each size (the package's own
    calibration exports: `pipeline.zoo_artifacts`), exporting what the cache lacks."""
    from sqnxt_edge.models.registry import supports
    from sqnxt_edge.pipeline import zoo_artifacts

    def say(message: str) -> None:
        print(f"== {message}", file=sys.stderr, flush=True)

    out = {}
    for size in sizes:
        out.update(zoo_artifacts([m for m in models if supports(m, size)], [size], folder=work, say=say))
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


def _files(artifacts: dict, models: list[str], args) -> list[Path]:
    """A calibration's files: `models` at every size and precision of this run."""
    keys = [(m, s, p) for m in models for s in args.sizes for p in args.precisions]
    return [artifacts[k] for k in keys if k in artifacts]


def _calibrate(files: list[Path], profiles: list, passes: dict, args, registry: Path) -> dict:
    """`profiling.calibrate` into `registry` on the profiles taken one round before each bench pass and, as the p50s
    it fits to, those bench passes' measurements of the same files (calibrate's own plain measurement is bench's);
    {what: the calibration's factors, hardware and p50} for the record."""
    from sqnxt_edge.profiling import calibrate

    p50s = [passes[str(f)][i] for i in range(args.passes) for f in files]
    fitted = calibrate(
        files * args.passes, "local", args.threads, devices_file=registry, profiles=profiles, measured_ms=p50s
    )
    return {
        f"{c.model} @{c.input_size} px {c.precision}": {
            "basis": c.basis,
            "factors": c.factors,
            "hardware": c.hardware,
            "measured_ms": c.measured_ms,
            "estimated_ms": c.ms,
        }
        for c in fitted[: len(files)]
    }


def run(args) -> dict:
    from sqnxt_edge import __version__
    from sqnxt_edge.bench import BenchConfig, run_bench
    from sqnxt_edge.models import list_models
    from sqnxt_edge.profiling import CALIBRATION_MODELS, estimate, profile
    from sqnxt_edge.profiling.estimate import local_cache_mb
    from sqnxt_edge.runner import environment

    load_before = os.getloadavg()
    calib_set = list(args.calib_set or CALIBRATION_MODELS)
    models = list(dict.fromkeys([*calib_set, args.calib_model, *(args.models or list_models())]))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    artifacts = export_all(models, args.sizes, work)
    with tempfile.TemporaryDirectory(prefix="sqnxt-estimate-") as tmp:
        set_reg, one_reg, plain_reg = (Path(tmp) / f"{n}.toml" for n in ("set", "one", "none"))
        set_files, one_files = _files(artifacts, calib_set, args), _files(artifacts, [args.calib_model], args)
        set_profiles: list = []
        one_profiles: list = []
        todo = [a for (m, s, p), a in artifacts.items() if p in args.precisions]
        passes: dict[str, list] = {}
        for i in range(args.passes):  # each pass in a new order: the load hits different artifacts each time
            # the calibrations' profiles, one round before each bench pass: they meet the same moments of load as
            # the measurements they are scored against (calibrate keeps each file's lowest p50, as the score does)
            print(
                f"== calibration profiles {i + 1}/{args.passes}: {len(set_files)} files of {', '.join(calib_set)} and "
                f"{len(one_files)} of {args.calib_model}",
                file=sys.stderr,
                flush=True,
            )
            got = profile([*set_files, *one_files], "local", args.threads, runs=args.profile_runs, progress=False)
            set_profiles += got[: len(set_files)]
            one_profiles += got[len(set_files) :]
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
        calibrations = _calibrate(set_files, set_profiles, passes, args, set_reg)
        one_model = _calibrate(one_files, one_profiles, passes, args, one_reg)
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
            est = {
                k: estimate(art, "local", threads=args.threads, devices_file=reg)
                for k, reg in (("set", set_reg), ("one", one_reg), ("none", plain_reg))
            }
            measured = p50[str(art)]
            rows.append(
                {
                    "model": model,
                    "input_size": size,
                    "precision": precision,
                    "macs": est["set"].macs,
                    "measured_ms": measured,
                    "measured_passes_ms": passes[str(art)],
                    "median_pass_ms": float(np.median(passes[str(art)])),
                    "profile": agreement.get(str(art)),
                    "estimated_ms": est["set"].ms,
                    "low_ms": est["set"].low_ms,
                    "high_ms": est["set"].high_ms,
                    "one_model_ms": est["one"].ms,
                    "uncalibrated_ms": est["none"].ms,
                    "error_pct": 100 * (est["set"].ms - measured) / measured,
                    "one_model_error_pct": 100 * (est["one"].ms - measured) / measured,
                    "uncalibrated_error_pct": 100 * (est["none"].ms - measured) / measured,
                    "in_calibration_set": model in calib_set,
                    "calibration_model": model == args.calib_model,  # the one-model calibration's
                }
            )
    (work / "last-rows.json").write_text(json.dumps({"rows": rows, "calibrations": calibrations}), encoding="utf-8")

    def by(rows: list[dict]) -> dict:
        return {
            "all": rows,
            **{f"{s} px": [r for r in rows if r["input_size"] == s] for s in args.sizes},
            **{p: [r for r in rows if r["precision"] == p] for p in args.precisions},
        }

    held_out = by([r for r in rows if not r["in_calibration_set"]])
    not_one = by([r for r in rows if not r["calibration_model"]])
    return {
        "toolkit_version": __version__,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python benchmarks/estimate/run_estimate.py " + " ".join(sys.argv[1:]),
        "threads": args.threads,
        "calibration_set": calib_set,
        "calibration_model": f"{args.calib_model} @ {' and '.join(map(str, args.sizes))} px",
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "env": environment(),
        "cache_mb": local_cache_mb(),
        "calibrations": calibrations,
        "one_model_calibrations": one_model,
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
        "scores": {k: scores(v, "estimated_ms") for k, v in held_out.items() if v},
        "range_coverage": float(np.mean([r["low_ms"] <= r["measured_ms"] <= r["high_ms"] for r in held_out["all"]])),
        "scores_vs_median_pass": {
            k: scores([{**r, "measured_ms": r["median_pass_ms"]} for r in v], "estimated_ms")
            for k, v in held_out.items()
            if v
        },
        "scores_one_model": {k: scores(v, "one_model_ms") for k, v in not_one.items() if v},
        "profile_agreement": _agreement([r["profile"] for r in rows if r["profile"]]),
        "scores_uncalibrated": {k: scores(v, "uncalibrated_ms") for k, v in not_one.items() if v},
    }


def markdown(res: dict) -> str:
    lines = [
        f"Command: `{res['command']}`  ",
        f"Recorded {res['created_utc']}, {res['threads']} thread(s), load "
        f"average before {[round(v, 2) for v in res['loadavg_before']]}, after "
        f"{[round(v, 2) for v in res['loadavg_after']]}; calibrated on the set {', '.join(res['calibration_set'])} "
        f"(end to end; scored on the other models) and, for comparison, on {res['calibration_model']} alone "
        f"(per layer; scored on every other model); measured = lowest p50 of {res['passes']} bench passes, which "
        f"differ by {res['measurement_spread_pct']:.1f}% (median max-min spread). The set-calibrated range held the "
        f"measured p50 for {100 * res['range_coverage']:.0f}% of the held-out artifacts.",
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
        "| scored set | n | within +-10% | within +-20% | median abs error | Spearman | vs median pass: +-10% | "
        "one model: n, +-10% / +-20% | uncalibrated: +-10% / +-20% |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, s in res["scores"].items():
        o, u, m = res["scores_one_model"][key], res["scores_uncalibrated"][key], res["scores_vs_median_pass"][key]
        lines.append(
            f"| {key} | {s['n']} | {100 * s['within_10pct']:.0f}% | {100 * s['within_20pct']:.0f}% | "
            f"{s['median_abs_error_pct']:.1f}% | {s['spearman']:.3f} | {100 * m['within_10pct']:.0f}% | "
            f"{o['n']}, {100 * o['within_10pct']:.0f}% / {100 * o['within_20pct']:.0f}% | "
            f"{100 * u['within_10pct']:.0f}% / {100 * u['within_20pct']:.0f}% |"
        )
    lines += [
        "",
        "| model | px | precision | MMACs | measured p50 ms (passes) | estimated ms (range) | error | one model | "
        "uncalibrated ms | error | profile: layers vs e2e |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(res["rows"], key=lambda r: (r["input_size"], r["precision"], r["measured_ms"])):
        mark = " (calibration set)" if r["in_calibration_set"] else ""
        spread = "/".join(f"{v:.2f}" for v in sorted(r["measured_passes_ms"]))
        agree = f"{r['profile']['agreement_pct']:+.1f}%" if r.get("profile") else "-"
        lines.append(
            f"| {r['model']}{mark} | {r['input_size']} | {r['precision']} | {r['macs'] / 1e6:.1f} | "
            f"{r['measured_ms']:.3f} ({spread}) | {r['estimated_ms']:.3f} ({r['low_ms']:.3f}-{r['high_ms']:.3f}) | "
            f"{r['error_pct']:+.1f}% | {r['one_model_error_pct']:+.1f}% | {r['uncalibrated_ms']:.3f} | "
            f"{r['uncalibrated_error_pct']:+.1f}% | {agree} |"
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
    ax.set_ylabel("estimated ms (cost model calibrated on the set)")
    ax.set_title(f"calibrated on {', '.join(res['calibration_set'])}; lines: +-10%, +-20%", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save_png(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=None, help="default: every zoo variant")
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--calib-set", nargs="+", default=None, help="default: profiling.CALIBRATION_MODELS")
    parser.add_argument("--calib-model", default="1.0-SqNxt-23", help="the one-model calibration, for comparison")
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
