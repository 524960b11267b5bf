"""The pipeline report's pictures: accuracy against latency (log latency axis, one label per point naming its file and
runtime, placed where it overlaps no other label or marker) and the confusion matrix of the files export made.

Placement is greedy and checked in display space: each label tries positions around its point, nearest first, and
keeps the first whose box touches no other label, no marker and stays inside the axes; a leader line joins a label
that had to move away from its point.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..plots import new_figure, save_png

__all__ = ["plot_accuracy_vs_latency", "plot_confusion", "confusion_matrix", "place_labels"]

# offsets (points) tried around a marker, nearest first: right, left, above, below, then the diagonals, farther out
_DIRECTIONS = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1)]
_RADII = (7, 16, 28, 42, 60, 80)


def _overlaps(a, b, pad: float = 2.0) -> bool:
    return not (a.x1 + pad <= b.x0 or b.x1 + pad <= a.x0 or a.y1 + pad <= b.y0 or b.y1 + pad <= a.y0)


def place_labels(
    fig, ax, xy: list[tuple[float, float]], texts: list[str], marker_px: list[float], colours: list[str]
) -> list:
    """Annotate each point with its text where it overlaps nothing placed before it (labels and markers), framed in
    its marker's colour, joined to it by a line when not right beside it; returns the annotations. Points are placed
    from the most crowded first."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.transforms import Bbox

    canvas = FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    centres = ax.transData.transform(np.asarray(xy, dtype=float))
    markers = [Bbox.from_bounds(cx - r, cy - r, 2 * r, 2 * r) for (cx, cy), r in zip(centres, marker_px)]
    frame = ax.get_window_extent(renderer)
    scale = fig.dpi / 72.0
    crowd = [sum(math.dist(c, d) for d in centres) for c in centres]
    placed: list = []
    notes: list = [None] * len(xy)
    for i in sorted(range(len(xy)), key=lambda k: crowd[k]):
        best = None
        for radius in _RADII:
            for dx, dy in _DIRECTIONS:
                off = (dx * radius, dy * radius)
                ha = "left" if dx > 0 else "right" if dx < 0 else "center"
                va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
                note = ax.annotate(
                    texts[i], xy[i], xytext=off, textcoords="offset points", fontsize=8, ha=ha, va=va,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": colours[i], "lw": 1.2, "alpha": 0.92},
                    zorder=4,
                )  # fmt: skip
                box = note.get_window_extent(renderer)
                clash = any(_overlaps(box, b) for b in placed) or any(
                    _overlaps(box, m) for j, m in enumerate(markers) if j != i
                )
                inside = box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1
                if not clash and inside:
                    best = (note, box, radius)
                    break
                note.remove()
            if best:
                break
        if best is None:  # nowhere free: the nearest spot, still one label per point
            note = ax.annotate(texts[i], xy[i], xytext=(7, 0), textcoords="offset points", fontsize=8, va="center")
            note.set_bbox({"boxstyle": "round,pad=0.2", "fc": "white", "ec": colours[i], "lw": 1.2})
            best = (note, note.get_window_extent(renderer), 7)
        note, box, radius = best
        if radius > _RADII[0] or radius * scale > marker_px[i] + 6:
            # a leader line from the label's centre to its point (figure fractions: savefig may use another dpi)
            centre = ((box.x0 + box.x1) / 2 / fig.bbox.width, (box.y0 + box.y1) / 2 / fig.bbox.height)
            line = {"arrowstyle": "-", "color": colours[i], "lw": 0.9, "shrinkA": 0, "shrinkB": 2}
            ax.annotate("", xy[i], xytext=centre, textcoords="figure fraction", arrowprops=line, zorder=2)
        placed.append(box)
        notes[i] = note
    return notes


def plot_accuracy_vs_latency(points: list[dict], path: Path, title: str) -> Path | None:
    """Top-1 (%) against median latency (ms, log axis) per measured file and runtime; `points` are summary rows
    (`format`, `precision`, `runtime`, `p50`, `top1`, `size_mb`). None when there is nothing to plot."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    points = [r for r in points if r.get("top1") is not None and r.get("p50")]
    if not points:
        return None
    fig = new_figure(figsize=(7.5, 4.8))
    fig.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.12)  # fixed: the labels are placed in pixels
    ax = fig.subplots()
    xs = [float(r["p50"]) for r in points]
    ys = [float(r["top1"]) for r in points]
    sizes = [30 + 15 * min(r.get("size_mb") or 0.0, 20.0) for r in points]
    colours = [f"C{i % 10}" for i in range(len(points))]
    ax.scatter(xs, ys, s=sizes, c=colours, alpha=0.8, edgecolors="white", linewidths=0.8, zorder=3)
    ax.set_xscale("log")
    narrow = max(xs) / min(xs) < 30  # a narrow spread gets more labelled ticks (a decade holds 1, 1.5, 2, 3, 5, 7)
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0) if narrow else (1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    lo, hi = min(xs), max(xs)
    ax.set_xlim(lo / 2.2, hi * 2.2)  # room for labels on both sides, whatever the spread
    y_lo, y_hi = min(ys), max(ys)
    pad = max(1.0, (y_hi - y_lo) * 0.35)
    ax.set_ylim(y_lo - pad, min(100.0 + pad / 3, y_hi + pad))
    ax.set_xlabel("median latency per batch (ms, log scale)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    texts = [f"{r['format']} {r['precision']} · {r.get('runtime') or '?'}" for r in points]
    marker_px = [math.sqrt(s) / 2 * fig.dpi / 72.0 for s in sizes]
    place_labels(fig, ax, list(zip(xs, ys)), texts, marker_px, colours)
    return save_png(fig, path)


def confusion_matrix(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true, predicted] of top-1 classes against integer labels."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return m


def plot_confusion(panels: list[tuple[str, np.ndarray]], classes: list[str], path: Path) -> Path:
    """One panel per (title, counts[true, predicted]); each row in percent of its class's images, counts written
    in the cells when the classes are few."""
    fig = new_figure(figsize=(4.6 * len(panels) + 0.6, 4.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    k = len(classes)
    ticks = k <= 30
    image = None
    for ax, (title, counts) in zip(axes, panels):
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) * 100.0
        image = ax.imshow(share, cmap="Blues", vmin=0, vmax=100)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true class")
        if ticks:
            ax.set_xticks(range(k), classes, fontsize=7, rotation=90 if max(map(len, classes)) > 2 else 0)
            ax.set_yticks(range(k), classes, fontsize=7)
        if k <= 12:
            for t in range(k):
                for p in range(k):
                    if counts[t, p]:
                        colour = "white" if share[t, p] > 60 else "black"
                        ax.text(p, t, str(counts[t, p]), ha="center", va="center", fontsize=7, color=colour)
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="% of the true class")
    return save_png(fig, path)
