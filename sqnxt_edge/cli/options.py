"""Every option that more than one command takes, declared once (Typer's `Annotated` aliases), so that a flag and its
short flag mean one thing in every command; tests/test_cli_options.py walks the command tree and checks it.

Short flags: -b --batch-size, -d --device (the board), -e --epochs, -f --format, -k --num-classes, -m --model,
-n --runs, -o --output, -p --precision, -r --runtime, -s --input-size, -t --threads (and -V --version, -h --help).
`--data` has no short flag: `-d` was `--data` in train and eval and `--device` elsewhere.

Old spellings are hidden options that still work for one release and print `warning: OLD is deprecated; use NEW`
on stderr (`DEPRECATED` lists them; `renamed` applies one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional, TypeVar

import typer

from .common import err, fail

T = TypeVar("T")

BOARD = "a board from the device registry (real or emulated, see `sqnxt-edge devices`)"

# -- where it runs --------------------------------------------------------------------------------------------------
DEVICE_HELP = (
    f"Where it runs: 'local' (this machine) or {BOARD}; estimate and select also take a hardware profile "
    "(rpi4, rpi5, jetson-nano ...); bench takes it again, or a group of devices.toml, to measure several boards "
    "at once."
)
DeviceOpt = Annotated[str, typer.Option("--device", "-d", help=DEVICE_HELP)]
BoardsOpt = Annotated[Optional[list[str]], typer.Option("--device", "-d", help=DEVICE_HELP)]  # the repeatable one
CoresOpt = Annotated[
    Optional[str],
    typer.Option(
        "--cores",
        help="Run on these cores only (4-7, 0,2): pinned before the runtime starts its threads; threads default to "
        "one per pinned core. `devices check` names a big.LITTLE board's big cores.",
    ),
]
DurationOpt = Annotated[
    Optional[str],
    typer.Option(
        "--duration",
        help="Sustained run: keep each model running this long (90s, 10m) and record latency, temperature and clock "
        "per window; says whether and when the board throttled (--plot: over time).",
    ),
]
CooldownOpt = Annotated[
    Optional[str],
    typer.Option(
        "--cooldown", help="Between artifacts, wait until the board is down to a temperature (50C) or for a time (30s)."
    ),
]
VerifyOnOpt = Annotated[
    Optional[str],
    typer.Option(
        "--verify-on",
        help=f"Also verify on {BOARD}: every artifact must pass there; its CPU class joins the artifact's verified_on.",
    ),
]
DevicesOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--devices", help="Device registry TOML (default: $SQNXT_EDGE_DEVICES, else ~/.config/sqnxt-edge/devices.toml)."
    ),
]
ThreadsOpt = Annotated[
    Optional[int],
    typer.Option(
        "--threads",
        "-t",
        help="Threads per inference or training step (default: the board's setting, else the physical cores other "
        "processes leave free); devices add/emulate store it as the board's setting.",
    ),
]
TorchDeviceOpt = Annotated[
    str, typer.Option("--torch-device", help="What trains here: auto (CUDA + AMP if present), cpu, cuda or cuda:N.")
]
RuntimeOpt = Annotated[
    str,
    typer.Option(
        "--runtime",
        "-r",
        help="auto, onnxruntime, openvino, litert, tflite-runtime, executorch, ncnn or torch (.pt); auto: bench "
        "measures every installed runtime of the format, eval uses the format's default.",
    ),
]

# -- data -----------------------------------------------------------------------------------------------------------
DataOpt = Annotated[
    Optional[str],
    typer.Option(
        "--data",
        help="Dataset: digits, cifar10, cifar100, tiny-imagenet or folder (default: the one recorded with the "
        "checkpoint or artifact; bench: no top-1 without it).",
    ),
]
DataDirOpt = Annotated[
    Optional[Path], typer.Option("--data-dir", help="Folder holding the dataset's files (not needed for digits).")
]
DatasetOpt = Annotated[
    Optional[str],
    typer.Option(
        "--dataset", help="What a foreign file was trained on: its normalization and class names (e.g. cifar10)."
    ),
]

# -- the model ------------------------------------------------------------------------------------------------------
ModelOpt = Annotated[
    Optional[str],
    typer.Option(
        "--model",
        "-m",
        help="Architecture, a name from `sqnxt-edge models` (any accepted spelling, e.g. SqNxt_23_1x); for a "
        "foreign file (state_dict or whole pickled model), the one it holds.",
    ),
]
ClassesOpt = Annotated[
    Optional[int],
    typer.Option("--num-classes", "-k", help="Classifier outputs (a foreign file: default its classifier's width)."),
]
SizeOpt = Annotated[
    Optional[int],
    typer.Option(
        "--input-size",
        "-s",
        help="Input side in pixels (32, 64, 227 ...; default: the checkpoint's, else the dataset's, else the model's).",
    ),
]
PrecisionOpt = Annotated[
    Optional[str],
    typer.Option(
        "--precision", "-p", help="fp32, fp16 or int8 (estimate: default the artifact's, else fp32; select: or any)."
    ),
]

# -- formats and batches --------------------------------------------------------------------------------------------
FormatOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--format", "-f", help="onnx, ort, tflite, pte, ncnn or all; repeat it or comma-separate (onnx,tflite)."
    ),
]
Int8Opt = Annotated[
    bool, typer.Option("--int8/--no-int8", help="int8 artifacts too (calibrated on real data, accuracy-checked).")
]
BatchOpt = Annotated[
    Optional[int],
    typer.Option("--batch", help="Images per inference (export: fixed in the artifacts' input; default 1)."),
]
BatchSizeOpt = Annotated[
    Optional[int],
    typer.Option("--batch-size", "-b", help="Images per batch (train: the global batch, default the recipe's)."),
]
EpochsOpt = Annotated[Optional[int], typer.Option("--epochs", "-e", help="Training epochs (default: the recipe's).")]
RunsOpt = Annotated[
    int,
    typer.Option("--runs", "-n", help="Timed runs after the warm-up (bench: at least this many, and --min-seconds)."),
]

# -- what is written ------------------------------------------------------------------------------------------------
OutputOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--output",
        "-o",
        help="Where to write: a folder (train, demo: the run; export: the artifacts; pipeline: the report) or a file "
        "(bench: .json, .csv or .md; import: the checkpoint; predict: .json). Defaults in the command's help.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout instead of tables.")]
PlotOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--plot",
        help="Write a PNG: bench the latency distribution per artifact, profile the time per layer and stage, "
        "select latency vs top-1 with the Pareto front.",
    ),
]
LayersOpt = Annotated[bool, typer.Option("--layers", help="Show the per-layer table too.")]

# -- devices --------------------------------------------------------------------------------------------------------
NameArg = Annotated[str, typer.Argument(help="Device name, as registered.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace a device of that name.")]
TimeoutOpt = Annotated[
    Optional[float],
    typer.Option(
        "--timeout",
        help="Seconds: devices add/emulate, what one run on the board may take (default 600, emulated 3600); "
        "devices check, the whole check (default the board's, at most 120).",
    ),
]


# -- old spellings, accepted for one release ------------------------------------------------------------------------
def _hidden(*names: str) -> typer.models.OptionInfo:
    return typer.Option(*names, hidden=True, help="Deprecated spelling, kept for one release.")


OldFormatsOpt = Annotated[Optional[list[str]], _hidden("--formats")]  # pipeline, demo -> --format
OldTrainDeviceOpt = Annotated[Optional[str], _hidden("--device")]  # train -> --torch-device
OldDataShortOpt = Annotated[Optional[str], _hidden("-d")]  # train -> --data (-d is the board elsewhere)
OldRecipeShortOpt = Annotated[Optional[str], _hidden("-r")]  # train -> --recipe (-r is --runtime elsewhere)
OldOutOpt = Annotated[Optional[Path], _hidden("--out")]  # train -> --output
OldBatchShortOpt = Annotated[Optional[int], _hidden("-b")]  # bench -> --batch (-b is --batch-size elsewhere)
OldBudgetShortOpt = Annotated[Optional[float], _hidden("-b")]  # select -> --budget-ms

# (command, old spelling) -> the new one; tests/test_cli_options.py checks every hidden option is listed here
DEPRECATED: dict[tuple[str, str], str] = {
    ("pipeline", "--formats"): "--format",
    ("demo", "--formats"): "--format",
    ("train", "--device"): "--torch-device",
    ("train", "-d"): "--data",
    ("train", "-r"): "--recipe",
    ("train", "--out"): "--output",
    ("bench", "-b"): "--batch",
    ("select", "-b"): "--budget-ms",
}


def warn(message: str) -> None:
    """One `warning: ...` line on stderr (stdout stays clean for --json)."""
    err.print(f"warning: {message}", highlight=False, markup=False, soft_wrap=True)


def deprecated(old: str, new: str) -> None:
    """Say that an old spelling still works this release and what replaces it."""
    warn(f"{old} is deprecated; use {new}")


def renamed(value: T, old_value: T | None, old: str, new: str, default: T | None = None) -> T:
    """The value of an option given under its old spelling (with the deprecation line) or its new one; both at once
    is a mistake (exit 1)."""
    if old_value is None or old_value == []:
        return value
    deprecated(old, new)
    if value is not None and value != default and value != []:
        raise fail(f"{old} and {new} are the same option; give {new} only")
    return old_value


TORCH_DEVICES = ("auto", "cpu", "cuda")


def old_train_device(torch_device: str, old_value: str | None) -> str:
    """`train --device cpu|cuda|cuda:N|auto` (the old spelling of --torch-device); a board name has no meaning there."""
    if old_value is not None and old_value.split(":")[0] not in TORCH_DEVICES:
        raise fail(
            f"train --device is now --torch-device (auto, cpu, cuda or cuda:N); {old_value!r} is not a torch device "
            "(training runs here; boards are for bench, eval, profile and export --verify-on)"
        )
    return renamed(torch_device, old_value, "--device", "--torch-device", default="auto")


def board_or_dataset(device: str, data: str | None, devices_file: Path | None) -> tuple[str, str | None]:
    """`eval -d NAME`: -d is the board now (it was --data in eval before). A dataset name that is no registered board
    is still read as --data for one release, with a warning; anything else is a board."""
    if device == "local" or data is not None:
        return device, data
    from ..data import DATASETS
    from ..devices import load_devices
    from ..errors import SqnxtError

    if device not in DATASETS:
        return device, data
    try:
        registered = device in load_devices(devices_file)
    except SqnxtError:  # a broken registry: the board lookup reports it if the name is used as a board
        registered = False
    if registered:
        return device, data
    warn(
        f"-d is the board (--device) now, in eval too; {device!r} is a dataset and no board of that name is "
        f"registered, so it is read as --data {device} for this release: write --data {device}"
    )
    return "local", device
