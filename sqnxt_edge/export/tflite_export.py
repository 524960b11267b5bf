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

__all__ = ["NHWCInput", "calibration_inputs", "convert_tflite", "tflite_io_names"]


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


def tflite_io_names(path: Path) -> tuple[str, str, list[int], str]:
    """(input name, output name, input shape, input dtype) as the TFLite interpreter reports them."""
    from ..runner import open_model

    m = open_model(str(path))
    return m.input_name, m.output_name, list(m.input_shape), np.dtype(m.input_dtype).name
