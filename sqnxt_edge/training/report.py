"""The run folder's human-readable side: the per-epoch metrics log and the training-curve PNG."""

from __future__ import annotations

import json
from pathlib import Path

from ..artifacts import atomic_write
from ..plots import new_figure, save_png

__all__ = ["write_metrics", "plot_curves", "write_json"]


def write_json(path: Path, data) -> Path:
    """Write `data` as indented JSON atomically; returns the path."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def write_metrics(path: Path, history: list[dict]) -> Path:
    """One JSON line per epoch; rewritten whole so a resumed run never duplicates or loses a line."""
    text = "".join(json.dumps(rec, sort_keys=False) + "\n" for rec in history)
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def plot_curves(path: Path, history: list[dict], title: str) -> Path | None:
    """Loss and top-1 per epoch as a PNG, or None without history."""
    if not history:
        return None
    epochs = [r["epoch"] for r in history]
    fig = new_figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [r["loss"] for r in history], marker="o", label="train loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.grid(alpha=0.3)
    ax_lr = ax_loss.twinx()
    ax_lr.plot(epochs, [r["lr"] for r in history], color="grey", linestyle="--", label="lr (end of epoch)")
    ax_lr.set_ylabel("learning rate")
    ax_acc.plot(epochs, [r["train_top1"] for r in history], marker="o", label="train top-1")
    ax_acc.plot(epochs, [r["test_top1"] for r in history], marker="o", label="test top-1")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("top-1 (%)")
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()

    return save_png(fig, path, dpi=100)
