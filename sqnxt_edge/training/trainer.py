"""`train(TrainConfig) -> TrainResult`: one loop for every dataset, recipe and device.

Every epoch ends with a test pass and three atomic writes: `best.pt` (when test top-1 improves, weights only),
`last.pt` (plus optimizer, scheduler, scaler and RNG state) and `metrics.jsonl` / `curves.png`. A crash or Ctrl-C
therefore loses at most the epoch in progress. Shuffling, augmentation and dropout draw from generators seeded by
(seed, epoch), so `resume=True` continues from `last.pt` to exactly the weights an uninterrupted run reaches.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from .._version import __version__
from ..checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ..data import augment_batch, dataset_info, load_dataset, preprocess, resize_uint8
from ..errors import SqnxtError
from ..models import create_model, resolve_name
from ..progress import make_progress
from . import distributed
from .config import TrainConfig, TrainResult
from .metrics import topk_correct, torch_logits
from .recipes import Recipe, get_recipe, lr_factor
from .report import plot_curves, write_json, write_metrics

__all__ = ["train", "resolve_config"]

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"


def resolve_config(config: TrainConfig) -> tuple[TrainConfig, Recipe]:
    """Fill every `None` from the recipe and the dataset; the recipe comes back with the values actually used
    (lr and warm-up at the batch size used, step milestones scaled to the epoch count)."""
    info = dataset_info(config.data)
    base = get_recipe(config.recipe or info.recipe)
    batch = int(config.batch_size or base.batch_size)
    epochs = int(config.epochs or base.epochs)
    if batch < 1 or epochs < 1:
        raise SqnxtError(f"--batch-size and --epochs must be positive (got {batch}, {epochs})")
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
    effective = replace(config, model=model_name, data=info.name, data_dir=data_dir, recipe=base.name, epochs=epochs,
                        batch_size=batch, lr=lr, weight_decay=recipe.weight_decay, input_size=input_size, stem=stem)
    return effective, recipe


def _default_out(config: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path("runs") / f"{config.model}-{config.data}-{stamp}"
    n = 1
    while out.exists():
        n += 1
        out = Path("runs") / f"{config.model}-{config.data}-{stamp}-{n}"
    return out


def _load_resume(config: TrainConfig) -> tuple[TrainConfig, Recipe, Checkpoint]:
    if config.out is None:
        raise SqnxtError("--resume needs --out DIR: the run folder that holds last.pt")
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
    return train_cfg, recipe, ckpt


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def train(config: TrainConfig, progress: bool = True,
          on_epoch: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Train, test after every epoch, write the run folder; returns where everything went and the history.

    `on_epoch(record)` is called after each epoch's files are written (raise KeyboardInterrupt there to stop).
    """
    started = time.perf_counter()
    dist, device = distributed.setup(config.device)
    try:
        return _train(config, dist, device, progress, on_epoch, started)
    finally:
        distributed.cleanup(dist)


def _train(config, dist, device, progress, on_epoch, started) -> TrainResult:
    resume_ckpt = None
    if config.resume:
        config, recipe, resume_ckpt = _load_resume(config)
    else:
        config, recipe = resolve_config(config)
        if config.out is None:
            config.out = distributed.broadcast(_default_out(config), dist)
        if (Path(config.out) / "last.pt").exists():
            raise SqnxtError(f"{config.out} already holds a run: pass --resume to continue it, or choose another --out")
    out = Path(config.out)
    amp = bool(device.type == "cuda" if config.amp is None else config.amp and device.type == "cuda")
    config.amp = amp
    info = dataset_info(config.data)

    train_set = load_dataset(config.data, "train", config.data_dir, image_size=config.input_size)
    test_set = load_dataset(config.data, "test", config.data_dir, image_size=config.input_size)
    if test_set.classes != train_set.classes:
        raise SqnxtError(f"{config.data}: train and test splits have different classes")
    aug = info.augment if config.augment else None

    if device.type == "cuda":  # --seed means the same run again, also on a GPU
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    torch.manual_seed(config.seed)
    model = create_model(config.model, len(train_set.classes), config.input_size, train_set.channels, config.stem)
    if recipe.zero_init_residual:
        _zero_init_residual(model)
    model.to(device)
    params_decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    params_no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]  # BN affine and biases
    groups = [{"params": params_decay, "weight_decay": recipe.weight_decay},
              {"params": params_no_decay, "weight_decay": 0.0}]
    if recipe.optimizer == "adamw":
        optimizer = torch.optim.AdamW(groups, lr=recipe.lr, betas=(recipe.momentum, 0.999))
    elif recipe.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum,
                                    nesterov=recipe.nesterov and recipe.momentum > 0)
    else:
        raise SqnxtError(f"unknown optimizer {recipe.optimizer!r} in recipe {recipe.name}")
    per_rank_batch = max(1, recipe.batch_size // dist.world_size)
    sampler = DistributedSampler(range(len(train_set)), num_replicas=dist.world_size, rank=dist.rank,
                                 shuffle=True, seed=config.seed, drop_last=False)
    steps_per_epoch = max(1, math.ceil(len(sampler) / per_rank_batch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(recipe, step, steps_per_epoch, recipe.epochs, recipe.batch_size))
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    history: list[dict[str, Any]] = []
    best_top1, best_epoch, start_epoch = -1.0, 0, 0
    if resume_ckpt is not None:
        model.load_state_dict(resume_ckpt.state_dict)
        optimizer.load_state_dict(resume_ckpt.extra["optimizer"])
        scheduler.load_state_dict(resume_ckpt.extra["scheduler"])
        if amp and resume_ckpt.extra.get("scaler"):
            scaler.load_state_dict(resume_ckpt.extra["scaler"])
        history = [dict(r) for r in resume_ckpt.extra.get("history", [])]
        best_top1 = float(resume_ckpt.metrics.get("best_top1", -1.0))
        best_epoch = int(resume_ckpt.metrics.get("best_epoch", 0))
        start_epoch = resume_ckpt.epoch

    net = model
    if dist.enabled:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    saved_config = {"train": config.to_dict(), "recipe": recipe.to_dict(), "dataset_info": {
        "mean": list(train_set.mean), "std": list(train_set.std),
        "augment": None if aug is None else {"pad": aug.pad, "flip": aug.flip},
        "train_images": len(train_set), "test_images": len(test_set)},
        "device": str(device), "world_size": dist.world_size, "torch": torch.__version__, "sqnxt_edge": __version__}
    if dist.is_main:
        write_json(out / CONFIG_FILE, saved_config)

    def make_ckpt(epoch: int, metrics: dict, with_state: bool) -> Checkpoint:
        extra = {}
        if with_state:
            extra = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "scaler": scaler.state_dict() if amp else {}, "rng": _rng_state(device), "history": history}
        return Checkpoint(
            model_name=config.model, num_classes=len(train_set.classes), input_size=config.input_size,
            in_channels=train_set.channels, stem=model.stem_kind, classes=list(train_set.classes),
            mean=tuple(train_set.mean), std=tuple(train_set.std), dataset=config.data,
            data_dir=str(config.data_dir) if config.data_dir else None, epoch=epoch, metrics=metrics,
            config=saved_config, state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()}, extra=extra)

    bar = _progress(progress and dist.is_main)
    try:
        for epoch in range(start_epoch, recipe.epochs):
            record = _train_epoch(net, train_set, config, recipe, aug, optimizer, scheduler, scaler, sampler,
                                  per_rank_batch, steps_per_epoch, epoch, dist, device, amp, bar)
            logits = torch_logits(model, test_set.images, config.input_size, test_set.mean, test_set.std,
                                  config.eval_batch_size, device, amp)
            hits = topk_correct(logits, test_set.labels)
            record["test_top1"] = 100.0 * hits[1] / len(test_set)
            record["test_top5"] = 100.0 * hits[5] / len(test_set)
            record["seconds"] = round(record["seconds"] + (time.perf_counter() - record.pop("_t_end")), 3)
            history.append(record)
            improved = record["test_top1"] > best_top1
            if improved:
                best_top1, best_epoch = record["test_top1"], epoch + 1
            metrics = {k: record[k] for k in ("loss", "train_top1", "test_top1", "test_top5")}
            metrics.update(best_top1=best_top1, best_epoch=best_epoch)
            if dist.is_main:
                if improved:
                    save_checkpoint(make_ckpt(epoch + 1, metrics, with_state=False), out / "best.pt")
                save_checkpoint(make_ckpt(epoch + 1, metrics, with_state=True), out / "last.pt")
                write_metrics(out / METRICS_FILE, history)
                plot_curves(out / CURVES_FILE, history, f"{config.model} on {config.data}")
                if bar is not None:
                    bar.console.print(
                        f"epoch {epoch + 1}/{recipe.epochs}  loss {record['loss']:.4f}  train {record['train_top1']:.2f}%"
                        f"  test {record['test_top1']:.2f}%  lr {record['lr']:.4g}  {record['images_per_s']:.0f} img/s",
                        highlight=False)
            distributed.barrier(dist)
            if on_epoch is not None:
                on_epoch(dict(record))
    finally:
        if bar is not None:
            bar.stop()

    return TrainResult(
        out_dir=out, best_path=out / "best.pt", last_path=out / "last.pt", best_top1=max(best_top1, 0.0),
        best_epoch=best_epoch, epochs=len(history), history=history, seconds=round(time.perf_counter() - started, 3),
        config=saved_config, metrics_path=out / METRICS_FILE, curves_path=out / CURVES_FILE,
    )


def _train_epoch(net, train_set, config, recipe, aug, optimizer, scheduler, scaler, sampler, batch, steps, epoch,
                 dist, device, amp, bar) -> dict[str, Any]:
    """One pass over this rank's shard; returns the epoch's record (global loss, top-1, throughput)."""
    net.train()
    sampler.set_epoch(epoch)
    order = np.fromiter(iter(sampler), dtype=np.int64)
    gen = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch * 1_009 + dist.rank)
    torch.manual_seed(config.seed * 7_919 + epoch)  # dropout (SqueezeNet) draws from the global generator
    if device.type == "cuda":
        torch.cuda.manual_seed(config.seed * 7_919 + epoch)
    totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
    task = bar.add_task(f"epoch {epoch + 1}/{recipe.epochs}", total=steps, loss=0.0) if bar is not None else None
    t0 = time.perf_counter()
    for step in range(steps):
        idx = order[step * batch:(step + 1) * batch]
        if len(idx) < 2 and step > 0:  # a lone image cannot make BatchNorm statistics
            break
        images = augment_batch(torch.from_numpy(resize_uint8(train_set.images[idx], config.input_size)), aug, gen)
        x = preprocess(images, config.input_size, train_set.mean, train_set.std).to(device, non_blocking=True)
        y = torch.from_numpy(train_set.labels[idx]).to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=amp):
            logits = net(x)
            loss = F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing)
        if not torch.isfinite(loss):
            raise SqnxtError(f"training diverged at epoch {epoch + 1} step {step + 1} (loss {loss.item()}): lower --lr")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        with torch.no_grad():
            totals += torch.stack([loss.detach().double() * len(idx), (logits.argmax(1) == y).sum().double(),
                                   torch.tensor(float(len(idx)), dtype=torch.float64, device=device)])
        if task is not None:
            bar.update(task, advance=1, loss=float(loss.detach()))
    totals = distributed.all_reduce_sum(totals, dist)
    seconds = time.perf_counter() - t0
    if task is not None:
        bar.remove_task(task)
    loss_sum, correct, count = (float(v) for v in totals.cpu())
    return {"epoch": epoch + 1, "loss": loss_sum / max(count, 1), "train_top1": 100.0 * correct / max(count, 1),
            "lr": float(optimizer.param_groups[0]["lr"]), "images_per_s": round(count / max(seconds, 1e-9), 1),
            "seconds": seconds, "_t_end": time.perf_counter()}


def _zero_init_residual(model: torch.nn.Module) -> None:
    """Zero the last BatchNorm scale of every residual branch (a SqueezeNext block's `expand`): each block starts
    as the identity, which lets a deep net learn from the first steps."""
    for module in model.modules():
        expand = getattr(module, "expand", None)
        if isinstance(expand, torch.nn.Module):
            norms = [m for m in expand.modules() if isinstance(m, torch.nn.BatchNorm2d)]
            if norms:
                torch.nn.init.zeros_(norms[-1].weight)


def _progress(enabled: bool):
    if not enabled:
        return None
    from rich.progress import TextColumn, TimeRemainingColumn

    bar = make_progress(True, TextColumn("loss {task.fields[loss]:.3f}"), TimeRemainingColumn())
    bar.start()
    return bar
