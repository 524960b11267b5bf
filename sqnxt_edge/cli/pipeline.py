"""`sqnxt-edge pipeline` and `sqnxt-edge demo`: thin commands over `sqnxt_edge.pipeline`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .common import JsonOpt, err, out, print_json


def _say(message: str) -> None:
    err.print(f"[dim]>[/] {message}", highlight=False)


def _show(result, json_out: bool) -> None:
    from ..bench import report as bench_report
    from ..pipeline.report import int8_reports

    if json_out:
        print_json(json.loads(result.files["results"].read_text(encoding="utf-8")))
    else:
        out.print(bench_report.rich_table(result.bench))
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


FormatsOpt = Annotated[Optional[str], typer.Option("--formats", "-f", help="Comma list of onnx, ort, tflite.")]
Int8Opt = Annotated[bool, typer.Option("--int8", help="Also export and measure int8 (calibrated on real data).")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", "-t", help="Threads per runtime (default: all cores).")]


def pipeline_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A sqnxt-edge checkpoint (.pt).")],
    formats: FormatsOpt = "onnx",
    int8: Int8Opt = False,
    device: Annotated[str, typer.Option("--device", "-d", help="local, or a device from devices.toml.")] = "local",
    devices: Annotated[Optional[Path], typer.Option("--devices", help="devices.toml to use.")] = None,
    data: Annotated[
        Optional[str], typer.Option("--data", help="Accuracy data (default: the checkpoint's dataset).")
    ] = None,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="Where that dataset lives.")] = None,
    threads: ThreadsOpt = None,
    export_dir: Annotated[
        Optional[Path], typer.Option("--export-dir", help="Artifacts folder (default export/<name>/).")
    ] = None,
    output: Annotated[
        Optional[Path], typer.Option("-o", "--output", help="Report folder (default reports/<name>/).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Export every requested format, verify it, measure accuracy and speed, and write one report folder."""
    from ..pipeline import PipelineConfig, run_pipeline

    result = run_pipeline(
        checkpoint,
        PipelineConfig(
            formats=[f for f in (formats or "onnx").split(",") if f],
            int8=int8,
            device=device,
            devices_file=devices,
            data=data,
            data_dir=data_dir,
            threads=threads,
            export_dir=export_dir,
            output_dir=output,
        ),
        say=_say,
    )
    _show(result, json_out)


def demo_cmd(
    epochs: Annotated[
        Optional[int], typer.Option("--epochs", help="Training epochs (default: the digits recipe's).")
    ] = None,
    formats: FormatsOpt = None,
    int8: Annotated[bool, typer.Option("--int8/--no-int8", help="Export and measure int8 too.")] = True,
    threads: ThreadsOpt = None,
    output: Annotated[
        Optional[Path], typer.Option("-o", "--output", help="Run folder (default runs/demo-<time>/).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Train 1.0-SqNxt-23 on the embedded digits data, then export, verify, evaluate and benchmark it."""
    from ..pipeline import DemoConfig, run_demo

    _trained, result = run_demo(
        DemoConfig(
            epochs=epochs,
            formats=[f for f in formats.split(",") if f] if formats else None,
            int8=int8,
            threads=threads,
            output_dir=output,
        ),
        say=_say,
    )
    _show(result, json_out)
