"""`sqnxt-edge train` and `sqnxt-edge eval`: thin wrappers over `sqnxt_edge.training`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .common import err, out, print_json
from .options import (
    BatchSizeOpt,
    ClassesOpt,
    DataDirOpt,
    DataOpt,
    DatasetOpt,
    DeviceOpt,
    DevicesOpt,
    EpochsOpt,
    JsonOpt,
    ModelOpt,
    OldDataShortOpt,
    OldOutOpt,
    OldRecipeShortOpt,
    OldTrainDeviceOpt,
    OutputOpt,
    RuntimeOpt,
    SizeOpt,
    ThreadsOpt,
    TorchDeviceOpt,
    board_or_dataset,
    old_train_device,
    renamed,
)


def train_cmd(
    model: ModelOpt = "1.0-SqNxt-23",
    data: DataOpt = "digits",
    data_dir: DataDirOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchSizeOpt = None,
    lr: Annotated[
        Optional[float],
        typer.Option("--lr", help="Peak learning rate at this batch size (default: the recipe's, scaled linearly)."),
    ] = None,
    weight_decay: Annotated[
        Optional[float], typer.Option("--weight-decay", help="Weight decay (default: the recipe's).")
    ] = None,
    recipe: Annotated[
        Optional[str],
        typer.Option("--recipe", help="seed-cifar, paper-imagenet or digits-fast (default: the dataset's)."),
    ] = None,
    input_size: SizeOpt = None,
    output: OutputOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --output from its last.pt.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed for init, shuffling and augmentation.")] = 0,
    no_augment: Annotated[bool, typer.Option("--no-augment", help="Train without crop/flip augmentation.")] = False,
    torch_device: TorchDeviceOpt = "auto",
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
    old_device: OldTrainDeviceOpt = None,
    old_data: OldDataShortOpt = None,
    old_recipe: OldRecipeShortOpt = None,
    old_out: OldOutOpt = None,
) -> None:
    """Train a model; writes best.pt, last.pt, metrics.jsonl, curves.png and config.json to the run folder.

    --output defaults to runs/<model>-<data>-<time>/; --torch-device to auto (CUDA + AMP when present)."""
    from ..training import TrainConfig, train

    torch_device = old_train_device(torch_device, old_device)
    data = renamed(data, old_data, "-d", "--data", default="digits")
    recipe = renamed(recipe, old_recipe, "-r", "--recipe")
    output = renamed(output, old_out, "--out", "--output")
    config = TrainConfig(
        model=model or "1.0-SqNxt-23",
        data=data or "digits",
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
        device=torch_device,
        threads=threads,
    )
    try:
        result = train(config, progress=not json_out)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP (handle_errors turns the last two into this too)
        from ..interrupts import describe, exit_code

        where = f" --output {output}" if output else ""
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
            help="A checkpoint (.pt/.pth/.ckpt; foreign files with --model) or an exported .onnx / .ort / .tflite "
            "/ .pte / .ncnn.param."
        ),
    ],
    data: DataOpt = None,
    data_dir: DataDirOpt = None,
    split: Annotated[str, typer.Option("--split", help="test (or val) or train.")] = "test",
    batch_size: BatchSizeOpt = 256,
    model: ModelOpt = None,
    num_classes: ClassesOpt = None,
    input_size: SizeOpt = None,
    dataset: DatasetOpt = None,
    runtime: RuntimeOpt = "auto",
    threads: ThreadsOpt = None,
    device: DeviceOpt = "local",
    devices: DevicesOpt = None,
    json_out: JsonOpt = False,
    per_class: Annotated[bool, typer.Option("--per-class", help="Also each class's top-1.")] = False,
) -> None:
    """Top-1 / top-5 accuracy (percent) of a checkpoint or exported model on a dataset split, here or on a board.

    -d is the board here as in every command (it was --data before): a dataset name given to -d that is no
    registered board is still read as --data, with a warning, for one release."""
    from ..progress import progress_bar
    from ..training import evaluate

    device, data = board_or_dataset(device, data, devices)

    with progress_bar(f"evaluating on {device}", total=None, enabled=device != "local" and err.is_terminal):
        result = evaluate(
            artifact,
            data=data,
            split=split,
            data_dir=data_dir,
            batch_size=batch_size or 256,
            model=model,
            num_classes=num_classes,
            input_size=input_size,
            runtime=runtime,
            threads=threads,
            dataset=dataset,
            board=device,
            devices_file=devices,
            per_class=per_class,
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
    if result.per_class:
        per = Table(title="top-1 per class")
        for col in ("class", "images", "correct", "top-1"):
            per.add_column(col, justify="left" if col == "class" else "right")
        for c in result.per_class:
            top1 = f"{c['top1']:.2f}%" if c["top1"] is not None else "-"
            name = c["label"] if c["label"] == str(c["index"]) else f"{c['index']} {c['label']}"
            per.add_row(name, str(c["n"]), str(c["correct"]), top1)
        out.print(per)
