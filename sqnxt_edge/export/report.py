"""The export table: one row per written artifact, parity with PyTorch and fp32-vs-int8 accuracy side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from .ort_export import usability_line

if TYPE_CHECKING:
    from rich.console import JustifyMethod

__all__ = ["export_table"]


def _size(n: int) -> str:
    return f"{n / 1024:,.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):,.2f} MiB"


def export_table(result) -> Table:
    """The export as a table: one row per artifact with parity, accuracy and notes."""
    ck = result.manifest.get("checkpoint", {})
    first = result.artifacts[0] if result.artifacts else {}
    title = (
        f"{ck.get('model')} ({ck.get('dataset') or 'no dataset'}, {ck.get('input_size')} px): "
        f"{first.get('params', 0):,} params, {first.get('macs', 0) / 1e6:,.1f} M MACs -> {result.output_dir}"
    )
    table = Table(title=title)
    table.add_column("artifact", no_wrap=True)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("size", "right"),
        ("input", "left"),
        ("max|Δ| vs torch", "right"),
        ("top-1 agree", "right"),
        ("top-1 fp32 / int8", "right"),
        ("notes", "left"),
    )
    for col, justify in columns:
        table.add_column(col, justify=justify)
    for a in result.artifacts:
        p = a.get("parity") or {}
        acc = a.get("accuracy") or {}
        inp = a.get("input") or {}
        shape = "x".join(str(d) for d in inp.get("shape", []))
        agree = f"{p['top1_agreement']:.1%}" if p else "not verified"
        diff = f"{p['max_abs_diff']:.2e}" if p else "-"
        if p and not p.get("passed", True):
            diff = f"[red]{diff}[/]"
        accuracy = f"{acc['top1_fp32']:.2f}% / {acc['top1_int8']:.2f}% ({-acc['drop']:+.2f})" if acc else ""
        notes = usability_line(a.get("mobile_usability") or {}) if a["format"] == "ort" else ""
        if a.get("quantization") and a["format"] != "ort":  # .ort shows its mobile usability instead
            q = a["quantization"]
            notes = q.get("label", "") + (f" ({q['target']})" if q.get("target") else "")
        if acc.get("flagged_classes"):
            flagged = ", ".join(map(str, acc["flagged_classes"]))
            notes = (notes + "; " if notes else "") + f"[yellow]classes over --max-drop: {flagged}[/]"
        board = p.get("board") if p else None
        if board:
            where = board["device"] + (" (emulated)" if board.get("emulated") else "")
            notes = (notes + "; " if notes else "") + (
                f"on {where}: max|Δ| {board['max_abs_diff']:.1e}, agree {board['top1_agreement']:.1%}"
            )
        dtype = {"float32": "f32", "int8": "i8", "uint8": "u8", "float16": "f16"}.get(
            str(inp.get("dtype")), inp.get("dtype")
        )
        table.add_row(
            a["path"], _size(_bytes(a)), f"{inp.get('layout', '')} {shape} {dtype}", diff, agree, accuracy, notes
        )
    return table


def _bytes(entry: dict) -> int:
    """An artifact's size with the files it needs beside it (ncnn's .bin)."""
    return entry["bytes"] + sum(part["bytes"] for part in entry.get("companions") or [])
