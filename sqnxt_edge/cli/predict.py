"""`sqnxt-edge predict`: a thin wrapper over `sqnxt_edge.predict`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .common import err, fail, out, print_json
from .options import DeviceOpt, DevicesOpt, JsonOpt, OutputOpt, RuntimeOpt, ThreadsOpt


def predict_cmd(
    artifact: Annotated[
        Path, typer.Argument(help="An exported .onnx / .ort / .tflite, or a checkpoint (.pt, on this machine).")
    ],
    images: Annotated[list[Path], typer.Argument(help="Image files, or folders of them (their images, sorted).")],
    device: DeviceOpt = "local",
    devices: DevicesOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", help="Classes to list per image.")] = 5,
    runtime: RuntimeOpt = "auto",
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """The top classes each image gets from a model, with the toolkit's own preprocessing (from the artifact's
    metadata) and labels, here or on a board (-d: the board decodes nothing; it gets the pixels and resizes them
    itself). An image that cannot be read gets one line; the exit code is 1 only when no image was predicted.
    -o writes the predictions as JSON too."""
    from ..artifacts import atomic_write
    from ..predict import predict

    result = predict(
        artifact, images, device=device, top_k=top_k, runtime=runtime, threads=threads, devices_file=devices
    )
    data = result.to_dict()
    if output is not None:
        import json

        atomic_write(output, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8"))
    if json_out:
        print_json(data)
    else:
        _table(result)
    for bad in result.failed:
        err.print(f"[yellow]skipped[/] {bad.image}: {bad.error}", highlight=False, markup=True, soft_wrap=True)
    if result.predicted == 0:
        raise fail(f"no image could be predicted ({len(result.failed)} failed)")


def _table(result) -> None:
    where = result.device + (" (EMULATED)" if result.emulated else "")
    runtime = f"{result.runtime} {result.runtime_version or ''}".strip()
    table = Table(title=f"{Path(result.artifact).name} on {where}", caption=f"{runtime}, {result.input_size} px")
    for col in ("image", "top-1", "prob", "next"):
        table.add_column(col, justify="right" if col == "prob" else "left")
    for p in result.predictions:
        if p.error is not None:
            continue
        best, rest = p.top[0], p.top[1:]
        others = ", ".join(f"{t['label']} {t['prob']:.2f}" for t in rest)
        table.add_row(Path(p.image).name, str(best["label"]), f"{best['prob']:.3f}", others)
    out.print(table)
