"""`sqnxt-edge bench`: latency, memory and accuracy of every artifact in one table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from .common import err, out, print_json
from .options import (
    BatchOpt,
    ClassesOpt,
    DataDirOpt,
    DataOpt,
    DatasetOpt,
    DeviceOpt,
    DevicesOpt,
    JsonOpt,
    ModelOpt,
    OldBatchShortOpt,
    OutputOpt,
    PlotOpt,
    RunsOpt,
    RuntimeOpt,
    SizeOpt,
    ThreadsOpt,
    renamed,
)


def bench_cmd(
    artifacts: Annotated[
        Optional[list[Path]],
        typer.Argument(
            help="Artifacts (.onnx, .ort, .tflite, .pte) and .pt checkpoints; default: the newest "
            "export/*/manifest.json."
        ),
    ] = None,
    device: DeviceOpt = "local",
    devices: DevicesOpt = None,
    runtime: RuntimeOpt = "auto",
    threads: ThreadsOpt = None,
    batch: BatchOpt = 1,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed runs after the first.")] = 10,
    runs: RunsOpt = 100,
    min_seconds: Annotated[float, typer.Option("--min-seconds", help="... and at least this many seconds.")] = 1.0,
    data: DataOpt = None,
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    output: OutputOpt = None,
    plot: PlotOpt = None,
    model: ModelOpt = None,
    num_classes: ClassesOpt = None,
    input_size: SizeOpt = None,
    dataset: DatasetOpt = None,
    old_batch: OldBatchShortOpt = None,
) -> None:
    """Measure latency (p50/p90/p99), throughput, peak memory and top-1 of artifacts, each in a fresh process.

    --data gives top-1 on its test split; --output writes the results to FILE.json, .csv or .md."""
    from ..bench import BenchConfig, BoardUnreachable, run_bench
    from ..bench.report import plot_latency, rich_table, to_json, write_report

    batch = renamed(batch, old_batch, "-b", "--batch", default=1)
    config = BenchConfig(
        device=device,
        runtime=runtime,
        threads=threads,
        batch=batch if batch is not None else 1,
        warmup=warmup,
        runs=runs,
        min_seconds=min_seconds,
        data=data,
        data_dir=str(data_dir) if data_dir else None,
        samples=plot is not None,
        devices_file=devices,
        model=model,
        num_classes=num_classes,
        input_size=input_size,
        dataset=dataset,
    )
    try:
        run = run_bench(artifacts or None, config, progress=not json_out or err.is_terminal)
    except BoardUnreachable as exc:  # the library's labelled estimate of what the board would do, then the error
        if json_out:
            print_json({"measured": False, "error": str(exc), **exc.estimates})
        else:
            _print_estimates(exc.estimates, f"{device} could not be measured")
        raise
    if json_out:
        out.file.write(to_json(run))
        out.file.flush()
    elif run.results:
        wide = out if out.is_terminal else Console(width=max(out.width, 150))  # files and pipes: never truncate
        wide.print(rich_table(run))
    if run.estimates and not json_out:
        _print_estimates(run.estimates, "the emulator's latencies are not the board's")
    if output:
        write_report(run, output)
    if plot and run.results:
        plot_latency(run, plot)
    for k in run.skipped:
        err.print(
            f"note: {Path(k['artifact']).name} not measured with {k['runtime']}: {k['why']}",
            highlight=False,
            soft_wrap=True,
            style="dim",
        )
    for e in run.errors:
        err.print(f"[bold red]error:[/] {Path(e['artifact']).name}: {e['error']}", highlight=False, soft_wrap=True)
    if run.errors:
        raise typer.Exit(1)


def _print_estimates(offer: dict, why: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{offer['label']} on {offer['device']} ({why})", title_justify="left")
    for col in ("artifact", "precision", "estimated ms", "basis"):
        table.add_column(col, justify="right" if col == "estimated ms" else "left", overflow="fold")
    for e in offer["estimates"]:
        name = Path(e["artifact"]).name if e.get("artifact") else f"{e['model']} @{e['input_size']} px"
        table.add_row(name, e["precision"], f"{e['ms']:.2f}", escape(e["basis"]))
    if offer["estimates"]:
        out.print(table)
    for line in offer["problems"]:
        err.print(f"[yellow]no estimate:[/] {escape(line)}", highlight=False)
