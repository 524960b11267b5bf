"""`sqnxt-edge models`: the zoo with parameters and MACs at a chosen input size."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Table

from .common import out, print_json
from .options import ClassesOpt, JsonOpt, LayersOpt, SizeOpt

if TYPE_CHECKING:
    from rich.console import JustifyMethod


def models_cmd(
    name: Annotated[Optional[str], typer.Argument(help="Show one model (any accepted spelling).")] = None,
    input_size: SizeOpt = 227,
    num_classes: ClassesOpt = 1000,
    in_channels: Annotated[int, typer.Option("--in-channels", help="Input channels.")] = 3,
    stem: Annotated[Optional[str], typer.Option(help="Override the stem: imagenet, tiny or cifar.")] = None,
    layers: LayersOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """List the model zoo with parameters and multiply-accumulates (MACs) at an input size.

    --layers adds a per-layer table: params, MACs, output shape, activation size."""
    from ..models import create_model, get_spec, list_models, model_stats, supports

    assert input_size is not None and num_classes is not None  # the shared options are Optional; defaults above

    # the list shows what builds at this size; a named model that cannot gets the one-line reason
    names = [get_spec(name).name] if name else [n for n in list_models() if supports(n, input_size)]
    skipped = [] if name else [n for n in list_models() if not supports(n, input_size)]
    rows: list[dict[str, Any]] = []
    for n in names:
        model = create_model(n, num_classes, input_size, in_channels, stem)
        stats = model_stats(model, input_size, in_channels, layers=layers)
        spec = get_spec(n)
        row = {
            "name": n,
            "family": spec.family,
            "params": stats.params,
            "macs": stats.macs,
            "input_size": input_size,
            "num_classes": num_classes,
            "stem": model.stem_kind,
            "output_shape": list(stats.output_shape),
            "verified": spec.verified,
            "description": spec.description,
        }
        if layers:
            row["layers"] = [
                {
                    "name": l.name,
                    "kind": l.kind,
                    "params": l.params,
                    "macs": l.macs,
                    "output_shape": list(l.output_shape),
                    "activation_bytes": l.activation_bytes,
                }
                for l in stats.layers
            ]
        rows.append(row)
    if json_out:
        print_json(rows if name is None else rows[0])
        return
    table = Table(title=f"Model zoo at {input_size}x{input_size}, {num_classes} classes")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("model", "left"),
        ("params", "right"),
        ("MACs", "right"),
        ("stem", "left"),
        ("layout", "left"),
    )
    for col, justify in columns:
        table.add_column(col, justify=justify)
    for r in rows:
        desc = r["description"] + ("" if r["verified"] else " [yellow]*[/]")
        table.add_row(r["name"], f"{r['params']:,}", f"{r['macs'] / 1e6:,.1f} M", r["stem"], desc)
    if skipped:
        table.caption = f"not at {input_size} px: {', '.join(skipped)}"
    out.print(table)
    if layers:
        for r in rows:
            lt = Table(title=f"{r['name']} layers")
            for col in ("layer", "kind", "params", "MACs", "output", "activation"):
                lt.add_column(col, justify="left" if col in ("layer", "kind", "output") else "right")
            for l in r["layers"]:
                lt.add_row(
                    l["name"],
                    l["kind"],
                    f"{l['params']:,}",
                    f"{l['macs']:,}",
                    "x".join(map(str, l["output_shape"])),
                    f"{l['activation_bytes'] / 1024:,.1f} KiB",
                )
            out.print(lt)
