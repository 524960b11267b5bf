"""PyTorch -> .tflite through litert-torch (no TensorFlow): fp32 and fp16 (weights stored as float16) converted from
the module; full-integer int8 quantized from the fp32 file by ai-edge-quantizer (`quantize.tflite_int8`), so one
conversion serves both.

Layout: TFLite users (Android/iOS camera code, MediaPipe) feed NHWC, so the converted module is `NHWCInput(model)`:
it takes (N, H, W, C) and permutes to the model's NCHW inside the graph; the metadata says `layout: NHWC`.
Only builtin TFLite ops come out (CONV_2D, ADD, MEAN, FULLY_CONNECTED, TRANSPOSE, (DE)QUANTIZE ...), which
tflite-runtime 2.14 runs too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ExportError, first_line, require
from ..progress import quiet

__all__ = ["NHWCInput", "LITERT_JS_TYPES", "calibration_inputs", "convert_tflite", "tflite_clients", "tflite_io"]

# The tensor types LiteRT.js (@litertjs/core 2.5.3) accepts at a model's input and output: an int8-I/O file fails to
# load there ("Element type INT8 is not supported"; issue #23, /work/shared/toolchain-notes.md "Real JS clients").
LITERT_JS_TYPES = ("float32", "int32", "uint8")


class NHWCInput(nn.Module):
    """Takes NHWC images, runs the NCHW model: the layout TFLite apps hand over."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.permute(0, 3, 1, 2))


def calibration_inputs(images: np.ndarray, ckpt) -> np.ndarray:
    """uint8 NHWC calibration images -> what the .tflite takes: normalized float32 NHWC at the input size."""
    from ..data import preprocess

    return preprocess(images, ckpt.input_size, ckpt.mean, ckpt.std).permute(0, 2, 3, 1).contiguous().numpy()


def convert_tflite(
    model: nn.Module, input_size: int, in_channels: int, precision: str, dest: Path, batch: int = 1
) -> Path:
    """Write `dest` (.tflite, fp32 or fp16) from the eval-mode NCHW `model`. int8 is made from the fp32 file:
    `sqnxt_edge.quantize.quantize_tflite`."""
    require("litert_torch", "tflite", "--format tflite")
    import litert_torch

    module = NHWCInput(model.eval()).eval()
    sample = torch.zeros(batch, input_size, input_size, in_channels)
    try:
        with quiet():  # litert-torch prints progress on stdout and warns a lot
            if precision == "fp32":
                edge = litert_torch.convert(module, (sample,))
            elif precision == "fp16":
                from litert_torch.generative.quantize.quant_recipes import full_fp16_recipe

                edge = litert_torch.convert(module, (sample,), quant_config=full_fp16_recipe())
            else:
                raise ExportError(
                    f"litert-torch converts fp32 or fp16, not {precision!r} (int8: quantize_tflite on the fp32 file)"
                )
            edge.export(str(dest))
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"TFLite conversion ({precision}) failed: {first_line(exc)}") from None
    return dest


def _quantization(details: dict) -> dict | None:
    """{"scale", "zero_point"} of an integer tensor (what an app quantizes with), None for a float one."""
    scale, zero = details.get("quantization", (0.0, 0))
    if not scale or np.dtype(details["dtype"]).kind == "f":
        return None
    return {"scale": float(scale), "zero_point": int(zero)}


def tflite_io(path: Path) -> dict:
    """The I/O facts an app needs, named as each runtime names them: the signature names (`args_0` / `output_0`)
    that LiteRT's signature runner and LiteRT.js take, the tensor names the interpreter's index API reports, dtypes,
    and the scale / zero point of an integer input or output."""
    require("ai_edge_litert", "tflite", "--format tflite")
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    signature = next(iter(interp.get_signature_list()), None)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    in_name, out_name = inp["name"], out["name"]
    if signature is not None:  # a converted model has one ("serving_default"); its names are what apps pass
        runner = interp.get_signature_runner(signature)
        (in_name, inp), *_ = runner.get_input_details().items()
        (out_name, out), *_ = runner.get_output_details().items()
    return {
        "input_name": in_name,
        "output_name": out_name,
        "signature": signature,
        "input_tensor_name": inp["name"],
        "output_tensor_name": out["name"],
        "input_shape": [int(d) for d in inp["shape"]],
        "input_dtype": np.dtype(inp["dtype"]).name,
        "output_dtype": np.dtype(out["dtype"]).name,
        "input_quantization": _quantization(inp),
        "output_quantization": _quantization(out),
    }


def tflite_clients(io: dict) -> dict:
    """Where the file loads (`loads_in`) and where it does not, with the reason (`does_not_load_in`): LiteRT
    (Android, iOS, Python) takes every type; LiteRT.js only float32/int32/uint8 tensors."""
    bad = [
        f"{side} is {io[f'{side}_dtype']}" for side in ("input", "output") if io[f"{side}_dtype"] not in LITERT_JS_TYPES
    ]
    loads_in, not_in = ["litert"], {}
    if bad:
        not_in["litert.js"] = (
            f"LiteRT.js takes {'/'.join(LITERT_JS_TYPES)} tensors only and this file's {' and '.join(bad)}: "
            "for web apps export it with float I/O (the default; not --int8-io)"
        )
    else:
        loads_in.append("litert.js")
    return {"loads_in": loads_in, "does_not_load_in": not_in}
