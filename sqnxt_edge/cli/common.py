"""What every command shares: consoles, the --json option, and turning library errors into one line + exit 1."""

from __future__ import annotations

import functools
import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from ..errors import SqnxtError

# Tables and results go to stdout; progress and messages to stderr, so `--json` output stays parseable.
# Piped or captured output gets a wide console: rich's 80-column default squeezes the bench table into ellipses.
out = Console(width=None if sys.stdout.isatty() else 180)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 180)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout instead of tables.")]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> typer.Exit:
    from rich.markup import escape

    # escape: messages carry brackets ("pip install 'sqnxt-edge[tflite]'") that rich would eat as markup tags
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.split()) if text else type(exc).__name__


def handle_errors(func):
    """User mistakes (SqnxtError) and Ctrl-C become one line and a non-zero exit, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SqnxtError as exc:
            raise fail(one_line(exc)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", code=130) from None

    return wrapper
