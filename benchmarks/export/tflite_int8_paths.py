"""Two ways to an int8 .tflite, compared: litert-torch's PT2E path (torch.export -> prepare_pt2e -> calibrate ->
convert_pt2e -> a second litert-torch conversion; what sqnxt-edge used before) and ai-edge-quantizer on the fp32
.tflite (what it uses now). Time to make each (one thread, after the shared fp32 conversion), LiteRT latency of both
files (1 thread, batch 1, interleaved rounds, medians) and, with --checkpoint, top-1 of both on digits' test split.

    python benchmarks/export/tflite_int8_paths.py -o benchmarks/export/tflite_int8_paths.json
    python benchmarks/export/tflite_int8_paths.py --checkpoint runs/digits/best.pt -o /tmp/paths_digits.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def pt2e_int8(module, sample, batches, dest: Path) -> None:
    import litert_torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    dynamic = ({0: torch.export.Dim("batch", max=4096)},)
    graph = torch.export.export(module, (torch.cat([sample, sample]),), dynamic_shapes=dynamic).module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for b in batches:
            prepared(b)
    program = convert_pt2e(prepared, fold_quantize=False)
    litert_torch.convert(program, (sample,), quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(dest))


def latency_ms(paths: dict[str, Path], rounds: int = 15, per_round: int = 10) -> dict[str, float]:
    from ai_edge_litert.interpreter import Interpreter

    its = {}
    for name, p in paths.items():
        it = Interpreter(model_path=str(p), num_threads=1)
        it.allocate_tensors()
        d = it.get_input_details()[0]
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        for _ in range(5):
            it.invoke()
        its[name] = (it, [])
    for _ in range(rounds):
        for it, times in its.values():
            t = time.perf_counter()
            for _ in range(per_round):
                it.invoke()
            times.append((time.perf_counter() - t) / per_round * 1e3)
    return {name: round(statistics.median(t), 3) for name, (_, t) in its.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="1.0-SqNxt-23")
    p.add_argument("--input-size", type=int, default=227)
    p.add_argument("--checkpoint", type=Path, help="a trained digits checkpoint: also compare top-1")
    p.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name("tflite_int8_paths.json"))
    args = p.parse_args()
    torch.set_num_threads(1)
    from sqnxt_edge.artifacts import atomic_write, write_sidecar
    from sqnxt_edge.checkpoint import Checkpoint, load_checkpoint
    from sqnxt_edge.export.tflite_export import NHWCInput, calibration_inputs, convert_tflite
    from sqnxt_edge.models import create_model
    from sqnxt_edge.quantize import calibration_images, quantize_tflite
    from sqnxt_edge.runner import environment

    load_before = [round(v, 2) for v in os.getloadavg()]
    if args.checkpoint:
        ckpt = load_checkpoint(args.checkpoint)
        model = ckpt.build_model().eval()
    else:
        torch.manual_seed(0)
        model = create_model(args.model, 1000, args.input_size).train()
        with torch.no_grad():  # BN statistics from random batches, as benchmarks/export/time_export.py
            for _ in range(2):
                model(torch.randn(8, 3, args.input_size, args.input_size))
        model.eval()
        ckpt = Checkpoint(args.model, 1000, args.input_size, stem=model.stem_kind, state_dict=model.state_dict())
    x = calibration_inputs(calibration_images(ckpt, "digits", 300, 0), ckpt)
    result = {
        "command": " ".join(["python", *sys.argv]),
        "model": ckpt.model_name,
        "input_size": ckpt.input_size,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg_before": load_before,
    }
    with tempfile.TemporaryDirectory() as tmp:
        files = {k: Path(tmp) / f"{k}.tflite" for k in ("fp32", "pt2e", "ai-edge-quantizer")}
        seconds = {}
        t = time.perf_counter()
        with torch.no_grad():
            convert_tflite(model, ckpt.input_size, ckpt.in_channels, "fp32", files["fp32"])
        seconds["fp32 conversion"] = time.perf_counter() - t
        t = time.perf_counter()
        module = NHWCInput(model).eval()
        sample = torch.zeros(1, ckpt.input_size, ckpt.input_size, ckpt.in_channels)
        pt2e_int8(module, sample, [torch.from_numpy(x[i : i + 32]) for i in range(0, len(x), 32)], files["pt2e"])
        seconds["pt2e int8 (export + calibrate + convert)"] = time.perf_counter() - t
        t = time.perf_counter()
        quantize_tflite(files["fp32"], files["ai-edge-quantizer"], x, threads=1)
        seconds["ai-edge-quantizer int8 (from the fp32 file)"] = time.perf_counter() - t
        result["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
        result["latency_ms_1thread"] = latency_ms(files)
        if args.checkpoint:
            from sqnxt_edge.data import load_dataset
            from sqnxt_edge.quantize.accuracy import predict_top1

            test = load_dataset("digits", "test", None, channels=ckpt.in_channels)
            for k, f in files.items():
                write_sidecar(
                    f,
                    {
                        "mean": list(ckpt.mean),
                        "std": list(ckpt.std),
                        "input_size": ckpt.input_size,
                        "layout": "NHWC",
                        "precision": "fp32" if k == "fp32" else "int8",
                    },
                )
            result["top1_digits_test"] = {
                k: round(float(np.mean(predict_top1(f, test.images) == test.labels)) * 100, 2) for k, f in files.items()
            }
        result["bytes"] = {k: f.stat().st_size for k, f in files.items()}
    result["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    result["env"] = environment()
    atomic_write(args.output, lambda t: t.write_text(json.dumps(result, indent=2) + "\n"))
    print(
        json.dumps(
            {k: result[k] for k in ("seconds", "latency_ms_1thread", "bytes", "top1_digits_test") if k in result},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
