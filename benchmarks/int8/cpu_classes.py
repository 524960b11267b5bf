#!/usr/bin/env python3
"""Is an int8 file right on the CPUs it will meet? Top-1 agreement with fp32 PyTorch of int8 configurations of one
checkpoint, run by the same runner on every CPU class: this machine (natively), an AVX2-only x86 (this machine's own
Python and onnxruntime under `qemu-x86_64-static -cpu Haswell-v4`), and the emulated Raspberry Pi 4 (Cortex-A72,
no dotprod) and Pi 5 (Cortex-A76, dotprod). Accuracy only: emulated timings mean nothing and are not recorded.

    python benchmarks/int8/cpu_classes.py runs/x/best.pt --images 120 -o benchmarks/int8/cpu_classes.json

Needs qemu-user-static (and debootstrap for the Pis: the emulated boards are built once into the cache folder).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sqnxt_edge import runner
from sqnxt_edge.artifacts import atomic_write
from sqnxt_edge.checkpoint import load_checkpoint
from sqnxt_edge.data import load_dataset, resize_uint8
from sqnxt_edge.export import ExportConfig, export
from sqnxt_edge.export.verify import reference_logits
from sqnxt_edge.quantize import Int8Config, calibration_images, class_of, quantize_onnx, safe_on
from sqnxt_edge.runner.ship import runner_pyz

CONFIGS = {
    "QDQ U8S8 per-channel (full range)": Int8Config("uint8", "int8", "qdq", per_channel=True),
    "QDQ S8S8 per-channel": Int8Config("int8", "int8", "qdq", per_channel=True),
    "QDQ U8U8 per-channel": Int8Config("uint8", "uint8", "qdq", per_channel=True),
}
X86_AVX2 = ["qemu-x86_64-static", "-cpu", "Haswell-v4"]


def artifacts(ckpt_path: str, folder: Path) -> dict[str, Path]:
    """The default export (fp32 + portable int8, ONNX and TFLite when litert-torch is here), plus other configs."""
    ckpt = load_checkpoint(ckpt_path)
    formats = ["onnx", "tflite"] if runner.installed("litert") else ["onnx"]
    result = export(ckpt, ExportConfig(formats=formats, int8=True, output_dir=folder / "export"))
    files = {
        f"{a['format']} {a['precision']}"
        + (" (default, portable)" if a["precision"] == "int8" else ""): result.output_dir / a["path"]
        for a in result.artifacts
    }
    fp32 = result.output_dir / f"{ckpt.model_name}.fp32.onnx"
    calib = calibration_images(ckpt, None, 300, 0)
    for label, cfg in CONFIGS.items():
        files[f"onnx int8 {label}"] = quantize_onnx(fp32, folder / f"{cfg.label.replace(' ', '_')}.onnx", calib, cfg)
    return files


def run_here(launcher: list[str], paths: list[Path], data: Path) -> dict:
    """The runner's logits for every artifact, its child processes started through `launcher` too."""
    env = {**os.environ, runner.LAUNCHER_VAR: " ".join(launcher)}
    cmd = [
        *launcher,
        sys.executable,
        str(runner_pyz()),
        "--no-latency",
        "--logits",
        "--threads",
        "1",
        "--data",
        str(data),
        *map(str, paths),
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=7200)
    return json.loads(out.stdout)


def run_board(profile: str, paths: list[Path], data: Path, devices: Path) -> dict:
    from sqnxt_edge.devices import emulate_device, run_runner

    device, _ = emulate_device(f"bench-{profile}", profile, devices_file=devices, force=True, say=print)
    return run_runner(device, paths, runner.Settings(latency=False, logits=True, data=str(data), threads=1), data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--images", type=int, default=120, help="digits test images per run (emulation: ~1 s each)")
    ap.add_argument("--classes", nargs="+", default=["native", "x86-avx2", "arm-neon", "arm-dotprod"])
    ap.add_argument("-o", "--output", default="benchmarks/int8/cpu_classes.json")
    args = ap.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="sqnxt-cpu-classes-") as tmp:
        folder = Path(tmp)
        files = artifacts(args.checkpoint, folder)
        ckpt = load_checkpoint(args.checkpoint)
        test = load_dataset(ckpt.dataset, "test", channels=ckpt.in_channels)
        images, labels = resize_uint8(test.images[: args.images], ckpt.input_size), test.labels[: args.images]
        data = folder / "data.npz"
        np.savez(data, labels=labels, **{f"images_{ckpt.input_size}": images})
        ref = reference_logits(ckpt.build_model().eval(), images, ckpt.mean, ckpt.std).argmax(1)
        paths = list(files.values())
        runs = {}
        for name in args.classes:
            t0 = time.time()
            if name == "native":
                report = run_here([], paths, data)
            elif name == "x86-avx2":
                report = run_here(X86_AVX2, paths, data)
            else:
                report = run_board({"arm-neon": "rpi4", "arm-dotprod": "rpi5"}[name], paths, data, folder / "d.toml")
            runs[name] = {"seconds": round(time.time() - t0, 1), "env": report.get("env", {}), "results": {}}
            for label, path in files.items():
                r = next(x for x in report["results"] if Path(x["artifact"]).name == path.name)
                if "error" in r:
                    runs[name]["results"][label] = {"error": r["error"]}
                    continue
                top = np.asarray(r["logits"]).argmax(1)
                runs[name]["results"][label] = {
                    "agreement_pct": round(float(np.mean(top == ref)) * 100, 2),
                    "top1_pct": round(float(np.mean(top == labels)) * 100, 2),
                    "runtime": r.get("runtime"),
                }
            print(name, json.dumps(runs[name]["results"]), flush=True)
    here = runner.environment()
    out = {
        "command": "python benchmarks/int8/cpu_classes.py " + " ".join(sys.argv[1:]),
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.time() - started),
        "machine": {k: here.get(k) for k in ("model", "arch", "features", "loadavg")},
        "native_class": class_of(here).name,
        "images": args.images,
        "pytorch_top1_pct": round(float(np.mean(ref == labels)) * 100, 2),
        "safe_on": {label: list(safe_on(cfg)) for label, cfg in CONFIGS.items()},
        "classes": runs,
        "qemu": shutil.which("qemu-x86_64-static"),
    }
    atomic_write(args.output, lambda p: p.write_text(json.dumps(out, indent=1) + "\n"))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
