"""`sqnxt-edge pipeline` and `sqnxt-edge demo`: thin commands over `sqnxt_edge.pipeline`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .common import err, out, print_json
from .options import (
    DataDirOpt,
    DataOpt,
    DeviceOpt,
    DevicesOpt,
    EpochsOpt,
    FormatOpt,
    Int8Opt,
    JsonOpt,
    OldFormatsOpt,
    OutputOpt,
    ThreadsOpt,
    renamed,
)


def _say(message: str) -> None:
    err.print(f"[dim]>[/] {message}", highlight=False)


def _show(result, json_out: bool) -> None:
    from ..bench import report as bench_report
    from ..pipeline.report import int8_reports

    if json_out:
        print_json(json.loads(result.files["results"].read_text(encoding="utf-8")))
    else:
        from ..bench.recommend import recommendation_lines

        out.print(bench_report.rich_table(result.bench))
        for line in recommendation_lines(result.bench.recommended):  # which file to ship, and why
            out.print(line, highlight=False, soft_wrap=True)
        rows = int8_reports(result.export)
        if rows:
            table = Table(title="int8 accuracy cost on held-out data", title_justify="left")
            for col in ("artifact", "fp32 top-1", "int8 top-1", "drop", "agreement", "images"):
                table.add_column(col, justify="left" if col == "artifact" else "right")
            for r in rows:
                table.add_row(
                    r["artifact"],
                    f"{r['top1_fp32']:.2f}%",
                    f"{r['top1_int8']:.2f}%",
                    f"{r['drop']:+.2f} pts",
                    f"{r['agreement']:.1f}%",
                    str(r["n"]),
                )
            out.print(table)
        for e in result.bench.errors:
            err.print(f"[red]error:[/] {Path(e['artifact']).name}: {e['error']}", highlight=False)
        if result.stages:
            out.print(
                "time: "
                + ", ".join(f"{s['stage']} {s['seconds']:.0f} s" for s in result.stages)
                + f"; total {result.seconds:.0f} s",
                highlight=False,
            )
        out.print(
            f"report: [bold]{result.files['report']}[/] (results.json and plots beside it); "
            f"artifacts: {result.export.output_dir}"
        )
    if not result.ok:
        raise typer.Exit(1)


def pipeline_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A sqnxt-edge checkpoint (.pt).")],
    fmt: FormatOpt = None,
    int8: Int8Opt = False,
    device: DeviceOpt = "local",
    devices: DevicesOpt = None,
    data: DataOpt = None,
    data_dir: DataDirOpt = None,
    threads: ThreadsOpt = None,
    export_dir: Annotated[
        Optional[Path], typer.Option("--export-dir", help="Artifacts folder (default export/<name>/).")
    ] = None,
    output: OutputOpt = None,
    json_out: JsonOpt = False,
    old_formats: OldFormatsOpt = None,
) -> None:
    """Export every requested format, verify it, measure accuracy and speed, and write one report folder.

    --format defaults to onnx; --data to the checkpoint's dataset; --output to reports/<name>/."""
    from ..formats import parse_formats
    from ..pipeline import PipelineConfig, run_pipeline

    result = run_pipeline(
        checkpoint,
        PipelineConfig(
            formats=parse_formats(renamed(fmt, old_formats, "--formats", "--format")),
            int8=int8,
            device=device,
            devices_file=devices,
            data=data,
            data_dir=str(data_dir) if data_dir else None,
            threads=threads,
            export_dir=export_dir,
            output_dir=output,
        ),
        say=_say,
    )
    _show(result, json_out)


def demo_cmd(
    epochs: EpochsOpt = None,
    fmt: FormatOpt = None,
    int8: Int8Opt = True,
    threads: ThreadsOpt = None,
    output: OutputOpt = None,
    json_out: JsonOpt = False,
    old_formats: OldFormatsOpt = None,
) -> None:
    """Train 1.0-SqNxt-23 on the embedded digits data, then export, verify, evaluate and benchmark it.

    --epochs defaults to the digits recipe's; --format to onnx (and tflite with its extra); --output to
    runs/demo-<time>/."""
    from ..formats import parse_formats
    from ..pipeline import DemoConfig, run_demo

    fmt = renamed(fmt, old_formats, "--formats", "--format")
    _trained, result = run_demo(
        DemoConfig(
            epochs=epochs,
            formats=parse_formats(fmt) if fmt else None,
            int8=int8,
            threads=threads,
            output_dir=output,
        ),
        say=_say,
    )
    _show(result, json_out)
