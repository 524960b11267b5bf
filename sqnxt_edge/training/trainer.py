"""`train(TrainConfig) -> TrainResult`: one loop for every dataset, recipe and device.

Every epoch ends with a test pass and atomic writes: `best.pt` (when test top-1 improves, weights only), `last.pt`
(plus optimizer, scheduler, scaler and RNG state) and `metrics.jsonl`; `curves.png` is drawn when the run ends. A
crash or a kill therefore loses at most the epoch in progress. Shuffling, augmentation and dropout draw from
generators seeded by (seed, epoch), so `resume=True` continues from `last.pt` to exactly the weights an
uninterrupted run reaches.

Speed on small CPUs: the training images are resized to the model's input once (when that fits in memory) instead of
every batch, the progress bar redraws twice a second, and nothing but the loss leaves the loop per step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from .._version import __version__
from ..checkpoint import Checkpoint, save_checkpoint
from ..data import Augment, ImageSet, augment_batch, dataset_info, load_dataset, preprocess, resize_uint8
from ..errors import SqnxtError
from ..models import ZooNet, create_model
from ..progress import make_progress
from . import distributed
from .config import TrainConfig, TrainResult
from .metrics import topk_correct, torch_logits
from .recipes import Recipe, lr_factor
from .report import plot_curves, write_json, write_metrics
from .resolve import default_out, load_resume, resolve_config
from .threads import training_threads

__all__ = ["train", "resolve_config"]

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"
RESIZE_ONCE_BYTES = 512 * 2**20  # training images pre-resized to the input when they fit in this much memory


@dataclass(kw_only=True)
class _Run:
    """Everything an epoch needs, built once per run."""

    config: TrainConfig
    recipe: Recipe
    out: Path
    dist: distributed.DistInfo
    device: torch.device
    amp: bool
    train_set: ImageSet
    test_set: ImageSet
    train_images: np.ndarray  # uint8 NHWC, at the input size when that fits in memory
    augment: Augment | None
    model: ZooNet
    net: torch.nn.Module  # the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    sampler: DistributedSampler
    batch: int  # per rank
    steps: int  # per epoch
    saved_config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    best_top1: float = -1.0
    best_epoch: int = 0
    threads_note: str = ""  # how many CPU threads and why, said once when the loop starts

    @property
    def size(self) -> int:
        """The input side in pixels (resolve_config and load_resume always fill it)."""
        assert self.config.input_size is not None
        return self.config.input_size

    def checkpoint(self, epoch: int, metrics: dict, with_state: bool) -> Checkpoint:
        extra = {}
        if with_state:
            rng: dict[str, Any] = {"torch": torch.get_rng_state()}
            if self.device.type == "cuda":
                rng["cuda"] = torch.cuda.get_rng_state(self.device)
            extra = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.amp else {},
                "rng": rng,
                "history": self.history,
            }
        c, ts = self.config, self.train_set
        return Checkpoint(
            model_name=c.model,
            num_classes=len(ts.classes),
            input_size=self.size,
            in_channels=ts.channels,
            stem=self.model.stem_kind,
            classes=list(ts.classes),
            mean=tuple(ts.mean),
            std=tuple(ts.std),
            dataset=c.data,
            data_dir=str(c.data_dir) if c.data_dir else None,
            epoch=epoch,
            metrics=metrics,
            config=self.saved_config,
            state_dict={k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            extra=extra,
        )


def train(
    config: TrainConfig, progress: bool = True, on_epoch: Callable[[dict[str, Any]], None] | None = None
) -> TrainResult:
    """Train, test after every epoch, write the run folder; returns where everything went and the history.

    `on_epoch(record)` is called after each epoch's files are written (raise KeyboardInterrupt there to stop).
    """
    started = time.perf_counter()
    dist, device = distributed.setup(config.device)
    caller_threads = torch.get_num_threads()
    try:
        run, start_epoch = _prepare(config, dist, device)
        if run.config.threads:
            torch.set_num_threads(run.config.threads)
        _loop(run, start_epoch, progress and dist.is_main, on_epoch)
    finally:
        torch.set_num_threads(caller_threads)  # the caller's process keeps its own setting
        distributed.cleanup(dist)
    out = run.out
    return TrainResult(
        out_dir=out,
        best_path=out / "best.pt",
        last_path=out / "last.pt",
        best_top1=max(run.best_top1, 0.0),
        best_epoch=run.best_epoch,
        epochs=len(run.history),
        history=run.history,
        seconds=round(time.perf_counter() - started, 3),
        config=run.saved_config,
        metrics_path=out / METRICS_FILE,
        curves_path=out / CURVES_FILE,
    )


def _prepare(config: TrainConfig, dist, device) -> tuple[_Run, int]:
    resume = None
    if config.resume:
        config, recipe, resume = load_resume(config)
    else:
        config, recipe = resolve_config(config)
        if config.out is None:
            config.out = distributed.broadcast(default_out(config), dist)
        if (Path(config.out) / "last.pt").exists():
            raise SqnxtError(f"{config.out} already holds a run: pass --resume to continue it, or choose another --out")
    assert config.out is not None and config.input_size is not None  # resolve_config / load_resume fill both
    config.amp = amp = bool(device.type == "cuda" if config.amp is None else config.amp and device.type == "cuda")
    threads_note = ""
    if device.type == "cpu":  # fixed for the run and saved with it: a resume sums in the same order
        config.threads, why = training_threads(config.threads)
        threads_note = f"{config.threads} CPU thread(s): {why}"
    train_set = load_dataset(config.data, "train", config.data_dir, image_size=config.input_size)
    test_set = load_dataset(config.data, "test", config.data_dir, image_size=config.input_size)
    if test_set.classes != train_set.classes:
        raise SqnxtError(f"{config.data}: train and test splits have different classes")
    size = config.input_size
    fits = len(train_set) * size * size * train_set.channels <= RESIZE_ONCE_BYTES
    train_images = resize_uint8(train_set.images, size) if fits else train_set.images

    if device.type == "cuda":  # --seed means the same run again, also on a GPU
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    torch.manual_seed(config.seed)
    model = create_model(config.model, len(train_set.classes), size, train_set.channels, config.stem)
    if recipe.zero_init_residual:
        _zero_init_residual(model)
    model.to(device)
    optimizer = _optimizer(model, recipe)
    batch = max(1, recipe.batch_size // dist.world_size)
    sampler: DistributedSampler[int] = DistributedSampler(
        range(len(train_set)),  # type: ignore[arg-type]  # the sampler only takes len(); a range stands for the set
        num_replicas=dist.world_size,
        rank=dist.rank,
        shuffle=True,
        seed=config.seed,
        drop_last=False,
    )
    steps = max(1, math.ceil(len(sampler) / batch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(recipe, step, steps, recipe.epochs, recipe.batch_size)
    )
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    net: torch.nn.Module = model
    if dist.enabled:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    aug = dataset_info(config.data).augment if config.augment else None
    saved_config = {
        "train": config.to_dict(),
        "recipe": recipe.to_dict(),
        "dataset_info": {
            "mean": list(train_set.mean),
            "std": list(train_set.std),
            "augment": None if aug is None else {"pad": aug.pad, "flip": aug.flip},
            "train_images": len(train_set),
            "test_images": len(test_set),
        },
        "device": str(device),
        "world_size": dist.world_size,
        "torch": torch.__version__,
        "sqnxt_edge": __version__,
    }
    run = _Run(
        config=config,
        recipe=recipe,
        out=Path(config.out),
        dist=dist,
        device=device,
        amp=amp,
        train_set=train_set,
        test_set=test_set,
        train_images=train_images,
        augment=aug,
        model=model,
        net=net,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        sampler=sampler,
        batch=batch,
        steps=steps,
        saved_config=saved_config,
        threads_note=threads_note,
    )
    start_epoch = 0
    if resume is not None:
        model.load_state_dict(resume.state_dict)
        optimizer.load_state_dict(resume.extra["optimizer"])
        scheduler.load_state_dict(resume.extra["scheduler"])
        if amp and resume.extra.get("scaler"):
            scaler.load_state_dict(resume.extra["scaler"])
        run.history = [dict(r) for r in resume.extra.get("history", [])]
        run.best_top1 = float(resume.metrics.get("best_top1", -1.0))
        run.best_epoch = int(resume.metrics.get("best_epoch", 0))
        start_epoch = resume.epoch
    if dist.is_main:
        write_json(run.out / CONFIG_FILE, saved_config)
        if resume is not None:  # last.pt is the truth: a kill between last.pt and metrics.jsonl left it one behind
            write_metrics(run.out / METRICS_FILE, run.history)
    return run, start_epoch


def _optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]  # BN affine and biases
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr, betas=(recipe.momentum, 0.999))
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov and recipe.momentum > 0
        )
    raise SqnxtError(f"unknown optimizer {recipe.optimizer!r} in recipe {recipe.name}")


def _loop(run: _Run, start_epoch: int, progress: bool, on_epoch) -> None:
    bar = _progress(progress)
    title = f"{run.config.model} on {run.config.data}"
    if bar is not None and run.threads_note:
        bar.console.print(f"training on {run.threads_note}", highlight=False)
    try:
        for epoch in range(start_epoch, run.recipe.epochs):
            record = _train_epoch(run, epoch, bar)
            _test(run, record)
            if run.dist.is_main:
                _save_epoch(run, record, epoch)
                if bar is not None:
                    bar.console.print(
                        f"epoch {epoch + 1}/{run.recipe.epochs}  loss {record['loss']:.4f}  "
                        f"train {record['train_top1']:.2f}%  test {record['test_top1']:.2f}%  lr {record['lr']:.4g}  "
                        f"{record['images_per_s']:.0f} img/s",
                        highlight=False,
                    )
            distributed.barrier(run.dist)
            if on_epoch is not None:
                on_epoch(dict(record))
    finally:
        if bar is not None:
            bar.stop()
        if run.dist.is_main and run.history:
            plot_curves(run.out / CURVES_FILE, run.history, title)


def _test(run: _Run, record: dict) -> None:
    c, ts = run.config, run.test_set
    logits = torch_logits(run.model, ts.images, run.size, ts.mean, ts.std, c.eval_batch_size, run.device, run.amp)
    hits = topk_correct(logits, ts.labels)
    record["test_top1"] = 100.0 * hits[1] / len(ts)
    record["test_top5"] = 100.0 * hits[5] / len(ts)
    record["seconds"] = round(record["seconds"] + (time.perf_counter() - record.pop("_t_end")), 3)
    run.history.append(record)


def _save_epoch(run: _Run, record: dict, epoch: int) -> None:
    improved = record["test_top1"] > run.best_top1
    if improved:
        run.best_top1, run.best_epoch = record["test_top1"], epoch + 1
    metrics = {k: record[k] for k in ("loss", "train_top1", "test_top1", "test_top5")}
    metrics.update(best_top1=run.best_top1, best_epoch=run.best_epoch)
    if improved:
        save_checkpoint(run.checkpoint(epoch + 1, metrics, with_state=False), run.out / "best.pt")
    save_checkpoint(run.checkpoint(epoch + 1, metrics, with_state=True), run.out / "last.pt")
    write_metrics(run.out / METRICS_FILE, run.history)


def _train_epoch(run: _Run, epoch: int, bar) -> dict[str, Any]:
    """One pass over this rank's shard; returns the epoch's record (global loss, top-1, throughput)."""
    c, device, ts = run.config, run.device, run.train_set
    run.net.train()
    run.sampler.set_epoch(epoch)
    order = np.fromiter(iter(run.sampler), dtype=np.int64)
    gen = torch.Generator().manual_seed(c.seed * 1_000_003 + epoch * 1_009 + run.dist.rank)
    torch.manual_seed(c.seed * 7_919 + epoch)  # dropout (SqueezeNet) draws from the global generator
    if device.type == "cuda":
        torch.cuda.manual_seed(c.seed * 7_919 + epoch)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    count = 0
    task = bar.add_task(f"epoch {epoch + 1}/{run.recipe.epochs}", total=run.steps, loss=0.0) if bar else None
    t0 = time.perf_counter()
    for step in range(run.steps):
        idx = order[step * run.batch : (step + 1) * run.batch]
        if len(idx) < 2 and step > 0:  # a lone image cannot make BatchNorm statistics
            break
        images = augment_batch(torch.from_numpy(resize_uint8(run.train_images[idx], run.size)), run.augment, gen)
        x = preprocess(images, run.size, ts.mean, ts.std).to(device, non_blocking=True)
        y = torch.from_numpy(ts.labels[idx]).to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=run.amp):
            logits = run.net(x)
            loss = F.cross_entropy(logits, y, label_smoothing=run.recipe.label_smoothing)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise SqnxtError(f"training diverged at epoch {epoch + 1} step {step + 1} (loss {value}): lower --lr")
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        with torch.no_grad():
            loss_sum += loss.detach().double() * len(idx)
            correct += (logits.argmax(1) == y).sum()
        count += len(idx)
        if task is not None:
            bar.update(task, advance=1, loss=value)
    totals = torch.stack([loss_sum, correct.double(), torch.tensor(float(count), dtype=torch.float64, device=device)])
    totals = distributed.all_reduce_sum(totals, run.dist)
    seconds = time.perf_counter() - t0
    if task is not None:
        bar.remove_task(task)
    loss_total, hits, seen = (float(v) for v in totals.cpu())  # over every rank
    return {
        "epoch": epoch + 1,
        "loss": loss_total / max(seen, 1),
        "train_top1": 100.0 * hits / max(seen, 1),
        "lr": float(run.optimizer.param_groups[0]["lr"]),
        "images_per_s": round(seen / max(seconds, 1e-9), 1),
        "seconds": seconds,
        "_t_end": time.perf_counter(),
    }


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
