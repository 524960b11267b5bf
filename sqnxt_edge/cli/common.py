"""What every command shares: consoles, and turning library errors into one line + exit 1 and
stop signals (Ctrl-C, SIGTERM, SIGHUP) into one line + exit 128+signal."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any

import typer
from rich.console import Console

from ..errors import SqnxtError
from ..interrupts import describe, exit_code, stop_on_signals

# Tables and results go to stdout; progress and messages to stderr, so `--json` output stays parseable.
# Piped or captured output gets a wide console: rich's 80-column default squeezes the bench table into ellipses.
out = Console(width=None if sys.stdout.isatty() else 180)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 180)


def print_json(data: Any) -> None:
    """Print `data` as indented JSON on stdout (paths and other objects as strings)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `error: message` (markup escaped) on stderr and return the Exit to raise."""
    from rich.markup import escape

    # escape: messages carry brackets ("pip install 'sqnxt-edge[tflite]'") that rich would eat as markup tags
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


def one_line(exc: BaseException) -> str:
    """An exception as one line of text (its type name when it has no message)."""
    text = str(exc).strip()
    return " ".join(text.split()) if text else type(exc).__name__


def handle_errors(func):
    """User mistakes (SqnxtError) and stop signals become one line and a non-zero exit, never a traceback.

    The command runs inside `stop_on_signals()`: SIGTERM and SIGHUP unwind it like Ctrl-C (the library's cleanup
    runs), then the process exits 128+signal (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP) with "error: stopped by SIGTERM".
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            with stop_on_signals():
                return func(*args, **kwargs)
        except SqnxtError as exc:
            raise fail(one_line(exc)) from None
        except KeyboardInterrupt as exc:
            raise fail(describe(exc), code=exit_code(exc)) from None

    return wrapper
