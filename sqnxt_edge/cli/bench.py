"""`sqnxt-edge bench`: latency, memory and accuracy of every artifact in one table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from .common import err, out, print_json
from .options import (
    BatchOpt,
    BoardsOpt,
    ClassesOpt,
    CooldownOpt,
    CoresOpt,
    DataDirOpt,
    DataOpt,
    DatasetOpt,
    DevicesOpt,
    DurationOpt,
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
    device: BoardsOpt = None,
    devices: DevicesOpt = None,
    runtime: RuntimeOpt = "auto",
    threads: ThreadsOpt = None,
    cores: CoresOpt = None,
    duration: DurationOpt = None,
    cooldown: CooldownOpt = None,
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

    --data gives top-1 on its test split; --output writes the results to FILE.json, .csv or .md. Every result carries
    its run context (temperatures, clocks, throttling, other load) and is flagged when taken throttled, below its
    clock or beside other load. Several --device (or a group) measure those boards at once."""
    from ..bench import BenchConfig, BoardUnreachable, run_bench
    from ..bench.boards import run_boards
    from ..bench.recommend import recommendation_lines
    from ..bench.report import plot_latency, rich_table, to_json, write_report
    from ..bench.sustained import plot_sustained, summary_lines
    from ..devices.registry import resolve_boards
    from ..errors import BenchError
    from ..runner import RunnerError
    from ..runner.sustained import parse_duration

    batch = renamed(batch, old_batch, "-b", "--batch", default=1)
    boards = resolve_boards(device or ["local"], devices)
    try:
        seconds = parse_duration(duration) if duration else None
    except RunnerError as exc:
        raise BenchError(f"--{exc}") from None
    config = BenchConfig(
        device=boards[0],
        runtime=runtime,
        threads=threads,
        cores=cores,
        batch=batch if batch is not None else 1,
        warmup=warmup,
        runs=runs,
        min_seconds=min_seconds,
        data=data,
        data_dir=str(data_dir) if data_dir else None,
        samples=plot is not None and not seconds,
        devices_file=devices,
        model=model,
        num_classes=num_classes,
        input_size=input_size,
        dataset=dataset,
        duration=seconds,
        cooldown=cooldown,
    )
    show = not json_out or err.is_terminal
    try:
        if len(boards) > 1:
            run = run_boards(boards, [str(a) for a in artifacts] if artifacts else None, config, progress=show)
        else:
            run = run_bench(artifacts or None, config, progress=show)
    except BoardUnreachable as exc:  # the library's labelled estimate of what the board would do, then the error
        if json_out:
            print_json({"measured": False, "error": str(exc), **exc.estimates})
        else:
            _print_estimates(exc.estimates, f"{boards[0]} could not be measured")
        raise
    if json_out:
        out.file.write(to_json(run))
        out.file.flush()
    elif run.results:
        wide = out if out.is_terminal else Console(width=max(out.width, 150))  # files and pipes: never truncate
        wide.print(rich_table(run))
    if not json_out:
        for line in summary_lines(run):
            out.print(line, highlight=False, soft_wrap=True)
        for line in recommendation_lines(run.recommended):
            out.print(line, highlight=False, soft_wrap=True)
        offers = {b: s["estimates"] for b, s in run.boards.items() if s.get("estimates")}
        offers = offers or ({boards[0]: run.estimates} if run.estimates else {})
        for board, offer in offers.items():
            measured = run.boards.get(board, {}).get("measured", True)
            _print_estimates(
                offer, "the emulator's latencies are not the board's" if measured else f"{board} could not be measured"
            )
    if output:
        write_report(run, output)
    if plot and run.results:
        (plot_sustained if seconds else plot_latency)(run, plot)
    for k in run.skipped:
        err.print(
            f"note: {Path(k['artifact']).name} not measured with {k['runtime']}: {k['why']}",
            highlight=False,
            soft_wrap=True,
            style="dim",
        )
    for e in run.errors:
        where = f"{e['device']}: " if e.get("device") else ""
        err.print(
            f"[bold red]error:[/] {where}{Path(e['artifact']).name}: {e['error']}", highlight=False, soft_wrap=True
        )
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
