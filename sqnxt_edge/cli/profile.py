"""`sqnxt-edge profile`, `estimate` and `select`: where the time goes, what a board would do, which variant fits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import err, fail, out, print_json
from .options import (
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
        out.print(item, highlight=False) if isinstance(item, str) else out.print(item)


def profile_cmd(
    artifacts: Annotated[list[Path], typer.Argument(help="Exported .onnx / .ort artifacts (sqnxt-edge export).")],
    device: DeviceOpt = "local",
    devices: DevicesOpt = None,
    threads: ThreadsOpt = None,
    runs: RunsOpt = 50,
    top: Annotated[Optional[int], typer.Option("--top", help="Show only the N slowest layers.")] = None,
    json_out: JsonOpt = False,
    plot: PlotOpt = None,
) -> None:
    """Per-layer time from onnxruntime's own profiler, mapped to the model's layers, rolled up per stage and kind."""
    from ..profiling import profile
    from ..profiling.report import plot_profile, profile_tables

    results = profile(
        artifacts, device, threads, runs=runs, devices_file=devices, progress=not json_out or err.is_terminal
    )
    if json_out:
        print_json([r.to_dict() for r in results])
    else:
        for r in results:
            _show(profile_tables(r, top))
    if plot:
        plot_profile(results, plot)


def estimate_cmd(
    models: Annotated[list[str], typer.Argument(help="Zoo models (1.0-SqNxt-23 ...) and/or exported artifacts.")],
    device: DeviceOpt = "local",
    devices: DevicesOpt = None,
    input_size: SizeOpt = None,
    precision: PrecisionOpt = None,
    threads: ThreadsOpt = None,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate",
            help="Profile the ARTIFACTs on the device, fit the factors (per precision), store them in the registry.",
        ),
    ] = False,
    layers: LayersOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Estimate latency from the graph and the device's figures (every figure with its source); always labelled.

    A zoo model is estimated at --input-size (default 227)."""
    from ..profiling import calibrate as fit_device, estimate
    from ..profiling.report import estimate_tables

    if calibrate:
        results = fit_device(models, device, threads, devices_file=devices, progress=not json_out or err.is_terminal)
    else:
        results = [estimate(m, device, input_size, precision, threads, devices_file=devices) for m in models]
    if json_out:
        print_json([r.to_dict() for r in results] if len(results) > 1 else results[0].to_dict())
    else:
        for r in results:
            _show(estimate_tables(r, layers))


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
