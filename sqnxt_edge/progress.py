"""The one progress-bar factory: rich on stderr (stdout stays clean for --json), transient, and cheap.

Cheap matters: rich redraws from its own thread, and on a 2-core board every redraw competes with the work it
reports. Two refreshes a second are enough for a person and cost nothing measurable.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["make_progress", "progress_bar", "quiet"]

REFRESH_PER_SECOND = 2


def make_progress(enabled: bool = True, *extra_columns):
    """A rich `Progress` (description, bar, n/total, extra columns, elapsed) writing to stderr; a no-op if disabled."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra_columns,
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not enabled,
        refresh_per_second=REFRESH_PER_SECOND,
    )


@contextmanager
def progress_bar(description: str, total: int | None, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """`with progress_bar("bench", 5) as advance: advance(1, "model.onnx")` - the bar shows `description: detail`."""
    bar = make_progress(enabled)
    task = bar.add_task(description, total=total)

    def advance(n: int = 1, detail: str | None = None) -> None:
        bar.update(task, advance=n, description=f"{description}: {detail}" if detail else description)

    with bar:
        yield advance


@contextmanager
def quiet(stderr: bool = False) -> Iterator[None]:
    """Silence a library that prints and warns (converters, quantizers): stdout stays clean for --json, and with
    `stderr` its own progress bars do not cut through ours."""
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()) if stderr else contextlib.nullcontext(),
    ):
        warnings.simplefilter("ignore")
        yield
