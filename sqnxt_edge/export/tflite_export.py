"""PyTorch -> .tflite through litert-torch (no TensorFlow): fp32, fp16 (weights stored as float16) and full-integer
int8 through PT2E (torchao `prepare_pt2e` -> calibrate -> `convert_pt2e(fold_quantize=False)` with litert-torch's
`PT2EQuantizer`).

Layout: TFLite users (Android/iOS camera code, MediaPipe) feed NHWC, so the converted module is `NHWCInput(model)`:
it takes (N, H, W, C) and permutes to the model's NCHW inside the graph; the metadata says `layout: NHWC`.
Only builtin TFLite ops come out (CONV_2D, ADD, MEAN, FULLY_CONNECTED, TRANSPOSE, (DE)QUANTIZE ...), which
tflite-runtime 2.14 runs too.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..errors import ExportError, first_line, require

__all__ = ["NHWCInput", "calibration_batches", "convert_tflite", "tflite_io_names"]


class NHWCInput(nn.Module):
    """Takes NHWC images, runs the NCHW model: the layout TFLite apps hand over."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.permute(0, 3, 1, 2))


def calibration_batches(images: np.ndarray, ckpt) -> Callable[[], list[torch.Tensor]]:
    """uint8 NHWC calibration images -> normalized NHWC float batches of 32, for the PT2E observers."""
    from ..data import preprocess

    def batches():
        return [preprocess(images[i:i + 32], ckpt.input_size, ckpt.mean, ckpt.std).permute(0, 2, 3, 1).contiguous()
                for i in range(0, len(images), 32)]

    return batches


@contextlib.contextmanager
def _quiet():
    """litert-torch prints progress on stdout and warns a lot: keep stdout clean for --json."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _int8_program(module: nn.Module, sample: torch.Tensor, calib: Callable[[], list[torch.Tensor]]):
    """PT2E static int8: per-channel symmetric weights, int8 activations, calibrated on real images."""
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    # calibrated in whole batches (a dynamic batch dimension): one observer pass per batch instead of per image is
    # most of the int8 conversion's time saved; the file itself is converted at the sample's fixed batch
    dynamic = ({0: torch.export.Dim("batch", max=4096)},)
    two = torch.cat([sample, sample])  # an example batch of 1 would pin the dimension to 1
    graph = torch.export.export(module, (two,), dynamic_shapes=dynamic).module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for batch in calib():
            prepared(batch)
    return convert_pt2e(prepared, fold_quantize=False), QuantConfig(pt2e_quantizer=quantizer)


def convert_tflite(model: nn.Module, input_size: int, in_channels: int, precision: str, dest: Path,
                   batch: int = 1, calib: Callable[[], list[torch.Tensor]] | None = None,
                   float_io: bool = False) -> Path:
    """Write `dest` (.tflite) from the eval-mode NCHW `model`; `calib` yields normalized NHWC float batches (int8)."""
    require("litert_torch", "tflite", "--format tflite")
    import litert_torch

    module = NHWCInput(model.eval()).eval()
    sample = torch.zeros(batch, input_size, input_size, in_channels)
    try:
        with _quiet():
            if precision == "fp32":
                edge = litert_torch.convert(module, (sample,))
            elif precision == "fp16":
                from litert_torch.generative.quantize.quant_recipes import full_fp16_recipe

                edge = litert_torch.convert(module, (sample,), quant_config=full_fp16_recipe())
            elif precision == "int8":
                if calib is None:
                    raise ExportError("int8 TFLite needs calibration images")
                program, quant_config = _int8_program(module, sample, calib)
                edge = litert_torch.convert(program, (sample,), quant_config=quant_config)
            else:
                raise ExportError(f"TFLite does not support precision {precision!r}")
            edge.export(str(dest))
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"TFLite conversion ({precision}) failed: {first_line(exc)}") from None
    if precision == "int8" and float_io:
        from .tflite_io import float_interface

        float_interface(dest)
    return dest


def tflite_io_names(path: Path) -> tuple[str, str, list[int], str]:
    """(input name, output name, input shape, input dtype) as the TFLite interpreter reports them."""
    from ..runner import open_model

    m = open_model(str(path))
    return m.input_name, m.output_name, list(m.input_shape), np.dtype(m.input_dtype).name
