"""The ncnn family of an export: an fp32 `.ncnn.param` graph with its `.ncnn.bin` weights beside it, converted by
pnnx, verified through ncnn with its fp16/bf16 options off (the runner's ncnn backend), promoted as one artifact.

pnnx (Tencent's PyTorch -> ncnn converter) is a C++ program that the `pnnx` wheel ships: it reads a TorchScript
trace and writes, besides the ncnn pair, its own `.pnnx.param/.bin`, a `.pnnx.onnx` and two Python scripts into its
working folder. It runs in a temporary folder and only the ncnn pair is kept. Weights are written in fp32
(`fp16=0`; pnnx's default stores them as fp16).

int8 and fp16: ncnn's int8 route needs its C++ tools `ncnn2table` (calibration) and `ncnn2int8`, which neither the
`ncnn` nor the `pnnx` wheel ships (the binding's `quantize_to_int8` quantizes one Mat, not a model), so this family
writes fp32 only and says so in one line when more was asked for.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from ..artifacts import atomic_write, write_sidecar
from ..errors import ExportError, first_line, require
from ..formats import FORMATS
from ..progress import quiet
from ..runner import companions
from .context import ExportRun

__all__ = ["NOT_WRITTEN", "convert_ncnn", "ncnn_family"]

INPUT, OUTPUT = "in0", "out0"  # the blob names pnnx gives the graph's input and output
# why a precision the export asks for is not written as ncnn (one line each)
NOT_WRITTEN = {
    "int8": "ncnn's int8 tools (ncnn2table, ncnn2int8) are C++ programs the pip wheels do not ship",
    "fp16": "ncnn itself computes an fp32 file in fp16 where the CPU allows; only the fp32 file is exported",
}
_TIMEOUT = 900.0  # seconds for one pnnx conversion


def convert_ncnn(model: torch.nn.Module, input_size: int, in_channels: int, dest: Path) -> Path:
    """Write `dest` (`.ncnn.param`) and its `.ncnn.bin` from the eval-mode NCHW `model` with fp32 weights, each
    atomically (the .bin first). pnnx runs in a temporary folder: nothing else it writes is kept."""
    pnnx = require("pnnx", "ncnn", "--format ncnn")
    shape = f"[1,{in_channels},{input_size},{input_size}]f32"
    with tempfile.TemporaryDirectory(prefix="sqnxt-pnnx-") as tmp:
        folder = Path(tmp)
        sample = torch.zeros(1, in_channels, input_size, input_size)
        try:
            with quiet(), torch.no_grad():
                torch.jit.trace(model.eval(), sample).save(str(folder / "model.pt"))
        except Exception as exc:
            raise ExportError(f"ncnn conversion: TorchScript trace failed: {first_line(exc)}") from None
        argv = [pnnx.EXEC_PATH, "model.pt", f"inputshape={shape}", "device=cpu", "fp16=0"]
        argv += ["ncnnparam=model.ncnn.param", "ncnnbin=model.ncnn.bin"]
        try:
            res = subprocess.run(
                argv, cwd=folder, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=_TIMEOUT
            )
        except subprocess.TimeoutExpired:
            raise ExportError(f"ncnn conversion: pnnx did not finish in {_TIMEOUT:.0f} s") from None
        except OSError as exc:
            raise ExportError(f"ncnn conversion: cannot run pnnx ({pnnx.EXEC_PATH}): {first_line(exc)}") from None
        param, weights = folder / "model.ncnn.param", folder / "model.ncnn.bin"
        if res.returncode != 0 or not (param.is_file() and weights.is_file()):
            lines = [ln.strip() for ln in (res.stderr + res.stdout).splitlines() if ln.strip()]
            why = lines[-1][:300] if lines else "no output"
            raise ExportError(f"ncnn conversion: pnnx failed (exit {res.returncode}): {why}")
        atomic_write(companions(str(dest))[0], lambda t: shutil.copyfile(weights, t))
        atomic_write(dest, lambda t: shutil.copyfile(param, t))
    return dest


def _one(run: ExportRun, precision: str) -> Path:
    ck = run.ckpt
    path = run.staged("ncnn", precision)
    run.say(f"converting to ncnn {precision} with pnnx")
    convert_ncnn(run.model, ck.input_size, ck.in_channels, path)
    weights = Path(companions(str(path))[0]).name
    meta = run.metadata(
        precision,
        "NCHW",
        INPUT,
        OUTPUT,
        input_dtype="float32",
        weights=weights,
        runtime_note="one image (C, H, W) per Extractor; for fp32 results set net.opt.use_fp16_* and use_bf16_* "
        "to False before load_param",
    )
    write_sidecar(path, meta)
    report = run.check(path, precision)
    run.promote(
        path,
        "ncnn",
        precision,
        parity=report,
        input={
            "name": INPUT,
            "shape": [1, ck.in_channels, ck.input_size, ck.input_size],
            "layout": "NCHW",
            "dtype": "float32",
        },
        output={"name": OUTPUT},
        dynamic_batch=True,  # ncnn runs one image at a time: the runner feeds a batch image by image
        weights=weights,
    )
    return run.out / path.name


def ncnn_family(run: ExportRun) -> None:
    """Write the ncnn artifacts this toolkit can make (fp32); one line for each asked precision it cannot."""
    require("ncnn", "ncnn", "--format ncnn")  # the runtime the file is verified with
    can = FORMATS["ncnn"].precisions
    for precision in run.config.precisions:
        if precision in can:
            _one(run, precision)
        else:
            run.warn(f"ncnn {precision} not written: {NOT_WRITTEN.get(precision, 'not supported')}")
