"""From what a user asked (`TrainConfig` with `None`s) to what a run does: the recipe's values filled in, scaled to
the batch actually used; the default run folder; the config and recipe a resumed run continues with."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from ..checkpoint import Checkpoint, load_checkpoint
from ..data import dataset_info
from ..errors import SqnxtError
from ..models import create_model, resolve_name
from .config import TrainConfig
from .recipes import Recipe, get_recipe

__all__ = ["resolve_config", "default_out", "load_resume"]


def resolve_config(config: TrainConfig) -> tuple[TrainConfig, Recipe]:
    """Fill every `None` from the recipe and the dataset; the recipe comes back with the values actually used
    (lr and warm-up at the batch size used, step milestones scaled to the epoch count)."""
    info = dataset_info(config.data)
    base = get_recipe(config.recipe or info.recipe)
    batch = int(config.batch_size or base.batch_size)
    epochs = int(config.epochs or base.epochs)
    if batch < 1 or epochs < 1:
        raise SqnxtError(f"--batch-size and --epochs must be positive (got {batch}, {epochs})")
    if config.threads is not None and config.threads < 1:
        raise SqnxtError(f"--threads must be at least 1 (got {config.threads})")
    lr = float(config.lr) if config.lr is not None else base.scaled_lr(batch)
    if not lr > 0:
        raise SqnxtError(f"--lr must be positive (got {lr})")
    ratio = lr / base.lr
    recipe = replace(
        base,
        epochs=epochs,
        batch_size=batch,
        lr=lr,
        base_batch=batch,
        weight_decay=base.weight_decay if config.weight_decay is None else float(config.weight_decay),
        milestones=tuple(max(1, round(m * epochs / base.epochs)) for m in base.milestones),
        warmup_iters=round(base.warmup_iters * base.base_batch / batch) if base.warmup_iters else 0,
        warmup_start_lr=None if base.warmup_start_lr is None else base.warmup_start_lr * ratio,
    )
    input_size = int(config.input_size or info.input_size)
    model_name = resolve_name(config.model)
    stem = create_model(model_name, 2, input_size).stem_kind if config.stem is None else config.stem
    data_dir = Path(config.data_dir).expanduser().resolve() if config.data_dir else None
    effective = replace(
        config,
        model=model_name,
        data=info.name,
        data_dir=data_dir,
        recipe=base.name,
        epochs=epochs,
        batch_size=batch,
        lr=lr,
        weight_decay=recipe.weight_decay,
        input_size=input_size,
        stem=stem,
    )
    return effective, recipe


def default_out(config: TrainConfig) -> Path:
    """A new run folder under runs/ named after model, data and time."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path("runs") / f"{config.model}-{config.data}-{stamp}"
    n = 1
    while out.exists():
        n += 1
        out = Path("runs") / f"{config.model}-{config.data}-{stamp}-{n}"
    return out


def load_resume(config: TrainConfig) -> tuple[TrainConfig, Recipe, Checkpoint]:
    """The config, recipe and checkpoint to continue the run in `config.out` from its last.pt."""
    if config.out is None:
        raise SqnxtError("--resume needs --output DIR: the run folder that holds last.pt")
    last = Path(config.out) / "last.pt"
    if not last.is_file():
        raise SqnxtError(f"nothing to resume: {last} does not exist")
    ckpt = load_checkpoint(last)
    stored = ckpt.config
    if "train" not in stored or "recipe" not in stored or "optimizer" not in ckpt.extra:
        raise SqnxtError(f"{last} has no training state to resume from")
    fields = TrainConfig.__dataclass_fields__
    train_cfg = TrainConfig(**{k: v for k, v in stored["train"].items() if k in fields})
    recipe_data = dict(stored["recipe"])
    recipe_data["milestones"] = tuple(recipe_data.get("milestones") or ())
    recipe = Recipe(**{k: v for k, v in recipe_data.items() if k in Recipe.__dataclass_fields__})
    if config.epochs and config.epochs != train_cfg.epochs:  # the one thing a resume may change: run longer
        train_cfg.epochs = int(config.epochs)
        recipe = replace(recipe, epochs=int(config.epochs))
    train_cfg.data_dir = Path(train_cfg.data_dir) if train_cfg.data_dir else None
    train_cfg.out = Path(config.out)
    train_cfg.resume = True
    train_cfg.device = config.device
    train_cfg.threads = config.threads or train_cfg.threads  # the run's own count unless asked otherwise
    return train_cfg, recipe, ckpt
