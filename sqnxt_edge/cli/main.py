"""The `sqnxt-edge` command: thin Typer commands over the library."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from .common import handle_errors, out
from .models import models

app = typer.Typer(
    name="sqnxt-edge",
    help="Train, export (ONNX, ORT Mobile, TFLite, int8) and benchmark SqueezeNext / SqueezeNet on edge devices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        out.print(f"sqnxt-edge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", "-V", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """SqueezeNext edge toolkit."""


app.command("models")(handle_errors(models))


def _register_optional() -> None:
    """Commands of the later pipeline stages register themselves here as they land."""
    import importlib

    for module, names in (
        ("train", ("train", "eval")),
        ("export", ("export",)),
        ("bench", ("bench",)),
        ("pipeline", ("pipeline", "demo")),
    ):
        try:
            mod = importlib.import_module(f"{__package__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{module}":
                raise
            continue
        for name in names:
            app.command(name)(handle_errors(getattr(mod, name.replace("-", "_") + "_cmd")))
    try:
        from .devices import devices_app
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.devices":
            raise
    else:
        app.add_typer(devices_app, name="devices")


_register_optional()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
