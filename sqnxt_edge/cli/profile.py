"""`sqnxt-edge profile`, `estimate` and `select`: where the time goes, what a board would do, which variant fits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import err, fail, out, print_json
from .options import (
    CoresOpt,
    DeviceOpt,
    DevicesOpt,
    JsonOpt,
    LayersOpt,
    OldBudgetShortOpt,
    PlotOpt,
    PrecisionOpt,
    RunsOpt,
    SizeOpt,
    ThreadsOpt,
    renamed,
)


def _show(items) -> None:
    for item in items:
        out.print(item, highlight=False, markup=False) if isinstance(item, str) else out.print(item)


def profile_cmd(
    artifacts: Annotated[list[Path], typer.Argument(help="Exported .onnx / .ort artifacts (sqnxt-edge export).")],
    device: DeviceOpt = "local",
    devices: DevicesOpt = None,
    threads: ThreadsOpt = None,
    cores: CoresOpt = None,
    runs: RunsOpt = 50,
    top: Annotated[Optional[int], typer.Option("--top", help="Show only the N slowest layers.")] = None,
    json_out: JsonOpt = False,
    plot: PlotOpt = None,
) -> None:
    """Per-layer time from onnxruntime's own profiler, mapped to the model's layers, rolled up per stage and kind."""
    from ..profiling import profile
    from ..profiling.report import plot_profile, profile_tables

    results = profile(
        artifacts,
        device,
        threads,
        runs=runs,
        devices_file=devices,
        progress=not json_out or err.is_terminal,
        cores=cores,
    )
    if json_out:
        print_json([r.to_dict() for r in results])
    else:
        for r in results:
            _show(profile_tables(r, top))
    if plot:
        plot_profile(results, plot)


def estimate_cmd(
    models: Annotated[
        Optional[list[str]],
        typer.Argument(
            help="Zoo models (1.0-SqNxt-23 ...) and/or exported artifacts. With --calibrate: the files or zoo models "
            "to calibrate on (zoo models are exported here with random weights); none: the calibration set."
        ),
    ] = None,
    device: DeviceOpt = "local",
    devices: DevicesOpt = None,
    input_size: SizeOpt = None,
    precision: PrecisionOpt = None,
    threads: ThreadsOpt = None,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate",
            help="Profile on the device, fit the factors (per precision: end to end over 3+ models, else per layer), "
            "store them in the registry. Zoo models are exported at --input-size (default 32 and 227 px) in "
            "--precision (default fp32 and int8).",
        ),
    ] = False,
    runs: RunsOpt = 50,
    repeats: Annotated[
        int,
        typer.Option(
            "--repeats",
            help="--calibrate: profile every file this many times, round after round (the "
            "lowest p50 counts: other load only adds time).",
        ),
    ] = 1,
    layers: LayersOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Estimate latency from the graph and the device's figures (every figure with its source); always labelled.

    A zoo model is estimated at --input-size (default 227).

    `--calibrate -d BOARD` alone calibrates the board on the calibration set: 5 zoo models at 32 and 227 px, fp32 and
    int8 (20 files, exported once and cached)."""
    from ..profiling import estimate
    from ..profiling.report import calibration_tables, estimate_tables

    models = models or []
    if calibrate:
        results = _calibrate(models, device, devices, input_size, precision, threads, runs, repeats, json_out)
    elif not models:
        raise fail("estimate needs a zoo model or an exported artifact (or --calibrate to calibrate a board)")
    else:
        results = [estimate(m, device, input_size, precision, threads, devices_file=devices) for m in models]
    if json_out:
        print_json([r.to_dict() for r in results] if len(results) > 1 else results[0].to_dict())
    elif calibrate:
        _show(calibration_tables(results))
    else:
        for r in results:
            _show(estimate_tables(r, layers))


def _calibrate(models, device, devices, input_size, precision, threads, runs, repeats, json_out) -> list:
    """`estimate --calibrate`: files as they are, zoo names exported first (pipeline.calibrate_board)."""
    from ..pipeline.calibration import CALIBRATION_SIZES, calibrate_board
    from ..profiling import CALIBRATION_MODELS

    files = [m for m in models if Path(m).is_file() or m.lower().endswith((".onnx", ".ort", ".tflite"))]
    names = [m for m in models if m not in files] if models else list(CALIBRATION_MODELS)
    if precision not in (None, "fp32", "int8"):
        raise fail(f"--calibrate fits fp32 or int8 factors, not {precision!r}")
    return calibrate_board(
        device,
        names,
        files,
        sizes=[input_size] if input_size else CALIBRATION_SIZES,
        precisions=[precision] if precision else ("fp32", "int8"),
        threads=threads,
        runs=runs,
        repeats=repeats,
        devices_file=devices,
        progress=not json_out or err.is_terminal,
        say=lambda message: err.print(message, highlight=False, markup=False),
    )


def select_cmd(
    device: DeviceOpt = "local",
    budget_ms: Annotated[
        Optional[float], typer.Option("--budget-ms", help="Latency budget per image, ms (required).")
    ] = None,
    precision: PrecisionOpt = "any",
    input_size: SizeOpt = 227,
    checkpoints: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--checkpoint", "-c", help="Your checkpoint (.pt): its measured top-1 ranks its model. Repeatable."
        ),
    ] = None,
    devices: DevicesOpt = None,
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
    plot: PlotOpt = None,
    old_budget: OldBudgetShortOpt = None,
) -> None:
    """The zoo variants that fit a latency budget on a device, ranked by known accuracy (never invented)."""
    from ..profiling import select
    from ..profiling.report import plot_pareto, selection_table

    budget_ms = renamed(budget_ms, old_budget, "-b", "--budget-ms")
    if budget_ms is None:
        raise fail("select needs --budget-ms MS (the latency budget per image)")

    result = select(
        device,
        budget_ms,
        precision or "any",
        input_size or 227,
        threads,
        checkpoints or (),
        devices_file=devices,
        progress=not json_out or err.is_terminal,
    )
    if json_out:
        print_json(result.to_dict())
    else:
        out.print(selection_table(result))
        _show([f"skipped {s.model}: {s.reason}" for s in result.skipped])
        _show([f"latency basis: {b}" for b in result.basis])
    if plot:
        plot_pareto(result, plot)
