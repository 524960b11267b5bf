"""`sqnxt-edge train` and `sqnxt-edge eval`: thin wrappers over `sqnxt_edge.training`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .common import JsonOpt, err, out, print_json
from .importer import ClassesOpt, DatasetOpt, ModelOpt, SizeOpt

DataDirOpt = Annotated[
    Optional[Path], typer.Option("--data-dir", help="Folder holding the dataset files (not needed for digits).")
]
DataOpt = Annotated[str, typer.Option("--data", "-d", help="digits, cifar10, cifar100, tiny-imagenet or folder.")]


def train_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (see `sqnxt-edge models`).")] = "1.0-SqNxt-23",
    data: DataOpt = "digits",
    data_dir: DataDirOpt = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", "-e", help="Epochs (default: the recipe's).")] = None,
    batch_size: Annotated[
        Optional[int], typer.Option("--batch-size", "-b", help="Global batch size (default: the recipe's).")
    ] = None,
    lr: Annotated[
        Optional[float],
        typer.Option("--lr", help="Peak learning rate at this batch size (default: the recipe's, scaled linearly)."),
    ] = None,
    weight_decay: Annotated[
        Optional[float], typer.Option("--weight-decay", help="Weight decay (default: the recipe's).")
    ] = None,
    recipe: Annotated[
        Optional[str],
        typer.Option("--recipe", "-r", help="seed-cifar, paper-imagenet or digits-fast (default: the dataset's)."),
    ] = None,
    input_size: Annotated[
        Optional[int], typer.Option("--input-size", "-s", help="Model input side in pixels (default: the dataset's).")
    ] = None,
    output: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", "--output", help="Run folder (default: runs/<model>-<data>-<time>/)."),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last.pt.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed for init, shuffling and augmentation.")] = 0,
    no_augment: Annotated[bool, typer.Option("--no-augment", help="Train without crop/flip augmentation.")] = False,
    device: Annotated[
        str, typer.Option("--device", help="auto (CUDA + AMP if present), cpu, cuda or cuda:N.")
    ] = "auto",
    threads: Annotated[
        Optional[int],
        typer.Option(
            "--threads",
            "-t",
            help="CPU threads (default: the physical cores other processes leave free when the run starts).",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Train a model; writes best.pt, last.pt, metrics.jsonl, curves.png and config.json to the run folder."""
    from ..training import TrainConfig, train

    config = TrainConfig(
        model=model,
        data=data,
        data_dir=data_dir,
        recipe=recipe,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        input_size=input_size,
        augment=not no_augment,
        seed=seed,
        out=output,
        resume=resume,
        device=device,
        threads=threads,
    )
    try:
        result = train(config, progress=not json_out)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP (handle_errors turns the last two into this too)
        from ..interrupts import describe, exit_code

        where = f" --out {output}" if output else ""
        err.print(
            f"{describe(exc)}: the last finished epoch is saved; continue with `sqnxt-edge train --resume{where}`",
            highlight=False,
        )
        raise typer.Exit(exit_code(exc)) from None
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports (and writes files)
        return
    if json_out:
        print_json(result.to_dict())
        return
    last = result.history[-1] if result.history else {}
    out.print(
        f"best test top-1 {result.best_top1:.2f}% (epoch {result.best_epoch}); last epoch "
        f"{last.get('test_top1', 0):.2f}% in {result.seconds:.0f} s",
        highlight=False,
    )
    out.print(f"best checkpoint: {result.best_path}\nrun folder:      {result.out_dir}", highlight=False)


def eval_cmd(
    artifact: Annotated[
        Path,
        typer.Argument(
            help="A checkpoint (.pt/.pth/.ckpt; foreign files with --model) or an exported .onnx / .ort / .tflite."
        ),
    ],
    data: Annotated[
        Optional[str], typer.Option("--data", "-d", help="Dataset (default: the one recorded with the artifact).")
    ] = None,
    data_dir: DataDirOpt = None,
    split: Annotated[str, typer.Option("--split", help="test (or val) or train.")] = "test",
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Images per inference batch.")] = 256,
    model: ModelOpt = None,
    num_classes: ClassesOpt = None,
    input_size: SizeOpt = None,
    dataset: DatasetOpt = None,
    runtime: Annotated[
        str, typer.Option("--runtime", help="For exported files: auto, onnxruntime, litert, tflite-runtime.")
    ] = "auto",
    threads: Annotated[Optional[int], typer.Option("--threads", help="Runtime threads for exported files.")] = None,
    device: Annotated[
        str,
        typer.Option("--device", help="'local' or a registered board (real or emulated) the exported file runs on."),
    ] = "local",
    devices: Annotated[
        Optional[Path],
        typer.Option("--devices", help="Device registry TOML (default: ~/.config/sqnxt-edge/devices.toml)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Top-1 / top-5 accuracy (percent) of a checkpoint or exported model on a dataset split."""
    from ..progress import progress_bar
    from ..training import evaluate

    with progress_bar(f"evaluating on {device}", total=None, enabled=device != "local" and err.is_terminal):
        result = evaluate(
            artifact,
            data=data,
            split=split,
            data_dir=data_dir,
            batch_size=batch_size,
            model=model,
            num_classes=num_classes,
            input_size=input_size,
            runtime=runtime,
            threads=threads,
            dataset=dataset,
            board=device,
            devices_file=devices,
        )
    if json_out:
        print_json(result.to_dict())
        return
    where = f" on {result.device}" + (" (EMULATED)" if result.emulated else "") if result.device else ""
    table = Table(title=f"{Path(result.artifact).name} on {result.dataset}/{result.split}{where}")
    for col in ("top-1", "top-5", "images", "runtime", "seconds"):
        table.add_column(col, justify="right" if col != "runtime" else "left")
    table.add_row(f"{result.top1:.2f}%", f"{result.top5:.2f}%", str(result.n), result.runtime, f"{result.seconds:.1f}")
    out.print(table)
