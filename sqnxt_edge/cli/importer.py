"""`sqnxt-edge import`: weights trained elsewhere (a state_dict, or the seed notebook's whole pickled model) as a
sqnxt-edge checkpoint, read without running anything from the file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .common import JsonOpt, out, print_json

# The options export, eval and bench share for files sqnxt-edge did not write.
ModelOpt = Annotated[
    Optional[str],
    typer.Option(
        "--model", "-m", help="Architecture of a foreign file (state_dict or whole pickled model), e.g. SqNxt_23_1x."
    ),
]
ClassesOpt = Annotated[
    Optional[int],
    typer.Option("--num-classes", "-k", help="Classes of a foreign file (default: the classifier's width)."),
]
SizeOpt = Annotated[
    Optional[int],
    typer.Option("--input-size", "-s", help="Input size of a foreign file (default: the dataset's, else the model's)."),
]
DatasetOpt = Annotated[
    Optional[str],
    typer.Option(
        "--dataset", help="What a foreign file was trained on: its normalization and class names (e.g. cifar10)."
    ),
]


def import_cmd(
    source: Annotated[
        Path,
        typer.Argument(
            help="A .pt/.pth/.ckpt file: state_dict (bare, module.-prefixed, nested "
            "under state_dict/net/model) or a whole pickled seed model."
        ),
    ],
    model: Annotated[str, typer.Option("--model", "-m", help="Its architecture (see `sqnxt-edge models`).")],
    num_classes: ClassesOpt = None,
    input_size: SizeOpt = None,
    dataset: DatasetOpt = None,
    data_dir: Annotated[
        Optional[Path], typer.Option("--data-dir", help="Where the dataset lives (class names).")
    ] = None,
    output: Annotated[
        Optional[Path],
        typer.Option(
            "--output", "-o", help="Checkpoint to write (default: <source>.sqnxt.pt beside it; never overwritten)."
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Convert a foreign PyTorch file into a sqnxt-edge checkpoint that export, eval, bench and pipeline take."""
    from ..checkpoint import import_checkpoint

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
