"""The ExecuTorch family of an export: fp32 and int8 `.pte` programs (XNNPACK delegate, NCHW float32 input), each
staged, verified through the runner's ExecuTorch backend, gated like every int8 artifact, and promoted.

int8 is quantized from the PyTorch module (PT2E), not from the fp32 file: a `.pte` is a lowered program that no
quantizer reads back. It is calibrated on the export's one calibration sample, the images every int8 artifact uses.
"""

from __future__ import annotations

from pathlib import Path

from ..artifacts import write_sidecar
from ..quantize.targets import CPU_CLASSES, PORTABLE
from .context import ExportRun
from .pte_export import CALIB_BATCH, LABEL, SCHEME, convert_pte, quantize_pte

__all__ = ["pte_family", "pte_precisions", "INPUT_NAME", "OUTPUT_NAME"]

# A .pte names no tensors: its method's inputs and outputs are positional. These say which ones the metadata means.
INPUT_NAME, OUTPUT_NAME = "forward.input0", "forward.output0"


def pte_precisions(config) -> list[str]:
    """The precisions the export writes as .pte, fp32 first: fp32 and int8 (XNNPACK's fp16 path is not exported)."""
    return [p for p in config.precisions if p != "fp16"]


def _make(run: ExportRun, precision: str, path: Path) -> dict:
    c, ck = run.config, run.ckpt
    batch = c.fixed_batch or 1
    if precision == "int8":
        from ..data import preprocess

        calib = preprocess(run.calibration(), ck.input_size, ck.mean, ck.std)
        run.say(
            f"quantizing ExecuTorch to int8 (PT2E, XNNPACKQuantizer) on {len(calib)} calibration images, "
            "then lowering to XNNPACK (slow: tens of seconds)"
        )
        return quantize_pte(run.model, calib, path, batch=batch)
    run.say("lowering to ExecuTorch with the XNNPACK delegate (slow: tens of seconds)")
    return convert_pte(run.model, ck.input_size, ck.in_channels, path, batch=batch)


def _one(run: ExportRun, precision: str, fp32_path: Path | None) -> Path:
    c, ck = run.config, run.ckpt
    path = run.staged("pte", precision)
    delegated = _make(run, precision, path)
    if delegated["other_ops"]:
        run.warn(
            f"warning: {path.name}: ops outside XNNPACK run on ExecuTorch's portable kernels: "
            + ", ".join(f"{op} x{n}" for op, n in delegated["other_ops"].items())
        )
    meta = run.metadata(precision, "NCHW", INPUT_NAME, OUTPUT_NAME, input_dtype="float32", method="forward")
    if precision == "int8":  # XNNPACK's int8 kernels accumulate in 32 bits on every CPU class (as for TFLite)
        meta.update(int8_target=PORTABLE, safe_on=list(CPU_CLASSES))
    write_sidecar(path, meta)
    report = run.check(path, precision)
    accuracy = run.accuracy_gate(fp32_path, path) if precision == "int8" and fp32_path else None
    batch = c.fixed_batch or 1
    run.promote(
        path,
        "pte",
        precision,
        parity=report,
        accuracy=accuracy,
        input={
            "name": INPUT_NAME,
            "shape": [batch, ck.in_channels, ck.input_size, ck.input_size],
            "layout": "NCHW",
            "dtype": "float32",
        },
        output={"name": OUTPUT_NAME, "shape": [batch, ck.num_classes]},
        dynamic_batch=False,
        delegation=delegated,
        quantization={
            "label": LABEL,
            "scheme": SCHEME,
            "io": "float32",
            "calibration_images": c.calib_size,
            "calibration_batch": CALIB_BATCH,
            "target": PORTABLE,
            "safe_on": list(CPU_CLASSES),
        }
        if precision == "int8"
        else None,
    )
    return run.out / path.name


def pte_family(run: ExportRun) -> None:
    """Write the ExecuTorch artifacts: fp32, then int8 (gated against the fp32 file's accuracy)."""
    if run.config.fp16:
        run.warn("warning: --format pte writes fp32 and int8 only (no fp16 .pte)")
    fp32 = None
    for precision in pte_precisions(run.config):
        path = _one(run, precision, fp32)
        fp32 = fp32 or path
