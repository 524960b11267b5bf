"""One way to make and write a matplotlib figure: the object-oriented API (no pyplot, no backend switch, so a
notebook's inline plots and a user's backend are left alone), written atomically (temp file + rename)."""

from __future__ import annotations

from pathlib import Path

from .artifacts import atomic_write

__all__ = ["new_figure", "save_png"]


def new_figure(**kwargs):
    """A matplotlib Figure that belongs to no pyplot state machine (`fig.subplots()` for the axes)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def save_png(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save a figure as PNG atomically; returns the path."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
