"""One way to write a matplotlib figure: atomically (temp file + rename), and always closed afterwards."""

from __future__ import annotations

from pathlib import Path

from .checkpoint import atomic_write


def save_png(fig, path: str | Path, dpi: int = 110) -> Path:
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    finally:
        plt.close(fig)
