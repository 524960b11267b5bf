"""Training recipes as data: the seed's CIFAR recipe, the authors' ImageNet recipe, and a fast one for digits.

A recipe fixes the optimizer and the learning-rate schedule; `TrainConfig` flags override single values. The
learning rate is given at `base_batch` and scaled linearly with the batch size actually used (Goyal et al.),
which is how the authors' ImageNet recipe states it (0.4 at batch 1024).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from ..errors import SqnxtError

__all__ = ["Recipe", "RECIPES", "get_recipe", "lr_factor"]


@dataclass(frozen=True)
class Recipe:
    """A training recipe: epochs, batch, optimiser, learning-rate schedule and regularisation."""

    name: str
    epochs: int
    batch_size: int
    lr: float  # at base_batch
    base_batch: int
    optimizer: str = "sgd"  # sgd | adamw
    momentum: float = 0.9  # SGD momentum (AdamW: beta1)
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "step"  # step | poly | cosine
    milestones: tuple[int, ...] = ()  # epochs, for "step"
    gamma: float = 0.2  # step factor
    power: float = 2.0  # poly power
    warmup_iters: int = 0  # at base_batch; scaled so the warm-up covers the same number of images
    warmup_start_lr: float | None = None  # at base_batch; None = start from 0
    label_smoothing: float = 0.0
    zero_init_residual: bool = False  # start every residual branch at zero (Goyal et al.): fast early training
    description: str = ""

    def scaled_lr(self, batch_size: int) -> float:
        """The learning rate scaled linearly to `batch_size`."""
        return self.lr * batch_size / self.base_batch

    def to_dict(self) -> dict:
        """The recipe as JSON-ready data."""
        data = asdict(self)
        data["milestones"] = list(self.milestones)
        return data

    def with_overrides(self, **values) -> Recipe:
        """A copy with the values that are not None replaced."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "seed-cifar",
            epochs=200,
            batch_size=128,
            lr=0.1,
            base_batch=128,
            momentum=0.9,
            weight_decay=5e-4,
            schedule="step",
            milestones=(60, 120, 160),
            gamma=0.2,
            description="the seed's CIFAR/Tiny ImageNet recipe: SGD 0.9, wd 5e-4, lr 0.1 x0.2 at 60/120/160",
        ),
        Recipe(
            "paper-imagenet",
            epochs=120,
            batch_size=1024,
            lr=0.4,
            base_batch=1024,
            momentum=0.9,
            weight_decay=1e-4,
            schedule="poly",
            power=2.0,
            warmup_iters=780,
            warmup_start_lr=0.1,
            description="the authors' ImageNet recipe: lr 0.4 at batch 1024, poly power 2, linear warm-up "
            "from 0.1 over 780 iterations, wd 1e-4",
        ),
        Recipe(
            "digits-fast",
            epochs=6,
            batch_size=16,
            lr=0.2,
            base_batch=16,
            momentum=0.9,
            nesterov=True,
            weight_decay=5e-4,
            schedule="cosine",
            warmup_iters=50,
            warmup_start_lr=0.0,
            label_smoothing=0.1,
            description="the embedded default: 6 short cosine epochs at batch 16, label smoothing 0.1, that "
            "reach >= 98% on digits on a 2-core CPU (355-357/360 for seeds 0-2)",
        ),
    )
}


def get_recipe(name: str) -> Recipe:
    """The recipe by name; SqnxtError naming the known ones otherwise."""
    if name not in RECIPES:
        raise SqnxtError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


def lr_factor(recipe: Recipe, step: int, steps_per_epoch: int, epochs: int, batch_size: int) -> float:
    """The learning rate at optimizer step `step`, as a multiple of the scaled base lr (for LambdaLR)."""
    total = max(1, steps_per_epoch * epochs)
    warmup = min(total, round(recipe.warmup_iters * recipe.base_batch / batch_size)) if recipe.warmup_iters else 0
    if step < warmup:
        start = 0.0 if recipe.warmup_start_lr is None else recipe.warmup_start_lr / recipe.lr
        return start + (1.0 - start) * step / warmup
    if recipe.schedule == "step":
        epoch = step // max(1, steps_per_epoch)
        return recipe.gamma ** sum(epoch >= m for m in recipe.milestones)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if recipe.schedule == "poly":
        return (1.0 - progress) ** recipe.power
    if recipe.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise SqnxtError(f"unknown schedule {recipe.schedule!r}")
