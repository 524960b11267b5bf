"""The `sqnxt-edge` command: thin Typer commands over the library.

Every command module imports the library inside its function, so `sqnxt-edge --help` and the device commands start
without loading torch. The application (not the library) decides how third-party log records are shown.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from .._version import __version__
from .bench import bench_cmd
from .common import handle_errors, out
from .devices import devices_app
from .export import export_cmd
from .importer import import_cmd
from .models import models_cmd
from .pipeline import demo_cmd, pipeline_cmd
from .predict import predict_cmd
from .profile import estimate_cmd, profile_cmd, select_cmd
from .train import eval_cmd, train_cmd

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
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """SqueezeNext edge toolkit."""


COMMANDS = {
    "models": models_cmd,
    "train": train_cmd,
    "eval": eval_cmd,
    "export": export_cmd,
    "predict": predict_cmd,
    "bench": bench_cmd,
    "pipeline": pipeline_cmd,
    "demo": demo_cmd,
    "import": import_cmd,
    "profile": profile_cmd,
    "estimate": estimate_cmd,
    "select": select_cmd,
}
for _name, _fn in COMMANDS.items():
    app.command(_name)(handle_errors(_fn))
app.add_typer(devices_app, name="devices")


def main() -> None:
    """The `sqnxt-edge` entry point: quiet library loggers, then the Typer app."""
    # Converters and quantizers log progress chatter at INFO/WARNING on the root logger; errors still show.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
