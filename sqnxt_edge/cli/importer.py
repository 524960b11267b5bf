"""`sqnxt-edge import`: weights trained elsewhere (a state_dict, or the seed notebook's whole pickled model) as a
sqnxt-edge checkpoint, read without running anything from the file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .common import out, print_json
from .options import ClassesOpt, DataDirOpt, DatasetOpt, JsonOpt, ModelOpt, OutputOpt, SizeOpt


def import_cmd(
    source: Annotated[
        Path,
        typer.Argument(
            help="A .pt/.pth/.ckpt file: state_dict (bare, module.-prefixed, nested "
            "under state_dict/net/model) or a whole pickled seed model."
        ),
    ],
    model: ModelOpt,
    num_classes: ClassesOpt = None,
    input_size: SizeOpt = None,
    dataset: DatasetOpt = None,
    data_dir: DataDirOpt = None,
    output: OutputOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Convert a foreign PyTorch file into a sqnxt-edge checkpoint that export, eval, bench and pipeline take.

    --model is required; --output defaults to <source>.sqnxt.pt beside it (never overwritten); --data-dir is
    where --dataset lives (its class names)."""
    from ..checkpoint import import_checkpoint

    assert model is not None  # required here (no default), though the shared option is Optional

    target = output or source.with_name(f"{source.stem}.sqnxt.pt")
    ckpt = import_checkpoint(
        source, target, model, num_classes=num_classes, input_size=input_size, dataset=dataset, data_dir=data_dir
    )
    info = ckpt.config["import"]
    if json_out:
        print_json({**ckpt.summary(), "output": str(target)})
        return
    table = Table(title=f"{source.name} -> {target}", show_header=False)
    for key, value in (
        ("model", ckpt.model_name),
        ("classes", ckpt.num_classes),
        ("input", f"{ckpt.input_size} px, {ckpt.stem or 'default'} stem"),
        ("dataset", ckpt.dataset or "- (normalization: ImageNet's; pass --dataset)"),
        ("read as", info["kind"]),
        ("saved with it", info["saved_with_it"] or "-"),
    ):
        table.add_row(key, str(value))
    out.print(table)
