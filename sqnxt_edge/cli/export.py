"""`sqnxt-edge export`: a checkpoint to verified ONNX / ORT / TFLite artifacts (fp32, fp16, int8) and a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import err, out, print_json
from .options import (
    BatchOpt,
    ClassesOpt,
    DataDirOpt,
    DatasetOpt,
    DevicesOpt,
    FormatOpt,
    Int8Opt,
    JsonOpt,
    ModelOpt,
    OutputOpt,
    SizeOpt,
    VerifyOnOpt,
)


def export_cmd(
    checkpoint: Annotated[
        Path, typer.Argument(help="Checkpoint (.pt) written by sqnxt-edge train, or a foreign file with --model.")
    ],
    fmt: FormatOpt = None,
    int8: Int8Opt = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="Also write float16 artifacts (float32 I/O).")] = False,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset.")] = 17,
    batch: BatchOpt = None,
    dynamic_batch: Annotated[bool, typer.Option("--dynamic-batch", help="Dynamic batch dimension (ONNX/ORT).")] = False,
    no_simplify: Annotated[bool, typer.Option("--no-simplify", help="Skip onnxsim.")] = False,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Skip the parity check against PyTorch (artifacts are kept unchecked).")
    ] = False,
    calib_data: Annotated[
        Optional[str], typer.Option("--calib-data", help="int8 calibration images: folder or dataset name.")
    ] = None,
    calib_size: Annotated[
        Optional[int], typer.Option("--calib-size", help="Calibration images (seeded sample, default 300).")
    ] = None,
    calib_method: Annotated[str, typer.Option("--calib-method", help="minmax, entropy or percentile.")] = "minmax",
    int8_tune: Annotated[
        bool, typer.Option("--int8-tune", help="Try int8 configurations, keep the fastest within --max-drop.")
    ] = False,
    max_drop: Annotated[float, typer.Option("--max-drop", help="Largest allowed int8 top-1 drop, points.")] = 1.0,
    int8_target: Annotated[
        str,
        typer.Option(
            "--int8-target",
            help="CPUs the int8 files must be right on: portable (every class, the default), here (this machine's "
            "class), x86-vnni, x86-avx2, arm-dotprod or arm-neon (named in the file; verified on such a CPU).",
        ),
    ] = "portable",
    eval_data: Annotated[
        Optional[str], typer.Option("--eval-data", help="Dataset whose test split judges int8 accuracy.")
    ] = None,
    float_io: Annotated[
        bool,
        typer.Option(
            "--float-io/--int8-io",
            help="int8 TFLite input/output: float32 (loads in every LiteRT, LiteRT.js too) or int8 (integer-only apps)",
        ),
    ] = True,
    data_dir: DataDirOpt = None,
    output: OutputOpt = None,
    model: ModelOpt = None,
    num_classes: ClassesOpt = None,
    input_size: SizeOpt = None,
    dataset: DatasetOpt = None,
    lock_wait: Annotated[
        float,
        typer.Option(
            "--lock-wait", help="Seconds to wait while another export writes into the same folder (0: refuse at once)."
        ),
    ] = 600.0,
    verify_on: VerifyOnOpt = None,
    devices: DevicesOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Export a checkpoint; every artifact is run and compared with PyTorch before it is kept.

    --format defaults to onnx; --output to export/<checkpoint>/."""
    from ..checkpoint import load_checkpoint
    from ..export import ExportConfig, export
    from ..export.report import export_table

    config = ExportConfig(
        formats=fmt or ["onnx"],
        int8=int8,
        fp16=fp16,
        opset=opset,
        batch=batch,
        dynamic_batch=dynamic_batch,
        simplify=not no_simplify,
        verify=not no_verify,
        calib_data=calib_data,
        calib_size=calib_size,
        calib_method=calib_method,
        int8_tune=int8_tune,
        max_drop=max_drop,
        int8_target=int8_target,
        eval_data=eval_data,
        tflite_float_io=float_io,
        data_dir=str(data_dir) if data_dir else None,
        output_dir=output,
        lock_wait=lock_wait,
        verify_on=verify_on,
        devices_file=devices,
    )
    source = (
        load_checkpoint(
            checkpoint, model=model, num_classes=num_classes, input_size=input_size, dataset=dataset, data_dir=data_dir
        )
        if model
        else checkpoint
    )  # our own files: export() loads them
    result = export(source, config, progress=lambda msg: err.print(f"[dim]{msg}[/]", highlight=False))
    if json_out:
        print_json({**result.manifest, "timings": result.timings})  # the manifest, and where this run's time went
    else:
        out.print(export_table(result))
